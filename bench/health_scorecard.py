"""The health rules' scorecard: silent on healthy runs, early on planted errors, and every
suggested fix judged by the recipe's own held-out metric.

    python bench/health_scorecard.py [--part healthy planted fixes] [--only NAME ...]
        [--seeds 0 1] [--data-dir ../shared/data] [--work runs/scorecard] [--write]

1. healthy: every recipe's default config on ../shared/data (gen-config --data-dir), each
   seed; the findings each raises, by code and severity. A warning here is a false alarm
   until a fix of it improves the task.
2. planted: one setting (or the data) wrong on purpose, on the bundled sample data; whether
   the expected rule fires and when (its first firing as a share of the run).
3. fixes: every finding of parts 1 and 2 that suggests a value is applied (`termwise health
   fix --only CODE`) and the run repeated with the same seed; the recipe's held-out metric
   before and after: better, same (within the spread between the seeds of the run before
   the fix) or worse.

Runs are kept under --work; a run whose config is unchanged is not trained again, so a
part can be re-read after a rule change only by deleting its runs (rules act while
training). Everything runs on CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from _doc import DOCS, publish
from termwise.health.findings import HEALTH_FILE, Finding, read_findings
from termwise.health.fix import fix_config
from termwise.health.recheck import recheck
from termwise.health.windows import WINDOWS_FILE

MARK = "<!-- health_scorecard -->"
ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data"
# The CLI beside this Python, or $TERMWISE (a machine where termwise is not installed).
TERMWISE = os.environ.get("TERMWISE", str(Path(sys.executable).with_name("termwise")))

Edit = Callable[[dict[str, Any]], None]


DEADLINE = [math.inf]  # time.monotonic() by which every run must end (--minutes)


def termwise(*args: str, log: Path | None = None) -> None:
    left = DEADLINE[0] - time.monotonic()
    try:
        done = subprocess.run(
            [TERMWISE, *args],
            capture_output=True,
            text=True,
            timeout=None if math.isinf(left) else max(left, 1.0),
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"termwise {' '.join(args)}: out of time (--minutes)") from None
    if log is not None:
        log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"termwise {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


# -- the recipes' held-out metrics ------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One held-out number of a recipe; ``higher`` says which way is better."""

    name: str
    higher: bool
    read: Callable[[Path], float]


def btrm_auc(run: Path) -> float:
    heads = load(run / "eval.json")
    return statistics.fmean(statistics.fmean(h["auc"].values()) for h in heads.values())


def btrm_level(run: Path) -> float:
    """Heads whose median held-out positive score is in [0.7, 1.3]."""
    heads = load(run / "eval.json")
    return float(sum(0.7 <= h["median_positive"] <= 1.3 for h in heads.values()))


def eval_key(key: str) -> Callable[[Path], float]:
    return lambda run: float(load(run / "eval.json")[key])


def final_metric(key: str) -> Callable[[Path], float]:
    return lambda run: float(load(run / "report.json")["metrics"][key])


METRICS: dict[str, tuple[Metric, ...]] = {
    "btrm": (Metric("mean AUC", True, btrm_auc), Metric("heads in [0.7, 1.3]", True, btrm_level)),
    "pref": (Metric("accuracy", True, eval_key("overall")), Metric("ECE", False, eval_key("ece"))),
    "vae": (
        Metric("val IW-NLL", False, eval_key("val_iw_nll")),
        Metric("active units", True, eval_key("val_active_units")),
    ),
    "vae-classify": (
        Metric("val accuracy", True, eval_key("val_exact")),
        Metric("active units", True, eval_key("val_active_units")),
    ),
    "lvm": (
        Metric("margin(+1)", True, final_metric("margin")),
        Metric("R@5", True, final_metric("r_at_5")),
    ),
    "bayes-clf": (Metric("test accuracy", True, final_metric("test_accuracy")),),
    "demo": (Metric("test accuracy", True, final_metric("test_accuracy")),),
}


