"""Probe scikit-learn's bundled breast-cancer and wine sets, as they are and with shuffled
labels, and print the verdicts (recorded in docs/probes.md).

    .venv/bin/python scripts/probe_sklearn_sets.py
"""

from __future__ import annotations

import numpy as np
import sklearn.datasets

from termwise.probes.models import PRIMARY
from termwise.probes.run import probe_arrays


def main() -> None:
    print("| data set | labels | verdict | best model test (primary metric) | control |")
    print("|---|---|---|---|---|")
    for loader in ("load_breast_cancer", "load_wine"):
        data = getattr(sklearn.datasets, loader)()
        columns = [str(c) for c in data.feature_names]
        for labels, target in (
            ("real", data.target),
            ("shuffled", np.random.default_rng(0).permutation(data.target)),
        ):
            report = probe_arrays(columns, data.data, target, loader)
            metric = PRIMARY[report.target.kind]
            best = max(report.models, key=lambda m: m.test[metric].value)
            print(
                f"| {loader.removeprefix('load_')} | {labels} | {report.verdict.label} | "
                f"{best.model} {metric} {best.test[metric].value:.3f} | "
                f"{best.control_test[metric].value:.3f} |"
            )


if __name__ == "__main__":
    main()
