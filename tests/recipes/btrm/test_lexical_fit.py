import numpy as np
import torch

from termwise.models.backbone import LexicalConfig
from termwise.models.lexical import pack_bags
from termwise.recipes.btrm.data import build_table
from termwise.recipes.btrm.lexical_fit import loss_window, prefit_lexical
from termwise.recipes.btrm.recipe import build_model

from .test_config_data import small_config


def prefit_inputs(tmp_path, tiny_bert, epochs: int):
    lexical = LexicalConfig(buckets=4096, prefit_epochs=epochs, prefit_batch_size=64)
    config = small_config(tmp_path, lexical=lexical, max_rows_per_source=40)
    table = build_table(config)
    model = build_model(config, tiny_bert)
    assert model.heads.lexical is not None
    bags = model.bags(table.texts)
    assert bags is not None
    lengths = np.array([len(text) for text in table.texts])
    weights = table.negative_weight(config.tier_weights.model_dump())
    return config, table, model, bags, lengths, weights


def test_prefit_trains_the_branch_alone_on_training_rows(tmp_path, tiny_bert):
    config, table, model, bags, lengths, weights = prefit_inputs(tmp_path, tiny_bert, 3)
    rows = table.split(heldout=False)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lexical" not in k}
    result = prefit_lexical(model, table, bags, lengths, rows, weights, config)
    assert result is not None and result.passes == 3
    assert result.batches == 3 * int(np.ceil(len(rows) / 64))
    assert result.last_loss < result.first_loss
    branch = model.heads.lexical
    assert all(p.requires_grad for p in branch.parameters())  # keeps training with the heads
    for name, value in model.state_dict().items():  # the backbone and the linear: untouched
        if name in frozen:
            assert torch.equal(value, frozen[name]), name
    weight = branch.bag.weight.detach()
    seen = np.zeros(len(weight), dtype=bool)
    seen[[i for row in rows for i in bags[row]]] = True
    assert (weight[~torch.from_numpy(seen)] == 0).all()  # only training rows' n-grams
    with torch.no_grad():
        ids, offsets = pack_bags([bags[i] for i in rows])
        scores = branch(ids, offsets).numpy()
    positive, negative = table.positive[rows], table.negative_tier[rows] > 0
    for h, name in enumerate(table.heads):  # every head now ranks its positives first
        assert scores[positive[:, h], h].mean() > scores[negative[:, h], h].mean(), name


def test_no_prefit_when_off(tmp_path, tiny_bert):
    config, table, model, bags, lengths, weights = prefit_inputs(tmp_path, tiny_bert, 0)
    rows = table.split(heldout=False)
    assert prefit_lexical(model, table, bags, lengths, rows, weights, config) is None
    assert not model.heads.lexical.bag.weight.any()


def test_loss_window_is_a_pass_or_a_tenth_of_the_only_one():
    assert loss_window(passes=3, per_pass=116, batches=348) == 116
    assert loss_window(passes=1, per_pass=116, batches=116) == 12  # first and last differ
    assert loss_window(passes=1, per_pass=5, batches=3) == 1  # heads with no active batch skipped
