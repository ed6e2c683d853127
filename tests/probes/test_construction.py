"""The construction baseline on series with known answers."""

import numpy as np
import pytest

from termwise.data import ohlcv
from termwise.probes.construction import construction_baselines, judge, null_bars
from termwise.probes.run import ProbeSettings, probe_bars
from termwise.probes.simulate import simulated_bars

SETTINGS = ProbeSettings(permutations=100)


def _judged(frame, targets, draws=2):
    bars = ohlcv.build(frame, "sim")
    nulls = construction_baselines(frame, "sim", targets, SETTINGS, draws)
    out = {}
    for name in targets:
        report, _ = probe_bars(bars, name, SETTINGS)
        out[name] = judge(report, nulls[name])
    return out


def test_null_bars_keep_the_returns_and_volumes_but_not_their_order():
    frame = simulated_bars(0, rows=300, ar=0.5)
    null = null_bars(frame, seed=1)
    real = np.diff(np.log(frame["close"].to_numpy()))
    fake = np.diff(np.log(null["close"].to_numpy()))
    np.testing.assert_allclose(np.sort(fake), np.sort(real), rtol=1e-9, atol=1e-12)
    assert sorted(null["volume"]) == sorted(frame["volume"])
    assert (
        abs(np.corrcoef(fake[1:], fake[:-1])[0, 1]) < 0.2 < np.corrcoef(real[1:], real[:-1])[0, 1]
    )
    assert (null["high"] >= null["close"] - 1e-9).all() and (
        null["low"] <= null["close"] + 1e-9
    ).all()


@pytest.mark.slow
def test_random_walks_have_nothing_beyond_a_random_walk():
    targets = ["direction_1", "volatility_up_1", "vwap_reversion_5", "volume_surge_5"]
    judged = {
        (seed, name): c
        for seed in (0, 1)
        for name, c in _judged(simulated_bars(seed), targets).items()
    }
    flagged = {key: c.statement for key, c in judged.items() if c.beyond}
    # A count, not one borderline case: on these 8 (walk, target) pairs none is flagged here,
    # and one allowed flag absorbs a BLAS-level difference in an MLP's AUC on another machine
    # (the measured rate over 20 walks is in docs/probes.md).
    assert len(flagged) <= 1, flagged


@pytest.mark.slow
def test_a_planted_effect_is_beyond_and_its_margin_grows_with_its_size():
    small = _judged(simulated_bars(3, rows=4000, ar=0.15), ["direction_1"])["direction_1"]
    large = _judged(simulated_bars(3, rows=4000, ar=0.4), ["direction_1"])["direction_1"]
    assert large.beyond and small.beyond
    assert large.margin > small.margin > 0
