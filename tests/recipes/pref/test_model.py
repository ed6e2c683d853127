import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from termwise.models.backbone import apply_lora, load_backbone
from termwise.recipes.pref.config import GPM_TAU
from termwise.recipes.pref.data import PreferencePair, collate_pairs, encode_pairs
from termwise.recipes.pref.model import (
    INITIAL_ABS_MU,
    PreferenceModel,
    load_preference_model,
    save_preference_model,
)
from termwise.recipes.pref.score import predict_pairs

PAIRS = [
    PreferencePair("What is 2+2?", "It is 4.", "It is 5, clearly, as everyone knows."),
    PreferencePair("Name a colour.", "Blue.", "I will not answer that."),
    PreferencePair("Say hi.", "Hi there!", "Go away."),
]


def _model(path, head, lora=True, **kwargs) -> PreferenceModel:
    backbone, config = load_backbone(path)
    if lora:
        backbone = apply_lora(backbone, config.model_type, 4, 8, 0.0, None)
    pooling = "mean" if config.model_type == "bert" else "last"
    torch.manual_seed(0)
    return PreferenceModel(backbone, config.hidden_size, head, pooling, **kwargs)


def _batch(path, pairs=PAIRS):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    encoded = encode_pairs(tokenizer, pairs, 64)
    return tokenizer, encoded, collate_pairs(encoded, list(range(len(pairs))), 0)


