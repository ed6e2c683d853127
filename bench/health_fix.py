"""`termwise health fix` over the real recipes: a mis-set config, the finding it raises, the
change `health fix` writes, and a rerun of the fixed config.

    python bench/health_fix.py [--only CASE ...] [--write]

Each case trains a recipe on its bundled sample data with one setting wrong on purpose,
applies the latest finding of the expected (code, subject) with `termwise health fix
--only CODE`, reruns the fixed config and reports: the step at which the finding first
fired as a fraction of the run (goal: within the first 5 %), the change, whether the
rerun is clear of it over its second half (an early transient, e.g. a KL that has not
grown yet, is counted but does not count against the fix), and the value the rule guards
(mean over the second half of each run). btrm and pref use the default backbone
(all-MiniLM-L6-v2) with short runs; everything runs on CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from _doc import DOCS, publish
from termwise.health.findings import HEALTH_FILE, Finding, read_findings
from termwise.health.fix import fix_config

MARK = "<!-- health_fix -->"
DATA = Path(__file__).resolve().parents[1] / "data"
TERMWISE = str(Path(sys.executable).with_name("termwise"))


@dataclass
class Case:
    name: str
    recipe: str  # the CLI group
    code: str
    subject: str
    guarded: str  # the scalar the rule judges, e.g. "kl.share"
    write_config: Callable[[Path], Path]
    demo: bool = False  # `termwise demo free-bits` (run dir holds run1/run2)


def termwise(*args: str) -> None:
    done = subprocess.run([TERMWISE, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"termwise {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def edited(path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def generated(work: Path, recipe: str, *args: str) -> Path:
    path = work / f"{recipe}.yaml"
    termwise(recipe, "gen-config", "-o", str(path), "--force", *args)
    return path


def demo_config(**values: Any) -> Callable[[Path], Path]:
    def write(work: Path) -> Path:
        path = work / "demo.yaml"
        path.write_text(yaml.safe_dump(values))
        return path

    return write


def vae_config(work: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    def shorter(config: dict[str, Any]) -> None:
        config["stages"] = [
            {"name": "anneal", "epochs": 1, "kl_weight": {"start": 0.0, "end": 1.0}},
            {"name": "main", "epochs": 4},
        ]
        config["teacher"]["enabled"] = False
        edit(config)

    return edited(generated(work, "vae", "--data-dir", str(DATA)), shorter)


def vae_free_bits(work: Path) -> Path:
    return vae_config(work, lambda c: c["kl"].update({"free_bits": 2.0}))


def vae_teacher(work: Path) -> Path:
    def weak_teacher(config: dict[str, Any]) -> None:
        config["teacher"]["enabled"] = True
        config["stages"][1]["teacher_weight"] = 0.0001

    return vae_config(work, weak_teacher)


def bayes_clf(**values: Any) -> Callable[[Path], Path]:
    def write(work: Path) -> Path:
        source = Path(__file__).resolve().parents[1] / "src/termwise/recipes/bayes_clf/configs"
        path = work / "bayes.yaml"
        shutil.copy(source / "daily.yaml", path)

        def change(config: dict[str, Any]) -> None:
            config["data"]["path"] = str(DATA / "timeseries/stocks_daily.csv")
            for key, value in values.items():
                if isinstance(value, dict):
                    config.setdefault(key, {}).update(value)
                else:
                    config[key] = value

        return edited(path, change)

    return write


def btrm_logsq(work: Path) -> Path:
    def one_head(config: dict[str, Any]) -> None:
        config["heads"] = config["heads"][:1]
        config["log_square_weight"] = 50.0

    return edited(
        generated(work, "btrm", "--data-dir", str(DATA / "corpora"), "--max-steps", "150"),
        one_head,
    )


def pref_centering(work: Path) -> Path:
    path = generated(
        work, "pref", "--kind", "bt", "--data-dir", str(DATA / "preferences"), "--max-steps", "150"
    )
    return edited(path, lambda c: c["bt"].update({"center_rewards_coef": 5.0}))


def lvm_clamp(work: Path) -> Path:
    path = generated(work, "lvm", "--data-dir", str(DATA))
    termwise("lvm", "build-data", "-c", str(path))
    return edited(path, lambda c: c["objective"].update({"clamp": [1e-7, 1e-6]}))


CASES = [
    Case("demo", "demo", "free_bits.all_free", "kl", "kl.penalty_reduction", demo_config(), True),
    Case(
        "demo",
        "demo",
        "free_bits.band",
        "kl",
        "kl.penalty_reduction",
        demo_config(free_bits=0.0005),
        True,
    ),
    Case("vae", "vae", "free_bits.all_free", "kl", "kl.penalty_reduction", vae_free_bits),
    Case("vae", "vae", "term.negligible", "teacher", "teacher.share", vae_teacher),
    Case(
        "bayes-clf",
        "bayes-clf",
        "term.dominant",
        "kl",
        "kl.share",
        bayes_clf(kl_weight=50.0),
    ),
    Case(
        "bayes-clf",
        "bayes-clf",
        "kl.blocks_learning",
        "kl",
        "kl.share",
        bayes_clf(kl_weight=1.0, model={"prior_sigma": 0.1}),
    ),
    Case("btrm", "btrm", "term.dominant", "", "logsq.share", btrm_logsq),
    Case("pref", "pref", "term.dominant", "centering", "centering.share", pref_centering),
    Case("lvm", "lvm", "autoscale.pinned", "dir", "dir.at_bound", lvm_clamp),
]


def train(case: Case, config: Path, out: Path) -> Path:
    """Train; returns the directory holding the run's health.jsonl."""
    if case.demo:
        termwise("demo", "free-bits", "-c", str(config), "--run-dir", str(out), "--overwrite")
        return out / "run1"
    termwise(case.recipe, "train", "-c", str(config), "-o", str(out), "--overwrite")
    return out


