"""Every command, tried as a hostile but realistic user would: wrong paths, outputs that name
inputs, project folders, `-o .`, symlinks, corrupt and empty files, busy ports, a kill.

Each case runs the installed ``termwise`` in a subprocess inside a scratch folder (tiny
models trained first, a few minutes on 2 cores) and checks three things: the exit status,
no traceback (a user's mistake is one ``error:`` line), and that the files it must not touch
are byte-identical afterwards. ``--write`` puts the table in docs/reliability.md.

    .venv/bin/python scripts/hostile_cases.py [--write] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The installed entry point (its name is what `--help` hints show), else the module.
ENTRY = Path(sys.executable).with_name("termwise")
TERMWISE = (
    [str(ENTRY)]
    if ENTRY.is_file()
    else [sys.executable, "-c", "from termwise.cli import main; main()"]
)
DOC = ROOT / "docs" / "reliability.md"


@dataclass
class Case:
    family: str
    name: str
    args: list[str]
    expect: int = 2
    keep: list[str] = field(default_factory=list)  # paths (relative to the scratch) unchanged
    setup: Callable[[Path], None] | None = None
    cwd: str = "."
    contains: str = ""


def snapshot(paths: list[Path]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for path in paths:
        entries = sorted(path.rglob("*")) if path.is_dir() else [path]
        for entry in entries:
            if entry.is_symlink():
                seen[str(entry)] = ("link", os.readlink(entry))
            elif entry.is_file():
                seen[str(entry)] = entry.read_bytes()
            elif entry.is_dir():
                seen[str(entry)] = "dir"
            else:
                seen[str(entry)] = None
    return seen


def run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [*TERMWISE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def judge(case: Case, scratch: Path) -> tuple[bool, str]:
    if case.setup is not None:
        case.setup(scratch)
    kept = [scratch / k for k in case.keep]
    before = snapshot(kept)
    done = run(case.args, scratch / case.cwd)
    after = snapshot(kept)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    problems = []
    if done.returncode != case.expect:
        problems.append(f"exit {done.returncode}, expected {case.expect}")
    if "Traceback" in done.stderr:
        problems.append("traceback")
    if case.expect == 2 and len(errors) != 1:
        problems.append(f"{len(errors)} error lines")
    if case.contains and case.contains not in done.stderr + done.stdout:
        problems.append(f"no {case.contains!r} in the output")
    if before != after:
        problems.append("a protected file changed")
    said = (
        errors[0].removeprefix("error: ")
        if errors
        else (done.stderr.strip().splitlines() or [""])[-1]
    )
    said = said.replace(str(scratch) + "/", "").replace(str(scratch), ".")
    return not problems, "; ".join(problems) or said[:150]


# -- the scratch folder ---------------------------------------------------------------------


def tiny_backbone(folder: Path) -> Path:
    from tests.conftest import _save_tiny  # the test suite's 2-layer BERT of hidden 64

    return _save_tiny(folder / "tiny_bert", "bert")


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def prepare(scratch: Path) -> None:
    """Configs and tiny trained runs for every system."""
    from tests.recipes.lvm.test_recipe import tiny_lvm_config
    from tests.recipes.vae.conftest import tiny_config, write_documents

    bert = tiny_backbone(scratch)
    for system in ("btrm", "pref"):
        assert run([system, "gen-config", "-o", f"{system}.yaml"], scratch).returncode == 0
    btrm = yaml.safe_load((scratch / "btrm.yaml").read_text())
    btrm["backbone"].update({"path": str(bert), "max_length": 32, "score_max_length": 32})
    btrm["trainer"].update({"max_steps": 4, "progress": False, "tensorboard": False})
    write_yaml(scratch / "btrm.yaml", btrm)
    pref = yaml.safe_load((scratch / "pref.yaml").read_text())
    pref["backbone"].update({"path": str(bert), "max_length": 64})
    pref.update({"max_pairs": 24})
    pref["trainer"].update({"max_steps": 4, "progress": False, "tensorboard": False})
    write_yaml(scratch / "pref.yaml", pref)
    (scratch / "vae").mkdir()
    shutil.copy(tiny_config(scratch / "vae", bert), scratch / "vae.yaml")
    (scratch / "lvm").mkdir()
    shutil.copy(tiny_lvm_config(scratch / "lvm", bert), scratch / "lvm.yaml")
    write_documents(scratch / "docs.jsonl", documents=3, sentences=8)
    (scratch / "texts.jsonl").write_text('{"text": "a council meeting"}\n{"text": "a story"}\n')
    (scratch / "pairs.jsonl").write_text(
        '{"prompt": "Is 7 prime?", "chosen": "Yes.", "rejected": "No."}\n'
        '{"prompt": "2+2?", "chosen": "4", "rejected": "5"}\n'
    )
    (scratch / "one_pair.jsonl").write_text(
        '{"prompt": "Is 7 prime?", "chosen": "Yes.", "rejected": "No."}\n'
    )
    (scratch / "table.csv").write_text(
        "a,b,y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60))
    )
    (scratch / "empty.jsonl").write_text("")
    bayes = yaml.safe_load((ROOT / "src/termwise/recipes/bayes_clf/configs/daily.yaml").read_text())
    bayes["data"]["path"] = str(ROOT / "src/termwise/sample_data/timeseries/stocks_daily.csv")
    bayes["trainer"].update({"max_steps": 4, "progress": False, "tensorboard": False})
    write_yaml(scratch / "bayes.yaml", bayes)
    (scratch / "corrupt.jsonl").write_text('{"text": "fine"}\n{not json\n')
    (scratch / "latin1.yaml").write_bytes(b"trainer:\n  max_steps: 4 # caf\xe9\n")
    (scratch / "notes.json").write_text('{"my": "numbers"}')
    (scratch / "a_file").write_text("x")
    (scratch / "token").write_text("s3cret\n")
    project = scratch / "proj"
    (project / "notes").mkdir(parents=True)
    (project / "notes" / "ideas.md").write_text("years of work")
    (project / "thesis.tex").write_text("\\documentclass{article}")
    (project / "config.yaml").write_text("my: settings\n")
    (project / "checkpoints").mkdir()
    (project / "checkpoints" / "mine.bin").write_bytes(b"\x00\x01")
    trained = [
        ["btrm", "train", "-c", "btrm.yaml", "-o", "runs/btrm"],
        ["pref", "train", "-c", "pref.yaml", "-o", "runs/pref"],
        ["vae", "train", "-c", "vae.yaml", "-o", "runs/vae"],
        ["lvm", "train", "-c", "lvm.yaml", "-o", "runs/lvm"],
        ["demo", "free-bits", "--run-dir", "runs/demo", "--max-steps", "20"],
    ]
    for args in trained:
        done = run(args, scratch)
        if done.returncode != 0:
            raise SystemExit(f"setup failed: termwise {' '.join(args)}\n{done.stderr[-2000:]}")
    run(
        ["btrm", "score", "-m", "runs/btrm/model", "-i", "texts.jsonl", "-o", "scored.jsonl"],
        scratch,
    )
    (scratch / "link").symlink_to(scratch / "runs" / "vae")


def with_yaml(source: str, target: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def setup(scratch: Path) -> None:
        data = yaml.safe_load((scratch / source).read_text())
        change(data)
        write_yaml(scratch / target, data)

    return setup


def text_setup(target: str, text: str) -> Callable[[Path], None]:
    return lambda scratch: (scratch / target).write_text(text)


PASSAGES = "overlap.jsonl"


def passages_case(what: str, rows: str, contains: str) -> Case:
    """``lvm build-data`` on corpus passages ``rows`` (overlap.jsonl), refused in one line."""
    edit = with_yaml("lvm.yaml", "passages.yaml", lambda d: d["data"].update(sequences=[PASSAGES]))

    def setup(scratch: Path) -> None:
        text_setup(PASSAGES, rows)(scratch)
        edit(scratch)

    return Case(
        "lvm build-data",
        what,
        ["lvm", "build-data", "-c", "passages.yaml"],
        setup=setup,
        keep=[PASSAGES],
        contains=contains,
    )


# -- the cases -------------------------------------------------------------------------------


def cases() -> list[Case]:
    out: list[Case] = []

    for system in ("btrm", "pref", "vae", "lvm"):
        family = f"{system} gen-config"
        out += [
            Case(
                family,
                "over an existing file without --force",
                [system, "gen-config", "-o", "notes.json"],
                keep=["notes.json"],
            ),
            Case(family, "-o a directory", [system, "gen-config", "-o", "proj"], keep=["proj"]),
            Case(
                family,
                "-o under a file",
                [system, "gen-config", "-o", "a_file/c.yaml"],
                keep=["a_file"],
            ),
            Case(family, "-o .", [system, "gen-config", "-o", "."], keep=["proj"]),
        ]

    for system in ("btrm", "pref", "vae", "lvm"):
        family = f"{system} train"
        config = f"{system}.yaml"
        out += [
            Case(family, "missing config", [system, "train", "-c", "nope.yaml", "-o", "new"]),
            Case(family, "config is a directory", [system, "train", "-c", "proj", "-o", "new"]),
            Case(family, "config not UTF-8", [system, "train", "-c", "latin1.yaml", "-o", "new"]),
            Case(family, "empty config", [system, "train", "-c", "empty.jsonl", "-o", "new"]),
            Case(
                family,
                "-o a project folder, --overwrite",
                [system, "train", "-c", config, "-o", "proj", "--overwrite"],
                keep=["proj"],
            ),
            Case(
                family,
                "-o a project folder, --resume",
                [system, "train", "-c", config, "-o", "proj", "--resume"],
                keep=["proj"],
            ),
            Case(
                family,
                "-o . --overwrite inside the project",
                [system, "train", "-c", f"../{config}", "-o", ".", "--overwrite"],
                keep=["proj"],
                cwd="proj",
            ),
            Case(
                family,
                "-o a symlink to a run, --overwrite",
                [system, "train", "-c", config, "-o", "link", "--overwrite"],
                keep=["runs/vae"],
            ),
            Case(
                family,
                "-o an existing run without a flag",
                [system, "train", "-c", config, "-o", f"runs/{system}"],
                keep=[f"runs/{system}"],
                contains="--resume",
            ),
            Case(
                family,
                "-o a file",
                [system, "train", "-c", config, "-o", "a_file"],
                keep=["a_file"],
            ),
            Case(
                family,
                "duplicated key",
                [system, "train", "-c", f"dup-{config}", "-o", "new"],
                setup=text_setup(
                    f"dup-{config}", "trainer:\n  max_steps: 4\ntrainer:\n  max_steps: 5\n"
                ),
                contains="duplicated key",
            ),
            Case(
                family,
                "--resume and --overwrite together",
                [system, "train", "-c", config, "-o", f"runs/{system}", "--resume", "--overwrite"],
                keep=[f"runs/{system}"],
            ),
        ]
    out += [
        Case(
            "lvm train",
            "clamp lo > hi",
            ["lvm", "train", "-c", "clamp.yaml", "-o", "new"],
            setup=with_yaml(
                "lvm.yaml", "clamp.yaml", lambda d: d.update(objective={"clamp": [0.05, 0.0001]})
            ),
            contains="lo < hi",
        ),
        Case(
            "lvm train",
            "the config's data folder as -o, --overwrite",
            ["lvm", "train", "-c", "lvm.yaml", "-o", "lvm", "--overwrite"],
            keep=["lvm"],
        ),
        Case(
            "demo free-bits",
            "--run-dir a project folder, --overwrite",
            ["demo", "free-bits", "--run-dir", "proj", "--overwrite"],
            keep=["proj"],
        ),
        Case(
            "demo free-bits",
            "--run-dir . --overwrite",
            ["demo", "free-bits", "--run-dir", ".", "--overwrite"],
            keep=["proj", "runs"],
        ),
        Case("demo free-bits", "--max-steps 0", ["demo", "free-bits", "--max-steps", "0"]),
        Case(
            "bayes-clf train",
            "-o a project folder, --overwrite",
            [
                "bayes-clf",
                "train",
                "-c",
                "bayes.yaml",
                "-o",
                "proj",
                "--overwrite",
            ],
            keep=["proj"],
            cwd=".",
        ),
        Case(
            "bayes-clf diagnose",
            "-o . --overwrite",
            [
                "bayes-clf",
                "diagnose",
                "-c",
                "../bayes.yaml",
                "-o",
                ".",
                "--overwrite",
            ],
            keep=["proj"],
            cwd="proj",
        ),
        Case(
            "bayes-clf train",
            "missing config",
            ["bayes-clf", "train", "-c", "nope.yaml", "-o", "new"],
        ),
    ]

    evals = {
        "vae": ("runs/vae/model", "docs.jsonl", "termwise_vae.json"),
        "lvm": ("runs/lvm/model", "docs.jsonl", "termwise_lvm.json"),
        "pref": ("runs/pref/model", "pairs.jsonl", "termwise_pref.json"),
    }
    for system, (model, data, manifest) in evals.items():
        family = f"{system} eval"
        base = [system, "eval", "-m", model, "-d", data]
        run_dir = model.rsplit("/", 1)[0]
        out += [
            Case(family, "missing model", [system, "eval", "-m", "nope", "-d", data]),
            Case(family, "data is a directory", [system, "eval", "-m", model, "-d", "proj"]),
            Case(family, "data missing", [system, "eval", "-m", model, "-d", "nope.jsonl"]),
            Case(
                family,
                "data corrupt",
                [system, "eval", "-m", model, "-d", "corrupt.jsonl"],
                keep=[run_dir],
            ),
            Case(family, "--json = the data", [*base, "--json", data, "--force"], keep=[data]),
            Case(
                family,
                "--json = the model's manifest",
                [*base, "--json", f"{model}/{manifest}", "--force"],
                keep=[run_dir],
            ),
            Case(
                family,
                "--json = the run's config.yaml",
                [*base, "--json", f"{run_dir}/config.yaml", "--force"],
                keep=[run_dir],
            ),
            Case(
                family,
                "--json = a user's file, no --force",
                [*base, "--json", "notes.json"],
                keep=["notes.json"],
            ),
            Case(family, "--json a directory", [*base, "--json", "proj"], keep=["proj"]),
        ]
    out += [
        Case(
            "vae eval",
            "runs, own --json rewritten",
            ["vae", "eval", "-m", "runs/vae/model", "-d", "docs.jsonl", "--json", "vae_eval.json"],
            expect=0,
            keep=["runs/vae"],
        ),
        Case(
            "vae eval",
            "same --json again (its own output)",
            ["vae", "eval", "-m", "runs/vae/model", "-d", "docs.jsonl", "--json", "vae_eval.json"],
            expect=0,
            keep=["runs/vae"],
        ),
        Case(
            "lvm eval",
            "a record with a bad field",
            ["lvm", "eval", "-m", "runs/lvm/model", "-d", "bad_docs.jsonl"],
            setup=text_setup(
                "bad_docs.jsonl", '{"sentences": ["a.", "b."]}\n{"sentences": ["c.", 7]}\n'
            ),
            keep=["runs/lvm"],
            contains="bad_docs.jsonl:2: sentences[1]",
        ),
        Case(
            "lvm diagnose-data",
            "--json = the config's data file",
            ["lvm", "diagnose-data", "-c", "lvm.yaml", "--json", "lvm/docs.jsonl", "--force"],
            keep=["lvm/docs.jsonl"],
        ),
        Case(
            "lvm diagnose-data",
            "--json = the config",
            ["lvm", "diagnose-data", "-c", "lvm.yaml", "--json", "lvm.yaml", "--force"],
            keep=["lvm.yaml"],
        ),
        Case(
            "lvm build-data",
            "cache_dir a user folder",
            ["lvm", "build-data", "-c", "cache-user.yaml"],
            setup=with_yaml(
                "lvm.yaml", "cache-user.yaml", lambda d: d["data"].update(cache_dir="proj")
            ),
            keep=["proj"],
        ),
        Case(
            "lvm build-data",
            "cache_dir a file",
            ["lvm", "build-data", "-c", "cache-file.yaml"],
            setup=with_yaml(
                "lvm.yaml", "cache-file.yaml", lambda d: d["data"].update(cache_dir="a_file")
            ),
            keep=["a_file"],
        ),
        passages_case(
            "corpus passages whose ranges overlap",
            '{"id": "brown-ca01-s000-003", "text": "A b. C d. E f. G h."}\n'
            '{"id": "brown-ca01-s002-004", "text": "I j. K l. M n."}\n',
            "overlap.jsonl:2: id",
        ),
        passages_case(
            "a passage id with no range",
            '{"id": "brown-ca01", "text": "A b. C d."}\n',
            "overlap.jsonl:1: id",
        ),
        Case(
            "lvm gen-config",
            "an unknown document set",
            ["lvm", "gen-config", "-o", "docs-set.yaml", "--documents", "news"],
            contains="prose-mix",
        ),
        Case(
            "vae build-data",
            "cache_dir a user folder",
            ["vae", "build-data", "-c", "vcache-user.yaml"],
            setup=with_yaml(
                "vae.yaml", "vcache-user.yaml", lambda d: d["data"].update(cache_dir="proj")
            ),
            keep=["proj"],
        ),
        Case(
            "vae build-data",
            "a document without sentences",
            ["vae", "build-data", "-c", "vnosent.yaml"],
            setup=lambda s: (
                text_setup("nosent.jsonl", '{"title": "t"}\n')(s),
                with_yaml(
                    "vae.yaml",
                    "vnosent.yaml",
                    lambda d: d["data"].update(sequences=["nosent.jsonl"], cache_dir="vcache2"),
                )(s),
            ),
            contains="sentences: missing",
        ),
        Case("vae sample", "missing model", ["vae", "sample", "-m", "nope"]),
    ]

    for system, model, data in (
        ("btrm", "runs/btrm/model", "texts.jsonl"),
        ("pref", "runs/pref/model", "pairs.jsonl"),
    ):
        family = f"{system} score"
        base = [system, "score", "-m", model, "-i", data]
        out += [
            Case(family, "-o = the input", [*base, "-o", data, "--force"], keep=[data]),
            Case(
                family,
                "-o a user's file, no --force",
                [*base, "-o", "notes.json"],
                keep=["notes.json"],
            ),
            Case(
                family,
                "-o inside the model",
                [*base, "-o", f"{model}/out.jsonl", "--force"],
                keep=[model],
            ),
            Case(
                family,
                "-o the run's eval.json",
                [*base, "-o", model.replace("model", "eval.json"), "--force"],
                keep=[model.rsplit("/", 1)[0]],
            ),
            Case(family, "-o .", [*base, "-o", "."]),
            Case(
                family,
                "missing input",
                [system, "score", "-m", model, "-i", "nope.jsonl", "-o", "o.jsonl"],
            ),
            Case(
                family,
                "corrupt input keeps the old output",
                [
                    system,
                    "score",
                    "-m",
                    model,
                    "-i",
                    "corrupt.jsonl",
                    "-o",
                    f"{system}_scored.jsonl",
                ],
                setup=text_setup(f"{system}_scored.jsonl", ""),
                keep=[f"{system}_scored.jsonl"],
            ),
            Case(
                family,
                "writes, then rewrites its own output",
                [*base, "-o", f"{system}_again.jsonl"],
                expect=0,
                keep=[data],
            ),
            Case(
                family,
                "model is a file",
                [system, "score", "-m", "a_file", "-i", data, "-o", "o.jsonl"],
            ),
        ]
    out += [
        Case(
            "pref calibrate",
            "one pair: keeps the saved fit",
            ["pref", "calibrate", "-m", "runs/pref/model", "-d", "one_pair.jsonl"],
            keep=["runs/pref/model"],
            contains="kept unchanged",
        ),
        Case(
            "pref calibrate",
            "missing data",
            ["pref", "calibrate", "-m", "runs/pref/model", "-d", "nope.jsonl"],
            keep=["runs/pref/model"],
        ),
        Case(
            "pref calibrate",
            "empty data",
            ["pref", "calibrate", "-m", "runs/pref/model", "-d", "empty.jsonl"],
            keep=["runs/pref/model"],
        ),
        Case("health explain", "missing run", ["health", "explain", "nope"]),
        Case("health explain", "a file", ["health", "explain", "a_file"]),
        Case(
            "health fix",
            "-o the run's health.jsonl --force",
            ["health", "fix", "runs/demo/run1", "-o", "runs/demo/run1/health.jsonl", "--force"],
            keep=["runs/demo"],
        ),
        Case(
            "health fix",
            "-o the run's config.yaml --force",
            ["health", "fix", "runs/demo/run1", "-o", "runs/demo/run1/config.yaml", "--force"],
            keep=["runs/demo"],
        ),
        Case(
            "health fix",
            "--only a mistyped code",
            ["health", "fix", "runs/demo/run1", "--only", "free_bits.allfree"],
            keep=["runs/demo"],
            contains="did you mean",
        ),
        Case(
            "health fix", "a folder without health.jsonl", ["health", "fix", "proj"], keep=["proj"]
        ),
        Case("report", "missing run", ["report", "nope"]),
        Case(
            "report",
            "-o the run's scalars.csv --force",
            ["report", "runs/vae", "-o", "runs/vae/scalars.csv", "--force"],
            keep=["runs/vae"],
        ),
        Case(
            "report",
            "-o a user's file, no --force",
            ["report", "runs/vae", "-o", "notes.json"],
            keep=["notes.json"],
        ),
        Case("report", "-o a directory", ["report", "runs/vae", "-o", "proj"], keep=["proj"]),
        Case(
            "report",
            "writes its page",
            ["report", "runs/vae", "-o", "page.html"],
            expect=0,
            keep=["runs/vae"],
        ),
        Case("probe", "missing file", ["probe", "nope.csv", "--target", "y"]),
        Case(
            "probe",
            "--json = the input",
            ["probe", "table.csv", "--target", "y", "--json", "table.csv", "--force"],
            keep=["table.csv"],
        ),
        Case("probe", "unknown target column", ["probe", "table.csv", "--target", "nope"]),
        Case("probe", "empty table", ["probe", "empty.jsonl", "--target", "y"]),
        Case("serve", "missing model", ["serve", "-m", "nope", "--port", "0"]),
        Case("serve", "--port 70000", ["serve", "-m", "runs/btrm/model", "--port", "70000"]),
        Case(
            "serve",
            "a host not on this machine",
            ["serve", "-m", "runs/btrm/model", "--host", "192.0.2.1"],
        ),
        Case(
            "serve",
            "missing token file",
            ["serve", "-m", "runs/btrm/model", "--token-file", "nope"],
        ),
        Case(
            "serve",
            "empty token file",
            ["serve", "-m", "runs/btrm/model", "--token-file", "empty.jsonl"],
        ),
        Case("cli", "unknown option", ["btrm", "train", "--bogus"]),
        Case("cli", "unknown command", ["lvm", "nothing"]),
        Case("cli", "missing required option", ["vae", "eval"]),
    ]
    return out + marker_cases() + config_cases() + corpus_cases()


def marker_cases() -> list[Case]:
    """Outputs judged termwise's own by the marker it writes, never by their shape; the
    temporaries of an atomic swap never take a user's name."""
    score = ["btrm", "score", "-m", "runs/btrm/model", "-i", "texts.jsonl", "-o"]
    export = ["btrm", "export", "-m", "runs/btrm/model", "--neural-only", "-o"]
    return [
        Case(
            "btrm score",
            "-o a user's labelled file shaped like scores",
            [*score, "gold.jsonl"],
            setup=text_setup("gold.jsonl", '{"text": "x", "scores": {"label": 1}}\n'),
            keep=["gold.jsonl"],
            contains="--force",
        ),
        Case(
            "pref eval",
            "--json a user's file shaped like results",
            ["pref", "eval", "-m", "runs/pref/model", "-d", "pairs.jsonl", "--json", "mine.json"],
            setup=text_setup("mine.json", '{"overall": 0.5, "mine": true}'),
            keep=["mine.json"],
        ),
        Case(
            "btrm export",
            "a user's .exp2.partial beside the output",
            [*export, "exp2"],
            setup=lambda s: _user_folder(s, ".exp2.partial"),
            expect=0,
            keep=[".exp2.partial"],
        ),
        Case(
            "btrm export",
            "--force over an export beside a user's .exp1.old",
            [*export, "exp1", "--force"],
            setup=lambda s: (run([*export, "exp1"], s), _user_folder(s, ".exp1.old")),
            expect=0,
            keep=[".exp1.old"],
        ),
        Case(
            "btrm export",
            "--force over an export holding a user's file",
            [*export, "exp3", "--force"],
            setup=lambda s: (
                run([*export, "exp3"], s),
                (s / "exp3" / "my_eval.txt").write_text("mine"),
            ),
            keep=["exp3"],
            contains="my_eval.txt",
        ),
    ]


