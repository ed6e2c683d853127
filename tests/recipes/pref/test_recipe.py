import math

import numpy as np
import orjson
import pytest
import torch
import yaml

from termwise.recipes.pref.config import PrefConfig
from termwise.recipes.pref.data import PreferencePair, plan_pair_batches
from termwise.recipes.pref.eval import (
    brier_score,
    ece_sampling_floor,
    evaluate_predictions,
    expected_calibration_error,
    negative_log_likelihood,
    uncertainty_auroc,
)
from termwise.recipes.pref.recipe import kl_weight_schedule, make_loss, make_objective


def _config(tmp_path, **kwargs) -> PrefConfig:
    train = tmp_path / "train.jsonl"
    train.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    return PrefConfig.model_validate({"train_path": str(train), **kwargs})


def test_kl_warmup_values(tmp_path):
    beta = kl_weight_schedule(_config(tmp_path, kind="bayes_gpm"))
    assert [beta(s) for s in (0, 250, 500, 1000)] == pytest.approx([0.0, 0.025, 0.05, 0.05])


def test_config_rejects_odd_dim_and_unknown_key(tmp_path):
    with pytest.raises(ValueError, match="must be even"):
        _config(tmp_path, gpm={"dim": 7})
    with pytest.raises(ValueError, match="prior_var"):
        _config(tmp_path, bayes={"prior_variance": 0.1})


def test_reward_head_is_for_the_embedding_kinds_only(tmp_path):
    assert _config(tmp_path, kind="gpm", gpm={"reward_head": True}).gpm.reward_head
    assert not _config(tmp_path, kind="gpm").gpm.reward_head
    with pytest.raises(ValueError, match="applies to kind gpm or bayes_gpm"):
        _config(tmp_path, kind="bt", gpm={"reward_head": True})


def test_embedding_size_and_temperature_left_out_depend_on_the_kind(tmp_path):
    gpm, bayes = _config(tmp_path, kind="gpm").gpm, _config(tmp_path, kind="bayes_gpm").gpm
    assert (gpm.dim, gpm.tau, bayes.dim, bayes.tau) == (2, 0.15, 8, 0.1)
    given = _config(tmp_path, kind="gpm", gpm={"dim": 6, "tau": 0.2}).gpm
    assert (given.dim, given.tau) == (6, 0.2)
    assert _config(tmp_path, kind="gpm", gpm={"tau": 0.2}).gpm.dim == 2
    assert _config(tmp_path, kind="gpm", gpm={"dim": 4}).gpm.tau == 0.15
    with pytest.raises(ValueError, match="gpm"):
        _config(tmp_path, kind="gpm", gpm=None)


def test_learning_rate_left_out_depends_on_the_kind(tmp_path):
    assert _config(tmp_path).learning_rate == 2e-4
    assert _config(tmp_path, kind="bt").learning_rate == 2e-4
    assert _config(tmp_path, kind="gpm").learning_rate == 4e-4
    assert _config(tmp_path, kind="bayes_gpm").learning_rate == 2e-4
    assert _config(tmp_path, kind="gpm", learning_rate=1e-3).learning_rate == 1e-3
    with pytest.warns(FutureWarning, match="head"):
        assert _config(tmp_path, head="gpm").learning_rate == 4e-4


