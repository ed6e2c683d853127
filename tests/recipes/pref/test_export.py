"""A bt model exported as a plain transformers directory scores as termwise does."""

import pytest
import torch
from typer.testing import CliRunner

from termwise.cli import app
from tests.cli.test_cli import run_main
from tests.recipes.pref.test_cli import _gen

runner = CliRunner()
PROMPTS = ["What is 2 + 2?", "Name a colour."]
RESPONSES = ["It is four, as counting shows.", "Blue."]


def trained(tmp_path, tiny_bert, head):
    run = tmp_path / head
    result = runner.invoke(
        app, ["pref", "train", "-c", str(_gen(tmp_path, head, tiny_bert, 2)), "-o", str(run)]
    )
    assert result.exit_code == 0, result.output
    return run / "model"


@pytest.mark.slow
def test_exported_bt_rewards_match_termwise_through_transformers_alone(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    from transformers import AutoModelForSequenceClassification

    from termwise.recipes.pref.data import encode_pair
    from termwise.recipes.pref.score import load

    model = trained(tmp_path, tiny_bert, "bt")
    out = tmp_path / "exported"
    result = runner.invoke(app, ["pref", "export", "-m", str(model), "-o", str(out)])
    assert result.exit_code == 0, result.output
    scorer = load(model)
    expected = scorer.reward(PROMPTS, RESPONSES)
    exported = AutoModelForSequenceClassification.from_pretrained(str(out), trust_remote_code=True)
    assert exported.config.id2label == {0: "reward"}
    assert "tokenizer pair" in exported.config.termwise_input
    rewards = []
    for prompt, response in zip(PROMPTS, RESPONSES, strict=True):
        ids, _ = encode_pair(scorer.tokenizer, prompt, response, scorer.manifest.max_length)
        with torch.no_grad():
            rewards.append(exported(input_ids=torch.tensor([ids])).logits[0, 0].item())
    assert rewards == pytest.approx(expected.tolist(), abs=1e-4)
    # Again over the same folder: an earlier export is replaced only with --force.
    code, err = run_main(monkeypatch, capsys, "pref", "export", "-m", str(model), "-o", str(out))
    assert code == 2 and "pass --force" in err
    forced = runner.invoke(app, ["pref", "export", "-m", str(model), "-o", str(out), "--force"])
    assert forced.exit_code == 0, forced.output


@pytest.mark.slow
def test_gpm_and_a_users_folder_are_refused_in_one_line(tmp_path, tiny_bert, monkeypatch, capsys):
    model = trained(tmp_path, tiny_bert, "gpm")
    code, err = run_main(
        monkeypatch, capsys, "pref", "export", "-m", str(model), "-o", str(tmp_path / "x")
    )
    assert code == 2 and "scores pairs" in err and "export a bt model" in err
    assert not (tmp_path / "x").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, err = run_main(
        monkeypatch, capsys, "pref", "export", "-m", str(model), "-o", str(mine), "--force"
    )
    assert code == 2 and "is not a termwise export" in err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_export_refuses_the_current_directory_before_loading_anything(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(monkeypatch, capsys, "pref", "export", "-m", "missing", "-o", ".")
    assert code == 2 and "is the current directory" in err and "export never replaces" in err


def test_export_under_a_file_is_refused_before_loading_anything(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    out = str(blocker / "exported")
    code, err = run_main(monkeypatch, capsys, "pref", "export", "-m", "missing", "-o", out)
    assert code == 2 and "is a file, not a directory" in err
    assert blocker.read_text() == "mine"
