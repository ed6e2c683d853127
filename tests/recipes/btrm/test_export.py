"""A reward model exported as a plain transformers directory scores as termwise does."""

import pytest
import torch
import yaml
from typer.testing import CliRunner

from termwise.cli import app
from tests.cli.test_cli import run_main

runner = CliRunner()
TEXTS = ["A short one.", "A much longer text about the weather " * 5]


def train(tmp_path, config_path, lexical):
    config = yaml.safe_load(config_path.read_text())
    config["lexical"]["enabled"] = lexical
    config["trainer"]["max_steps"] = 2
    path = tmp_path / f"lexical-{lexical}.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / f"run-{lexical}"
    result = runner.invoke(app, ["btrm", "train", "-c", str(path), "-o", str(run)])
    assert result.exit_code == 0, result.output
    return run / "model"


def exported_scores(directory, scorer):
    from transformers import AutoModelForSequenceClassification

    from termwise.recipes.btrm.score import encode

    model = AutoModelForSequenceClassification.from_pretrained(
        str(directory), trust_remote_code=True
    )
    rows = encode(scorer.tokenizer, scorer.manifest.meta_prompt, TEXTS, scorer.manifest.max_length)
    with torch.no_grad():
        return [model(input_ids=torch.tensor([ids])).logits[0] for ids in rows], model.config


@pytest.mark.slow
def test_exported_heads_score_as_termwise_with_the_level(tmp_path, config_path):
    from termwise.recipes.btrm.score import load

    model = train(tmp_path, config_path, lexical=False)
    out = tmp_path / "exported"
    result = runner.invoke(app, ["btrm", "export", "-m", str(model), "-o", str(out)])
    assert result.exit_code == 0, result.output
    scorer = load(model)
    expected = scorer.score(TEXTS)
    got, config = exported_scores(out, scorer)
    assert list(config.id2label.values()) == scorer.heads
    for row, want in zip(got, expected, strict=True):
        assert row.tolist() == pytest.approx([want[h] for h in scorer.heads], rel=1e-4, abs=1e-4)


def test_export_force_keeps_what_it_did_not_write(tmp_path, config_path, monkeypatch, capsys):
    from termwise.models.hf_export import RECORD

    model = train(tmp_path, config_path, lexical=False)
    out = tmp_path / "exp"
    for name in (".exp.partial", ".exp.old"):  # a user's folders named like temporaries
        (tmp_path / name).mkdir()
        (tmp_path / name / "keep.txt").write_text("mine")
    assert runner.invoke(app, ["btrm", "export", "-m", str(model), "-o", str(out)]).exit_code == 0
    (out / "notes.txt").write_text("my notes")
    args = ["btrm", "export", "-m", str(model), "-o", str(out), "--force"]
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and "notes.txt" in err and (out / "notes.txt").read_text() == "my notes"
    (out / RECORD).unlink()  # an export from before the record: refused once it is written
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and "notes.txt" in err and (out / "notes.txt").read_text() == "my notes"
    (out / "notes.txt").unlink()
    assert runner.invoke(app, args).exit_code == 0
    for name in (".exp.partial", ".exp.old"):
        assert (tmp_path / name / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".exp")) == [
        ".exp.old",
        ".exp.partial",
    ]


@pytest.mark.slow
def test_a_lexical_model_is_refused_unless_neural_only(tmp_path, config_path, monkeypatch, capsys):
    model = train(tmp_path, config_path, lexical=True)
    out = tmp_path / "exported"
    code, err = run_main(monkeypatch, capsys, "btrm", "export", "-m", str(model), "-o", str(out))
    assert code == 2 and "--neural-only" in err and not out.exists()
    result = runner.invoke(
        app, ["btrm", "export", "-m", str(model), "-o", str(out), "--neural-only"]
    )
    assert result.exit_code == 0 and "neural part alone" in result.output
    from termwise.models.backbone import pool
    from termwise.recipes.btrm.model import load_reward_model
    from termwise.recipes.btrm.score import encode, load
    from termwise.terms import soft_cap

    termwise_model, tokenizer, manifest = load_reward_model(model)
    got, config = exported_scores(out, load(model))
    assert config.termwise_level is None
    rows = encode(tokenizer, manifest.meta_prompt, TEXTS, manifest.max_length)
    for ids, row in zip(rows, got, strict=True):
        input_ids = torch.tensor([ids])
        mask = torch.ones_like(input_ids)
        with torch.no_grad():
            hidden = termwise_model.backbone(
                input_ids=input_ids, attention_mask=mask
            ).last_hidden_state
            pooled = pool(hidden, mask, manifest.pooling)
            neural = soft_cap(
                termwise_model.heads.linear(termwise_model.heads.norm(pooled.float())),
                manifest.logit_cap,
            )
        assert torch.allclose(row, neural[0], rtol=1e-4, atol=1e-4)
