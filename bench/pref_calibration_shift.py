"""Calibration under shift: leave one subset out, over the dev scores `bench/pref_vs_trl.py` saved.

For every system and seed: each dev subset's pairs get probabilities from a calibration
(temperature and power, `termwise pref calibrate`'s) fitted on the dev pairs of every other
subset, so no probability comes from a fit that saw its kind of prompt. Reported per system:
the pooled ECE and NLL of those probabilities (mean and range over seeds), the same for the
raw probabilities (what TRL's `RewardTrainer` gives a user), accuracy (which calibration
cannot change), and per subset the ECE against TRL's worst seed, as is and less its sampling
floor (the ECE a calibrated model shows on as few pairs). A grid of prior strengths
toward the identity map (std of log T and of log power) is scored the same way, to choose
the defaults by held-out subsets rather than by dev.

    .venv/bin/python bench/pref_vs_trl.py --seed S --output runs/loso-sS      # S = 0, 1, 2
    .venv/bin/python bench/pref_calibration_shift.py --runs runs/loso-s0 runs/loso-s1 \\
        runs/loso-s2 [--extra gpm=runs/loso-tau015-s0,runs/loso-tau015-s1,runs/loso-tau015-s2] \\
        [--write]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from _doc import DOCS, publish
from termwise.recipes.pref.calibration import (
    POWER_PRIOR_SIGMA,
    RAW,
    TEMPERATURE_PRIOR_SIGMA,
    Calibration,
    fit_calibration,
    probabilities,
)
from termwise.recipes.pref.data import PreferencePair, read_pairs
from termwise.recipes.pref.eval import (
    ece_sampling_floor,
    expected_calibration_error,
    negative_log_likelihood,
)

MARK = "<!-- pref_calibration_shift -->"
# (std of log T or None for flat, std of log power; 0 fits T alone)
PRIOR_GRID = list(product((None, 1.0, 0.5, 0.25), (0.0, 0.25, 0.5, 1.0)))


Option = Callable[[np.ndarray, np.ndarray, np.ndarray, list[PreferencePair]], np.ndarray]


def each_subset_held_out(
    pairs: list[PreferencePair], scores: np.ndarray, option: Option
) -> np.ndarray:
    """Per pair, ``P(chosen wins)`` from ``option`` fitted on the other subsets' pairs."""
    subset = np.array([p.subset for p in pairs])
    p = np.zeros(len(pairs))
    for name in np.unique(subset):
        held = subset == name
        p[held] = option(scores, ~held, held, pairs)
    return p


def leave_one_subset_out(
    pairs: list[PreferencePair],
    scores: np.ndarray,
    power_prior_sigma: float = POWER_PRIOR_SIGMA,
    temperature_prior_sigma: float | None = TEMPERATURE_PRIOR_SIGMA,
) -> np.ndarray:
    """Per pair, ``P(chosen wins)`` calibrated by a fit (these priors) on the other subsets."""

    def fitted(s: np.ndarray, rows: np.ndarray, target: np.ndarray, _: object) -> np.ndarray:
        fit = fit_calibration(
            s[:, rows],
            power_prior_sigma=power_prior_sigma,
            temperature_prior_sigma=temperature_prior_sigma,
        )
        return probabilities(s[:, target], fit.calibration)[0]

    return each_subset_held_out(pairs, scores, fitted)


def subset_eces(pairs: list[PreferencePair], p: np.ndarray) -> dict[str, float]:
    subset = np.array([pair.subset for pair in pairs])
    return {name: expected_calibration_error(p[subset == name]) for name in np.unique(subset)}


def subset_excess(pairs: list[PreferencePair], p: np.ndarray) -> dict[str, float]:
    """Per subset, ECE minus the ECE a perfectly calibrated model with these probabilities
    shows on as many pairs: what is left once sampling noise is taken out."""
    subset = np.array([pair.subset for pair in pairs])
    return {
        name: expected_calibration_error(p[subset == name]) - ece_sampling_floor(p[subset == name])
        for name in np.unique(subset)
    }


