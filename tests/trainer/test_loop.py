import math

import pytest
import torch
from rich.console import Console

from termwise.errors import TrainingDiverged
from termwise.health import HealthMonitor, read_findings
from termwise.health.windows import WINDOWS_FILE, read_records
from termwise.trainer import StepOutput, Trainer, TrainerConfig, read_scalars, seed_everything
from tests.trainer.conftest import TinyNet, make_dataset, mse_loss


def quiet_console() -> Console:
    return Console(file=open("/dev/null", "w"), width=120)  # noqa: SIM115


def build(run_dir, loss_fn=mse_loss, monitor=None, **overrides):
    seed_everything(0)
    model = TinyNet()
    config = TrainerConfig(
        **{
            "max_steps": 12,
            "batch_size": 4,
            "log_every": 3,
            "health_every": 4,
            "checkpoint_every": 0,
            "progress": False,
            "tensorboard": False,
            **overrides,
        }
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (1 + 0.1 * s))
    trainer = Trainer(
        model=model,
        optimizer=optimizer,
        train_data=make_dataset(),
        loss_fn=loss_fn,
        config=config,
        run_dir=run_dir,
        lr_scheduler=scheduler,
        monitor=monitor,
        console=quiet_console(),
        eval_fn=lambda m, step: {"train_loss": 1.0},
    )
    return trainer, model


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_trains_logs_terms_and_checkpoints(tmp_path):
    trainer, model = build(tmp_path, max_steps=30)
    before = params(model)
    result = trainer.fit()
    assert result.state.step == 30
    assert any(not torch.equal(a, b) for a, b in zip(before, params(model), strict=True))
    series = read_scalars(tmp_path)
    assert {"mse.raw", "mse.share", "l2.weighted", "grad_norm", "lr"} <= set(series)
    mse = [v for _, v in series["mse.raw"]]
    assert mse[-1] < mse[0]
    assert series["eval/train_loss"] == [(30, 1.0)]
    assert result.last_checkpoint is not None
    assert (result.last_checkpoint / "model.safetensors").exists()
    assert (tmp_path / "report.json").exists()


def test_same_seed_same_parameters(tmp_path):
    build_a, model_a = build(tmp_path / "a")
    build_a.fit()
    build_b, model_b = build(tmp_path / "b")
    build_b.fit()
    assert all(torch.equal(a, b) for a, b in zip(params(model_a), params(model_b), strict=True))


@pytest.mark.parametrize("accumulation", [1, 2])
def test_interrupted_run_resumes_to_identical_parameters(tmp_path, accumulation):
    straight, straight_model = build(
        tmp_path / "straight", gradient_accumulation_steps=accumulation
    )
    straight.fit()

    def interrupt_at_7(model, batch, step):
        if step == 7:
            raise KeyboardInterrupt
        return mse_loss(model, batch, step)

    flags = {"gradient_accumulation_steps": accumulation}
    interrupted, _ = build(tmp_path / "resumed", loss_fn=interrupt_at_7, **flags)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert interrupted.checkpoints.latest().name == "step_00000007"
    resumed, resumed_model = build(tmp_path / "resumed", **flags)
    result = resumed.fit(resume=True)
    # 3 batches per epoch: step 12 closes epoch 3 (counted from 0) with its third batch;
    # with 2 micro-batches a step, 24 batches close epoch 7 (a step spans two epochs).
    where = (12, 3, 3) if accumulation == 1 else (12, 7, 3)
    assert (result.state.step, result.state.epoch, result.state.batches_in_epoch) == where
    for a, b in zip(params(straight_model), params(resumed_model), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("written", "read"), [("accelerate", "termwise"), ("termwise", "accelerate")]
)
def test_a_checkpoint_resumes_in_the_layout_it_was_written_in(tmp_path, written, read):
    """Accelerate's save_state or termwise's layout, whatever checkpoint_format says now."""
    straight, straight_model = build(tmp_path / "straight")
    straight.fit()

    def interrupt_at_7(model, batch, step):
        if step == 7:
            raise KeyboardInterrupt
        return mse_loss(model, batch, step)

    first, _ = build(tmp_path / "resumed", loss_fn=interrupt_at_7, checkpoint_format=written)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    saved = first.checkpoints.latest()
    assert (saved / "optimizer.bin").is_file() == (written == "accelerate")
    resumed, resumed_model = build(tmp_path / "resumed", checkpoint_format=read)
    assert resumed.fit(resume=True).state.step == 12
    for a, b in zip(params(straight_model), params(resumed_model), strict=True):
        assert torch.equal(a, b)


def test_resume_without_checkpoint_is_a_user_error(tmp_path):
    from termwise.errors import TermwiseUserError

    trainer, _ = build(tmp_path)
    with pytest.raises(TermwiseUserError, match="no checkpoint"):
        trainer.fit(resume=True)


def nan_at(steps):
    def loss_fn(model, batch, step):
        out = mse_loss(model, batch, step)
        if step in steps:
            return StepOutput(out.loss * math.nan, out.breakdown)
        return out

    return loss_fn


def test_nonfinite_step_is_skipped_and_reported(tmp_path):
    monitor = HealthMonitor(every=4, run_dir=tmp_path)
    trainer, model = build(tmp_path, loss_fn=nan_at({5}), monitor=monitor)
    snapshots = {}
    original = trainer.train_step

    def spy(batch):
        snapshots[trainer.state.step] = params(model)
        original(batch)

    trainer.train_step = spy
    result = trainer.fit()
    assert result.state.nonfinite_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(snapshots[5], snapshots[6], strict=True))
    findings, _ = read_findings(tmp_path / "health.jsonl")
    assert [f.step for f in findings if f.code == "nonfinite"] == [7]


def test_consecutive_nonfinite_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer, _ = build(
        tmp_path, loss_fn=nan_at(set(range(6, 12))), checkpoint_every=4, max_consecutive_nonfinite=3
    )
    with pytest.raises(TrainingDiverged, match="3 consecutive"):
        trainer.fit()
    assert trainer.checkpoints.latest().name == "step_00000004"


class _Linear64(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 1, dtype=torch.float64)

    def forward(self, x):
        return self.linear(x.double()).squeeze(-1)


def _accumulated(run_dir, batch_size, accumulation):
    seed_everything(0)
    model = _Linear64()
    monitor = HealthMonitor(every=1, run_dir=run_dir, console=quiet_console())
    trainer = Trainer(
        model=model,
        optimizer=torch.optim.AdamW(model.parameters(), lr=0.05),
        train_data=make_dataset(64),
        loss_fn=mse_loss,
        config=TrainerConfig(
            max_steps=5,
            batch_size=batch_size,
            gradient_accumulation_steps=accumulation,
            log_every=1,
            checkpoint_every=0,
            progress=False,
            tensorboard=False,
        ),
        run_dir=run_dir,
        monitor=monitor,
        console=quiet_console(),
    )
    trainer.fit()
    return model, monitor, read_scalars(run_dir)


def test_two_accumulated_batches_of_16_train_as_one_of_32(tmp_path):
    whole, _, _ = _accumulated(tmp_path / "whole", 32, 1)
    halves, monitor, scalars = _accumulated(tmp_path / "halves", 16, 2)
    for a, b in zip(whole.parameters(), halves.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert [step for step, _ in scalars["total"]] == [1, 2, 3, 4, 5]  # optimizer steps
    windows = [r["step"] for r in read_records(tmp_path / "halves" / WINDOWS_FILE)]
    assert windows == [0, 1, 2, 3, 4]  # the monitor saw 5 steps (0-based), not 10 micro-batches
