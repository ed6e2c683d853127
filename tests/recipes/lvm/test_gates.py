"""Gates and the direction diagnostic on synthetic sequences with known answers."""

import pytest
import torch
import torch.nn.functional as F

from termwise.recipes.lvm.config import GateThresholds
from termwise.recipes.lvm.data import Corpus, make_windows
from termwise.recipes.lvm.diagnose import diagnose
from termwise.recipes.lvm.gates import run_gates
from termwise.terms import directional_margin


def rotation_corpus(documents=6, length=40, dim=8, seed=0):
    """s_{t+1} = R s_t for a fixed rotation R: the next vector is a linear function of the
    last one, and different from it."""
    generator = torch.Generator().manual_seed(seed)
    rotation = torch.linalg.qr(torch.randn(dim, dim, generator=generator))[0]
    vectors = []
    for _ in range(documents):
        s = F.normalize(torch.randn(dim, generator=generator), dim=0)
        for _ in range(length):
            vectors.append(s)
            s = rotation @ s
    offsets = torch.arange(0, documents * length + 1, length)
    corpus = Corpus(
        torch.stack(vectors),
        offsets,
        [f"d{i}" for i in range(documents)],
        torch.zeros(documents, dtype=torch.bool),
        torch.tensor([i >= documents - 2 for i in range(documents)]),
    )
    return corpus, rotation


def test_a_linear_model_of_a_rotation_passes_and_copy_last_does_not():
    corpus, rotation = rotation_corpus()
    windows = make_windows(corpus, corpus.documents("val"), context=3, offset=1)
    linear = run_gates(lambda c: c[:, -1] @ rotation.T, corpus, windows, None, GateThresholds())
    assert linear["A_offset_sweep"]["margin"] > 0
    assert linear["A_offset_sweep"]["cos_next"] > 0.999
    assert linear["B_retrieval"]["r_at_1"] == 1.0 and linear["B_retrieval"]["mrr"] == 1.0
    assert linear["D_rollout"][4] > 0.999  # exact dynamics roll out exactly
    copy = run_gates(lambda c: c[:, -1], corpus, windows, None, GateThresholds())
    assert copy["A_offset_sweep"]["margin"] < 0  # copying points backward
    assert copy["A_offset_sweep"]["cos_by_offset"]["0"] > 0.999
    assert not copy["passed"]["A"]


def test_ablations_measure_what_the_context_carries():
    corpus, rotation = rotation_corpus()
    windows = make_windows(corpus, corpus.documents("val"), context=3, offset=1)
    report = run_gates(
        lambda c: F.normalize(c[:, -1] @ rotation.T + 1e-9, dim=-1),
        corpus,
        windows,
        None,
        GateThresholds(),
    )
    drops = report["C_ablations"]
    # The rotation needs the last vector: dropping it or zeroing the context costs a lot,
    # and shuffling moves it away from the last position too.
    assert min(drops.values()) > 0.05 and report["passed"]["C"]


def test_direction_diagnostic_is_symmetric_on_raw_data_and_names_the_window_cut():
    corpus, _ = rotation_corpus()
    documents = corpus.documents("train") + corpus.documents("val")
    one = diagnose(corpus, documents, make_windows(corpus, documents, 3, 1), offset=1)
    assert abs(one["raw_forward_minus_backward"]) < 1e-6  # the same pairs, by construction
    assert "no direction bias" in one["verdict"]
    two = diagnose(corpus, documents, make_windows(corpus, documents, 3, 2), offset=2)
    assert abs(two["raw_forward_minus_backward"]) < 1e-6
    assert "how windows are cut" in two["verdict"]


def test_directional_margin_and_autoscale_by_hand():
    from termwise.schedules import AutoScale

    pred = F.normalize(torch.tensor([[1.0, 0.2], [0.3, 1.0]]), dim=-1)
    nxt = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    prv = F.normalize(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), dim=-1)
    out = directional_margin(pred, nxt, prv, margin=0.04, gamma=8.0)
    gap = (pred * nxt).sum(-1) - (pred * prv).sum(-1)
    torch.testing.assert_close(out.values, F.softplus(8.0 * (0.04 - gap)) / 8.0)
    scale = AutoScale(0.1, 1e-4, 5e-2, reference="mse")
    lam, pinned = scale(torch.tensor(10.0), torch.tensor(0.5))  # 0.5 * 0.1 / 10 = 0.005
    assert lam.item() == pytest.approx(0.005, rel=1e-6) and pinned.item() == 0.0
    lam, pinned = scale(torch.tensor(0.2), torch.tensor(0.5))  # 0.25: held at the clamp
    assert lam.item() == pytest.approx(0.05, rel=1e-6) and pinned.item() == 1.0
