"""Corpus scoring on a local Ray cluster (2 CPUs, started once for the session): the same
scores as `btrm score` file by file, resumable, and bad records reported, never lost."""

import os

import orjson
import pytest
from typer.testing import CliRunner

from termwise.cli import app
from termwise.recipes.btrm.corpus import CORPUS_MANIFEST
from tests.cli.test_cli import assert_one_line_exit_2, run_main
from tests.recipes.btrm.test_score import saved_lora_model

runner = CliRunner()
CORPORA = ("brown_news", "reviews", "glossary_foldoc", "dialogue_chat")


@pytest.fixture(scope="session")
def ray_cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tiny_bert, tmp_path_factory):
    return saved_lora_model(tiny_bert, tmp_path_factory.mktemp("corpus") / "model")


def write_shards(folder, rows=12):
    """Four JSONL shards of bundled texts, in a folder and a subfolder."""
    from termwise.sample_data import sample_path

    shards = []
    for i, corpus in enumerate(CORPORA):
        lines = (sample_path("corpora") / f"{corpus}.jsonl").read_bytes().splitlines()[:rows]
        path = folder / ("sub" if i == 3 else "") / f"{corpus}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(lines) + b"\n")
        shards.append(path)
    return shards


def score(*args):
    return runner.invoke(app, ["btrm", "score", *map(str, args)], env={"COLUMNS": "200"})


def read(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_corpus_scores_as_btrm_score_does_file_by_file(ray_cluster, model_dir, tmp_path):
    shards = write_shards(tmp_path / "corpus")
    result = score(
        "-m", model_dir, "-i", tmp_path / "corpus", "-o", tmp_path / "out", "--actors", 2
    )
    assert result.exit_code == 0, result.output
    assert "4 shards: 0 already scored, 4 to score" in result.output
    names = sorted(p.name for p in (tmp_path / "out").glob("*.jsonl"))
    assert names == sorted(
        ["brown_news.jsonl", "reviews.jsonl", "glossary_foldoc.jsonl", "sub__dialogue_chat.jsonl"]
    )
    for shard in shards:
        single = tmp_path / f"single-{shard.name}"
        assert score("-m", model_dir, "-i", shard, "-o", single).exit_code == 0
        name = shard.name if shard.parent.name != "sub" else f"sub__{shard.name}"
        corpus_rows, file_rows = read(tmp_path / "out" / name), read(single)
        assert len(corpus_rows) == len(file_rows) == 12
        for a, b in zip(corpus_rows, file_rows, strict=True):
            assert {k: v for k, v in a.items() if k != "scores"} == {
                k: v for k, v in b.items() if k != "scores"
            }
            assert a["scores"] == pytest.approx(b["scores"], rel=1e-4, abs=1e-4)
    manifest = orjson.loads((tmp_path / "out" / CORPUS_MANIFEST).read_bytes())
    assert {e["rows_in"] for e in manifest["shards"].values()} == {12}
    assert {e["rows_out"] for e in manifest["shards"].values()} == {12}


def test_a_run_stopped_after_its_first_shard_scores_only_the_rest(
    ray_cluster, model_dir, tmp_path, monkeypatch
):
    import termwise.recipes.btrm.corpus as corpus

    write_shards(tmp_path / "corpus")
    written = []
    real = corpus.write_json

    def stop_after_the_first_shard(path, payload, owner=None):
        real(path, payload, owner)
        written.append(len(payload["shards"]))
        if len(payload["shards"]) == 1:
            raise KeyboardInterrupt  # as Ctrl-C, or a kill, right after one shard

    monkeypatch.setattr(corpus, "write_json", stop_after_the_first_shard)
    with pytest.raises(KeyboardInterrupt):
        corpus.score_corpus(
            model_dir,
            tmp_path / "corpus",
            tmp_path / "out",
            corpus.CorpusSettings(actors=1),
            _Quiet(),
        )
    monkeypatch.setattr(corpus, "write_json", real)
    first = orjson.loads((tmp_path / "out" / CORPUS_MANIFEST).read_bytes())["shards"]
    assert len(first) == 1
    (done,) = first
    before = (tmp_path / "out" / done).stat().st_mtime_ns
    result = score("-m", model_dir, "-i", tmp_path / "corpus", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "4 shards: 1 already scored, 3 to score" in result.output
    assert "scored 36 records in 3 shards" in result.output
    assert (tmp_path / "out" / done).stat().st_mtime_ns == before  # not scored again
    again = score("-m", model_dir, "-i", tmp_path / "corpus", "-o", tmp_path / "out")
    assert "4 shards: 4 already scored, 0 to score" in again.output


def test_a_bad_record_stops_the_job_or_is_skipped_and_counted(
    ray_cluster, model_dir, tmp_path, monkeypatch, capsys
):
    shards = write_shards(tmp_path / "corpus", rows=5)
    lines = shards[1].read_bytes().splitlines()
    lines[2] = b'{"id": "x", "text": tru'
    shards[1].write_bytes(b"\n".join(lines) + b"\n")
    args = ["btrm", "score", "-m", str(model_dir), "-i", str(tmp_path / "corpus")]
    code, err = run_main(monkeypatch, capsys, *args, "-o", str(tmp_path / "out"))
    assert_one_line_exit_2(code, err, f"{shards[1]}:3: invalid JSON", "--on-bad-record skip")
    assert not (tmp_path / "out" / shards[1].name).exists()  # nothing half-written
    skipped = score(
        "-m",
        model_dir,
        "-i",
        tmp_path / "corpus",
        "-o",
        tmp_path / "out",
        "--on-bad-record",
        "skip",
    )
    assert skipped.exit_code == 0, skipped.output
    assert "1 bad records skipped" in skipped.output
    entry = orjson.loads((tmp_path / "out" / CORPUS_MANIFEST).read_bytes())["shards"]
    assert (entry[shards[1].name]["rows_in"], entry[shards[1].name]["rows_out"]) == (5, 4)
    assert entry[shards[1].name]["first_bad"][0].startswith(f"{shards[1]}:3: invalid JSON")
    assert len(read(tmp_path / "out" / shards[1].name)) == 4


def test_an_output_folder_of_another_kind_or_model_is_refused(
    model_dir, tiny_bert, tmp_path, monkeypatch, capsys
):
    write_shards(tmp_path / "corpus", rows=3)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    args = ["btrm", "score", "-m", str(model_dir), "-i", str(tmp_path / "corpus"), "-o"]
    code, err = run_main(monkeypatch, capsys, *args, str(tmp_path / "mine"))
    assert_one_line_exit_2(code, err, "not the output of a corpus scoring")
    code, err = run_main(monkeypatch, capsys, *args, str(tmp_path / "corpus" / "out"))
    assert_one_line_exit_2(code, err, "would hold the input shards")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / CORPUS_MANIFEST).write_bytes(b'{"model": "/elsewhere", "shards": {}}')
    code, err = run_main(monkeypatch, capsys, *args, str(tmp_path / "other"))
    assert_one_line_exit_2(code, err, "was scored with another model", "--force")
    code, err = run_main(
        monkeypatch,
        capsys,
        *args[:-3],
        "-i",
        str(tmp_path / "none*.jsonl"),
        "-o",
        str(tmp_path / "x"),
    )
    assert_one_line_exit_2(code, err, "no .jsonl or .parquet shards found")


def test_an_output_folder_it_cannot_write_is_one_line(model_dir, tmp_path, monkeypatch, capsys):
    write_shards(tmp_path / "corpus", rows=2)
    (tmp_path / "locked").mkdir()
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(tmp_path / "locked") else real(p, mode)
    )
    args = ["btrm", "score", "-m", str(model_dir), "-i", str(tmp_path / "corpus")]
    code, err = run_main(monkeypatch, capsys, *args, "-o", str(tmp_path / "locked" / "out"))
    assert_one_line_exit_2(code, err, "cannot write in", "permissions")


