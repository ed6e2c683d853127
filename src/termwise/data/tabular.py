"""Reading the table to probe: CSV, Parquet or JSONL, with errors that name file and line."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from termwise.data.jsonl import check_readable, iter_records
from termwise.errors import TermwiseUserError, suggest


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (``.csv``, ``.tsv``), Parquet or JSONL (``.jsonl``, ``.ndjson``) file."""
    check_readable(path, "data file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            separator = "\t" if suffix == ".tsv" else ","
            check_delimited(path, separator)
            return pd.read_csv(path, sep=separator)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (pd.errors.ParserError, ValueError, OSError) as error:
        raise TermwiseUserError(f"cannot read table: {error}", path=path) from None
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _read_jsonl(path)
    raise TermwiseUserError(
        f"unknown table format {suffix!r}: use .csv, .tsv, .parquet or .jsonl", path=path
    )


def check_delimited(path: Path, separator: str) -> None:
    """What pandas would not say with the line: a byte that is not UTF-8, and a row with
    fewer fields than the header (pandas fills them with NaN, reported later as missing)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        start = raw.rfind(b"\n", 0, bad.start) + 1
        raise TermwiseUserError(
            f"not UTF-8 text (byte 0x{raw[bad.start]:02x} at column {bad.start - start + 1}); "
            "save the file as UTF-8",
            path=path,
            line=raw.count(b"\n", 0, bad.start) + 1,
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        header = next(reader, None)
        short = next((row for row in reader if row and len(row) < len(header or ())), None)
    except csv.Error:
        return  # a field over csv's size limit: pandas reads it, and reports what it finds
    if header is not None and short is not None:
        raise TermwiseUserError(
            f"{len(short)} field(s), the header has {len(header)}; a short row is not a "
            "missing value",
            path=path,
            line=reader.line_num,
        )


def _read_jsonl(path: Path) -> pd.DataFrame:
    return pd.DataFrame([record for _, record, _ in iter_records(path)])


@dataclass
class ProbeTable:
    """The columns a probe needs, as arrays, after missing-value handling."""

    features: list[str]
    x: np.ndarray
    y: np.ndarray
    times: np.ndarray | None
    groups: np.ndarray | None
    dropped_rows: int


def _require(frame: pd.DataFrame, column: str, what: str, path: Path) -> None:
    if column not in frame.columns:
        names = [str(c) for c in frame.columns]
        raise TermwiseUserError(
            f"no column {column!r}{suggest(column, names)}; columns: {', '.join(names[:20])}",
            path=path,
            field=what,
        )


def _check_numeric(frame: pd.DataFrame, column: str, path: Path, explicit: bool) -> None:
    """A column that is numbers except for a few cells would be dropped as text (or fail
    later): name the column and its first bad row instead. A column of text is fine unless
    it was asked for as a feature."""
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return
    present = values.dropna()
    bad = pd.to_numeric(present, errors="coerce").isna()
    if not bad.any() or (not explicit and bad.mean() > 0.1):
        return  # numbers stored as text, or a text column that is not asked for
    if bad.all():
        raise TermwiseUserError(
            f"feature is not numeric (dtype {values.dtype})", path=path, field=column
        )
    first = int(np.flatnonzero(bad.to_numpy())[0])  # position among the present cells
    row = int(np.flatnonzero(values.notna().to_numpy())[first])
    raise TermwiseUserError(
        f"column is numeric except {int(bad.sum())} cell(s), first in data row {row + 1} "
        f"({present.iloc[first]!r}); fix the cell(s) or leave the column out with --features",
        path=path,
        field=column,
    )


def select(
    frame: pd.DataFrame,
    path: Path,
    target: str,
    features: Sequence[str] | None = None,
    time_col: str | None = None,
    group_col: str | None = None,
    on_missing: str = "error",
) -> ProbeTable:
    """Pick and check the columns. Features default to every numeric column other than the
    target, time and group columns. Rows with a missing value stop the probe with the first
    such row named, unless ``on_missing="drop"``, which drops and counts them."""
    if frame.empty:
        raise TermwiseUserError("no data rows (only a header?)", path=path)
    _require(frame, target, "--target", path)
    for column, what in ((time_col, "--time-col"), (group_col, "--group-col")):
        if column is not None:
            _require(frame, column, what, path)
    reserved = {target, time_col, group_col}
    if features:
        for name in features:
            _require(frame, name, "--features", path)
            if name in reserved:
                raise TermwiseUserError(
                    f"{name!r} is the target (or the time or group column); it cannot also "
                    "be a feature",
                    path=path,
                    field="--features",
                )
            _check_numeric(frame, name, path, explicit=True)
        names = list(features)
    else:
        for column in frame.columns:
            if column not in reserved:
                _check_numeric(frame, str(column), path, explicit=False)
        names = [
            str(c)
            for c in frame.columns
            if c not in reserved
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]
    if not names:
        raise TermwiseUserError(
            "no numeric feature columns to probe", path=path, field="--features"
        )
    used = [*names, target, *(c for c in (time_col, group_col) if c is not None)]
    values = frame[used].replace([np.inf, -np.inf], np.nan)
    missing = values.isna().any(axis=1).to_numpy()
    if missing.any():
        if on_missing != "drop":
            row = int(np.flatnonzero(missing)[0])
            column = next(c for c in used if pd.isna(values.iloc[row][c]))
            raise TermwiseUserError(
                f"missing or infinite value (data row {row + 1}); pass --on-missing drop to "
                f"drop and count such rows ({int(missing.sum())} here)",
                path=path,
                field=column,
            )
        values = values[~missing]
    if len(values) < 20:
        raise TermwiseUserError(
            f"only {len(values)} usable rows; a probe needs at least 20", path=path
        )
    times = None
    if time_col is not None:
        raw_times = values[time_col]
        times = (
            raw_times.to_numpy(dtype=float)
            if pd.api.types.is_numeric_dtype(raw_times)
            else pd.to_datetime(raw_times)
            .to_numpy()
            .astype("datetime64[ns]")
            .astype(np.int64)
            .astype(float)
        )
    return ProbeTable(
        features=names,
        x=values[names].to_numpy(dtype=float),
        y=values[target].to_numpy(),
        times=times,
        groups=None if group_col is None else values[group_col].astype(str).to_numpy(),
        dropped_rows=int(missing.sum()),
    )
