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


def one_hot_corpus(documents=4, length=12):
    """Sentence k is the k-th basis vector: cos(pred, s_{t+k}) is pred's k-th component, so
    a predictor's offset sweep is set by hand."""
    dim = documents * length
    offsets = torch.arange(0, dim + 1, length)
    corpus = Corpus(
        torch.eye(dim),
        offsets,
        [f"d{i}" for i in range(documents)],
        torch.zeros(documents, dtype=torch.bool),
        torch.zeros(documents, dtype=torch.bool),
    )
    return corpus, make_windows(corpus, corpus.documents("train"), context=3, offset=1)


def shifted(context, by):
    return torch.roll(context[:, -1], by, dims=-1)


def test_gate_a_needs_the_sweep_to_peak_at_the_target_not_only_a_positive_margin():
    corpus, windows = one_hot_corpus()
    # 0.5 toward the next sentence, 0.8 toward the one before the last: margin(+1) is
    # +0.53, but the prediction sits nearest a context sentence (a margin won by retreat).
    retreat = run_gates(
        lambda c: F.normalize(0.5 * shifted(c, 1) + 0.8 * shifted(c, -1), dim=-1),
        corpus,
        windows,
        None,
        GateThresholds(),
        full=False,
    )
    a = retreat["A_offset_sweep"]
    assert a["margin"] > 0.5 and a["peak"] == -1 and a["target_offset"] == 1
    assert not retreat["passed"]["A"]
    forward = run_gates(lambda c: shifted(c, 1), corpus, windows, None, GateThresholds())
    assert forward["A_offset_sweep"]["peak"] == 1 and forward["passed"]["A"]
    small = run_gates(
        lambda c: F.normalize(shifted(c, 1) + 0.99 * c[:, -1], dim=-1),
        corpus,
        windows,
        None,
        GateThresholds(margin=0.05),
        full=False,
    )
    assert small["A_offset_sweep"]["peak"] == 1 and not small["passed"]["A"]  # margin < 0.05


def test_retrieval_and_rollout_gates_need_the_model_to_beat_every_trivial_predictor():
    from termwise.recipes.lvm.baselines import trivial_predictors
    from termwise.recipes.lvm.gates import baseline_rows

    corpus, windows = one_hot_corpus()
    thresholds = GateThresholds(r_at_5=0.0, rollout_first=0.0)
    rows = baseline_rows(trivial_predictors(None), corpus, windows)
    assert set(rows) == {"copy-last", "mean of context"}
    exact = run_gates(lambda c: shifted(c, 1), corpus, windows, None, thresholds, baselines=rows)
    assert exact["passed"]["B"] and exact["passed"]["D"]
    assert exact["baselines"]["copy-last"]["r_at_1"] < exact["B_retrieval"]["r_at_1"] == 1.0
    # Copying the last sentence cannot beat itself: B and D fail however low the marks.
    copy = run_gates(lambda c: c[:, -1], corpus, windows, None, thresholds, baselines=rows)
    assert not copy["passed"]["B"] and not copy["passed"]["D"]
    # Without baselines only the marks count (the per-epoch check of old runs).
    alone = run_gates(lambda c: c[:, -1], corpus, windows, None, thresholds)
    assert alone["passed"]["B"] and alone["baselines"] == {}


def test_ridge_learns_a_linear_next_step_and_reloads_identically(tmp_path):
    from termwise.recipes.lvm.baselines import Ridge

    corpus, rotation = rotation_corpus(documents=12, length=30)
    windows = make_windows(corpus, corpus.documents("train"), context=3, offset=1)
    ridge = Ridge.fit(corpus, windows)
    context = corpus.vectors[windows.context]
    cos = (ridge(context) * corpus.vectors[windows.target]).sum(-1)
    assert cos.min() > 0.99  # s_{t+1} = R s_t is linear in the context
    ridge.save(tmp_path)
    again = Ridge.load(tmp_path)
    assert again is not None and again.alpha == ridge.alpha
    assert torch.equal(again(context), ridge(context))
    assert Ridge.load(tmp_path / "missing") is None


def test_a_constant_prediction_ties_with_every_candidate_and_retrieves_nothing():
    corpus, windows = one_hot_corpus()
    report = run_gates(
        lambda c: torch.zeros_like(c[:, -1]), corpus, windows, None, GateThresholds(r_at_5=0.0)
    )
    assert report["B_retrieval"]["r_at_5"] == 0.0
    assert report["B_retrieval"]["mrr"] < 0.05


def test_the_gate_table_prints_the_trivial_predictors_and_names_the_pool():
    from rich.console import Console

    from termwise.recipes.lvm.baselines import trivial_predictors
    from termwise.recipes.lvm.gates import baseline_rows, print_gates

    corpus, windows = one_hot_corpus()
    rows = baseline_rows(trivial_predictors(None), corpus, windows)
    report = run_gates(
        lambda c: shifted(c, 1), corpus, windows, None, GateThresholds(), baselines=rows
    )
    console = Console(record=True, width=200)
    print_gates(report, console, title="gates")
    text = console.export_text()
    assert "peak at +1 (target +1)" in text
    for name in ("model", "copy-last", "mean of context"):
        assert f"│ {name}" in text
    assert f"rank the true target among all {len(windows)} targets" in text


def test_a_corrupt_ridge_file_is_one_clear_error(tmp_path):
    from termwise.errors import TermwiseUserError
    from termwise.recipes.lvm.baselines import RIDGE_FILE, Ridge

    (tmp_path / RIDGE_FILE).write_text("not safetensors")
    with pytest.raises(TermwiseUserError, match="not a ridge baseline file") as caught:
        Ridge.load(tmp_path)
    assert str(tmp_path / RIDGE_FILE) in str(caught.value)