def _corpus(scratch: Path, bad_line: bool = False) -> None:
    """Two shards in ``corpus/``; with ``bad_line`` the second holds a line that is not JSON."""
    (scratch / "corpus").mkdir(exist_ok=True)
    (scratch / "corpus" / "a.jsonl").write_text('{"text": "a council meeting"}\n')
    second = '{"text": "a story"}\n' + ("{not json\n" if bad_line else "")
    (scratch / "corpus" / "b.jsonl").write_text(second)


def corpus_cases() -> list[Case]:
    """``btrm score`` on a folder of shards (Ray Data): refusals before any cluster starts,
    and a bad record named by file and line with nothing half-written."""
    score = ["btrm", "score", "-m", "runs/btrm/model", "-i", "corpus"]
    return [
        Case("btrm score corpus", "a folder with no shards", [*score[:-1], "proj", "-o", "c1"]),
        Case(
            "btrm score corpus",
            "-o a user's non-empty folder",
            [*score, "-o", "proj"],
            setup=_corpus,
            keep=["proj"],
            contains="not the output of a corpus scoring",
        ),
        Case(
            "btrm score corpus",
            "-o inside the input folder",
            [*score, "-o", "corpus/out"],
            setup=_corpus,
            keep=["corpus"],
            contains="would hold the input shards",
        ),
        Case(
            "btrm score corpus",
            "-o a file",
            [*score, "-o", "a_file"],
            setup=_corpus,
            keep=["a_file"],
        ),
        Case(
            "btrm score corpus",
            "--on-bad-record typo",
            [*score, "-o", "c2", "--on-bad-record", "skp"],
            setup=_corpus,
        ),
        Case(
            "btrm score corpus",
            "--ray-address where no cluster listens",
            [*score, "-o", "c4", "--ray-address", "127.0.0.1:1"],
            setup=_corpus,
            contains="no Ray cluster answers there",
        ),
        Case(
            "btrm score corpus",
            "a shard with a line that is not JSON",
            [*score, "-o", "c3"],
            setup=lambda s: _corpus(s, bad_line=True),
            keep=["corpus"],
            contains="b.jsonl:2",
        ),
    ]


