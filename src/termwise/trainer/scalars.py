"""Scalar logging: a long-format CSV (step, name, value) and TensorBoard."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCALARS_FILE = "scalars.csv"


class ScalarWriter:
    """Writes scalars to ``run_dir/scalars.csv`` and, if enabled, ``run_dir/tb``.

    Long format keeps one schema however many terms and stats a run has, and lets a
    resumed run append to the same file.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = run_dir / SCALARS_FILE
        new = not self.path.exists()
        self._handle = self.path.open("a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._handle)
        if new:
            self._csv.writerow(["step", "name", "value"])
        self._tb: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tb"))

    def write(self, step: int, scalars: Mapping[str, float], prefix: str = "") -> None:
        for name, value in scalars.items():
            self._csv.writerow([step, prefix + name, f"{value:.8g}"])
            if self._tb is not None:
                self._tb.add_scalar(prefix + name, value, step)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
        if self._tb is not None:
            self._tb.close()


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``scalars.csv`` as ``{name: [(step, value), ...]}``."""
    series: dict[str, list[tuple[int, float]]] = {}
    with (run_dir / SCALARS_FILE).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            series.setdefault(row["name"], []).append((int(row["step"]), float(row["value"])))
    return series
