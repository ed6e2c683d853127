"""Nothing lost: a run never trains over another, a resumed run logs each step once, and a
corrupt or missing newest checkpoint falls back to the previous intact one."""

import shutil
from collections import Counter

import pytest
import torch

from termwise.errors import TermwiseUserError
from termwise.trainer.run_dir import mark_run_dir, prepare_run_dir, write_run_config
from termwise.trainer.scalars import SCALARS_FILE
from tests.trainer.test_loop import build, params


def _kill_after(run_dir, step):
    """What a kill -9 leaves: every checkpoint after ``step`` gone, ``latest`` at ``step``,
    the logs written up to the moment of the kill."""
    root = run_dir / "checkpoints"
    for path in root.glob("step_*"):
        if int(path.name.removeprefix("step_")) > step:
            shutil.rmtree(path)
    (root / "latest").write_text(f"step_{step:08d}")


def test_training_into_an_existing_run_is_refused(tmp_path):
    trainer, _ = build(tmp_path, checkpoint_every=4)
    trainer.fit()
    again, _ = build(tmp_path)
    with pytest.raises(TermwiseUserError, match="--resume to continue it or --overwrite"):
        again.fit()
    assert (tmp_path / "checkpoints" / "step_00000012").is_dir()  # the old run is intact


def test_resume_after_a_kill_logs_every_step_once(tmp_path):
    straight, straight_model = build(tmp_path / "straight", checkpoint_every=4, log_every=1)
    straight.fit()
    expected = (tmp_path / "straight" / SCALARS_FILE).read_text()
    first, _ = build(tmp_path / "run", checkpoint_every=4, log_every=1)
    first.fit()
    _kill_after(tmp_path / "run", 8)  # steps 9..12 were logged, their checkpoint was not
    resumed, resumed_model = build(tmp_path / "run", checkpoint_every=4, log_every=1)
    resumed.fit(resume=True)
    rows = (tmp_path / "run" / SCALARS_FILE).read_text().splitlines()[1:]
    counts = Counter(tuple(row.split(",")[:2]) for row in rows)
    assert max(counts.values()) == 1  # no (step, name) twice
    assert (tmp_path / "run" / SCALARS_FILE).read_text() == expected
    for a, b in zip(params(straight_model), params(resumed_model), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "damage",
    ["truncated weights", "garbage optimizer", "missing state", "latest names a missing step"],
)
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage):
    straight, straight_model = build(tmp_path / "straight", checkpoint_every=4)
    straight.fit()
    run = tmp_path / "run"
    first, _ = build(run, checkpoint_every=4, max_steps=8)
    first.fit()
    newest = run / "checkpoints" / "step_00000008"
    if damage == "truncated weights":
        weights = newest / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:40])
    elif damage == "garbage optimizer":
        (newest / "optimizer.pt").write_bytes(b"not a tensor file")
    elif damage == "missing state":
        (newest / "state.json").unlink()
    else:
        shutil.rmtree(newest)
    resumed, resumed_model = build(run, checkpoint_every=4)
    lines = []
    resumed.console.print = lambda text, **kw: lines.append(str(text))
    result = resumed.fit(resume=True)
    assert any("step_00000004" in line for line in lines), lines  # said which it used
    assert result.state.step == 12
    for a, b in zip(params(straight_model), params(resumed_model), strict=True):
        assert torch.equal(a, b)  # from step 4 the run is the same as the straight one


def test_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    from termwise.trainer import CheckpointManager

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    manager = CheckpointManager(tmp_path, keep=1)
    (tmp_path / "checkpoints" / "step_00000099").mkdir(parents=True)  # a later, stray step
    written = manager.save(4, model, optimizer, None, {})
    assert written.is_dir() and manager.latest() == written


