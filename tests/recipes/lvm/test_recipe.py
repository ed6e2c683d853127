"""``termwise lvm``: training, resume, the CLI end to end, bad input."""

import orjson
import pytest
import torch
import yaml
from rich.console import Console
from safetensors.torch import load_file

from termwise.config import load_yaml_config
from termwise.recipes.lvm.baselines import Ridge
from termwise.recipes.lvm.config import LvmConfig
from termwise.recipes.lvm.recipe import RecallGuard, setup, training_documents
from tests.cli.test_cli import assert_one_line_exit_2, run_main
from tests.recipes.vae.conftest import write_documents

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


def tiny_lvm_config(tmp_path, tiny_bert, **data):
    docs = write_documents(tmp_path / "docs.jsonl", documents=5, sentences=20)
    ood = write_documents(tmp_path / "ood.jsonl", documents=2, sentences=15, seed=3)
    config = {
        "data": {
            "sequences": [str(docs)],
            "ood": [str(ood)],
            "backbone": str(tiny_bert),
            "context": 3,
            "cache_dir": str(tmp_path / "cache"),
            **data,
        },
        "model": {"width": 16, "layers": 1, "heads": 2},
        "epochs": 3,
        "trainer": {"batch_size": 16, "progress": False, "tensorboard": False, "health_every": 2},
    }
    path = tmp_path / "lvm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_resume_equals_a_straight_run(tmp_path, tiny_bert):
    config = load_yaml_config(tiny_lvm_config(tmp_path, tiny_bert), LvmConfig)
    straight = setup(config, tmp_path / "straight", QUIET)
    straight.trainer.fit()
    first = setup(config, tmp_path / "resumed", QUIET)
    loss_fn = first.trainer.loss_fn

    def killed_at_step_7(model, batch, step):
        if step == 7:  # as a scheduler's kill: no evaluation at the end
            raise KeyboardInterrupt
        return loss_fn(model, batch, step)

    first.trainer.loss_fn = killed_at_step_7
    with pytest.raises(KeyboardInterrupt):
        first.trainer.fit()
    assert first.guard.best_r_at_5 >= 0  # an epoch was evaluated before the kill
    checkpoints = tmp_path / "resumed" / "checkpoints"
    saved = orjson.loads(
        (checkpoints / (checkpoints / "latest").read_text() / "state.json").read_bytes()
    )
    assert saved["extra"]["recall_guard"] == first.guard.state_dict()
    resumed = setup(config, tmp_path / "resumed", QUIET)
    resumed.trainer.fit(resume=True)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    # the best epoch is chosen the same way: the R@5 guard came back with the checkpoint
    assert resumed.guard.state_dict() == straight.guard.state_dict()
    assert resumed.guard.best_r_at_5 >= 0
    best = [
        load_file(str(run / "model" / "model.safetensors"))
        for run in (tmp_path / "straight", tmp_path / "resumed")
    ]
    assert all(torch.equal(best[0][k], best[1][k]) for k in best[0])


def test_the_recall_guard_admits_epochs_near_the_best_r_at_5():
    guard = RecallGuard()
    assert [guard.admits(r) for r in (0.10, 0.30, 0.29, 0.05)] == [True, True, True, False]
    again = RecallGuard()
    again.load_state_dict(guard.state_dict())
    assert not again.admits(0.05) and again.best_r_at_5 == guard.best_r_at_5


def test_cli_end_to_end(tmp_path, tiny_bert, monkeypatch, capsys):
    path = tiny_lvm_config(tmp_path, tiny_bert)
    for command in (["build-data"], ["diagnose-data", "--json", str(tmp_path / "diag.json")]):
        code, err = run_main(monkeypatch, capsys, "lvm", *command, "-c", str(path))
        assert code == 0, err
    assert "verdict" in orjson.loads((tmp_path / "diag.json").read_bytes())
    run = tmp_path / "run"
    code, err = run_main(monkeypatch, capsys, "lvm", "train", "-c", str(path), "-o", str(run))
    assert code == 0, err
    alpha = f"{Ridge.load(run / 'model').alpha:g}"
    gates = orjson.loads((run / "eval.json").read_bytes())
    assert set(gates["passed"]) == {"A", "B", "C", "D", "E"}
    assert set(gates["baselines"]) == {"copy-last", "mean of context", f"ridge (alpha {alpha})"}
    assert (run / "model" / "ridge.safetensors").is_file()
    metrics = [orjson.loads(line) for line in (run / "metrics.jsonl").read_bytes().splitlines()]
    assert len(metrics) == 3 and {"margin", "mrr", "peak", "selection"} <= set(metrics[0])
    scalars = (run / "scalars.csv").read_text()
    for name in ("nce.raw", "nce.accuracy", "nce.pos"):  # the default objective
        assert f",{name}," in scalars
    assert ",dir." not in scalars
    out = tmp_path / "5cat.json"
    code, err = run_main(
        monkeypatch,
        capsys,
        "lvm",
        "eval",
        "-m",
        str(run / "model"),
        "-d",
        str(tmp_path / "docs.jsonl"),
        "--json",
        str(out),
    )
    assert code == 0, err
    report = orjson.loads(out.read_bytes())
    assert "E_in_vs_ood" in report and f"ridge (alpha {alpha})" in report["baselines"]


def test_the_old_objective_logs_the_directional_stats_the_retreat_rule_reads(tmp_path, tiny_bert):
    path = tiny_lvm_config(tmp_path, tiny_bert)
    config = load_yaml_config(path, LvmConfig)
    objective = config.objective.model_copy(
        update={
            "directional": True,
            "contrastive": config.objective.contrastive.model_copy(update={"weight": 0.0}),
        }
    )
    config = config.model_copy(update={"objective": objective})
    session = setup(config, tmp_path / "old", QUIET)
    session.trainer.fit()
    scalars = (tmp_path / "old" / "scalars.csv").read_text()
    for name in ("dir.weight", "dir.pos", "dir.neg", "dir.gap", "frac_of_mse", "margin"):
        assert f",{name}," in scalars
    assert ",nce." not in scalars


def test_a_training_fraction_keeps_a_fixed_subset_of_documents(tmp_path, tiny_bert):
    config = load_yaml_config(tiny_lvm_config(tmp_path, tiny_bert), LvmConfig)
    corpus = setup(config, tmp_path / "all", QUIET).corpus
    everything = training_documents(corpus, 1.0)
    half = training_documents(corpus, 0.5)
    assert half == training_documents(corpus, 0.5)  # the same subset every time
    assert set(half) < set(everything) and len(half) == -(-len(everything) // 2)


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"context": 40}, ["no document has 41 sentences"]),
        ({"sequences": []}, ["data.sequences", "at least 1 item"]),
        ({"contxt": 3}, ["unknown key 'contxt'", "did you mean 'context'"]),
    ],
)
def test_bad_configs_are_one_line(change, fragments, tmp_path, tiny_bert, monkeypatch, capsys):
    path = tiny_lvm_config(tmp_path, tiny_bert, **change)
    code, err = run_main(
        monkeypatch, capsys, "lvm", "train", "-c", str(path), "-o", str(tmp_path / "r")
    )
    assert_one_line_exit_2(code, err, *fragments)