def _user_folder(scratch: Path, name: str) -> None:
    (scratch / name).mkdir(exist_ok=True)
    (scratch / name / "keep.txt").write_text("a user's folder")


BOMB = "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def config_cases() -> list[Case]:
    """Hostile configs and data: refused in one line before anything is allocated."""
    unknown_severity = '{"step": 1, "severity": "fatal", "code": "x.y", "message": "m"}\n'
    return [
        Case(
            "vae train",
            "a YAML alias bomb under an unknown key",
            ["vae", "train", "-c", "bomb.yaml", "-o", "new"],
            setup=text_setup(
                "bomb.yaml", 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x"]\n' + BOMB
            ),
            contains="aliases",
        ),
        Case(
            "vae train",
            "YAML nested 3,000 deep",
            ["vae", "train", "-c", "deep.yaml", "-o", "new"],
            setup=text_setup("deep.yaml", "[" * 3000 + "]" * 3000 + "\n"),
            contains="nested too deeply",
        ),
        Case(
            "btrm train",
            "max_length past the backbone's positions",
            ["btrm", "train", "-c", "btrm-long.yaml", "-o", "new"],
            setup=with_yaml(
                "btrm.yaml", "btrm-long.yaml", lambda d: d["backbone"].update(max_length=5000)
            ),
            contains="positions",
        ),
        Case(
            "vae train",
            "embed_dim 1.0e9",
            ["vae", "train", "-c", "huge.yaml", "-o", "new"],
            setup=with_yaml("vae.yaml", "huge.yaml", lambda d: d["model"].update(embed_dim=1.0e9)),
            contains="less than or equal to 65536",
        ),
        Case(
            "vae train",
            "latent_dim 1000000",
            ["vae", "train", "-c", "wide.yaml", "-o", "new"],
            setup=with_yaml("vae.yaml", "wide.yaml", lambda d: d["model"].update(latent_dim=10**6)),
            contains="model.latent_dim",
        ),
        Case(
            "bayes-clf train",
            "ohlcv with a time column the CSV lacks",
            ["bayes-clf", "train", "-c", "bayes-time.yaml", "-o", "new"],
            setup=with_yaml(
                "bayes.yaml", "bayes-time.yaml", lambda d: d["data"].update(time_col="when")
            ),
            contains="time_col",
        ),
        Case(
            "bayes-clf train",
            "OHLCV columns missing names the config key",
            ["bayes-clf", "train", "-c", "bayes-table.yaml", "-o", "new"],
            setup=with_yaml(
                "bayes.yaml", "bayes-table.yaml", lambda d: d["data"].update(path="table.csv")
            ),
            contains="data.ohlcv",
        ),
        Case(
            "probe",
            "a Latin-1 byte on line 2",
            ["probe", "latin.csv", "--target", "y"],
            setup=lambda s: (s / "latin.csv").write_bytes(b"a,y\n1,caf\xe9\n"),
            contains="latin.csv:2: not UTF-8",
        ),
        Case(
            "probe",
            "a short CSV row",
            ["probe", "short.csv", "--target", "y"],
            setup=text_setup("short.csv", "a,b,y\n" + "1,2,0\n" * 30 + "4,5\n"),
            contains="short.csv:32: 2 field(s)",
        ),
        Case(
            "health explain",
            "--all on a record with an unknown severity",
            ["health", "explain", "runs/oddhealth", "--all"],
            setup=lambda s: (
                (s / "runs/oddhealth").mkdir(exist_ok=True),
                (s / "runs/oddhealth/health.jsonl").write_text(unknown_severity),
            ),
            expect=0,
            contains="1 unreadable line",
        ),
        Case(
            "health recheck",
            "a windows file with one malformed record",
            ["health", "recheck", "runs/oddwindows"],
            setup=lambda s: _odd_windows(s),
            expect=0,
            contains="1 malformed record",
        ),
    ]


