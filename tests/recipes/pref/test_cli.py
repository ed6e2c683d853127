import orjson
import pytest
import yaml
from typer.testing import CliRunner

from termwise.cli import app
from tests.cli.test_cli import run_main

runner = CliRunner()


def _gen(tmp_path, head, tiny_bert, steps=4):
    path = tmp_path / f"{head}.yaml"
    result = runner.invoke(
        app, ["pref", "gen-config", "-o", str(path), "--head", head, "--max-steps", str(steps)]
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(path.read_text())
    config["backbone"].update({"path": str(tiny_bert), "max_length": 64})
    config["lora"]["r"] = 4
    config["max_pairs"] = 24
    config["trainer"].update({"progress": False, "tensorboard": False})
    path.write_text(yaml.safe_dump(config))
    return path


def test_gen_config_writes_commented_valid_yaml(tmp_path, tiny_bert):
    text = _gen(tmp_path, "gpm", tiny_bert).read_text()
    assert "kind: gpm" in text and "dev.jsonl" in text
    raw = tmp_path / "raw.yaml"
    runner.invoke(app, ["pref", "gen-config", "-o", str(raw), "--head", "gpm"])
    assert "# P(a > b) = sigmoid(<R v_a, v_b> / tau)." in raw.read_text()


def test_gen_config_rejects_unknown_head(tmp_path, monkeypatch, capsys):
    args = ["pref", "gen-config", "-o", str(tmp_path / "x"), "--head", "gmp"]
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and "--kind must be bt, gpm or bayes_gpm, got 'gmp'" in err


@pytest.mark.slow
def test_train_eval_score_end_to_end(tmp_path, tiny_bert, monkeypatch, capsys):
    config = _gen(tmp_path, "bt", tiny_bert)
    run = tmp_path / "run"
    result = runner.invoke(app, ["pref", "train", "-c", str(config), "-o", str(run)])
    assert result.exit_code == 0, result.output
    assert "overall" in result.output and (run / "eval.json").exists()
    out_json = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        [
            "pref",
            "eval",
            "-m",
            str(run / "model"),
            "-d",
            "data/preferences/dev.jsonl",
            "--json",
            str(out_json),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    trained = orjson.loads((run / "eval.json").read_bytes())
    assert (trained.pop("recipe"), trained.pop("kind")) == ("pref", "bt")
    assert trained.pop("dev_path").endswith("dev.jsonl")
    key = trained.pop("key_metric")
    assert key == {"name": "overall accuracy", "value": trained["overall"]}
    evaluated = orjson.loads(out_json.read_bytes())
    assert evaluated.pop("unseen_subsets")["recorded"] is True
    coverage = evaluated.pop("calibration_source")
    assert coverage["file"].endswith("dev.jsonl") and coverage["unseen_categories"] == []
    assert set(coverage["categories"]) == set(trained["categories"])
    assert evaluated == trained  # pref eval gives what train did
    assert "calibration fitted on" in result.output and "warning:" not in result.output
    shifted = tmp_path / "shifted.jsonl"
    shifted.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "prompt": f"q{i}",
                    "chosen": "a",
                    "rejected": "b",
                    "category": "adversarial",
                    "subset": "brand-new",
                }
            )
            + b"\n"
            for i in range(4)
        )
    )
    result = runner.invoke(
        app, ["pref", "eval", "-m", str(run / "model"), "-d", str(shifted)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0, result.output
    assert "warning: the calibration saw no pairs of adversarial" in result.output
    assert "the 1 subset(s) the model never trained on" in result.output
    assert "(adversarial/brand-new)" in result.output
    records = [
        {"id": 1, "prompt": "Is 7 prime?", "chosen": "Yes.", "rejected": "No."},
        {"id": 2, "prompt": "Is 7 prime?", "response": "Yes."},
        {"id": 3, "prompt": "Is 7 prime?", "a": "No.", "b": "Yes."},
    ]
    source, scored = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    result = runner.invoke(
        app, ["pref", "score", "-m", str(run / "model"), "-i", str(source), "-o", str(scored)]
    )
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in scored.read_bytes().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]
    p_yes, p_no = rows[0]["preference"]["p"], rows[2]["preference"]["p"]
    assert p_yes == pytest.approx(1 - p_no, abs=1e-6)  # a bt model: P(a > b) = 1 - P(b > a)
    assert isinstance(rows[1]["reward"], float)
    source.write_bytes(orjson.dumps({"prompt": "x", "chosen": ""}) + b"\n")
    args = ["pref", "score", "-m", str(run / "model"), "-i", str(source), "-o", str(scored)]
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and "in.jsonl:1: chosen: empty text" in err
    assert len(scored.read_bytes().splitlines()) == 3  # the earlier output is untouched
    # A calibration that cannot be fitted (one pair) keeps the saved one and says why.
    manifest = run / "model" / "termwise_pref.json"
    before = manifest.read_bytes()
    one_pair = tmp_path / "one.jsonl"
    one_pair.write_bytes(orjson.dumps(records[0]) + b"\n")
    args = ["pref", "calibrate", "-m", str(run / "model"), "-d", str(one_pair)]
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and "1 pair(s)" in err and "is kept unchanged" in err, err
    assert manifest.read_bytes() == before
    # eval --json may not name a file of the model or of its run.
    args = ["pref", "eval", "-m", str(run / "model"), "-d", str(source), "--json", str(manifest)]
    code, err = run_main(monkeypatch, capsys, *args, "--force")
    assert code == 2 and "--json" in err and manifest.read_bytes() == before
    args[-1] = str(run / "eval.json")
    code, err = run_main(monkeypatch, capsys, *args, "--force")
    assert code == 2 and "is the input file" in err, err


def test_train_bad_record_exits_2(tmp_path, tiny_bert, monkeypatch, capsys):
    config = _gen(tmp_path, "gpm", tiny_bert)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q"}\n')
    settings = yaml.safe_load(config.read_text())
    settings["train_path"] = str(bad)
    config.write_text(yaml.safe_dump(settings))
    args = ["pref", "train", "-c", str(config), "-o", str(tmp_path / "r")]
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and "bad.jsonl:2: chosen: missing" in err