# -- cases ------------------------------------------------------------------------------


@dataclass
class Case:
    """A recipe run: how to write its config, which metrics judge it, and for a planted
    error the (code, subject) that should catch it."""

    name: str
    recipe: str  # CLI group: btrm, pref, vae, lvm, bayes-clf, demo
    metrics: str  # key of METRICS
    write_config: Callable[[Path, int], Path]
    expect: tuple[str, str] | None = None  # planted: (code, subject; "" = any)
    note: str = ""
    prepare: Callable[[Path], None] = field(default=lambda config: None)
    subrun: str = ""  # the demo writes run1 (its planted free bits) and run2 (the fix)


def edited(path: Path, *edits: Edit) -> Path:
    config = yaml.safe_load(path.read_text())
    for edit in edits:
        edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def seeded(seed: int) -> Edit:
    return lambda config: config.setdefault("trainer", {}).update(seed=seed, progress=False)


def generated(recipe: str, *args: str, edits: tuple[Edit, ...] = ()) -> Callable[[Path, int], Path]:
    def write(work: Path, seed: int) -> Path:
        path = work / "config.yaml"
        termwise(recipe, "gen-config", "-o", str(path), "--force", *args)
        return edited(path, seeded(seed), *edits)

    return write


def lvm_build(config: Path) -> None:
    termwise("lvm", "build-data", "-c", str(config), log=config.with_suffix(".build.log"))


def signal_table(path: Path, rows: int = 6000, seed: int = 0) -> Path:
    """A table with signal: the target is whether a noisy AR(1) feature, summed over the
    last three rows, is positive (plus two pure-noise columns)."""
    rng = np.random.default_rng(seed)
    driver = np.zeros(rows)
    for t in range(1, rows):
        driver[t] = 0.7 * driver[t - 1] + rng.normal()
    trend = np.convolve(driver, np.ones(3), mode="full")[:rows]
    noisy = rng.random(rows) < 0.1
    target = (trend > 0) ^ noisy
    lines = ["t,driver,noise_a,noise_b,target"]
    for t in range(rows):
        noise_a, noise_b = rng.normal(size=2)
        lines.append(f"{t},{driver[t]:.5f},{noise_a:.5f},{noise_b:.5f},{int(target[t])}")
    path.write_text("\n".join(lines) + "\n")
    return path


def bayes_config(table: str, *edits: Edit) -> Callable[[Path, int], Path]:
    """bayes-clf's bundled config on ``table``: "signal" (:func:`signal_table`) or a path
    (daily OHLCV bars)."""

    def write(work: Path, seed: int) -> Path:
        path = work / "config.yaml"
        source = ROOT / "src/termwise/recipes/bayes_clf/configs/daily.yaml"
        path.write_text(source.read_text())

        def data(config: dict[str, Any]) -> None:
            if table == "signal":
                csv = signal_table(work / "signal.csv")
                config["data"] = {
                    "path": str(csv),
                    "target": "target",
                    "time_col": "t",
                    "features": ["driver", "noise_a", "noise_b"],
                    "window": 16,
                }
            else:
                config["data"]["path"] = table

        return edited(path, data, seeded(seed), *edits)

    return write


def demo_config(**values: Any) -> Callable[[Path, int], Path]:
    def write(work: Path, seed: int) -> Path:
        path = work / "config.yaml"
        trainer = {"seed": seed, "progress": False}
        path.write_text(yaml.safe_dump({**values, "trainer": trainer}))
        return path

    return write


