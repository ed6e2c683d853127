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
    for phase in ("setup", "train", "save", "evaluate", "show"):
        wanted = inspect.signature(getattr(Recipe, phase)).parameters
        found = inspect.signature(getattr(module, phase)).parameters
        expected = [(n, p.default) for n, p in wanted.items() if n != "self"]
        assert [(n, p.default) for n, p in found.items()] == expected, f"{recipe}.{phase}"


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