def _odd_windows(scratch: Path) -> None:
    target = scratch / "runs/oddwindows"
    if not target.exists():
        shutil.copytree(scratch / "runs/demo/run1", target)
    with (target / "health_windows.jsonl").open("a") as handle:
        handle.write('{"kind": "window", "step": "three", "means": []}\n')


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def busy_port_case(scratch: Path) -> tuple[str, str, bool, str]:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        case = Case("serve", "a busy port", ["serve", "-m", "runs/btrm/model", "--port", str(port)])
        ok, said = judge(case, scratch)
    return case.family, case.name, ok, said


def kill_cases(scratch: Path) -> list[tuple[str, str, bool, str]]:
    """SIGTERM halfway through a run with no periodic checkpoints, then --resume."""
    longer = yaml.safe_load((scratch / "vae.yaml").read_text())
    longer["stages"] = [{"name": "main", "epochs": 400}]
    longer["early_stopping"] = {"patience": 10**6}  # it must still run when the signal comes
    longer["trainer"]["progress"] = True
    write_yaml(scratch / "vae-long.yaml", longer)
    env = {**os.environ, "COLUMNS": "200"}
    args = [*TERMWISE, "vae", "train", "-c", "vae-long.yaml", "-o", "runs/killed"]
    process = subprocess.Popen(
        args, cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 120
    while not (scratch / "runs/killed/scalars.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    checkpoints = sorted((scratch / "runs/killed/checkpoints").glob("step_*"))
    ok = process.returncode == 143 and bool(checkpoints) and "Traceback" not in err
    first = (
        "vae train",
        "SIGTERM halfway (checkpoint_every 0)",
        ok,
        f"exit {process.returncode}; {len(checkpoints)} checkpoint(s); {last_line(err)}",
    )
    longer["stages"] = [{"name": "main", "epochs": 3}]
    write_yaml(scratch / "vae-long.yaml", longer)
    resumed = run(["vae", "train", "-c", "vae-long.yaml", "-o", "runs/killed", "--resume"], scratch)
    ok = resumed.returncode == 0 and "Traceback" not in resumed.stderr
    second = ("vae train", "--resume after the SIGTERM", ok, f"exit {resumed.returncode}")
    return [first, second]


def duplicated_rows(run_dir: Path) -> int:
    """Rows of ``scalars.csv`` whose (step, name) came before: "every step once"."""
    rows = (run_dir / "scalars.csv").read_text().splitlines()[1:]
    keys = [tuple(row.split(",")[:2]) for row in rows]
    return len(keys) - len(set(keys))


def live_run_cases(scratch: Path) -> list[tuple[str, str, bool, str]]:
    """A second train on a live run (any flag), then kill -9 and two resumes."""
    live = yaml.safe_load((scratch / "vae.yaml").read_text())
    live["stages"] = [{"name": "main", "epochs": 400}]
    live["early_stopping"] = {"patience": 10**6}
    live["trainer"]["checkpoint_every"] = 3
    write_yaml(scratch / "vae-live.yaml", live)
    base = ["vae", "train", "-c", "vae-live.yaml", "-o", "runs/live"]
    process = subprocess.Popen(
        [*TERMWISE, *base], cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not list((scratch / "runs/live/checkpoints").glob("step_*")):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    results = []
    for flag in ("--resume", "--overwrite"):
        second = run([*base, flag], scratch)
        errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        ok = (
            second.returncode == 2
            and "Traceback" not in second.stderr
            and len(errors) == 1
            and "another termwise run" in errors[0]
            and (scratch / "runs/live/.termwise-run.json").is_file()
        )
        said = errors[0].removeprefix("error: ") if errors else last_line(second.stderr)
        results.append(("vae train", f"{flag} on a live run", ok, said[:150]))
    process.kill()  # kill -9: no clean-up of any kind
    process.wait()
    live["stages"] = [{"name": "main", "epochs": 3}]
    write_yaml(scratch / "vae-live.yaml", live)
    for name in ("--resume after kill -9", "--resume of the finished run"):
        resumed = run([*base, "--resume"], scratch)
        twice = duplicated_rows(scratch / "runs/live")
        ok = resumed.returncode == 0 and "Traceback" not in resumed.stderr and twice == 0
        results.append(
            ("vae train", name, ok, f"exit {resumed.returncode}; {twice} duplicated log rows")
        )
    return results


def serve_cases(scratch: Path) -> list[tuple[str, str, bool, str]]:
    """Bodies Python's JSON reader takes and no JSON writer can echo: never a 5xx."""
    import http.client

    bodies = [
        ("/score", b'{"texts": [NaN]}'),
        ("/score", b'{"texts": ["ok", -Infinity]}'),
        ("/get_reward", b'{"query": [1e999]}'),
        ("/get_reward", b'{"query": ["ok"], "head": ["\\udbff"]}'),
        ("/score", b'{"texts": {"\\ud834": "x"}}'),
        ("/prefer", b'{"prompt": "p", "a": "x", "b": "y", "calibrated": Infinity}'),
        ("/prefer", b'{"prompt": NaN, "a": ["\\udc80"], "b": "y"}'),
    ]
    results = []
    for model in ("runs/btrm/model", "runs/pref/model"):
        args = [*TERMWISE, "serve", "-m", model, "--port", "0"]
        server = subprocess.Popen(
            args, cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            assert server.stderr is not None
            line = ""  # "serving ... on http://127.0.0.1:PORT (docs...", perhaps wrapped
            while "http://127.0.0.1:" not in line and server.poll() is None:
                line = server.stderr.readline()
            port = int(line.split("http://127.0.0.1:")[1].split()[0])
            statuses = []
            for path, body in bodies:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                headers = {"content-type": "application/json"}
                connection.request("POST", path, body=body, headers=headers)
                statuses.append(connection.getresponse().status)
                connection.close()
        except (OSError, IndexError, ValueError, AssertionError) as error:
            statuses = [f"no answer ({error})"]
        finally:
            server.terminate()
            server.wait(timeout=60)
        ok = all(isinstance(code, int) and code < 500 for code in statuses)
        said = "statuses " + ", ".join(str(code) for code in statuses)
        results.append(("serve", f"NaN, infinities, lone surrogates ({model})", ok, said))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="Write docs/reliability.md.")
    parser.add_argument("--keep", type=Path, help="Use (and keep) this scratch folder.")
    options = parser.parse_args()
    scratch = options.keep or Path(tempfile.mkdtemp(prefix="termwise-hostile-"))
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    prepare(scratch)
    results: list[tuple[str, str, bool, str]] = []
    for case in cases():
        ok, said = judge(case, scratch)
        results.append((case.family, case.name, ok, said))
        print(f"{'ok  ' if ok else 'FAIL'} {case.family}: {case.name}: {said}", flush=True)
    results.append(busy_port_case(scratch))
    results += kill_cases(scratch)
    results += live_run_cases(scratch)
    results += serve_cases(scratch)
    for row in results[-9:]:
        print(f"{'ok  ' if row[2] else 'FAIL'} {row[0]}: {row[1]}: {row[3]}", flush=True)
    failed = [r for r in results if not r[2]]
    minutes = (time.monotonic() - started) / 60
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed ({minutes:.1f} min)")
    if options.write:
        write_doc(results, minutes)
    if options.keep is None:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(1 if failed else 0)


def write_doc(results: list[tuple[str, str, bool, str]], minutes: float) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    marker = "## Cases"
    head = text.split(marker)[0] if marker in text else text
    failed = sum(not r[2] for r in results)
    lines = [
        marker,
        "",
        f"`.venv/bin/python scripts/hostile_cases.py --write`: {len(results)} cases, "
        f"{len(results) - failed} as expected, {failed} not ({minutes:.0f} min on 2 cores). "
        "Each: the exit status, no traceback, one `error:` line for a mistake, and the files "
        "it must not touch byte-identical afterwards. The last column is what the user read.",
        "",
        "| command | case | result | what it said |",
        "|---|---|---|---|",
    ]
    for family, name, ok, said in results:
        lines.append(
            f"| `{family}` | {name} | {'ok' if ok else '**FAIL**'} | {said.replace('|', '/')} |"
        )
    DOC.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
