"""Temperature and power scaling: the fit, what it may and may not change, where it applies."""

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from termwise.cli import app
from termwise.recipes.pref.calibration import (
    Calibration,
    fit_calibration,
    probabilities,
    reliability_table,
)
from termwise.recipes.pref.data import PreferencePair
from termwise.recipes.pref.dev import evaluate_scores
from tests.cli.test_cli import assert_one_line_exit_2, run_main
from tests.recipes.pref.test_cli import _gen


def over_confident(temperature: float, pairs: int, seed: int, power: float = 1.0) -> np.ndarray:
    """Scores of chosen over rejected from a calibrated model, distorted by the inverse of
    ``Calibration(temperature, power)``: the true score z gives P(first wins) = sigmoid(z);
    the pair is oriented so the winner comes first, as in a preference file."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, pairs)
    first_wins = rng.random(pairs) < 1.0 / (1.0 + np.exp(-z))
    oriented = np.where(first_wins, z, -z)
    return (np.sign(oriented) * np.abs(oriented) ** (1 / power) * temperature)[None, :]


def test_a_prior_on_the_temperature_holds_a_small_fit_near_one_and_fades_with_pairs():
    few = over_confident(3.0, 60, 0)
    flat = fit_calibration(few, temperature_prior_sigma=None)
    held = fit_calibration(few, temperature_prior_sigma=0.1)
    assert abs(np.log(held.temperature)) < abs(np.log(flat.temperature))
    many = over_confident(3.0, 40_000, 0)  # the prior's weight shrinks as 1 / pairs
    fit = fit_calibration(many, temperature_prior_sigma=0.1)
    assert fit.temperature == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_fit_recovers_a_known_temperature(seed):
    fit = fit_calibration(over_confident(3.0, 40_000, seed))
    assert fit.temperature == pytest.approx(3.0, rel=0.06)
    assert fit.power == pytest.approx(1.0, abs=0.05)
    assert fit.nll_after < fit.nll_before and fit.ece_after < fit.ece_before
    assert not fit.at_bound


@pytest.mark.parametrize("seed", [0, 1])
def test_the_fit_recovers_a_known_power_that_no_temperature_fixes(seed):
    scores = over_confident(1.5, 40_000, seed, power=0.5)
    fit = fit_calibration(scores)
    assert fit.power == pytest.approx(0.5, rel=0.06)
    assert fit.temperature == pytest.approx(1.5, rel=0.1)
    temperature_only = fit_calibration(scores, power_prior_sigma=0.0)
    assert temperature_only.power == 1.0 and temperature_only.nll_after > fit.nll_after
    assert fit.ece_after < temperature_only.ece_after


def test_the_power_prior_keeps_a_small_file_near_temperature_scaling():
    """400 pairs from a true power of 0.5: the prior pulls the fit toward 1, a lot more than
    it does with 100 times the pairs."""
    small = fit_calibration(over_confident(1.0, 400, 3, power=0.5))
    weak = fit_calibration(over_confident(1.0, 400, 3, power=0.5), power_prior_sigma=100.0)
    assert 0.5 < weak.power < small.power <= 1.0


def test_a_calibrated_model_keeps_temperature_and_power_near_one():
    fit = fit_calibration(over_confident(1.0, 40_000, 2))
    assert fit.temperature == pytest.approx(1.0, rel=0.06)
    assert fit.power == pytest.approx(1.0, abs=0.05)


def test_one_sided_scores_stay_raw():
    fit = fit_calibration(np.full((1, 50), 5.0))  # every pair right: sharper is always better
    assert fit.one_sided and fit.calibration == Calibration() and "no temperature" in fit.summary()
    fit = fit_calibration(np.concatenate([np.full((1, 50), 5.0), [[-1e-3]]], axis=1))
    assert not fit.one_sided and fit.temperature < 1.0  # one wrong pair: a finite optimum


def test_accuracy_is_unchanged_for_one_draw_and_bayes_draws_share_the_calibration():
    scores = over_confident(4.0, 500, 3, power=0.7)
    pairs = [PreferencePair("p", "a", "b", category=f"c{i % 3}") for i in range(500)]
    results = evaluate_scores(pairs, scores, "bt", Calibration(4.0, 0.7))
    assert results["overall"] == results["calibration"]["overall_raw"]
    assert results["calibration"]["changed_side"] == 0
    assert results["ece"] < results["calibration"]["ece_raw"]
    draws = np.stack([scores[0] + d for d in (-0.5, 0.0, 0.5)])
    p, std = probabilities(draws, Calibration(2.0, 0.7))
    by_hand = (1 / (1 + np.exp(-np.sign(draws) * (np.abs(draws) / 2.0) ** 0.7))).mean(0)
    assert np.allclose(p, by_hand) and std.shape == (500,) and (std > 0).all()


def test_reliability_bins_count_every_pair():
    p = np.array([0.55, 0.58, 0.9, 0.1, 0.97, 0.3])
    rows = reliability_table(p, bins=10)
    assert sum(n for _, n, _, _ in rows) == len(p)
    assert rows[0][0] == "0.50-0.60" and rows[0][1:3] == (2, pytest.approx(0.565))


@pytest.mark.slow
def test_train_saves_a_calibration_and_every_reader_applies_it(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    from termwise.pref import load

    run = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["pref", "train", "-c", str(_gen(tmp_path, "bt", tiny_bert)), "-o", str(run)]
    )
    assert result.exit_code == 0, result.output
    assert "calibration: temperature" in result.output
    manifest = orjson.loads((run / "model" / "termwise_pref.json").read_bytes())
    temperature, power = manifest["temperature"], manifest["power"]
    assert manifest["calibration"]["file"].endswith("dev.jsonl") and temperature > 0 < power
    scorer = load(run / "model")
    args = (["Is 7 prime?", "Hi"], ["Yes.", "Hello!"], ["No.", "Go away."])
    p_cal, _ = scorer.probability(*args)
    p_raw, _ = scorer.probability(*args, calibrated=False)
    logit = np.log(p_raw / (1 - p_raw))
    expected = np.sign(logit) * (np.abs(logit) / temperature) ** power
    assert np.allclose(np.log(p_cal / (1 - p_cal)), expected)
    data = "data/preferences/dev.jsonl"
    out = tmp_path / "raw.json"
    code, err = run_main(
        monkeypatch,
        capsys,
        *["pref", "eval", "-m", str(run / "model"), "-d", data, "--no-calibration"],
        *["--json", str(out)],
    )
    assert code == 0, err
    raw = orjson.loads(out.read_bytes())
    trained = orjson.loads((run / "eval.json").read_bytes())
    assert raw["calibration"]["temperature"] == 1.0 == raw["calibration"]["power"]
    assert raw["ece"] == pytest.approx(trained["calibration"]["ece_raw"])
    assert raw["overall"] == trained["overall"]  # a monotone map: the same pairs are right
    code, err = run_main(
        monkeypatch, capsys, "pref", "calibrate", "-m", str(run / "model"), "-d", data
    )
    assert code == 0, err
    again = orjson.loads((run / "model" / "termwise_pref.json").read_bytes())
    assert again["temperature"] == pytest.approx(temperature)  # same pairs, same fit
    assert again["power"] == pytest.approx(power)


def test_calibrate_on_an_empty_file_is_one_line(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, err = run_main(
        monkeypatch, capsys, "pref", "calibrate", "-m", str(tmp_path / "none"), "-d", str(empty)
    )
    assert_one_line_exit_2(code, err, "not found")


def test_coverage_names_the_categories_and_subsets_the_calibration_never_saw():
    from termwise.recipes.pref.eval import calibration_coverage, category_subsets

    fitted = [
        PreferencePair("p", "a", "b", "chat", "easy"),
        PreferencePair("p", "a", "b", "safety"),
    ]
    source = {
        "file": "dev.jsonl",
        "pairs": 2,
        "categories": {c: sorted(s) for c, s in category_subsets(fitted).items()},
    }
    evaluated = {
        "chat": {"subsets": {"easy": {}, "hard": {}}},
        "safety": {"subsets": {"all": {}}},
        "adversarial": {"subsets": {"all": {}}},
    }
    coverage = calibration_coverage(source, evaluated)
    assert coverage["unseen_categories"] == ["adversarial"]
    assert coverage["unseen_subsets"] == ["chat/hard"]
    older = calibration_coverage({"file": "dev.jsonl", "pairs": 2}, evaluated)
    assert older["categories"] is None and older["unseen_categories"] == []
    assert calibration_coverage(None, evaluated)["file"] is None
