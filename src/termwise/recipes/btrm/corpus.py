"""Scoring a corpus of many shards on Ray Data: a local cluster or a running one.

Two ways in. :class:`ScoreBatch` is a callable class for a user's own Ray Data pipeline
(``Dataset.map_batches(ScoreBatch, compute=ray.data.ActorPoolStrategy(size=N), ...)``): the
model is loaded once per actor and each batch gets one ``score_<head>`` column per head.
:func:`score_corpus` is ``termwise btrm score`` on a folder or glob: every input shard (JSONL
or Parquet) becomes one output shard ``OUTPUT/NAME.jsonl``, its records with their
``scores`` added in input order, written atomically by an actor of the pool. The folder's
manifest (``.termwise-corpus.json``) records each finished shard with its rows in and out,
so a rerun after a crash scores only the shards not yet finished. The output folder must
be one every worker can write (a local cluster, or a filesystem the cluster shares).
"""

from __future__ import annotations

import glob
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from termwise.data.jsonl import TEXT_FIELDS, atomic_write, iter_records, write_json
from termwise.data.outputs import is_own_output
from termwise.errors import TermwiseUserError

CORPUS_MANIFEST = ".termwise-corpus.json"
OWNER = "btrm score"
SHARD_SUFFIXES = (".jsonl", ".parquet")


def actor_threads() -> int:
    """The CPUs Ray gave this actor (at least 1): torch uses that many threads, so actors
    on one machine do not oversubscribe its cores."""
    import ray

    assigned = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return max(1, int(assigned))


class ScoreBatch:
    """``Dataset.map_batches(ScoreBatch, fn_constructor_kwargs={"model_dir": ...})``: adds
    ``score_<head>`` (float32) per head to each batch, scored as ``termwise btrm score``
    does (length-bucketed, LoRA merged; ``bf16``/``int8`` as its flags). The model is
    loaded once per actor, on its GPU when Ray gave it one; torch threads are set to the
    actor's CPUs."""

    def __init__(
        self,
        model_dir: str,
        text_column: str = "text",
        bf16: bool = False,
        int8: bool = False,
        threads: int | None = None,
    ) -> None:
        import torch

        from termwise.recipes.btrm.score import load

        torch.set_num_threads(threads or actor_threads())
        self.scorer = load(model_dir, bf16=bf16, int8=int8)
        if torch.cuda.is_available():
            self.scorer.model.to("cuda")
        self.text_column = text_column

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(text) for text in batch[self.text_column]]
        scores = self.scorer.score_tensor(texts).numpy()
        for h, head in enumerate(self.scorer.heads):
            batch[f"score_{head}"] = scores[:, h].astype(np.float32)
        return batch


@dataclass
class ShardResult:
    """What one shard gave: rows read, rows written, and the bad records (file:line)."""

    shard: str
    output: str
    rows_in: int = 0
    rows_out: int = 0
    bad: list[str] = field(default_factory=list)
    error: str | None = None  # a bad record with on_bad_record "error": nothing written


def find_shards(spec: Path) -> list[Path]:
    """The JSONL and Parquet files of a folder (recursively), or of a glob, sorted."""
    text = str(spec)
    if spec.is_dir():
        found = [p for p in sorted(spec.rglob("*")) if p.suffix in SHARD_SUFFIXES]
    else:
        found = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
        found = [p for p in found if p.suffix in SHARD_SUFFIXES and p.is_file()]
    if not found:
        raise TermwiseUserError("no .jsonl or .parquet shards found", path=spec)
    return found


def output_names(shards: Sequence[Path], root: Path) -> list[str]:
    """Each shard's output name: its path under ``root`` with ``/`` as ``__`` and the
    suffix ``.jsonl`` (unique, so two shards never write one file)."""
    names = []
    for shard in shards:
        try:
            relative = shard.resolve().relative_to(root.resolve())
        except ValueError:
            relative = Path(shard.name)
        names.append("__".join(relative.with_suffix(".jsonl").parts))
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise TermwiseUserError(f"two shards would write {sorted(duplicated)[0]}", path=root)
    return names


def shard_records(path: Path, text_field: str | None) -> Iterator[tuple[Any, str | None]]:
    """``(record, problem)`` for every row of a shard, in order; a row without a usable
    text (not JSON, no such field, an empty text) has ``problem`` naming its file, line and
    field. ``text_field`` None: the first of :data:`TEXT_FIELDS` the first record has."""
    for number, record, problem in _rows(path):
        if problem is not None:
            yield None, problem
            continue
        if text_field is None:
            text_field = next((f for f in TEXT_FIELDS if f in record), TEXT_FIELDS[0])
        text = record.get(text_field)
        if not isinstance(text, str) or not text.strip():
            yield record, f"{path}:{number}: field {text_field!r}: no text"
        else:
            yield {**record, TEXT_KEY: text}, None


TEXT_KEY = "\0text"  # the text a record was scored on, under a key no JSON field has