@pytest.mark.parametrize(
    ("setup", "flags", "message"),
    [
        ("file", {}, "is a file, expected a run directory"),
        ("empty", {"resume": True}, "nothing to resume"),
        ("run", {}, "pass --resume to continue it or --overwrite"),
        ("other", {"overwrite": True}, "not a termwise run"),
        ("run", {"resume": True, "overwrite": True}, "not both"),
    ],
)
def test_run_directory_refusals(tmp_path, setup, flags, message):
    path = tmp_path / "out"
    if setup == "file":
        path.write_text("x")
    elif setup == "run":
        (path / "checkpoints").mkdir(parents=True)
        mark_run_dir(path, "test")
    elif setup == "other":
        path.mkdir()
        (path / "thesis.tex").write_text("precious")
    with pytest.raises(TermwiseUserError, match=message):
        prepare_run_dir(path, **flags)
    if setup == "other":
        assert (path / "thesis.tex").read_text() == "precious"


def test_overwrite_replaces_a_run_and_the_config_is_recorded(tmp_path):
    from termwise.trainer import TrainerConfig

    path = tmp_path / "out"
    (path / "checkpoints" / "step_00000004").mkdir(parents=True)
    mark_run_dir(path, "test")
    prepare_run_dir(path, overwrite=True)
    assert [p.name for p in path.iterdir()] == [".termwise-run.json"]  # a new run, marked
    write_run_config(path, TrainerConfig(max_steps=7))
    assert "max_steps: 7" in (path / "config.yaml").read_text()


def _eval_rows(run_dir):
    rows = (run_dir / SCALARS_FILE).read_text().splitlines()[1:]
    return Counter(tuple(row.split(",")[:2]) for row in rows if ",eval/" in row)


def test_resuming_a_finished_run_writes_nothing_twice(tmp_path):
    run = tmp_path / "run"
    first, _ = build(run, checkpoint_every=4, log_every=1)  # a checkpoint at the last step
    first.fit()
    logs = {name: (run / name).read_bytes() for name in (SCALARS_FILE, "metrics.jsonl")}
    again, _ = build(run, checkpoint_every=4, log_every=1)
    result = again.fit(resume=True)
    assert {name: (run / name).read_bytes() for name in logs} == logs
    assert _eval_rows(run) == {("12", "eval/train_loss"): 1}
    assert result.metrics == {"train_loss": 1.0}  # the report keeps the final metrics


def test_a_kill_after_the_final_evaluation_logs_it_once_on_resume(tmp_path, monkeypatch):
    from termwise.trainer.checkpoint import CheckpointManager

    run = tmp_path / "run"

    def killed(self, checkpoint, state):
        raise KeyboardInterrupt  # after the final evaluation, before it is recorded

    monkeypatch.setattr(CheckpointManager, "update_state", killed)
    first, _ = build(run, checkpoint_every=4, log_every=1)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert _eval_rows(run) == {("12", "eval/train_loss"): 1}
    monkeypatch.undo()
    again, _ = build(run, checkpoint_every=4, log_every=1)
    again.fit(resume=True)
    assert _eval_rows(run) == {("12", "eval/train_loss"): 1}
    metrics = (run / "metrics.jsonl").read_text().splitlines()
    assert [line.count('"step":12') for line in metrics] == [1]


def test_a_run_resumed_at_a_shorter_max_steps_logs_its_last_evaluation_once(tmp_path):
    """Killed after an evaluation and a checkpoint at step 8, then resumed with max_steps 8
    (a shortened schedule): that evaluation is the final one, not logged again."""
    run = tmp_path / "run"
    first, _ = build(run, max_steps=12, eval_every=4, checkpoint_every=4, log_every=1)
    first.fit()
    _kill_after(run, 8)
    again, _ = build(run, max_steps=8, eval_every=4, checkpoint_every=4, log_every=1)
    result = again.fit(resume=True)
    assert result.state.step == 8 and result.metrics == {"train_loss": 1.0}
    assert _eval_rows(run) == {("4", "eval/train_loss"): 1, ("8", "eval/train_loss"): 1}
    metrics = (run / "metrics.jsonl").read_text().splitlines()
    assert sum(line.count('"step":8') for line in metrics) == 1
