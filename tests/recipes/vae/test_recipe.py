"""Training the bottleneck: stages and freezing, early stopping, saving, the collapse rule."""

import warnings

import orjson
import pytest
import torch
from rich.console import Console

import termwise.recipes.vae.recipe as vae_recipe
from termwise.config import load_yaml_config
from termwise.errors import TermwiseConfigWarning
from termwise.health import LatentCollapsed, MetricReport
from termwise.recipes.vae.config import StageConfig, VaeConfig
from termwise.recipes.vae.evaluate import evaluate_file
from termwise.recipes.vae.model import load_vae
from termwise.recipes.vae.recipe import setup
from termwise.trainer.recipe import run_recipe
from tests.recipes.vae.conftest import tiny_config

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


def test_a_frozen_stage_leaves_its_parts_unchanged(tmp_path, tiny_bert):
    path = tiny_config(
        tmp_path,
        tiny_bert,
        stages=[
            {"name": "all", "epochs": 1},
            {"name": "frozen encoder", "epochs": 1, "freeze": ["encoder", "embedding"]},
        ],
    )
    config = load_yaml_config(path, VaeConfig)
    session = setup(config, tmp_path / "run", QUIET)
    steps_first_stage = session.curriculum.starts[1]
    config_first = session.trainer.config.model_copy(update={"max_steps": steps_first_stage})
    session.trainer.config = config_first
    session.trainer.fit()
    encoder = [p.detach().clone() for p in session.model.encoder.parameters()]
    decoder = [p.detach().clone() for p in session.model.rnn.parameters()]
    session.trainer.config = config_first.model_copy(update={"max_steps": session.curriculum.total})
    session.trainer.fit(resume=True)
    assert all(
        torch.equal(a, b) for a, b in zip(encoder, session.model.encoder.parameters(), strict=True)
    )
    assert any(
        not torch.equal(a, b) for a, b in zip(decoder, session.model.rnn.parameters(), strict=True)
    )


def test_freezing_the_decoder_warns_but_runs():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stage = StageConfig(name="x", epochs=1, freeze=["decoder"])
    assert stage.freeze == ["decoder"]
    assert any(
        issubclass(w.category, TermwiseConfigWarning) and "rarely helps" in str(w.message)
        for w in caught
    )


def test_collapse_rule_fires_on_a_collapsed_run_and_not_on_a_healthy_one():
    rule = LatentCollapsed(window=2)
    collapsed = [MetricReport(s, {"val_active_units": 0.0, "val_mi": 0.001}) for s in (10, 20)]
    healthy = [MetricReport(s, {"val_active_units": 6.0, "val_mi": 1.2}) for s in (10, 20)]
    found = rule.check_metrics(collapsed)
    assert [f.code for f in found] == ["latent.collapsed"] and "free_bits" in found[0].suggestion
    assert rule.check_metrics(healthy) == []
    assert rule.check_metrics(collapsed[:1]) == []  # one evaluation is not a trend


def test_train_keeps_the_best_model_and_it_reloads_identically(vae_config, tmp_path):
    config = load_yaml_config(vae_config, VaeConfig).model_copy(
        update={"success": {"val_nll": "< 100", "val_active_units": ">= 99"}}
    )
    run = tmp_path / "run"
    results = run_recipe(vae_recipe, config, run, QUIET)
    metrics = [orjson.loads(line) for line in (run / "metrics.jsonl").read_bytes().splitlines()]
    best = min(metrics, key=lambda m: m["val_nll"])
    assert results["best_step"] == best["step"]  # the kept model is the best evaluation's
    assert (
        results["success"]["val_nll"]["passed"]
        and not results["success"]["val_active_units"]["passed"]
    )
    for key in (
        "val_kl_raw",
        "val_kl_after",
        "val_penalty_reduction",
        "val_free_fraction",
        "val_active_units",
        "val_mi",
        "val_teacher",
        "val_teacher_share",
        "train_nll",
    ):
        assert key in best
    assert "val_iw_nll" in results and results["val_perplexity"] > 1
    first = evaluate_file(run / "model", tmp_path / "docs.jsonl", samples=3)
    second = evaluate_file(run / "model", tmp_path / "docs.jsonl", samples=3)
    assert first == second and first["examples"] == 180
    model, vocab, manifest = load_vae(run / "model")
    assert (
        vocab.words[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"] and manifest.task == "reconstruct"
    )
    assert (run / "config.yaml").is_file()


@pytest.mark.parametrize(("kl_weight", "collapses"), [(50.0, True), (0.0, False)])
def test_collapse_rule_on_real_runs(tmp_path, tiny_bert, kl_weight, collapses):
    from termwise.health import read_findings

    ramp = {"start": kl_weight, "end": kl_weight}
    path = tiny_config(
        tmp_path,
        tiny_bert,
        kl={"free_bits": 0.0},
        teacher={"enabled": False},
        stages=[{"name": "only", "epochs": 4, "kl_weight": ramp}],
        early_stopping={"patience": 10},
    )
    run_recipe(vae_recipe, load_yaml_config(path, VaeConfig), tmp_path / "run", QUIET)
    health = tmp_path / "run" / "health.jsonl"
    findings, _ = read_findings(health) if health.exists() else ([], 0)
    assert any(f.code == "latent.collapsed" for f in findings) is collapses
    metrics = [
        orjson.loads(line)
        for line in (tmp_path / "run" / "metrics.jsonl").read_bytes().splitlines()
    ]
    assert (metrics[-1]["val_active_units"] == 0) is collapses


def test_resume_with_auto_free_bits_equals_a_straight_run(tmp_path, tiny_bert):
    path = tiny_config(tmp_path, tiny_bert, kl={"free_bits": "auto", "auto_every": 3})
    config = load_yaml_config(path, VaeConfig)
    straight = setup(config, tmp_path / "straight", QUIET)
    straight.trainer.fit()
    first = setup(config, tmp_path / "resumed", QUIET)
    first.trainer.config = first.trainer.config.model_copy(update={"max_steps": 13})
    first.trainer.fit()  # stops mid-epoch, mid-stage, with a solved threshold
    resumed = setup(config, tmp_path / "resumed", QUIET)
    resumed.trainer.fit(resume=True)
    assert resumed.auto is not None and straight.auto is not None
    assert resumed.auto.value == straight.auto.value
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_classify_task_reports_exact_accuracy(tmp_path, tiny_bert):
    import json

    corpora = []
    for name, words in (("alpha", "red blue green"), ("beta", "cat dog cow")):
        path = tmp_path / f"{name}.jsonl"
        rows = [
            {"source": f"{name}{i % 5}", "text": f"the {words.split()[i % 3]} is here {i}."}
            for i in range(40)
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        corpora.append(str(path))
    path = tiny_config(
        tmp_path, tiny_bert, task="classify", data={"sequences": [], "corpora": corpora}
    )
    results = run_recipe(vae_recipe, load_yaml_config(path, VaeConfig), tmp_path / "run", QUIET)
    assert 0.0 <= results["val_exact"] <= 1.0 and "val_teacher_share" in results
    assert "val_nll" not in results  # no decoder: the answer is the label
