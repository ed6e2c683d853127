"""One line, exit 2, for every bad input; nothing the user had is lost or overwritten."""

import json

import orjson
import pytest
from transformers import AutoTokenizer

from tests.cli.test_cli import assert_one_line_exit_2, run_main
from tests.recipes.btrm.test_score import saved_lora_model


@pytest.fixture(scope="module")
def model_dir(tiny_bert, tmp_path_factory):
    return saved_lora_model(tiny_bert, tmp_path_factory.mktemp("saved") / "m")


@pytest.fixture
def texts(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"}\n')
    return path


def _copy(model_dir, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def _manifest(path):
    return path / "termwise_reward.json"


def _edit_manifest(path, **changes):
    data = json.loads(_manifest(path).read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    _manifest(path).write_text(json.dumps(data))


CORRUPTIONS = {
    "empty heads": lambda m: (m / "heads.safetensors").write_bytes(b""),
    "truncated heads": lambda m: (m / "heads.safetensors").write_bytes(
        (m / "heads.safetensors").read_bytes()[:60]
    ),
    "garbage heads": lambda m: (m / "heads.safetensors").write_bytes(b"\x00garbage" * 50),
    "missing heads": lambda m: (m / "heads.safetensors").unlink(),
    "missing tokenizer": lambda m: __import__("shutil").rmtree(m / "tokenizer"),
    "missing adapter": lambda m: __import__("shutil").rmtree(m / "adapter"),
    "garbage manifest": lambda m: _manifest(m).write_text("{not json"),
    "manifest is a list": lambda m: _manifest(m).write_text("[1, 2]"),
    "manifest lacks a key": lambda m: _edit_manifest(m, head_names=None),
    "manifest wrong type": lambda m: _edit_manifest(m, max_length="long"),
    "unknown pooling": lambda m: _edit_manifest(m, pooling="median"),
    "head count mismatch": lambda m: _edit_manifest(m, head_names=["a", "b", "c", "d"]),
    "unknown format": lambda m: _edit_manifest(m, format="termwise-reward/9"),
}
EXPECTED = {
    "manifest lacks a key": "head_names",
    "manifest wrong type": "max_length",
    "unknown pooling": "pooling",
    "head count mismatch": "heads.safetensors",
    "missing tokenizer": "tokenizer",
    "unknown format": "format",
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_broken_model_directory_is_one_line(
    corruption, model_dir, texts, tmp_path, monkeypatch, capsys
):
    broken = _copy(model_dir, tmp_path)
    CORRUPTIONS[corruption](broken)
    out = tmp_path / "out.jsonl"
    args = ["btrm", "score", "-m", str(broken), "-i", str(texts), "-o", str(out)]
    code, err = run_main(monkeypatch, capsys, *args)
    assert_one_line_exit_2(code, err, str(broken), EXPECTED.get(corruption, ""))
    assert not out.exists()


@pytest.mark.parametrize("target", ["missing", "file"])
def test_a_model_path_that_is_not_a_directory(target, texts, tmp_path, monkeypatch, capsys):
    path = tmp_path / "m"
    if target == "file":
        path.write_text("x")
    args = ["btrm", "score", "-m", str(path), "-i", str(texts), "-o", str(tmp_path / "o")]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), str(path))


def test_score_refuses_an_output_that_is_its_input(model_dir, texts, monkeypatch, capsys):
    before = texts.read_bytes()
    args = ["btrm", "score", "-m", str(model_dir), "-i", str(texts), "-o", str(texts)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "is the input file")
    assert texts.read_bytes() == before


def test_score_refuses_a_directory_output_before_loading(texts, tmp_path, monkeypatch, capsys):
    args = ["btrm", "score", "-m", str(tmp_path / "no-model"), "-i", str(texts)]
    code, err = run_main(monkeypatch, capsys, *args, "-o", str(tmp_path))
    assert_one_line_exit_2(code, err, "is a directory")


def test_a_failing_score_keeps_the_previous_output(model_dir, tmp_path, monkeypatch, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "fine"}\n{"text": "also fine"}\n{"text": 3}\n')
    out = tmp_path / "out.jsonl"
    out.write_text("the previous results\n")
    args = ["btrm", "score", "-m", str(model_dir), "-i", str(source), "-o", str(out)]
    code, err = run_main(monkeypatch, capsys, *args, "--chunk", "1")
    assert_one_line_exit_2(code, err, "--output exists and was not written by this command")
    code, err = run_main(monkeypatch, capsys, *args, "--chunk", "1", "--force")
    assert_one_line_exit_2(code, err, "in.jsonl:3: text: expected a string, got int")
    assert out.read_text() == "the previous results\n"
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_a_users_file_shaped_like_scores_is_kept_and_its_own_output_rescored(
    model_dir, texts, tmp_path, monkeypatch, capsys
):
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"text": "mine", "scores": {"label": 1}}\n')  # the shape of our output
    args = ["btrm", "score", "-m", str(model_dir), "-i", str(texts), "-o"]
    code, err = run_main(monkeypatch, capsys, *args, str(gold))
    assert_one_line_exit_2(code, err, "--output exists and was not written by this command")
    assert gold.read_text() == '{"text": "mine", "scores": {"label": 1}}\n'
    out = tmp_path / "scored.jsonl"
    assert run_main(monkeypatch, capsys, *args, str(out))[0] == 0
    assert run_main(monkeypatch, capsys, *args, str(out))[0] == 0  # its own: no --force
    out.write_text(out.read_text() + '{"text": "added by hand"}\n')
    code, err = run_main(monkeypatch, capsys, *args, str(out))
    assert_one_line_exit_2(code, err, "--output exists and was not written by this command")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": 1}, "text: missing"),
        ({"text": None}, "text: null, expected a string"),
        ({"text": 7}, "text: expected a string, got int"),
        ({"text": "  "}, "text: empty text"),
    ],
)
def test_a_bad_record_says_what_is_wrong(record, message, model_dir, tmp_path, monkeypatch, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "fine"}\n' + json.dumps(record) + "\n")
    args = ["btrm", "score", "-m", str(model_dir), "-i", str(source), "-o", str(tmp_path / "o")]
    code, err = run_main(monkeypatch, capsys, *args, "--text-field", "text")
    assert_one_line_exit_2(code, err, f"in.jsonl:2: {message}")