@pytest.mark.parametrize(
    ("address", "said"),
    [("127.0.0.1:1", "no Ray cluster answers there"), ("nonsense", "expected auto or host:port")],
)
def test_a_ray_address_with_no_cluster_is_one_line_at_once(
    model_dir, tmp_path, monkeypatch, capsys, address, said
):
    write_shards(tmp_path / "corpus", rows=2)
    args = ["btrm", "score", "-m", str(model_dir), "-i", str(tmp_path / "corpus")]
    code, err = run_main(
        monkeypatch, capsys, *args, "-o", str(tmp_path / "out"), "--ray-address", address
    )
    assert_one_line_exit_2(code, err, f"--ray-address {address}", said)


def test_score_batch_adds_a_column_per_head_in_a_ray_data_pipeline(ray_cluster, model_dir):
    from termwise.btrm import ScoreBatch, load

    texts = ["a short text", "a somewhat longer text about the council", "x"] * 4
    dataset = ray_cluster.data.from_items([{"text": t, "id": i} for i, t in enumerate(texts)])
    scored = dataset.map_batches(
        ScoreBatch,
        fn_constructor_kwargs={"model_dir": str(model_dir)},
        compute=ray_cluster.data.ActorPoolStrategy(size=2),
        batch_size=4,
    ).take_all()
    heads = load(model_dir).heads
    expected = load(model_dir).score_tensor(texts)
    by_id = {row["id"]: row for row in scored}
    assert sorted(by_id) == list(range(len(texts)))
    for i in range(len(texts)):
        got = [by_id[i][f"score_{h}"] for h in heads]
        assert got == pytest.approx(expected[i].tolist(), rel=1e-4, abs=1e-4)


class _Quiet:
    def print(self, *args, **kwargs):
        pass


def test_a_parquet_shard_is_scored_into_jsonl(ray_cluster, model_dir, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from termwise.btrm import load

    (tmp_path / "corpus").mkdir()
    texts = ["a council meeting on Tuesday", "once upon a time", "glossary: a term"]
    table = pa.table({"id": [1, 2, 3], "text": texts, "year": [2001, 2002, 2003]})
    pq.write_table(table, tmp_path / "corpus" / "part-0.parquet")
    result = score("-m", model_dir, "-i", tmp_path / "corpus", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    rows = read(tmp_path / "out" / "part-0.jsonl")
    assert [(r["id"], r["text"], r["year"]) for r in rows] == list(
        zip([1, 2, 3], texts, [2001, 2002, 2003], strict=True)
    )
    expected = load(model_dir).score(texts)
    for row, scores in zip(rows, expected, strict=True):
        assert row["scores"] == pytest.approx(scores, rel=1e-4, abs=1e-4)


def test_a_file_named_like_a_pattern_is_that_file(tmp_path):
    from termwise.recipes.btrm.corpus import is_corpus

    named = tmp_path / "part[1].jsonl"
    named.write_text('{"text": "a"}\n')
    assert not is_corpus(named)
    assert is_corpus(tmp_path / "*.jsonl") and is_corpus(tmp_path)
