"""The membership heads as a datatrove step: on LocalPipelineExecutor with 2 tasks it keeps
what thresholding `btrm score` by hand keeps, drops the rest to the exclusion writer, and
a rerun skips the completed tasks."""

import orjson
import pytest

from tests.recipes.btrm.test_corpus import model_dir, score, write_shards  # noqa: F401

pytest.importorskip("datatrove")


def read_ids(folder):
    ids = set()
    for path in folder.rglob("*.jsonl*"):
        import gzip

        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            ids |= {orjson.loads(line)["id"] for line in handle if line.strip()}
    return ids


def test_the_filter_keeps_what_thresholds_on_btrm_score_keep(model_dir, tmp_path):  # noqa: F811
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from termwise.btrm import BtrmFilter, load

    shards = write_shards(tmp_path / "corpus", rows=10)
    heads = load(model_dir).heads
    by_hand: dict[str, dict[str, float]] = {}
    for shard in shards:
        out = tmp_path / f"scored-{shard.name}"
        assert score("-m", model_dir, "-i", shard, "-o", out).exit_code == 0
        by_hand |= {r["id"]: r["scores"] for r in map(orjson.loads, out.read_bytes().splitlines())}
    values = sorted(s[heads[0]] for s in by_hand.values())
    threshold = (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2  # between two
    expected = {i for i, s in by_hand.items() if s[heads[0]] >= threshold}

    def pipeline():
        return [
            JsonlReader(str(tmp_path / "corpus")),
            BtrmFilter(
                str(model_dir),
                keep={heads[0]: threshold},
                exclusion_writer=JsonlWriter(str(tmp_path / "dropped")),
                batch_size=8,
            ),
            JsonlWriter(str(tmp_path / "kept")),
        ]

    executor = LocalPipelineExecutor(
        pipeline=pipeline(), tasks=2, workers=1, logging_dir=str(tmp_path / "logs")
    )
    executor.run()
    assert read_ids(tmp_path / "kept") == expected
    assert read_ids(tmp_path / "dropped") == set(by_hand) - expected
    assert 0 < len(expected) < len(by_hand)
    first = next((tmp_path / "kept").rglob("*.jsonl*"))
    kept = orjson.loads(__import__("gzip").open(first).readline())
    assert set(kept["metadata"]) >= {f"score_{h}" for h in heads}
    # A rerun skips the completed tasks: what they wrote is not written again.
    for path in (tmp_path / "kept").rglob("*.jsonl*"):
        path.unlink()
    LocalPipelineExecutor(
        pipeline=pipeline(), tasks=2, workers=1, logging_dir=str(tmp_path / "logs")
    ).run()
    assert not list((tmp_path / "kept").rglob("*.jsonl*"))


def test_a_threshold_on_a_head_the_model_lacks_is_named(model_dir):  # noqa: F811
    from datatrove.data import Document

    from termwise.btrm import BtrmFilter
    from termwise.errors import TermwiseUserError

    step = BtrmFilter(str(model_dir), keep={"nosuchhead": 0.0})
    with pytest.raises(TermwiseUserError, match="nosuchhead"):
        step.filter_batch([Document(text="a text", id="1")])
    assert step.__getstate__()["_scorer"] is None  # the step travels without a model