def held_out_scores(
    pairs: list[PreferencePair],
    results: list[dict[str, Any]],
    held_out: Callable[[np.ndarray], np.ndarray],
) -> tuple[list[float], list[float], list[dict[str, float]]]:
    """Per seed's saved scores: ECE, NLL and per-subset ECE of ``held_out(scores)``."""
    ece, nll, per_subset = [], [], []
    for result in results:
        p = held_out(np.asarray(result["scores"], dtype=np.float64))
        ece.append(expected_calibration_error(p))
        nll.append(negative_log_likelihood(p))
        per_subset.append(subset_eces(pairs, p))
    return ece, nll, per_subset


def subsets_above(per_subset: list[dict[str, float]], worst: dict[str, float]) -> list[str]:
    """The subsets whose ECE (mean over seeds) is above TRL's worst seed's."""
    return [s for s in worst if np.mean([e[s] for e in per_subset]) > worst[s]]


def load_runs(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """System name -> one saved result per seed (with its ``scores``)."""
    systems: dict[str, list[dict[str, Any]]] = {}
    for run in args.runs:
        for name, result in json.loads((run / "results.json").read_text()).items():
            systems.setdefault(name, []).append(result)
    for spec in args.extra:
        label, _, runs = spec.partition("=")
        if label in systems:  # a later default of that system: the earlier one stays, renamed
            systems[f"{label} (as in --runs)"] = systems.pop(label)
        for run in runs.split(","):
            for result in json.loads((Path(run) / "results.json").read_text()).values():
                systems.setdefault(label, []).append(result)
    return systems


def pooled_accuracy(result: dict[str, Any]) -> float:
    """Accuracy over every dev pair (``overall`` is the mean of the four categories', where
    one of chat_hard's 29 pairs moves it by 0.9 points)."""
    subsets = [s for c in result["categories"].values() for s in c["subsets"].values()]
    return sum(s["pairs"] * s["accuracy"] for s in subsets) / sum(s["pairs"] for s in subsets)


def summarise(
    pairs: list[PreferencePair], systems: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for name, seeds in systems.items():
        entry: dict[str, Any] = {"seeds": len(seeds), "overall": [], "raw": [], "loso": []}
        entry["raw_subsets"], entry["loso_subsets"] = [], []
        for result in seeds:
            scores = np.asarray(result["scores"], dtype=np.float64)
            raw = probabilities(scores, RAW)[0]
            loso = leave_one_subset_out(pairs, scores)
            entry["overall"].append(result["overall"])
            entry.setdefault("pooled", []).append(pooled_accuracy(result))
            entry["raw"].append((expected_calibration_error(raw), negative_log_likelihood(raw)))
            entry["loso"].append((expected_calibration_error(loso), negative_log_likelihood(loso)))
            entry["raw_subsets"].append(subset_eces(pairs, raw))
            entry["loso_subsets"].append(subset_eces(pairs, loso))
            entry.setdefault("raw_excess", []).append(subset_excess(pairs, raw))
            entry.setdefault("loso_excess", []).append(subset_excess(pairs, loso))
        rows[name] = entry
    return rows


def spread(values: list[float], digits: int = 3) -> str:
    return f"{np.mean(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def system_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| system | seeds | accuracy % | accuracy % (pairs pooled) | ECE raw | NLL raw | "
        "ECE leave-one-subset-out | NLL leave-one-subset-out |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        accuracy = spread([100 * a for a in r["overall"]], 1)
        pooled = spread([100 * a for a in r["pooled"]], 1)
        raw_ece, raw_nll = zip(*r["raw"], strict=True)
        ece, nll = zip(*r["loso"], strict=True)
        lines.append(
            f"| {name} | {r['seeds']} | {accuracy} | {pooled} | {spread(list(raw_ece))} | "
            f"{spread(list(raw_nll))} | {spread(list(ece))} | {spread(list(nll))} |"
        )
    return lines


def subset_table(
    rows: dict[str, dict[str, Any]], pairs: list[PreferencePair], kind: str = "subsets"
) -> list[str]:
    """Per subset: each termwise system's leave-one-out ECE (mean over seeds) and TRL's raw
    ECE (mean, worst seed); ``kind`` "excess": each less its sampling floor."""
    counts = {name: sum(p.subset == name for p in pairs) for name in {p.subset for p in pairs}}
    names = [n for n in rows if n != "trl"]
    lines = [
        "| subset | pairs | " + " | ".join(names) + " | TRL raw (worst seed) |",
        "|---|---|" + "---|" * (len(names) + 1),
    ]
    for subset in sorted(counts):
        sign = "+" if kind == "excess" else ""
        mine = [np.mean([s[subset] for s in rows[n][f"loso_{kind}"]]) for n in names]
        cells = [f"{value:{sign}.3f}" for value in mine]
        trl = [s[subset] for s in rows["trl"][f"raw_{kind}"]] if "trl" in rows else []
        theirs = f"{np.mean(trl):{sign}.3f} ({max(trl):{sign}.3f})" if trl else "-"
        lines.append(f"| {subset} | {counts[subset]} | " + " | ".join(cells) + f" | {theirs} |")
    return lines


def trl_worst(rows: dict[str, dict[str, Any]], kind: str = "subsets") -> dict[str, float]:
    """Per subset, TRL's raw ECE (``kind`` "excess": less its floor) on its worst seed
    (empty without a TRL row)."""
    seeds = rows["trl"][f"raw_{kind}"] if "trl" in rows else []
    return {name: max(s[name] for s in seeds) for name in (seeds[0] if seeds else {})}


def goals(rows: dict[str, dict[str, Any]]) -> list[str]:
    checks = []
    if {"bt", "gpm"} <= set(rows):
        gap = 100 * (np.mean(rows["gpm"]["overall"]) - np.mean(rows["bt"]["overall"]))
        pooled = 100 * (np.mean(rows["gpm"]["pooled"]) - np.mean(rows["bt"]["pooled"]))
        checks.append(
            (
                "default gpm at least as accurate as bt",
                gap >= 0 and pooled >= 0,
                f"{gap:+.1f} points; pairs pooled {pooled:+.1f}",
            )
        )
    if "trl" in rows:
        theirs = float(np.mean([e for e, _ in rows["trl"]["raw"]]))
        for name in ("bt", "gpm"):
            if name not in rows:
                continue
            mine = float(np.mean([e for e, _ in rows[name]["loso"]]))
            checks.append(
                (f"{name} ECE <= TRL's mean", mine <= theirs, f"{mine:.3f} vs {theirs:.3f}")
            )
            worse = subsets_above(rows[name]["loso_subsets"], trl_worst(rows))
            checks.append(
                (
                    f"{name}: no subset worse than TRL's worst seed",
                    not worse,
                    ", ".join(worse) or "none",
                )
            )
            worse = subsets_above(rows[name]["loso_excess"], trl_worst(rows, "excess"))
            checks.append(
                (
                    f"{name}: no subset whose ECE above its sampling floor is above TRL's "
                    "worst seed's (sampling noise taken out: not the issue's bar)",
                    not worse,
                    ", ".join(worse) or "none",
                )
            )
    return [f"- {'met' if ok else 'NOT met'}: {goal} ({value})" for goal, ok, value in checks]


def prior_grid(
    pairs: list[PreferencePair],
    systems: dict[str, list[dict[str, Any]]],
    names: list[str],
    trl: dict[str, Any],
) -> list[str]:
    """Pooled leave-one-subset-out NLL and ECE (mean over ``names`` and seeds) per prior, per
    system the subsets whose ECE (mean over seeds) is above TRL's worst seed's, and which
    prior has the lowest NLL among those meeting the issue's bars for every system (ECE at
    or below TRL's mean, no subset above TRL's worst seed)."""
    worst = trl_worst({"trl": trl})
    trl_mean = float(np.mean([e for e, _ in trl["raw"]]))
    lines = [
        "| std of log T | std of log power | NLL | ECE | "
        + " | ".join(f"{n} subsets above TRL" for n in names)
        + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    scored = []
    for t_sigma, p_sigma in PRIOR_GRID:
        nll, ece, above, meets = [], [], [], True
        for name in names:
            own_ece, own_nll, per_subset = held_out_scores(
                pairs,
                systems.get(name, []),
                lambda s: leave_one_subset_out(pairs, s, p_sigma, t_sigma),  # noqa: B023 (called in this iteration)
            )
            ece.extend(own_ece)
            nll.extend(own_nll)
            above.append(len(subsets_above(per_subset, worst)))
            meets = meets and above[-1] == 0 and np.mean(own_ece) <= trl_mean
        scored.append((t_sigma, p_sigma, float(np.mean(nll)), float(np.mean(ece)), above, meets))
    best_nll = min(scored, key=lambda row: row[2])[:2]
    best_ece = min(scored, key=lambda row: row[3])[:2]
    meeting = [row for row in scored if row[5]]
    best_meeting = min(meeting, key=lambda row: row[2])[:2] if meeting else None
    for t_sigma, p_sigma, nll, ece, above, _ in scored:
        key = (t_sigma, p_sigma)
        nll_mark = " (lowest)" if key == best_nll else ""
        nll_mark += " (lowest meeting every bar)" if key == best_meeting else ""
        ece_mark = " (lowest)" if key == best_ece else ""
        flat = "flat" if t_sigma is None else f"{t_sigma:g}"
        fixed = "0 (T only)" if p_sigma == 0 else f"{p_sigma:g}"
        counts = " | ".join(str(a) for a in above)
        lines.append(f"| {flat} | {fixed} | {nll:.4f}{nll_mark} | {ece:.4f}{ece_mark} | {counts} |")
    return lines


def fitted_on(scores: np.ndarray, rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``P(chosen wins)`` of the ``target`` pairs under the default fit on the ``rows`` pairs."""
    return probabilities(scores[:, target], fit_calibration(scores[:, rows]).calibration)[0]


def subset_ensemble(
    scores: np.ndarray, rows: np.ndarray, target: np.ndarray, pairs: list[PreferencePair]
) -> np.ndarray:
    """Mean probability over the fits that each leave out one more of the ``rows`` subsets."""
    subset = np.array([p.subset for p in pairs])
    fits = [rows & (subset != name) for name in np.unique(subset[rows])]
    return np.mean([fitted_on(scores, fit, target) for fit in fits], 0)


def bootstrap_ensemble(
    scores: np.ndarray, rows: np.ndarray, target: np.ndarray, _: list[PreferencePair]
) -> np.ndarray:
    """Mean probability over fits on 20 resamples (with replacement) of the ``rows`` pairs."""
    rng = np.random.default_rng(0)
    index = np.flatnonzero(rows)
    samples = [rng.choice(index, len(index)) for _ in range(20)]
    return np.mean([fitted_on(scores, sample, target) for sample in samples], 0)


def length_aware(
    scores: np.ndarray, rows: np.ndarray, target: np.ndarray, pairs: list[PreferencePair]
) -> np.ndarray:
    """The default map times ``exp(a * z)``, ``z`` the pair's standardised log length in
    characters (prompt and both responses), ``a`` fitted with T and the power (same priors)."""
    z = np.log([len(p.prompt) + len(p.chosen) + len(p.rejected) for p in pairs])
    z = (z - z[rows].mean()) / z[rows].std()

    def p_of(theta: np.ndarray, columns: np.ndarray) -> np.ndarray:
        calibration = Calibration(float(np.exp(theta[0])), float(np.exp(theta[1])))
        logits = calibration.logits(scores[:, columns]) * np.exp(theta[2] * z[columns])
        return (1.0 / (1.0 + np.exp(-logits))).mean(0)

    def loss(theta: np.ndarray) -> float:
        prior = theta[1] ** 2 / (2 * POWER_PRIOR_SIGMA**2 * rows.sum())
        if TEMPERATURE_PRIOR_SIGMA is not None:
            prior += theta[0] ** 2 / (2 * TEMPERATURE_PRIOR_SIGMA**2 * rows.sum())
        return negative_log_likelihood(p_of(theta, rows)) + prior

    return p_of(minimize(loss, np.zeros(3), method="Nelder-Mead").x, target)


def per_category(
    scores: np.ndarray, rows: np.ndarray, target: np.ndarray, pairs: list[PreferencePair]
) -> np.ndarray:
    """The default fit, then a second fit (same priors, so centred on the first) on the
    ``rows`` pairs of the target's category, when there are any on both sides of 0."""
    category = np.array([p.category for p in pairs])
    logits = fit_calibration(scores[:, rows]).calibration.logits(scores)
    same = rows & np.isin(category, category[target])
    if same.any():
        logits = fit_calibration(logits[:, same]).calibration.logits(logits)
    return probabilities(logits[:, target])[0]


# Calibration options scored like the default: (scores, pairs to fit on, pairs to score,
# every pair) -> the scored pairs' probabilities.
OPTIONS: dict[str, Option] = {
    "raw scores (no calibration)": lambda s, rows, target, _: probabilities(s[:, target])[0],
    "one fit (the default)": lambda s, rows, target, _: fitted_on(s, rows, target),
    "ensemble: one fit per further subset left out": subset_ensemble,
    "ensemble: 20 bootstrap fits": bootstrap_ensemble,
    "length-aware temperature": length_aware,
    "per category, centred on the global fit": per_category,
}


def option_table(
    pairs: list[PreferencePair],
    systems: dict[str, list[dict[str, Any]]],
    names: list[str],
    trl_worst: dict[str, float],
) -> list[str]:
    """Leave-one-subset-out ECE and NLL per option (mean over seeds) per system, and the
    subsets whose ECE (mean over seeds) is above TRL's worst seed's."""
    header = " | ".join(f"{n} ECE | {n} NLL | {n} subsets above TRL" for n in names)
    lines = [f"| option | {header} |", "|---|" + "---|---|---|" * len(names)]
    for label, option in OPTIONS.items():
        cells = []
        for name in names:
            ece, nll, per_subset = held_out_scores(
                pairs,
                systems.get(name, []),
                lambda s: each_subset_held_out(pairs, s, option),  # noqa: B023 (called in this iteration)
            )
            above = subsets_above(per_subset, trl_worst)
            cells.append(f"{np.mean(ece):.3f} | {np.mean(nll):.4f} | {len(above)}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/preferences"))
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="one per seed")
    parser.add_argument(
        "--extra",
        nargs="*",
        default=[],
        help="LABEL=RUN,RUN: more systems (every model in those runs' results.json); a "
        "LABEL already in --runs (gpm) replaces it, and the one from --runs is kept renamed",
    )
    parser.add_argument("--write", action="store_true", help="update docs/pref.md")
    args = parser.parse_args()
    pairs = read_pairs(args.data_dir / "dev.jsonl")[0]
    systems = load_runs(args)
    if "trl" not in systems:
        raise SystemExit("--runs: no trl results in them; every bar compares against TRL")
    rows = summarise(pairs, systems)
    lines = [
        "## Calibration under shift: leave one subset out",
        "",
        "`.venv/bin/python bench/pref_calibration_shift.py --runs "
        + " ".join(str(r) for r in args.runs)
        + (" --extra " + " ".join(args.extra) if args.extra else "")
        + " --write`, over the dev scores of `bench/pref_vs_trl.py --max-steps 500 --seed S "
        "--output runs/loso-sS` for each seed given to `--runs`. Each subset's dev pairs are "
        "calibrated by a fit on the other subsets' dev pairs (the default priors: std of log power "
        f"{POWER_PRIOR_SIGMA:g}, of log T {TEMPERATURE_PRIOR_SIGMA or 'flat'}); "
        "mean (min-max) over seeds. TRL's RewardTrainer has no calibration: its raw column "
        "is what its users get.",
        "",
        *system_table(rows),
        "",
        "Per subset, ECE of the leave-one-subset-out probabilities (mean over seeds); TRL raw:",
        "",
        *subset_table(rows, pairs),
        "",
        "The same, each ECE less its sampling floor: the mean ECE of a perfectly calibrated "
        "model with the same probabilities on as many pairs (its winners drawn from them; "
        "`ece_sampling_floor`, the bias Kumar et al. 2019 subtract). Few pairs inflate ECE: 14 "
        "calibrated pairs show about 0.2. Above 0: miscalibration the data can see:",
        "",
        *subset_table(rows, pairs, "excess"),
        "",
        *goals(rows),
        "",
        "Prior strength toward the identity map (bt and gpm, every seed; pooled over subsets). "
        "'Lowest meeting every bar': the lowest NLL among the priors under which bt and gpm "
        "each have ECE at or below TRL's mean and no subset above TRL's worst seed:",
        "",
        *prior_grid(pairs, systems, ["bt", "gpm"], rows["trl"]),
        "",
        "Other options, each fitted and scored leaving one subset out as above (mean over seeds):",
        "",
        *option_table(pairs, systems, ["bt", "gpm", "bayes_gpm"], trl_worst(rows)),
    ]
    publish(MARK, lines, args.write, DOCS / "pref.md")


if __name__ == "__main__":
    main()