def _rows(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line or row number, record, problem)``: a line that is not a JSON object has its
    reason as ``problem`` (and no record)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for index, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield index, row, None
        return
    bad: list[str] = []
    for number, record, _ in iter_records(path, bad):
        while bad:  # lines before this one that were not JSON objects
            yield 0, None, bad.pop(0)
        yield number, record, None
    while bad:
        yield 0, None, bad.pop(0)


class ScoreShards:
    """The actor behind :func:`score_corpus`: each row of its batch names a shard, which it
    reads, scores and writes whole (``rows_in``/``rows_out``/``bad`` come back)."""

    def __init__(
        self,
        model_dir: str,
        text_field: str | None,
        on_bad_record: str,
        bf16: bool = False,
        int8: bool = False,
    ) -> None:
        self.batch = ScoreBatch(model_dir, bf16=bf16, int8=int8)
        self.text_field, self.on_bad_record = text_field, on_bad_record

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        results = [
            self.score_shard(Path(shard), Path(output))
            for shard, output in zip(batch["shard"], batch["output"], strict=True)
        ]
        return {"result": [orjson.dumps(r.__dict__).decode() for r in results]}

    def score_shard(self, shard: Path, output: Path, chunk: int = 512) -> ShardResult:
        """Score ``shard`` into ``output`` (atomically); with on_bad_record "error" the
        first bad record stops the shard and nothing is written."""
        result = ShardResult(str(shard), str(output))
        try:
            with atomic_write(output, owner=OWNER) as sink:
                pending: list[dict[str, Any]] = []
                for record, problem in shard_records(shard, self.text_field):
                    result.rows_in += 1
                    if problem is not None:
                        if self.on_bad_record == "error":
                            result.error = problem
                            raise _StopShard
                        result.bad.append(problem)
                        continue
                    pending.append(record)
                    if len(pending) == chunk:
                        result.rows_out += self._write(sink, pending)
                        pending = []
                result.rows_out += self._write(sink, pending)
        except _StopShard:
            result.rows_out = 0
        return result

    def _write(self, sink: Any, records: list[dict[str, Any]]) -> int:
        if not records:
            return 0
        scorer = self.batch.scorer
        scores = scorer.score_tensor([r.pop(TEXT_KEY) for r in records]).tolist()
        for record, row in zip(records, scores, strict=True):
            record["scores"] = dict(zip(scorer.heads, row, strict=True))
            sink.write(orjson.dumps(record, default=str) + b"\n")
        return len(records)


class _StopShard(Exception):
    """A bad record with on_bad_record "error": the shard's partial output is discarded."""


@dataclass
class CorpusSettings:
    """How :func:`score_corpus` runs: see ``termwise btrm score --help``."""

    text_field: str | None = None  # None: the first of TEXT_FIELDS
    actors: int | None = None  # None: one per CPU of the cluster, at most one per shard
    address: str | None = None  # None: a local cluster; "auto" or host:port: a running one
    on_bad_record: str = "error"
    bf16: bool = False
    int8: bool = False
    force: bool = False


def is_corpus(spec: Path) -> bool:
    """Whether ``--input`` names a corpus (a folder, or a glob) rather than one file."""
    # A file whose name holds [ or * is that file, not a pattern.
    return spec.is_dir() or (not spec.exists() and glob.has_magic(str(spec)))


def score_corpus(
    model_dir: Path, inputs: Path, output: Path, settings: CorpusSettings, console: Any
) -> list[ShardResult]:
    """Score every shard under ``inputs`` not yet scored into ``output`` (see the module
    docstring); returns the shards scored by this run."""
    from termwise.models.saved import read_manifest
    from termwise.recipes.btrm.model import FORMAT, MANIFEST, RewardManifest

    # A bad model folder fails here, in one line, before any cluster starts.
    read_manifest(model_dir, MANIFEST, RewardManifest, FORMAT, "reward model")
    shards = find_shards(inputs)
    root = inputs if inputs.is_dir() else Path(os.path.commonpath([s.parent for s in shards]))
    outputs = [output / name for name in output_names(shards, root)]
    manifest = open_manifest(output, model_dir, shards, settings)
    todo = [(s, o) for s, o in zip(shards, outputs, strict=True) if not finished(manifest, s, o)]
    console.print(
        f"{len(shards)} shards: {len(shards) - len(todo)} already scored, {len(todo)} to score",
        markup=False,
    )
    results: list[ShardResult] = []
    for result in run_actors(model_dir, todo, settings):
        if result.error is not None:
            raise TermwiseUserError(
                f"{result.error} (--on-bad-record skip scores the rest; {len(results)} shards "
                "of this run are finished, a rerun scores only the others)"
            )
        manifest["shards"][Path(result.output).name] = {
            "input": str(Path(result.shard).resolve()),
            "rows_in": result.rows_in,
            "rows_out": result.rows_out,
            "bad_records": len(result.bad),
            "first_bad": result.bad[:5],
        }
        write_json(output / CORPUS_MANIFEST, manifest)
        results.append(result)
        console.print(
            f"{result.shard}: {result.rows_out} of {result.rows_in} rows scored"
            + (
                f", {len(result.bad)} bad records skipped (first: {result.bad[0]})"
                if result.bad
                else ""
            ),
            markup=False,
        )
    return results


