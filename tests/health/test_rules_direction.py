from termwise.health import MarginByRetreat, MetricReport
from tests.health.helpers import window


def directional(step, gap, pos, neg):
    means = {"mse.raw": 0.003, "dir.gap": gap, "dir.pos": pos, "dir.neg": neg}
    return window(means, terms=("mse", "dir"), roles=("data", "aux"), step=step)


def run(rule, rows):
    history, found = [], []
    for step, (gap, pos, neg) in enumerate(rows):
        current = directional(step * 20, gap, pos, neg)
        found += rule.check_window(current, history)
        history.append(current)
    return found


def test_a_margin_won_by_leaving_the_previous_vector_fires():
    # cos to the next vector flat at 0.44 while cos to the previous falls: the gap grows.
    rows = [(0.01 + 0.005 * i, 0.44, 0.43 - 0.005 * i) for i in range(8)]
    found = run(MarginByRetreat(lookback=5), rows)
    assert [f.step for f in found] == [100, 120, 140]
    assert found[0].code == "dir.retreat" and found[0].subject == "dir"
    assert found[0].evidence["neg_rise"] < 0 < found[0].evidence["gap_rise"]
    assert "contrastive" in found[0].suggestion


def test_a_margin_won_by_nearing_the_next_vector_does_not():
    rows = [(0.01 + 0.005 * i, 0.40 + 0.005 * i, 0.39) for i in range(8)]
    assert run(MarginByRetreat(lookback=5), rows) == []
    # Both moving, most of the gap from pos: still prediction, not retreat.
    rows = [(0.01 + 0.004 * i, 0.40 + 0.003 * i, 0.39 - 0.001 * i) for i in range(8)]
    assert run(MarginByRetreat(lookback=5), rows) == []


def test_too_little_history_or_no_gap_stat_is_not_judged():
    rows = [(0.01 + 0.01 * i, 0.44, 0.43 - 0.01 * i) for i in range(3)]
    assert run(MarginByRetreat(lookback=5), rows) == []
    plain = window({"mse.raw": 0.003}, terms=("mse",), roles=("data",))
    assert MarginByRetreat(lookback=1).check_window(plain, [plain]) == []


def test_a_positive_margin_with_the_sweep_peaking_on_the_context_fires_at_an_evaluation():
    rule = MarginByRetreat()
    retreat = MetricReport(92, {"margin": 0.0157, "peak": -1, "target_offset": 1})
    (finding,) = rule.check_metrics([retreat])
    assert finding.subject == "offset_sweep" and "peaks at -1" in finding.message
    forward = MetricReport(92, {"margin": 0.06, "peak": 1, "target_offset": 1})
    behind = MetricReport(92, {"margin": -0.07, "peak": 0, "target_offset": 1})
    assert rule.check_metrics([forward]) == [] and rule.check_metrics([behind]) == []
    assert rule.check_metrics([MetricReport(92, {"margin": 0.1})]) == []  # no sweep reported
