"""The package's shape is enforced, not hoped for: what imports what, and what loads torch."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from termwise.cli import app

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "termwise"
RECIPES = sorted(p.name for p in (PACKAGE / "recipes").iterdir() if (p / "__init__.py").exists())
SYSTEMS = ["btrm", "pref", "bayes_clf", "vae", "lvm"]  # the trained systems share one recipe shape


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("recipe", RECIPES)
def test_no_recipe_imports_another(recipe):
    offending = {
        f"{path.name}: {name}"
        for path in (PACKAGE / "recipes" / recipe).glob("*.py")
        for name in _imports(path)
        if name.startswith("termwise.recipes.")
        and not name.startswith(f"termwise.recipes.{recipe}")
    }
    assert not offending, f"recipes/{recipe} imports another recipe: {sorted(offending)}"


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_fulfils_the_contract_with_its_signatures(recipe):
    """Each phase of :class:`termwise.trainer.recipe.Recipe`, with the same parameters in
    the same order (names and defaults), in every recipe module."""
    import importlib
    import inspect

    from termwise.trainer.recipe import Recipe

    module = importlib.import_module(f"termwise.recipes.{recipe}.recipe")
    assert module.NAME == recipe and isinstance(module.KEEPS_BEST, bool)
    assert isinstance(module.OUTPUTS, tuple) and all(re.compile(o) for o in module.OUTPUTS)
    for phase in ("setup", "train", "save", "evaluate", "show", "key_metric"):
        wanted = inspect.signature(getattr(Recipe, phase)).parameters
        found = inspect.signature(getattr(module, phase)).parameters
        expected = [(n, p.default) for n, p in wanted.items() if n != "self"]
        assert [(n, p.default) for n, p in found.items()] == expected, f"{recipe}.{phase}"


# Objects a recipe builds and then must leave alone: their behaviour is set at construction
# (callbacks, eval_fn, config_keys), where a reader of setup sees it.
BUILT = {"trainer", "monitor", "stopping", "early_stopping", "control"}
# What a loss function may call methods of, beyond its own locals: tensor libraries, the
# objective, and a term's own state (auto free bits re-solving its threshold).
LOSS_MAY_CALL = {"torch", "F", "math", "objective", "auto"}


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def _chain(node: ast.expr) -> list[str]:
    """The names along ``a.b[c].d``: ``["a", "b", "d"]``."""
    names = []
    while isinstance(node, ast.Attribute | ast.Subscript):
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
    return names[::-1]


def _stores(tree: ast.AST) -> list[ast.expr]:
    targets: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets += node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets.append(node.target)
    return [t for t in targets if isinstance(t, ast.Attribute | ast.Subscript)]


def assignments_to_built_objects(source: str) -> list[str]:
    """``trainer.eval_fn = ...``, ``session.trainer.x = ...``, ``monitor.config_keys = ...``."""
    found = []
    for target in _stores(ast.parse(source)):
        chain = _chain(target)
        if BUILT & set(chain[:-1]):
            found.append(f"line {target.lineno}: {'.'.join(chain)} =")
    return found


def loss_side_effects(source: str) -> list[str]:
    """In every ``loss_fn``: stores into anything but its own locals, and method calls on
    captured objects other than :data:`LOSS_MAY_CALL` (a stage switch, a ramp's setter)."""
    found = []
    for function in ast.walk(ast.parse(source)):
        if not (isinstance(function, ast.FunctionDef) and function.name == "loss_fn"):
            continue
        local = {
            n.id
            for n in ast.walk(function)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        for node in ast.walk(function):
            if isinstance(node, ast.Nonlocal | ast.Global):
                found.append(f"line {node.lineno}: {type(node).__name__.lower()}")
        for target in _stores(function):
            root = _root(target)
            if not (isinstance(root, ast.Name) and root.id in local):
                found.append(f"line {target.lineno}: {'.'.join(_chain(target))} =")
        for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
            if not isinstance(call.func, ast.Attribute):
                continue  # a function or the model: pure, or the forward pass
            root = _root(call.func)
            if isinstance(root, ast.Name) and root.id not in local | LOSS_MAY_CALL:
                if root.id not in {a.arg for a in function.args.args}:
                    found.append(f"line {call.lineno}: {'.'.join(_chain(call.func))}(...)")
    return found


@pytest.mark.parametrize("recipe", RECIPES)
def test_no_recipe_changes_its_trainer_after_building_it_nor_state_in_a_loss(recipe):
    """A recipe's phases are callbacks registered in setup; a loss function computes the
    loss and changes nothing but its terms' own state."""
    problems = {
        f"{path.name} {problem}"
        for path in (PACKAGE / "recipes" / recipe).glob("*.py")
        for problem in assignments_to_built_objects(path.read_text())
        + loss_side_effects(path.read_text())
    }
    assert not problems, f"recipes/{recipe}: {sorted(problems)}"


def test_the_layout_check_catches_a_patched_trainer_and_a_loss_with_side_effects():
    """The check above, on the shapes it exists to forbid (the vae and lvm of before)."""
    patched = (
        "def setup():\n    trainer = T()\n    trainer.eval_fn = f\n    stopping.on_improve = g\n"
    )
    assert len(assignments_to_built_objects(patched)) == 2
    loss = (
        "def make():\n"
        "    def loss_fn(model, batch, step):\n"
        "        switch.enter(step, model)\n"
        "        scale.target_fraction = ramp(step)\n"
        "        terms = {}\n"
        "        terms['x'] = model(batch)\n"
        "        threshold = auto.observe(step, terms['x'])\n"
        "        return objective(step, **terms)\n"
    )
    assert [p.split(": ")[1] for p in loss_side_effects(loss)] == [
        "scale.target_fraction =",
        "switch.enter(...)",
    ]


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_system_has_its_files(system):
    files = {p.name for p in (PACKAGE / "recipes" / system).glob("*.py")}
    assert {"config.py", "recipe.py", "cli.py", "model.py", "data.py"} <= files


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports (function-level
    imports included: a lazy import still ties the two modules together)."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = _package_imports()
    cycles = []
    for start in graph:
        stack, seen = [(start, (start,))], {start}
        while stack:
            name, path = stack.pop()
            for nxt in graph[name]:
                if nxt == start:
                    cycles.append(" -> ".join((*path, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*path, nxt)))
    assert not cycles, f"import cycles: {sorted(cycles)[:5]}"


def test_engine_never_imports_recipes_or_cli():
    engine = [PACKAGE / name for name in ("terms", "health", "trainer", "models", "data")]
    engine_files = [p for folder in engine for p in folder.glob("*.py")]
    engine_files += [PACKAGE / f for f in ("config.py", "errors.py", "objective.py")]
    for path in engine_files:
        bad = {n for n in _imports(path) if re.match(r"termwise\.(recipes|cli)\b", n)}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


@pytest.mark.parametrize(
    "code",
    [
        "import termwise.cli",
        "import termwise.config, termwise.errors",
        *(f"import termwise.recipes.{r}.config" for r in RECIPES),
    ],
)
def test_configs_and_the_cli_load_without_torch(code):
    probe = f"import sys; {code}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"{code!r} imported torch"


def _commands(group, prefix=()):
    """Every command path of the typer app, e.g. ('btrm', 'train')."""
    import typer.main

    click_group = typer.main.get_command(group)
    stack = [(prefix, click_group)]
    while stack:
        path, command = stack.pop()
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            stack.append(((*path, name), sub))


COMMANDS = sorted(_commands(app))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "termwise")
def test_every_command_has_help(path):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_every_readme_command_exists():
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    used = set(re.findall(r"^termwise ((?:[a-z][\w-]* ?)+)", readme, flags=re.M))
    known = {" ".join(p) for p in COMMANDS}
    missing = {u.strip() for u in used if u.strip() not in known and u.split()[0] != "..."}
    # A README line may pass arguments after the command path (`termwise probe DATA`):
    # take the longest known prefix of each.
    unresolved = {
        m for m in missing if not any(m.startswith(k + " ") or m == k for k in known if k)
    }
    assert not unresolved, f"README commands that do not exist: {sorted(unresolved)}"


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.glob("recipes/*/configs/*.yaml")), ids=lambda p: p.name
)
def test_every_bundled_config_loads(path, monkeypatch):
    from termwise.config import load_yaml_config

    recipe = path.parents[1].name
    module = __import__(f"termwise.recipes.{recipe}.config", fromlist=["*"])
    model = next(
        getattr(module, name)
        for name in dir(module)
        if name.endswith("Config") and name.lower().startswith(recipe.replace("_", ""))
    )
    monkeypatch.chdir(PACKAGE.parents[1])  # bundled configs name the bundled data
    load_yaml_config(path, model)


BENCH = sorted((PACKAGE.parents[1] / "bench").glob("[a-z]*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCH, ids=lambda p: p.name)
def test_every_bench_script_still_imports(script):
    """Benchmarks are not run by the tests, but a moved module must not break them."""
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
