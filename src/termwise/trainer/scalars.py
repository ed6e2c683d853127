"""Scalar logging: a long-format CSV (step, name, value), and the trackers through a callback
(the Trainer passes Accelerate's ``log``: TensorBoard, MLflow, W&B ...)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from pathlib import Path

import orjson

SCALARS_FILE = "scalars.csv"

TrackerLog = Callable[[dict[str, float], int], None]
"""``log(values, step)``, as ``accelerate.Accelerator.log`` takes them."""


class ScalarWriter:
    """Writes scalars to ``run_dir/scalars.csv`` and, when given, to ``tracker_log``.

    Long format keeps one schema however many terms and stats a run has, and lets a
    resumed run append to the same file.
    """

    def __init__(self, run_dir: Path, tracker_log: TrackerLog | None = None) -> None:
        self.path = run_dir / SCALARS_FILE
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._handle = self.path.open("a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._handle)
        if new:
            self._csv.writerow(["step", "name", "value"])
        self._tracker_log = tracker_log

    def write(self, step: int, scalars: Mapping[str, float], prefix: str = "") -> None:
        for name, value in scalars.items():
            self._csv.writerow([step, prefix + name, f"{value:.8g}"])
        self._handle.flush()
        if self._tracker_log is not None:
            self._tracker_log({prefix + k: float(v) for k, v in scalars.items()}, step)

    def close(self) -> None:
        self._handle.close()


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``scalars.csv`` as ``{name: [(step, value), ...]}``."""
    series: dict[str, list[tuple[int, float]]] = {}
    with (run_dir / SCALARS_FILE).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            series.setdefault(row["name"], []).append((int(row["step"]), float(row["value"])))
    return series


LOG_FILES = (SCALARS_FILE, "metrics.jsonl", "health.jsonl", "health_windows.jsonl")


def log_sizes(run_dir: Path) -> dict[str, int]:
    """The size of every append-only log of a run, as a checkpoint records it."""
    return {
        name: (run_dir / name).stat().st_size if (run_dir / name).is_file() else 0
        for name in LOG_FILES
    }


def truncate_logs(run_dir: Path, step: int, sizes: Mapping[str, int] | None = None) -> None:
    """Drop what a run logged after the checkpoint a resumed run restarts from: each log
    cut back to the size the checkpoint recorded (``sizes``), so the evaluation written after
    the last checkpoint goes too; a checkpoint from before sizes were recorded cuts every
    row after ``step``. Atomically."""
    from termwise.data.jsonl import write_bytes_atomic

    if sizes is not None:
        for name in LOG_FILES:
            path = run_dir / name
            size = sizes.get(name, 0)
            if path.is_file() and isinstance(size, int) and path.stat().st_size > size:
                with path.open("rb") as handle:
                    write_bytes_atomic(path, handle.read(size))
        return
    scalars = run_dir / SCALARS_FILE
    if scalars.is_file():
        with scalars.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
        buffer = io.StringIO()
        csv.writer(buffer).writerows(kept)
        write_bytes_atomic(scalars, buffer.getvalue().encode("utf-8"))
    for name in LOG_FILES[1:]:
        path = run_dir / name
        if path.is_file():
            kept_lines = [
                line
                for line in path.read_bytes().splitlines(keepends=True)
                if _line_step(line) <= step
            ]
            write_bytes_atomic(path, b"".join(kept_lines))


def _line_step(line: bytes) -> int:
    """The ``step`` of a JSON line (a line that does not parse is kept: step -1)."""
    try:
        value = orjson.loads(line).get("step", -1)
    except (orjson.JSONDecodeError, AttributeError):
        return -1
    return value if isinstance(value, int) else -1
