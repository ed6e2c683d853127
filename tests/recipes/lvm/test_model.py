"""The next-vector model: its shape, and the residual form that starts as copy-last."""

import torch
import torch.nn.functional as F

from termwise.recipes.lvm.config import LvmModelConfig
from termwise.recipes.lvm.model import NextVectorModel


def contexts(batch=4, context=3, dim=12):
    return F.normalize(
        torch.randn(batch, context, dim, generator=torch.Generator().manual_seed(0)), dim=-1
    )


def test_a_residual_model_predicts_the_last_context_vector_before_training():
    config = LvmModelConfig(width=8, layers=1, heads=2, residual=True)
    model = NextVectorModel(12, 3, config).eval()
    context = contexts()
    assert torch.equal(model(context), F.normalize(context[:, -1], dim=-1))


def test_a_residual_model_learns_a_correction_away_from_copying():
    config = LvmModelConfig(width=8, layers=1, heads=2, dropout=0.0, residual=True)
    model = NextVectorModel(12, 3, config)
    context, target = contexts(), contexts(batch=4, context=1)[:, 0].flip(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float((model(context) * target).sum(-1).mean())
    for _ in range(50):
        loss = (model(context) - target).square().sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = float((model(context) * target).sum(-1).mean())
        assert after > before + 0.1
        assert not torch.allclose(model(context), F.normalize(context[:, -1], dim=-1))


def test_the_plain_model_does_not_copy_the_last_vector():
    model = NextVectorModel(12, 3, LvmModelConfig(width=8, layers=1, heads=2)).eval()
    context = contexts()
    assert model(context).shape == (4, 12)
    assert not torch.allclose(model(context), F.normalize(context[:, -1], dim=-1), atol=1e-3)
