import pytest
import torch

from termwise.models.backbone import (
    BackboneConfig,
    LoraConfig,
    adapted_backbone,
    disable_dropout,
    load_backbone,
)


def _twice(model, input_ids):
    model.train()
    mask = torch.ones_like(input_ids)
    with torch.no_grad():
        return [model(input_ids=input_ids, attention_mask=mask).last_hidden_state for _ in "ab"]


def test_disable_dropout_makes_training_mode_deterministic(tiny_bert):
    model, _ = load_backbone(tiny_bert)
    ids = torch.randint(5, 100, (2, 12), generator=torch.Generator().manual_seed(0))
    first, second = _twice(model, ids)
    assert not torch.equal(first, second)  # BERT's default dropout is on
    assert disable_dropout(model) > 0
    first, second = _twice(model, ids)
    assert torch.equal(first, second)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).last_hidden_state, first, atol=1e-6)
    assert disable_dropout(model) == 0  # nothing left to change


def test_disable_dropout_reaches_causal_attention_rates():
    from transformers import AutoModel, Qwen2Config

    config = Qwen2Config(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        attention_dropout=0.2,
    )
    model = AutoModel.from_config(config)
    rates = [m.attention_dropout for m in model.modules() if hasattr(m, "attention_dropout")]
    assert rates and all(r == pytest.approx(0.2) for r in rates)
    assert disable_dropout(model) == len(rates)
    assert all(
        m.attention_dropout == 0.0 for m in model.modules() if hasattr(m, "attention_dropout")
    )


@pytest.mark.parametrize("disable", [True, False])
def test_recipe_backbone_keeps_lora_dropout(tiny_bert, disable):
    model, _, _ = adapted_backbone(
        tiny_bert, BackboneConfig(disable_dropout=disable), LoraConfig(dropout=0.05)
    )
    backbone_rates = {
        m.p
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Dropout) and "lora_dropout" not in name
    }
    lora_rates = {
        m.p
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Dropout) and "lora_dropout" in name
    }
    assert backbone_rates == ({0.0} if disable else {0.1})
    assert lora_rates == {0.05}


@pytest.mark.parametrize("field", ["max_length", "score_max_length"])
def test_a_length_past_the_backbones_positions_is_refused_with_the_limit(tiny_bert, field):
    from pydantic import ValidationError

    BackboneConfig(path=tiny_bert, **{field: 256})  # the tiny model's 256 positions: fine
    with pytest.raises(ValidationError, match=f"{field} 257 is over the backbone's 256 positions"):
        BackboneConfig(path=tiny_bert, **{field: 257})