def healthy_cases(data: Path) -> list[Case]:
    shared = str(data)
    return [
        Case("btrm", "btrm", "btrm", generated("btrm", "--data-dir", f"{shared}/corpora")),
        *[
            Case(
                f"pref {kind}",
                "pref",
                "pref",
                generated("pref", "--kind", kind, "--data-dir", f"{shared}/preferences"),
            )
            for kind in ("bt", "gpm", "bayes_gpm")
        ],
        Case("vae reconstruct", "vae", "vae", generated("vae", "--data-dir", shared)),
        Case(
            "vae classify",
            "vae",
            "vae-classify",
            generated("vae", "--data-dir", shared, "--task", "classify"),
        ),
        Case("lvm", "lvm", "lvm", generated("lvm", "--data-dir", shared), prepare=lvm_build),
        Case("bayes-clf (signal)", "bayes-clf", "bayes-clf", bayes_config("signal")),
        Case("demo (2nd arm)", "demo", "demo", demo_config(), subrun="run2"),
    ]


def _vae_short(*edits: Edit) -> Callable[[Path, int], Path]:
    """The default vae config on the bundled sample, with its teacher off unless an edit
    turns it on."""

    def no_teacher(config: dict[str, Any]) -> None:
        config["teacher"]["enabled"] = False

    return generated("vae", "--data-dir", str(BUNDLED), edits=(no_teacher, *edits))


def _set(path: str, value: Any) -> Edit:
    """An edit setting a dotted config path."""

    def edit(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return edit


def _lvm_directional(*edits: Edit) -> Callable[[Path, int], Path]:
    """The default lvm config on the bundled sample with the directional margin on."""
    return generated(
        "lvm", "--data-dir", str(BUNDLED), edits=(_set("objective.directional", True), *edits)
    )


def _one_head(config: dict[str, Any]) -> None:
    config["heads"] = config["heads"][:1]


def planted_cases(data: Path) -> list[Case]:
    corpora = str(BUNDLED / "corpora")
    btrm_short = ("--data-dir", corpora, "--max-steps", "100")
    daily = str(BUNDLED / "timeseries/stocks_daily.csv")
    return [
        Case(
            "free bits above the KL (demo)",
            "demo",
            "demo",
            demo_config(),
            ("free_bits.all_free", "kl"),
            "seed 002: the demo's first arm, free bits 0.1",
            subrun="run1",
        ),
        Case(
            "free bits above the KL (vae)",
            "vae",
            "vae",
            _vae_short(_set("kl.free_bits", 2.0)),
            ("free_bits.all_free", "kl"),
            "kl.free_bits 2.0",
        ),
        Case(
            "KL swamps the data loss",
            "bayes-clf",
            "bayes-clf",
            bayes_config("signal", _set("kl_weight", 50.0), _set("trainer.max_steps", 200)),
            ("kl.blocks_learning", ""),
            "seed 003: kl_weight 50, 200 steps",
        ),
        Case(
            "teacher at 2 %",
            "vae",
            "vae",
            _vae_short(_set("teacher.enabled", True), _set("stages.1.teacher_weight", 0.3)),
            ("term.negligible", "teacher"),
            "seed 002: teacher_weight 0.3",
        ),
        Case(
            "log-square swamps the ranking",
            "btrm",
            "btrm",
            generated("btrm", *btrm_short, edits=(_one_head, _set("log_square_weight", 50.0))),
            ("term.dominant", ""),
            "seed 001: log_square_weight 50",
        ),
        Case(
            "scores pinned at a low cap",
            "btrm",
            "btrm",
            generated("btrm", *btrm_short, edits=(_one_head, _set("logit_cap", 1.0))),
            ("logits.saturated", ""),
            "seed 001: logit_cap 1.0, under the log-square target's reach",
        ),
        Case(
            "Bayesian noise vanishes",
            "pref",
            "pref",
            generated(
                "pref",
                "--kind",
                "bayes_gpm",
                "--data-dir",
                str(BUNDLED / "preferences"),
                "--max-steps",
                "50",
                edits=(_set("bayes.init_std_ratio", 0.01), _set("bayes.max_kl_weight", 0.0)),
            ),
            ("bayes.deterministic", ""),
            "seed 000: posterior std 1 % of raw_mu and no KL to raise it",
        ),
        Case(
            "AutoScale clamp pins the weight",
            "lvm",
            "lvm",
            _lvm_directional(_set("objective.clamp", [1e-7, 1e-6])),
            ("autoscale.pinned", "dir"),
            "seed 004: the directional margin on, its clamp [1e-7, 1e-6]",
            prepare=lvm_build,
        ),
        Case(
            "a margin won by retreat",
            "lvm",
            "lvm",
            generated(
                "lvm",
                "--data-dir",
                str(data),
                edits=(
                    _set("objective.directional", True),
                    _set("objective.contrastive.weight", 0.0),
                    _set("best_metric", "margin"),
                ),
            ),
            ("dir.retreat", ""),
            "seed 004: MSE + the directional margin alone, the lvm default to session 11, on "
            "../shared/data (the retreat starts after half of a 552-step run: the bundled "
            "sample's 42 steps end before it)",
            prepare=lvm_build,
        ),
        Case(
            "no signal in the data",
            "bayes-clf",
            "bayes-clf",
            bayes_config(daily, _set("trainer.max_steps", 200)),
            ("fit.at_baseline", ""),
            "seed 003: daily stock direction 5 bars ahead, 200 steps",
        ),
    ]


# -- running ----------------------------------------------------------------------------


def slug(name: str) -> str:
    """``"demo (2nd arm)"`` -> ``"demo_2nd_arm"``."""
    return "_".join("".join(c if c.isalnum() else " " for c in name).split())


@dataclass
class Run:
    """One trained run and what the scorecard reads from it."""

    case: Case
    seed: int
    directory: Path  # holds health.jsonl, report.json, eval.json
    seconds: float
    fixed: str = ""  # the finding code whose fix this run applies
    change: list[dict[str, Any]] = field(default_factory=list)  # what the fix changed

    @property
    def findings(self) -> list[Finding]:
        """Today's rules on the windows the run recorded (the run's own health.jsonl holds
        what the rules said while it trained)."""
        if (self.directory / WINDOWS_FILE).is_file():
            return recheck(self.directory)
        path = self.directory / HEALTH_FILE
        return read_findings(path)[0] if path.is_file() else []

    @property
    def steps(self) -> int:
        return int(load(self.directory / "report.json").get("step", 0))

    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != "info"]

    def metrics(self) -> dict[str, float]:
        values = {}
        for metric in METRICS[self.case.metrics]:
            try:
                values[metric.name] = metric.read(self.directory)
            except (KeyError, ValueError, TypeError, statistics.StatisticsError):
                values[metric.name] = math.nan
        return values


