import orjson
import pytest
import yaml
from typer.testing import CliRunner

from termwise.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_train_then_score_end_to_end(tmp_path, config_path):
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["btrm", "train", "-c", str(config_path), "-o", str(run)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "Held-out evaluation per head" in result.output
    assert "lexical branch fitted before the joint steps: 2 passes" in result.output
    assert "tf-idf logistic regression per head fitted" in result.output
    evaluation = orjson.loads((run / "eval.json").read_bytes())
    assert evaluation.pop("recipe") == "btrm"
    key = evaluation.pop("key_metric")  # the recipe's: the mean of every held-out AUC
    aucs = [v for e in evaluation.values() for v in e["auc"].values() if v is not None]
    assert key["name"] == "mean AUC" and key["value"] == pytest.approx(sum(aucs) / len(aucs))
    assert set(evaluation) == {
        "fiction",
        "news",
        "learned",
        "government",
        "reviews",
        "multiturn_dialogue",
        "glossary",
    }
    assert "semi_firm_neg" in evaluation["news"]["auc"]
    assert (run / "checkpoints" / "latest").exists() and (run / "health.jsonl").exists()
    manifest = orjson.loads((run / "model" / "termwise_reward.json").read_bytes())
    assert (manifest["max_length"], manifest["train_max_length"]) == (96, 64)
    assert manifest["lexical"]["buckets"] == 4096 and manifest["lexical"]["word_ngrams"] == 2
    assert manifest["tfidf_logistic"] is True  # fitted after training, saved with the heads
    assert "score level" in result.output
    assert len(manifest["level"]) == 7 and all(scale > 0 for scale, _ in manifest["level"])
    records = [
        {"id": i, "body": text}
        for i, text in enumerate(
            ["A short one.", "A much longer text " * 20, "Middle length text."]
        )
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        [
            "btrm",
            "score",
            "-m",
            str(run / "model"),
            "-i",
            str(source),
            "-o",
            str(out),
            "--text-field",
            "body",
            "--batch-size",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    scored = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in scored] == [0, 1, 2]
    assert set(scored[0]["scores"]) == set(evaluation)
    from termwise.recipes.btrm.score import load

    direct = load(run / "model").score([r["body"] for r in records])
    for row, expected in zip(scored, direct, strict=True):
        for head, value in expected.items():
            assert row["scores"][head] == pytest.approx(value, rel=1e-4, abs=1e-4)
    resumed = runner.invoke(
        app, ["btrm", "train", "-c", str(config_path), "-o", str(run), "--resume"]
    )
    assert resumed.exit_code == 0 and "resumed from step 4" in resumed.output
    assert "lexical branch fitted" not in resumed.output  # its branch is the checkpoint's
    # Checkpoints hold what the optimiser trains; the regression is fitted again at the end.
    assert "tf-idf logistic regression per head fitted" in resumed.output


def test_test_decoders_and_sample_inputs(config_path):
    result = runner.invoke(
        app, ["btrm", "test-decoders", "-c", str(config_path)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "single_quote" in result.output and "text (auto)" in result.output
    assert "by row" in result.output and "documents (by source)" in result.output
    result = runner.invoke(
        app, ["btrm", "sample-inputs", "-c", str(config_path), "-n", "1"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert (
        "news | positive" in result.output
        and "text :" in result.output.lower()
        or ("text:" in result.output.lower())
    )


def test_decoder_yielding_nothing_exits_2(tmp_path, config_path, monkeypatch, capsys):
    from termwise.cli import main

    config = yaml.safe_load(config_path.read_text())
    config["heads"][0]["positive_sources"][0]["tier_filter"] = "no_such_tier"
    config_path.write_text(yaml.safe_dump(config))
    monkeypatch.setattr("sys.argv", ["termwise", "btrm", "test-decoders", "-c", str(config_path)])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert "sources that yield nothing" in capsys.readouterr().err


def test_score_without_a_model_is_a_user_error(tmp_path, monkeypatch, capsys):
    from termwise.cli import main

    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "fine"}\n')
    (tmp_path / "not_a_model").mkdir()
    monkeypatch.setattr(
        "sys.argv",
        [
            "termwise",
            "btrm",
            "score",
            "-m",
            str(tmp_path / "not_a_model"),
            "-i",
            str(source),
            "-o",
            str(tmp_path / "o.jsonl"),
        ],
    )
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert "not a termwise reward model" in capsys.readouterr().err


def test_the_worst_source_of_each_tier_is_named_in_full():
    from termwise.recipes.btrm.evaluate import worst_source

    auc = {
        "furthest_neg": 0.95,
        "soft_neg:brown_government": 0.70,
        "soft_neg:brown_learned": 0.90,
        "furthest_neg:encyclopedic_wikitext[easy]": 0.935,
        "furthest_neg:web_c4": None,
    }
    assert worst_source(auc, "soft_neg") == "0.700 (brown_government)"
    assert worst_source(auc, "furthest_neg") == "0.935 (encyclopedic_wikitext[easy])"
    assert worst_source(auc, "semi_firm_neg") == "-"
