import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from termwise.config import load_yaml_config
from termwise.errors import TermwiseUserError
from termwise.recipes.bayes_clf.config import BayesClfConfig
from termwise.recipes.bayes_clf.recipe import diagnose


def series_csv(path, signal: bool, seed: int = 0) -> None:
    """Four series; the label is whether feature f0 averaged over the last 8 steps is
    positive (20 % of labels flipped), or, without signal, a coin flip."""
    rng = np.random.default_rng(seed)
    frames = []
    for series in range(4):
        f = rng.normal(size=(1000, 3))
        label = (pd.Series(f[:, 0]).rolling(8).mean() > 0).astype(int).to_numpy()
        flip = rng.random(1000) < 0.2
        label = np.where(flip, 1 - label, label) if signal else rng.integers(0, 2, 1000)
        frames.append(
            pd.DataFrame(
                {
                    "series": f"s{series}",
                    "t": np.arange(1000),
                    "f0": f[:, 0],
                    "f1": f[:, 1],
                    "f2": f[:, 2],
                    "label": label,
                }
            ).iloc[7:]
        )
    pd.concat(frames).to_csv(path, index=False)


def write_config(tmp_path, data, prior_sigma, kl_weight):
    path = tmp_path / f"cfg_{prior_sigma}_{kl_weight}.yaml"
    path.write_text(
        f"data: {{path: {data}, target: label, features: [f0, f1, f2], time_col: t,"
        " group_col: series, window: 16}\n"
        f"model: {{d_model: 32, layers: 1, heads: 2, prior_sigma: {prior_sigma}}}\n"
        f"kl_weight: {kl_weight}\nlearning_rate: 0.003\n"
        "trainer: {max_steps: 300, batch_size: 64, health_every: 25, checkpoint_every: 0,"
        " progress: false, tensorboard: false}\n"
    )
    return path


QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


@pytest.mark.slow
def test_strong_prior_blocks_learning_and_weak_prior_does_not(tmp_path):
    data = tmp_path / "signal.csv"
    series_csv(data, signal=True)
    strong = load_yaml_config(write_config(tmp_path, data, 0.1, 1.0), BayesClfConfig)
    decision, runs = diagnose(strong, tmp_path / "strong", QUIET)
    assert decision == "KL is blocking learning"
    assert "kl.blocks_learning" in runs[1].findings
    assert runs[2].metrics["test_accuracy"] > runs[2].metrics["baseline_accuracy"] + 0.1
    weak = load_yaml_config(write_config(tmp_path, data, 1.0, 0.0001), BayesClfConfig)
    decision, runs = diagnose(weak, tmp_path / "weak", QUIET)
    assert decision.startswith("no problem found")
    assert "kl.blocks_learning" not in runs[1].findings


@pytest.mark.slow
def test_no_signal_data(tmp_path):
    data = tmp_path / "noise.csv"
    series_csv(data, signal=False)
    config = load_yaml_config(write_config(tmp_path, data, 1.0, 0.0001), BayesClfConfig)
    decision, _ = diagnose(config, tmp_path / "noise", QUIET)
    assert decision == "data has no usable signal"


def test_config_names_missing_file_and_bad_kl_weight(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {path: nope.csv, target: y}\n")
    with pytest.raises(TermwiseUserError, match=r"c.yaml:1: data.path: file not found"):
        load_yaml_config(path, BayesClfConfig)
    data = tmp_path / "d.csv"
    data.write_text("a,y\n1,0\n")
    path.write_text(f"data: {{path: {data}, target: y}}\nkl_weight: half\n")
    with pytest.raises(TermwiseUserError, match=r":2: kl_weight"):
        load_yaml_config(path, BayesClfConfig)