def train(case: Case, config: Path, out: Path) -> Path:
    """Train (unless ``out`` already holds a run of this very config); returns the run
    directory the scorecard reads."""
    kept = out.with_suffix(".yaml.done")
    if kept.is_file() and kept.read_text() == config.read_text():
        return out / case.subrun
    case.prepare(config)
    log = out.with_suffix(".log")
    if case.recipe == "demo":
        termwise(
            "demo", "free-bits", "-c", str(config), "--run-dir", str(out), "--overwrite", log=log
        )
    else:
        termwise(case.recipe, "train", "-c", str(config), "-o", str(out), "--overwrite", log=log)
    kept.write_text(config.read_text())
    return out / case.subrun


def run_case(case: Case, work: Path, seed: int, rescore: bool = False) -> Run | None:
    """Train one case (``rescore``: only read the run already there, if any)."""
    folder = work / slug(case.name)
    if rescore:
        rows = read_rows(work.parent / f"{work.name}.json")
        return existing_run(case, work, seed, rows)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    setup = folder / f"s{seed}-config"
    setup.mkdir(exist_ok=True)
    config = case.write_config(setup, seed)
    directory = train(case, config, folder / f"s{seed}")
    return Run(case, seed, directory, time.perf_counter() - started)


def fix_runs(run: Run, work: Path) -> list[Run]:
    """``run`` again with each suggesting finding's fix applied (one code at a time);
    the demo's fix is its own second arm."""
    if run.case.recipe == "demo":
        if run.case.subrun != "run1":
            return []
        second = run.directory.parent / "run2"
        return [Run(run.case, run.seed, second, 0.0, fixed="free_bits.all_free")]
    codes = sorted({f.code for f in run.warnings() if f.changes})
    fixed = []
    for code in codes:
        folder = work / slug(run.case.name)
        out = folder / f"s{run.seed}-fix-{slug(code)}"
        started = time.perf_counter()
        setup = folder / f"s{run.seed}-fix-{slug(code)}-config"
        setup.mkdir(parents=True, exist_ok=True)
        config = setup / "config.yaml"
        fix = fix_config(run.directory, code, run.findings)
        config.write_text(fix.text)
        directory = train(run.case, config, out)
        seconds = time.perf_counter() - started
        changes = [change for _, change in fix.applied]
        fixed.append(Run(run.case, run.seed, directory, seconds, code, changes))
    return fixed