def _move_trained_parts(model) -> None:
    """Every trained part away from its initial value, so a part that is not saved (or not
    loaded) would change the predictions; then eval mode."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    model.eval()


def _swap(pairs):
    return [PreferencePair(p.prompt, p.rejected, p.chosen) for p in pairs]


@pytest.mark.parametrize("head", ["bt", "gpm"])
def test_swapping_responses_negates_logits(tiny_bert, head):
    model = _model(tiny_bert, head, prompt_scaling=True).eval()
    _, _, batch = _batch(tiny_bert)
    _, _, swapped = _batch(tiny_bert, _swap(PAIRS))
    with torch.no_grad():
        forward = model(batch).logits
        backward = model(swapped).logits
    torch.testing.assert_close(forward, -backward)
    assert forward.abs().min() > 0


def test_bayes_draws_have_sample_axis_and_small_initial_noise(tiny_bert):
    model = _model(tiny_bert, "bayes_gpm", init_std_ratio=0.1).eval()
    _, _, batch = _batch(tiny_bert)
    with torch.no_grad():
        out = model(batch, n_samples=5, generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (5, len(PAIRS))
    std = (0.5 * out.logvar).exp()
    torch.testing.assert_close(std, torch.full_like(std, 0.1 * INITIAL_ABS_MU))
    ratio = (std.mean() / out.raw_mu.abs().mean()).item()
    assert 0.03 < ratio < 0.3  # the analytic E|raw_mu| is the right order of magnitude
    assert out.logits.std(0).max() > 0  # draws differ


@pytest.mark.parametrize(
    ("backbone", "head", "lora"),
    [
        ("tiny_bert", "bt", True),
        ("tiny_bert", "gpm", False),
        ("tiny_qwen", "bayes_gpm", True),
    ],
)
def test_save_load_gives_identical_predictions(request, tmp_path, backbone, head, lora):
    path = request.getfixturevalue(backbone)
    model = _model(path, head, lora=lora, prompt_scaling=head == "gpm")
    _move_trained_parts(model)
    tokenizer, encoded, _ = _batch(path)
    before = predict_pairs(model, encoded, 0, n_samples=8)
    save_preference_model(
        model, tokenizer, tmp_path / "m", {"backbone_path": str(path), "max_length": 64}
    )
    loaded, _, manifest = load_preference_model(tmp_path / "m")
    after = predict_pairs(loaded, encoded, 0, n_samples=8)
    assert manifest.kind == head and manifest.lora is lora
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    if head == "bayes_gpm":
        assert before[1].max() > 0
    else:
        assert before[1].max() == 0


def test_dim_must_be_even(tiny_bert):
    with pytest.raises(ValueError, match="even"):
        _model(tiny_bert, "gpm", lora=False, dim=5)


def test_initial_abs_mu_constant():
    torch.manual_seed(0)
    layer = torch.nn.Linear(256, 4096)
    x = torch.nn.functional.rms_norm(torch.randn(512, 256), (256,))
    assert math.isclose(layer(x).abs().mean().item(), INITIAL_ABS_MU, rel_tol=0.05)


class ItemEmbedding(torch.nn.Module):
    """A stand-in backbone: each one-token sequence is a learned vector for its item."""

    def __init__(self, items: int, hidden: int) -> None:
        super().__init__()
        self.table = torch.nn.Embedding(items, hidden)

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(last_hidden_state=self.table(input_ids))


def _fitted_cycle_logits(kind: str, seed: int) -> torch.Tensor:
    """Logits of rock > scissors > paper > rock after fitting those three pairs."""
    ids = torch.tensor([[0], [2], [1], [2], [1], [0]])  # chosen rows first, then rejected
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    batch["prompt_mask"] = batch["attention_mask"]
    torch.manual_seed(seed)
    model = PreferenceModel(ItemEmbedding(3, 16), 16, kind, "mean", dim=2, tau=GPM_TAU["gpm"])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):
        loss = -torch.nn.functional.logsigmoid(model(batch).logits).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return model(batch).logits


def test_gpm_at_the_default_dim_fits_a_preference_cycle_that_bt_cannot():
    # bt's three logits sum to zero (r_a - r_b + r_b - r_c + r_c - r_a): one is always wrong.
    assert all((_fitted_cycle_logits("bt", seed) > 0).sum() < 3 for seed in range(2))
    # gpm fits all three from most starts (10 in 10 seeds measured at tau 0.15, 9 in 10 at
    # 0.1; a start with the cycle's orientation reversed can settle at the all-tied point).
    fitted = sum(bool((_fitted_cycle_logits("gpm", seed) > 0).all()) for seed in range(5))
    assert fitted >= 3


@pytest.mark.parametrize("head", ["gpm", "bayes_gpm"])
def test_reward_head_adds_the_reward_gap_to_the_skew_symmetric_score(tiny_bert, head):
    plain = _model(tiny_bert, head, lora=False).eval()
    model = _model(tiny_bert, head, lora=False, reward_head=True).eval()
    _, _, batch = _batch(tiny_bert)
    _, _, swapped = _batch(tiny_bert, _swap(PAIRS))
    with torch.no_grad():
        # zero-initialised: the same scores as the model without it
        torch.testing.assert_close(
            model(batch, n_samples=0).logits, plain(batch, n_samples=0).logits
        )
        assert model.reward_out is not None
        model.reward_out.weight.normal_()
        pooled, _ = model.features(
            batch["input_ids"], batch["attention_mask"], batch["prompt_mask"]
        )
        rewards = model.reward_out(pooled).squeeze(-1)
        expected = plain(batch, n_samples=0).logits + rewards[: len(PAIRS)] - rewards[len(PAIRS) :]
        logits = model(batch, n_samples=0).logits
        torch.testing.assert_close(logits, expected)
        torch.testing.assert_close(model(swapped, n_samples=0).logits, -logits)


def test_reward_head_is_saved_and_loaded(tiny_bert, tmp_path):
    model = _model(tiny_bert, "gpm", lora=True, reward_head=True)
    _move_trained_parts(model)
    tokenizer, encoded, _ = _batch(tiny_bert)
    before = predict_pairs(model, encoded, 0)
    save_preference_model(
        model, tokenizer, tmp_path / "m", {"backbone_path": str(tiny_bert), "max_length": 64}
    )
    loaded, _, manifest = load_preference_model(tmp_path / "m")
    assert manifest.reward_head and loaded.reward_head
    np.testing.assert_array_equal(before[0], predict_pairs(loaded, encoded, 0)[0])