def open_manifest(
    output: Path, model_dir: Path, shards: Sequence[Path], settings: CorpusSettings
) -> dict[str, Any]:
    """The output folder's manifest (a new one for a new or empty folder). A folder that
    holds anything but a corpus scoring's output, one of the inputs, or the output of
    another model (unless ``force``) is refused."""
    path = output / CORPUS_MANIFEST
    if output.exists() and not output.is_dir():
        raise TermwiseUserError("is a file, expected the output folder of a corpus", path=output)
    resolved = output.resolve()
    folders = {s.resolve().parent for s in shards}
    if any(resolved == f or f in resolved.parents for f in folders):
        # a rerun would find the scored shards among the inputs
        raise TermwiseUserError(
            "--output would hold the input shards; write elsewhere", path=output
        )
    existing = next(p for p in (output, *output.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):  # before any shard is scored
        raise TermwiseUserError(f"--output: cannot write in {existing} (permissions)", path=output)
    fresh = {"model": str(model_dir.resolve()), "shards": {}}
    if not path.is_file():
        if output.is_dir() and any(output.iterdir()):
            raise TermwiseUserError(
                "not empty and not the output of a corpus scoring; choose a new folder",
                path=output,
            )
        output.mkdir(parents=True, exist_ok=True)
        write_json(path, fresh)
        return fresh
    try:
        manifest = orjson.loads(path.read_bytes())
        if not isinstance(manifest.get("shards"), dict):
            raise ValueError("no shards")
    except (orjson.JSONDecodeError, ValueError, AttributeError) as error:
        raise TermwiseUserError(f"unreadable manifest ({error})", path=path) from None
    if manifest.get("model") != fresh["model"]:
        if not settings.force:
            raise TermwiseUserError(
                f"was scored with another model ({manifest.get('model')}); pass --force to "
                "score it again with this one",
                path=output,
            )
        write_json(path, fresh)
        return fresh
    return dict(manifest)


def finished(manifest: dict[str, Any], shard: Path, output: Path) -> bool:
    """A shard this folder already holds: recorded as scored from the same input, and its
    output exactly as written (its marker's size and SHA-256 match)."""
    entry = manifest["shards"].get(output.name)
    return (
        isinstance(entry, dict)
        and entry.get("input") == str(shard.resolve())  # however the input was spelled
        and is_own_output(output, OWNER)
    )


def run_actors(
    model_dir: Path, todo: Sequence[tuple[Path, Path]], settings: CorpusSettings
) -> Iterator[ShardResult]:
    """The shards through a pool of :class:`ScoreShards` actors on Ray Data, as each
    finishes."""
    if not todo:
        return
    import ray

    start_ray(settings.address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    gpus = int(ray.cluster_resources().get("GPU", 0))
    actors = min(settings.actors or max(1, gpus or cpus), len(todo))
    # Ray Data's own context warns of its deprecated fields and logs its plan: the command
    # prints one line per shard instead (RAY_DATA_LOG_LEVEL, set, has the last word).
    logging.getLogger("ray.data").setLevel(os.environ.get("RAY_DATA_LOG_LEVEL", "ERROR"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    rows = [{"shard": str(shard), "output": str(out)} for shard, out in todo]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        ScoreShards,
        fn_constructor_kwargs={
            "model_dir": str(model_dir),
            "text_field": settings.text_field,
            "on_bad_record": settings.on_bad_record,
            "bf16": settings.bf16,
            "int8": settings.int8,
        },
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=1 if gpus else 0,
        num_cpus=1 if gpus else max(1, cpus // actors),
    )
    for row in dataset.iter_rows():
        yield ShardResult(**orjson.loads(row["result"]))


def start_ray(address: str | None) -> None:
    """Connect to the running cluster at ``address``, or start a local one (no dashboard,
    no usage stats); a session that already called ``ray.init`` keeps its cluster."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    import ray

    if address not in (None, "auto", "local"):
        check_reachable(address)  # Ray itself retries an unreachable address for minutes
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except ConnectionError as error:
        raise TermwiseUserError(f"--ray-address {address}: {error}") from None


def check_reachable(address: str, seconds: float = 5.0) -> None:
    """One line, within ``seconds``, when nothing listens at ``[ray://]host:port``."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise TermwiseUserError(f"--ray-address {address}: expected auto or host:port")
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as error:
        raise TermwiseUserError(
            f"--ray-address {address}: no Ray cluster answers there ({error.strerror or error})"
        ) from None
