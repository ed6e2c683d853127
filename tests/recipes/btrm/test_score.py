import pytest
import torch
from peft import PeftModel
from transformers import AutoTokenizer

from termwise.recipes.btrm.model import save_reward_model
from termwise.recipes.btrm.score import load
from tests.recipes.btrm.test_model import build

TEXTS = ["one text", "another, longer text here about the council meeting", "x"]


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_qwen"])
def test_merged_lora_scores_match_unmerged(fixture, request, tmp_path):
    path = request.getfixturevalue(fixture)
    torch.manual_seed(0)
    model = build(path, lora=True)
    with torch.no_grad():  # move the adapters off their zero init so merging changes weights
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    tokenizer = AutoTokenizer.from_pretrained(path)
    manifest = {"backbone_path": str(path), "meta_prompt": "Which?", "max_length": 64}
    save_reward_model(model, tokenizer, tmp_path / "m", manifest)
    exact, merged = load(tmp_path / "m", merge=False), load(tmp_path / "m")
    assert isinstance(exact.model.backbone, PeftModel)
    assert not isinstance(merged.model.backbone, PeftModel)
    assert not any("lora" in name for name, _ in merged.model.named_parameters())
    unmerged_scores = exact.score_tensor(TEXTS)
    torch.testing.assert_close(merged.score_tensor(TEXTS), unmerged_scores, atol=1e-5, rtol=0)
    assert unmerged_scores.std() > 0


def saved_lora_model(backbone, directory):
    torch.manual_seed(0)
    model = build(backbone, lora=True)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    manifest = {"backbone_path": str(backbone), "meta_prompt": "Which?", "max_length": 64}
    save_reward_model(model, tokenizer, directory, manifest)
    return directory


def test_bf16_scores_close_to_float32(tiny_bert, tmp_path):
    saved_lora_model(tiny_bert, tmp_path / "m")
    full = load(tmp_path / "m").score_tensor(TEXTS)
    half = load(tmp_path / "m", bf16=True).score_tensor(TEXTS)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, atol=0.05, rtol=0.05)
    assert not torch.equal(half, full)  # it did run in bfloat16


def test_token_budget_changes_batching_not_scores(tiny_bert, tmp_path):
    import inspect

    from termwise.recipes.btrm.cli import score as score_command
    from termwise.recipes.btrm.score import SCORE_TOKENS

    scorer = load(saved_lora_model(tiny_bert, tmp_path / "m"))
    texts = [f"text {'word ' * n}" for n in range(1, 40, 3)]
    whole = scorer.score_tensor(texts, batch_size=64, max_tokens=None)
    small = scorer.score_tensor(texts, batch_size=64, max_tokens=40)  # about a row a batch
    torch.testing.assert_close(small, whole, atol=1e-5, rtol=0)
    cli_default = inspect.signature(score_command).parameters["max_tokens"].default.default
    assert cli_default == SCORE_TOKENS