def _attempt(job: Callable[[], Any]) -> Any:
    try:
        return job()
    except RuntimeError as error:  # a failed or timed-out run: reported, the others go on
        print(f"failed: {error}", flush=True)
        return None


def run_all(jobs: list[Callable[[], Any]], parallel: int) -> list[Any]:
    """Run ``jobs`` (each trains in its own process), ``parallel`` at a time, in order;
    the results of those that did not fail."""
    if parallel <= 1:
        results = [_attempt(job) for job in jobs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(parallel) as pool:
            results = list(pool.map(_attempt, jobs))
    return [r for r in results if r is not None]


# -- judging and tables (on summaries, so parts run on different machines combine) -------


def summarise(run: Run, part: str) -> dict[str, Any]:
    return {
        "part": part,
        "case": run.case.name,
        "metrics_kind": run.case.metrics,
        "seed": run.seed,
        "steps": run.steps,
        "seconds": run.seconds,
        "fixed": run.fixed,
        "change": run.change,
        "expect": list(run.case.expect) if run.case.expect else None,
        "note": run.case.note,
        "warnings": [
            {"code": f.code, "subject": f.subject, "step": f.step + 1, "changes": f.changes}
            for f in run.warnings()
        ],
        "info": sum(f.severity == "info" for f in run.findings),
        "metrics": run.metrics(),
    }


def first_firing(row: dict[str, Any], code: str, subject: str) -> int | None:
    steps = [
        w["step"]
        for w in row["warnings"]
        if w["code"] == code and (not subject or w["subject"] == subject)
    ]
    return min(steps) if steps else None


def spread(rows: list[dict[str, Any]], metric: str) -> float:
    """The seed noise of a metric: max - min over the seeds of the same config."""
    values = [r["metrics"][metric] for r in rows if math.isfinite(r["metrics"][metric])]
    return max(values) - min(values) if len(values) > 1 else math.nan


def verdict(before: float, after: float, noise: float, higher: bool) -> str:
    if not (math.isfinite(before) and math.isfinite(after)):
        return "n/a"
    gain = (after - before) if higher else (before - after)
    if abs(gain) <= (noise if math.isfinite(noise) else 0.0):
        return "same"
    return "better" if gain > 0 else "worse"


def warning_summary(warnings: list[dict[str, Any]]) -> str:
    counts: dict[str, list[int]] = {}
    for w in warnings:
        name = f"{w['code']} ({w['subject']})" if w["subject"] else w["code"]
        counts.setdefault(name, []).append(w["step"])
    listed = [f"`{k}` x{len(v)} from step {min(v)}" for k, v in sorted(counts.items())]
    return "; ".join(listed) or "none"


def metric_text(row: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in row["metrics"].items())


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def healthy_table(rows: list[dict[str, Any]]) -> list[str]:
    header = ["recipe (default config, ../shared/data)", "seed", "steps", "warnings"]
    header += ["info notes", "held-out metrics", "min"]
    return table(
        header,
        [
            [r["case"], r["seed"], r["steps"], warning_summary(r["warnings"]), r["info"]]
            + [metric_text(r), f"{r['seconds'] / 60:.1f}"]
            for r in rows
        ],
    )


def planted_table(rows: list[dict[str, Any]]) -> list[str]:
    body = []
    for r in rows:
        code, subject = r["expect"]
        first = first_firing(r, code, subject)
        steps = max(r["steps"], 1)
        first = min(first, steps) if first else None  # an evaluation after the last step
        when = f"{first} / {steps} ({100 * first / steps:.1f} %)" if first else "-"
        others = warning_summary([w for w in r["warnings"] if w["code"] != code])
        body.append(
            [f"{r['case']} ({r['note']})", f"`{code}`", r["seed"], "yes" if first else "no"]
            + [when, others]
        )
    header = ["planted error", "expected rule", "seed", "caught", "first firing (step / steps)"]
    return table([*header, "other warnings"], body)


def judge_fix(
    before: dict[str, Any], after: dict[str, Any], seeds: list[dict[str, Any]]
) -> dict[str, Any]:
    """One fixed run against the run it fixes; noise is the spread over ``seeds`` (the
    same config's runs before the fix)."""
    judged = {}
    for metric in METRICS[before["metrics_kind"]]:
        noise = spread(seeds, metric.name)
        b, a = before["metrics"][metric.name], after["metrics"][metric.name]
        judged[metric.name] = (b, a, noise, verdict(b, a, noise, metric.higher))
    changes = (
        after.get("change")
        or [c for w in before["warnings"] if w["code"] == after["fixed"] for c in w["changes"]][-1:]
    )  # the demo's own fix: the latest value its monitor suggested
    primary = METRICS[before["metrics_kind"]][0].name
    return {
        "run": f"{before['case']} s{before['seed']}",
        "code": after["fixed"],
        "change": changes,
        "judged": judged,
        "verdict": judged[primary][3],
    }


def fixes_table(rows: list[dict[str, Any]]) -> list[str]:
    body = []
    for row in rows:
        change = "; ".join(f"`{c['config_key']}` {c['from']} -> {c['to']}" for c in row["change"])
        judged = "; ".join(
            f"{name} {b:.4g} -> {a:.4g} ({noise:.2g}): {v}"
            for name, (b, a, noise, v) in row["judged"].items()
        )
        code = f"`{row['code']}`"
        body.append([row["run"], code, change or "the demo's arm 2", judged, row["verdict"]])
    header = ["run", "finding fixed", "change", "held-out metrics: before -> after (seed spread)"]
    return table([*header, "verdict"], body)


def rules_table(
    healthy: list[dict[str, Any]], planted: list[dict[str, Any]], fixes: list[dict[str, Any]]
) -> list[str]:
    codes = sorted(
        {w["code"] for r in healthy + planted for w in r["warnings"]}
        | {r["expect"][0] for r in planted}
        | {row["code"] for row in fixes}
    )
    body = []
    for code in codes:
        mine = [r for r in planted if r["expect"][0] == code]
        caught = sum(first_firing(r, *r["expect"]) is not None for r in mine)
        warned = sum(any(w["code"] == code for w in r["warnings"]) for r in healthy)
        verdicts = [row["verdict"] for row in fixes if row["code"] == code]
        tally = " / ".join(str(verdicts.count(v)) for v in ("better", "same", "worse"))
        body.append(
            [f"`{code}`", f"{caught} of {len(mine)}" if mine else "-"]
            + [f"{warned} of {len(healthy)}", tally if verdicts else "-"]
        )
    header = ["rule", "planted errors caught", "healthy runs warned"]
    return table([*header, "fixes: better / same / worse"], body)


# -- main -------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text()) if path.is_file() else []


def save_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Merge ``rows`` into ``path`` by (case, seed, fixed)."""

    def key(row: dict[str, Any]) -> tuple[str, int, str]:
        return (row["case"], row["seed"], row.get("fixed", ""))

    path.parent.mkdir(parents=True, exist_ok=True)
    merged = {key(r): r for r in read_rows(path)} | {key(r): r for r in rows}
    path.write_text(json.dumps(list(merged.values()), indent=1))


def existing_run(case: Case, work: Path, seed: int, rows: list[dict[str, Any]]) -> Run | None:
    folder = work / slug(case.name)
    if not (folder / f"s{seed}" / case.subrun / "report.json").is_file():
        return None
    seconds = next((r["seconds"] for r in rows if r["case"] == case.name and r["seed"] == seed), 0)
    return Run(case, seed, folder / f"s{seed}" / case.subrun, seconds)


def section(work: Path, seconds: float) -> list[str]:
    healthy, planted = read_rows(work / "healthy.json"), read_rows(work / "planted.json")
    fixed = read_rows(work / "fixes.json")
    before = {(r["case"], r["seed"]): r for r in healthy + planted}
    judged = [
        judge_fix(
            before[(f["case"], f["seed"])],
            f,
            [r for r in healthy + planted if r["case"] == f["case"]],
        )
        for f in fixed
        if (f["case"], f["seed"]) in before
    ]
    return [
        "",
        "## The health rules' scorecard (`bench/health_scorecard.py`)",
        "",
        "`python bench/health_scorecard.py [--jobs N]` trains the runs into `runs/scorecard`; "
        "`--rescore --write` judges them with today's rules and writes these tables "
        f"({seconds / 60:.0f} min for this invocation).",
        "",
        "### Rules",
        "",
        *rules_table(healthy, planted, judged),
        "",
        "### 1. Healthy runs: every recipe's default config",
        "",
        *healthy_table(healthy),
        "",
        "### 2. Planted errors (bundled sample data unless the case names ../shared/data)",
        "",
        *planted_table(planted),
        "",
        "### 3. Suggested fixes, judged by the held-out metric",
        "",
        *(fixes_table(judged) if judged else ["No warning suggested a value."]),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", nargs="*", default=["healthy", "planted", "fixes"])
    parser.add_argument("--only", nargs="*", help="case names (or their slugs) to run")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--work", type=Path, default=ROOT / "runs/scorecard")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at the same time")
    parser.add_argument("--minutes", type=float, help="stop runs still training after this")
    parser.add_argument(
        "--rescore", action="store_true", help="train nothing: judge the runs in --work again"
    )
    parser.add_argument("--write", action="store_true", help="update docs/health.md")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.minutes:
        DEADLINE[0] = time.monotonic() + 60 * args.minutes
    work = args.work.resolve()
    parts = {
        "healthy": healthy_cases(args.data_dir.resolve()),
        "planted": planted_cases(args.data_dir.resolve()),
    }

    def chosen(cases: list[Case]) -> list[Case]:
        return [
            c for c in cases if not args.only or c.name in args.only or slug(c.name) in args.only
        ]

    for part, cases in parts.items():
        if part not in args.part:
            continue
        jobs = [
            partial(run_case, case, work / part, seed, args.rescore)
            for case in chosen(cases)
            for seed in args.seeds
        ]
        runs = run_all(jobs, args.jobs)
        save_rows(work / f"{part}.json", [summarise(r, part) for r in runs])
    if "fixes" in args.part and not args.rescore:
        befores = [
            run
            for part, cases in parts.items()
            for case in chosen(cases)
            for seed in args.seeds
            if (run := existing_run(case, work / part, seed, read_rows(work / f"{part}.json")))
        ]
        fixed = run_all([partial(fix_runs, r, work / "fixes") for r in befores], args.jobs)
        save_rows(work / "fixes.json", [summarise(r, "fixes") for runs in fixed for r in runs])
    publish(MARK, section(work, time.perf_counter() - started), args.write, DOCS / "health.md")


if __name__ == "__main__":
    main()