def test_pref_eval_refuses_a_json_path_that_is_a_directory(tmp_path, monkeypatch, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    args = ["pref", "eval", "-m", str(tmp_path / "none"), "-d", str(data), "--json", str(tmp_path)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "--json is a directory")


def test_probe_refuses_a_json_path_that_is_its_input(tmp_path, monkeypatch, capsys):
    data = tmp_path / "t.csv"
    data.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    args = ["probe", str(data), "--target", "y", "--json", str(data)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "is the input file")


def test_demo_refuses_a_run_dir_that_is_a_file(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "f"
    run_dir.write_text("x")
    args = ["demo", "free-bits", "--run-dir", str(run_dir), "--max-steps", "2"]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "is a file")


def test_invalid_numbers_are_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    code, err = run_main(monkeypatch, capsys, "demo", "free-bits", "--max-steps", "0")
    assert code == 2 and "Traceback" not in err and "--max-steps" in err


@pytest.mark.parametrize("command", ["btrm", "pref"])
def test_gen_config_never_overwrites_without_force(command, tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("# my edits\n")
    code, err = run_main(monkeypatch, capsys, command, "gen-config", "-o", str(path))
    assert_one_line_exit_2(code, err, "--force")
    assert path.read_text() == "# my edits\n"
    code, _ = run_main(monkeypatch, capsys, command, "gen-config", "-o", str(path), "--force")
    assert code == 0 and "my edits" not in path.read_text()


def test_gen_config_works_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(monkeypatch, capsys, "btrm", "gen-config", "-o", "c.yaml")
    assert code == 0, err
    from termwise.config import load_yaml_config
    from termwise.recipes.btrm.config import BtrmConfig

    assert len(load_yaml_config(tmp_path / "c.yaml", BtrmConfig).heads) == 7


def test_tokenizer_fixture_is_local(tiny_bert):
    assert AutoTokenizer.from_pretrained(tiny_bert, local_files_only=True).vocab_size > 0


def test_output_json_is_written_atomically(tmp_path):
    from termwise.data.jsonl import write_json

    write_json(tmp_path / "r.json", {"a": 1})
    assert orjson.loads((tmp_path / "r.json").read_bytes()) == {"a": 1}
