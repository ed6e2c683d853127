"""How often `termwise probe --ohlcv` calls a target predictable on random walks, before and
after the construction baseline, and what a planted effect of known size gives.

    python bench/probe_random_walk.py [--seeds 20] [--draws 2] [--write]

Random walks: 1,500 daily bars of iid normal log returns (1 % a day), iid bar shapes and
lognormal volumes (`termwise.probes.simulate`): nothing is tradeable by construction, so
every "signal" is a false signal for the user's question. "Before" is the verdict alone
(`signal`, or `signal`/`weak-signal`); "after" is "predictable beyond a random walk". The
planted effect: AR(1) returns with coefficient 0.05-0.3, 4,000 bars, `direction_1`.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

from _doc import DOCS, publish
from termwise.data import ohlcv
from termwise.probes.construction import construction_baselines, judge
from termwise.probes.run import ProbeSettings, probe_bars
from termwise.probes.simulate import simulated_bars

MARK = "<!-- probe_random_walk -->"


def judged(seed: int, targets: list[str], draws: int, rows: int, ar: float) -> dict[str, Any]:
    settings = ProbeSettings(permutations=100, seed=0)
    frame = simulated_bars(seed, rows=rows, ar=ar)
    bars = ohlcv.build(frame, "sim")
    nulls = construction_baselines(frame, "sim", targets, settings, draws)
    out = {}
    for name in targets:
        try:
            report, _ = probe_bars(bars, name, settings)
        except Exception:  # a degenerate target on this walk: not counted
            continue
        if not nulls[name]:
            continue
        found = judge(report, nulls[name])
        out[name] = {"label": report.verdict.label, "beyond": found.beyond, "margin": found.margin}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update docs/probes.md")
    args = parser.parse_args()
    started = time.perf_counter()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for seed in range(args.seeds):
        for name, r in judged(seed, ohlcv.target_names(), args.draws, 1500, 0.0).items():
            counts[name]["runs"] += 1
            counts[name]["signal"] += r["label"] == "signal"
            counts[name]["any"] += r["label"] in ("signal", "weak-signal")
            counts[name]["beyond"] += bool(r["beyond"])
    planted: dict[float, list[dict[str, Any]]] = {}
    for ar in (0.05, 0.1, 0.2, 0.3):
        planted[ar] = [
            judged(s, ["direction_1"], args.draws, 4000, ar)["direction_1"] for s in range(3)
        ]
    minutes = (time.perf_counter() - started) / 60
    lines = [
        "### False signals on random walks, before and after the construction baseline",
        "",
        f"`python bench/probe_random_walk.py --seeds {args.seeds} --draws {args.draws}"
        f"{' --write' if args.write else ''}` ({minutes:.0f} min): {args.seeds} simulated random "
        "walks of 1,500 daily bars (iid returns, iid volume: nothing is tradeable), every OHLCV "
        f"target, {args.draws} null draws each. Share of walks on which the target was called:",
        "",
        "| target | `signal` (before) | `signal` or `weak-signal` (before) "
        "| beyond a random walk (after) |",
        "|---|---|---|---|",
    ]
    for name in ohlcv.target_names():
        c = counts[name]
        n = max(c["runs"], 1)
        lines.append(
            f"| {name} | {c['signal']}/{c['runs']} | {c['any']}/{c['runs']} | "
            f"{c['beyond']}/{c['runs']} ({100 * c['beyond'] / n:.0f} %) |"
        )
    lines += [
        "",
        "A planted effect (AR(1) returns, 4,000 bars, 3 seeds each), target `direction_1`:",
        "",
        "| AR coefficient | beyond a random walk "
        "| mean margin over the random walk (2 x AUC gain) |",
        "|---|---|---|",
    ]
    for ar, runs in planted.items():
        beyond = sum(bool(r["beyond"]) for r in runs)
        margin = sum(r["margin"] for r in runs) / len(runs)
        lines.append(f"| {ar} | {beyond}/{len(runs)} | {margin:+.3f} |")
    publish(MARK, lines, args.write, DOCS / "probes.md")


if __name__ == "__main__":
    main()