def second_half(run: Path, key: str) -> tuple[float, int]:
    """Mean of scalar ``key`` (or of every scalar ending in it) over the run's second half,
    and the run's length in steps."""
    rows = [r for r in csv.DictReader((run / "scalars.csv").open()) if r["step"].isdigit()]
    steps = int(json.loads((run / "report.json").read_text())["step"])
    values = [
        float(r["value"])
        for r in rows
        if int(r["step"]) >= steps / 2 and (r["name"] == key or r["name"].endswith(key))
    ]
    return (sum(values) / len(values) if values else float("nan")), steps


def findings_of(run: Path) -> list[Finding]:
    path = run / HEALTH_FILE  # absent when nothing was found
    return read_findings(path)[0] if path.exists() else []


def run_case(case: Case, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    first = train(case, case.write_config(work), work / "first")
    found = findings_of(first)
    wanted = [
        f for f in found if f.code == case.code and (not case.subject or f.subject == case.subject)
    ]
    before, steps = second_half(first, case.guarded)
    row: dict[str, Any] = {"case": case, "before": before, "steps": steps}
    if not wanted:
        return {**row, "fired": False, "codes": sorted({f.code for f in found})}
    fix = fix_config(first, only=case.code)
    fixed = work / "fixed.yaml"
    fixed.write_text(fix.text)
    second = train(case, fixed, work / "second")
    rerun, _ = (
        read_findings(second / "health.jsonl") if (second / "health.jsonl").exists() else ([], 0)
    )
    after, rerun_steps = second_half(second, case.guarded)
    # Cleared: no warning of that (code, subject); a healthy band is an info finding.
    again = [f for f in rerun if f.key == wanted[-1].key and f.severity != "info"]
    return {
        **row,
        "fired": True,
        "first": min(f.step for f in wanted) + 1,
        "changes": [c for _, c in fix.applied],
        "conflicts": fix.conflicts,
        "after": after,
        "again_early": sum(f.step < rerun_steps / 2 for f in again),
        "again_late": sum(f.step >= rerun_steps / 2 for f in again),
    }


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| recipe | finding (subject) | first fired (step / steps) | change | rerun: cleared "
        "over the 2nd half | guarded value, 2nd half: before -> after |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        case: Case = r["case"]
        what = f"`{case.code}` ({case.subject or 'head'})"
        if not r["fired"]:
            lines.append(
                f"| {case.name} | {what} | did not fire (fired: {', '.join(r['codes']) or '-'}) "
                "| - | - | - |"
            )
            continue
        change = "; ".join(f"`{c['config_key']}` {c['from']} -> {c['to']}" for c in r["changes"])
        change = change or "conflict: " + "; ".join(r["conflicts"])
        cleared = "yes" if r["again_late"] == 0 else f"no ({r['again_late']} late windows)"
        if r["again_early"]:
            cleared += f", {r['again_early']} early window(s)"
        lines.append(
            f"| {case.name} | {what} | {r['first']} / {r['steps']} "
            f"({100 * r['first'] / r['steps']:.1f} %) | {change} | {cleared} | "
            f"`{case.guarded}` {r['before']:.3g} -> {r['after']:.3g} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="case names (recipe) to run")
    parser.add_argument("--write", action="store_true", help="update docs/results.md")
    args = parser.parse_args()
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="health_fix_") as tmp:
        for i, case in enumerate(CASES):
            if args.only and case.name not in args.only:
                continue
            print(f"[{time.perf_counter() - started:.0f} s] {case.name}: {case.code}", flush=True)
            results.append(run_case(case, Path(tmp) / f"{i}_{case.name}"))
    lines = [
        "",
        "## Findings fixed by `termwise health fix`, proven on a rerun",
        "",
        f"`python bench/health_fix.py --write` ({time.perf_counter() - started:.0f} s, CPU).",
        "",
        *table(results),
        "",
    ]
    publish(MARK, lines, args.write, DOCS / "results.md")


if __name__ == "__main__":
    main()