class FakeModel(torch.nn.Module):
    """Returns fixed outputs, to check the loss against hand computations."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, batch, n_samples=1):
        return self.out


def test_bt_loss_with_margin_and_centering(tmp_path):
    from termwise.recipes.pref.model import PairOutput

    config = _config(tmp_path, bt={"center_rewards_coef": 0.01})
    rewards = torch.tensor([2.0, 0.5, 1.0, 1.5])  # chosen 2, 0.5; rejected 1, 1.5
    out = PairOutput(rewards[:2] - rewards[2:], rewards=rewards)
    step = make_loss(config, make_objective(config))(
        FakeModel(out), {"margin": torch.tensor([0.5, 0.0])}, 0
    )
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    bt = -(math.log(sig(1.0 - 0.5)) + math.log(sig(-1.0))) / 2
    centering = ((2.0 + 1.0) ** 2 + (0.5 + 1.5) ** 2) / 2
    assert step.loss.item() == pytest.approx(bt + 0.01 * centering, rel=1e-6)


def test_label_smoothing_reaches_the_pair_loss(tmp_path):
    from termwise.recipes.pref.model import PairOutput

    config = _config(tmp_path, kind="gpm", label_smoothing=0.2, use_margin=False)
    out = PairOutput(torch.tensor([3.0, -1.0]))
    step = make_loss(config, make_objective(config))(FakeModel(out), {}, 0)
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected = sum(0.8 * softplus(-x) + 0.2 * softplus(x) for x in (3.0, -1.0)) / 2
    assert step.loss.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        _config(tmp_path, label_smoothing=0.5)


def test_bayes_loss_kl_against_hand_computation(tmp_path):
    from termwise.recipes.pref.model import PairOutput

    config = _config(tmp_path, kind="bayes_gpm", bayes={"kl_warmup_steps": 100})
    raw_mu = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    logvar = torch.tensor([[-2.0, 0.0], [-1.0, -3.0]])
    out = PairOutput(torch.tensor([[0.3]]), raw_mu=raw_mu, logvar=logvar)
    step = make_loss(config, make_objective(config))(FakeModel(out), {"margin": 0.0}, 50)
    # KL(N(mu, s2) || N(0, 0.1)) without the mean term, summed over dims, mean over rows.
    kl = np.mean(
        [
            sum(0.5 * (math.exp(lv) / 0.1 - 1 + math.log(0.1) - lv) for lv in row)
            for row in logvar.tolist()
        ]
    )
    data = -math.log(1 / (1 + math.exp(-0.3)))
    assert step.stats["bayes_kl"].item() == pytest.approx(kl, rel=1e-6)
    assert step.stats["kl_beta"].item() == pytest.approx(0.025)
    assert step.loss.item() == pytest.approx(data + 0.025 * kl, rel=1e-6)


def test_bucketed_plan_covers_every_pair_once():
    lengths = np.random.default_rng(0).integers(5, 500, size=1000)
    plan = plan_pair_batches(lengths, 8, seed=0)
    assert sorted(np.concatenate(plan).tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in plan])
    assert spread < np.ptp(lengths) / 10  # similar lengths share a batch


def _pairs(spec):
    return [PreferencePair("q", "a", "b", c, s) for c, s in spec]


def test_accuracy_ties_are_wrong_and_categories_are_weighted():
    pairs = _pairs([("chat", "x")] * 3 + [("chat", "y")] + [("safety", "z")] * 2)
    p = np.array([0.9, 0.5, 0.2, 0.7, 0.6, 0.6])
    results = evaluate_predictions(pairs, p)
    chat = results["categories"]["chat"]
    assert chat["subsets"]["x"]["accuracy"] == pytest.approx(1 / 3)  # 0.5 is a tie: wrong
    assert chat["accuracy"] == pytest.approx(2 / 4)  # example-weighted over its subsets
    assert results["overall"] == pytest.approx((0.5 + 1.0) / 2)  # mean of categories
    assert results["ties"] == 1


def test_calibration_metrics_against_hand_computation():
    p = np.array([0.95, 0.9, 0.3, 0.6])
    assert negative_log_likelihood(p) == pytest.approx(-np.mean(np.log(p)))
    assert brier_score(p) == pytest.approx(np.mean((1 - p) ** 2))
    # confidences 0.95, 0.9, 0.7, 0.6 -> 15 bins: [0.933, 1) holds 0.95 (right);
    # [0.867, 0.933) holds 0.9 (right); 0.7 (wrong) and 0.6 (right) in their own bins.
    expected = (abs(1 - 0.95) + abs(1 - 0.9) + abs(0 - 0.7) + abs(1 - 0.6)) / 4
    assert expected_calibration_error(p) == pytest.approx(expected)
    same_bin = np.array([0.81, 0.85, 0.2])  # confidences 0.81, 0.85, 0.8: bin [0.8, 0.867)
    expected = abs(2 / 3 - (0.81 + 0.85 + 0.8) / 3)
    assert expected_calibration_error(same_bin) == pytest.approx(expected)


def test_ece_sampling_floor_is_the_ece_of_a_calibrated_model_on_as_many_pairs():
    # One pair at 0.8: chosen wins 80% of draws (ECE 0.2), loses 20% (confidence 0.8, wrong:
    # ECE 0.8), so the floor is 0.8 * 0.2 + 0.2 * 0.8.
    assert ece_sampling_floor(np.array([0.8]), draws=20_000) == pytest.approx(0.32, abs=0.02)
    # One bin at 0.7: the floor is E|accuracy - 0.7|, which shrinks as 1 / sqrt(pairs).
    few, many = (ece_sampling_floor(np.full(n, 0.7)) for n in (14, 1400))
    assert few > 3 * many


def test_evaluation_reports_each_subsets_ece_beside_its_floor():
    pairs = _pairs([("chat", "x")] * 4 + [("safety", "z")] * 3)
    p = np.array([0.9, 0.8, 0.3, 0.6, 0.7, 0.2, 0.95])
    results = evaluate_predictions(pairs, p)
    x = results["categories"]["chat"]["subsets"]["x"]
    assert x["ece"] == pytest.approx(expected_calibration_error(p[:4]))
    assert x["ece_floor"] == pytest.approx(ece_sampling_floor(p[:4]))
    assert results["ece_floor"] == pytest.approx(ece_sampling_floor(p))


def test_uncertainty_auroc():
    p = np.array([0.9, 0.8, 0.4, 0.3])  # the last two are wrong
    assert uncertainty_auroc(p, np.array([0.01, 0.02, 0.2, 0.3])) == 1.0
    assert uncertainty_auroc(p, np.array([0.3, 0.2, 0.02, 0.01])) == 0.0
    assert uncertainty_auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) is None


@pytest.fixture
def pref_config(tmp_path, tiny_bert):
    from typer.testing import CliRunner

    from termwise.cli import app

    path = tmp_path / "pref.yaml"
    result = CliRunner().invoke(
        app, ["pref", "gen-config", "-o", str(path), "--head", "bayes_gpm", "--max-steps", "6"]
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(path.read_text())
    config["backbone"].update({"path": str(tiny_bert), "max_length": 64})
    config["lora"]["r"] = 4
    config["max_pairs"] = 40
    config["bayes"].update({"kl_warmup_steps": 4, "n_samples": 4})
    config["trainer"].update(
        {"checkpoint_every": 3, "log_every": 2, "progress": False, "tensorboard": False}
    )
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_train_resume_matches_and_logs_kl(tmp_path, pref_config):
    from rich.console import Console

    import termwise.recipes.pref.recipe as pref_recipe
    from termwise.config import load_yaml_config
    from termwise.trainer.recipe import run_recipe
    from termwise.trainer.scalars import read_scalars

    config = load_yaml_config(pref_config, PrefConfig)
    straight = run_recipe(pref_recipe, config, tmp_path / "straight", Console(quiet=True))
    short = config.model_copy(
        update={"trainer": config.trainer.model_copy(update={"max_steps": 3})}
    )
    run_recipe(pref_recipe, short, tmp_path / "resumed", Console(quiet=True))
    resumed = run_recipe(
        pref_recipe, config, tmp_path / "resumed", Console(quiet=True), resume=True
    )
    assert straight is not None and resumed is not None
    assert straight["nll"] == pytest.approx(resumed["nll"], rel=1e-5)
    assert set(straight["categories"]) == {"chat", "chat_hard", "reasoning", "safety"}
    assert straight["uncertainty_auroc"] is not None
    scalars = read_scalars(tmp_path / "straight")
    assert [v for _, v in scalars["kl_beta"]] == pytest.approx(
        [0.00625, 0.03125, 0.05]
    )  # means of 2 steps
    assert all(v > 0 for _, v in scalars["bayes_kl"])
    saved = orjson.loads((tmp_path / "straight" / "eval.json").read_bytes())
    assert saved["overall"] == straight["overall"]
