"""btrm's loss: the total it logs is the value back-propagated, with no host sync."""

import torch
from torch import nn

from termwise.config import load_yaml_config
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.recipe import make_loss, make_objective
from termwise.terms import multihead_bradley_terry


class FixedScores(nn.Module):
    """Scores as parameters: what backward reaches is exactly the loss's graph."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = nn.Parameter(scores.clone())

    def forward(self, *inputs):
        return self.scores


def test_the_logged_total_is_the_loss_backward_is_called_on(config_path):
    config = load_yaml_config(config_path, BtrmConfig)
    heads = len(config.heads)
    torch.manual_seed(0)
    scores = torch.randn(6, heads)
    positive = torch.zeros(6, heads, dtype=torch.bool)
    positive[0, 0] = positive[1, 1] = True  # heads 0 and 1 have a positive; the rest none
    negative = torch.ones(6, heads) * ~positive
    model = FixedScores(scores)
    batch = {"input_ids": None, "attention_mask": None, "positive": positive}
    out = make_loss(config, make_objective(config))(
        model, {**batch, "negative_weight": negative}, 0
    )
    out.loss.backward()
    terms = multihead_bradley_terry(
        scores, positive, negative, log_square_form=config.log_square_form
    )
    active = terms.active.tolist()
    assert active[:2] == [True, True] and not any(active[2:])
    per_head = terms.bradley_terry + config.log_square_weight * terms.log_square
    expected = per_head[:2].sum() / 2  # the mean over the heads that had pairs
    assert out.breakdown.total.item() == out.loss.item()
    torch.testing.assert_close(out.loss.detach(), expected)
    assert out.breakdown.active.tolist() == [1.0] * 4 + [0.0] * (2 * heads - 4)
    names = config.heads[2].name
    stats = out.breakdown.stats
    assert torch.isnan(stats[f"{names}.bt.pair_accuracy"])  # no value: skipped by the means
    assert model.scores.grad is not None and model.scores.grad[:, 2:].abs().sum() == 0
