"""The loop's named events: when each fires, early stopping and the best model through them,
and a callback's state across a resume."""

import pytest
import torch
from rich.console import Console

from termwise.errors import TermwiseUserError
from termwise.trainer import (
    BestMetric,
    EarlyStopping,
    KeepBestModel,
    Trainer,
    TrainerCallback,
    TrainerConfig,
    seed_everything,
)
from tests.trainer.conftest import TinyNet, make_dataset, mse_loss


class Recorder(TrainerCallback):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_train_begin(self, trainer):
        self.events.append(("train_begin", trainer.state.step))

    def on_step_begin(self, trainer, step):
        self.events.append(("step_begin", step))

    def on_step_end(self, trainer, step):
        self.events.append(("step_end", step))

    def on_evaluate(self, trainer, step, metrics):
        self.events.append(("evaluate", step))

    def on_new_best(self, trainer, step, metrics):
        self.events.append(("new_best", step))

    def on_save(self, trainer, path):
        self.events.append(("save", trainer.state.step))

    def on_train_end(self, trainer):
        self.events.append(("train_end", trainer.state.step))


def build(run_dir, callbacks, metrics=None, **overrides):
    """A tiny trainer whose evaluation at step s returns ``metrics[s]``."""
    seed_everything(0)
    model = TinyNet()
    config = TrainerConfig(
        **{
            "max_steps": 6,
            "batch_size": 4,
            "eval_every": 2,
            "checkpoint_every": 3,
            "progress": False,
            "tensorboard": False,
            **overrides,
        }
    )
    scripted = metrics or {}
    return Trainer(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        train_data=make_dataset(),
        loss_fn=mse_loss,
        config=config,
        run_dir=run_dir,
        eval_fn=lambda model, step: {"val_loss": scripted.get(step, 1.0)},
        callbacks=callbacks,
        console=Console(file=open("/dev/null", "w")),  # noqa: SIM115
    )


def test_each_event_fires_where_its_name_says(tmp_path):
    recorder = Recorder()
    build(tmp_path, [recorder]).fit()
    events = recorder.events
    assert events[0] == ("train_begin", 0) and events[-1] == ("train_end", 6)
    assert [s for e, s in events if e == "step_begin"] == list(range(6))
    assert [s for e, s in events if e == "step_end"] == list(range(6))
    # every eval_every steps before the last, then the final evaluation
    assert [s for e, s in events if e == "evaluate"] == [2, 4, 6]
    assert [s for e, s in events if e == "save"] == [3, 6]
    assert "new_best" not in {e for e, _ in events}  # nothing tracks a best metric
    # a step's begin and end enclose it: no step begins before the previous one ended
    steps = [(e, s) for e, s in events if e.startswith("step_")]
    assert steps == [(e, s) for s in range(6) for e in ("step_begin", "step_end")]


def test_early_stopping_stops_after_patience_and_the_best_model_is_kept(tmp_path):
    saved = []
    stopping = EarlyStopping("val_loss", patience=2)
    keep = KeepBestModel(lambda model, step, metrics: saved.append((step, metrics["val_loss"])))
    recorder = Recorder()
    metrics = {2: 5.0, 4: 4.0, 6: 4.5, 8: 4.2, 10: 1.0}
    result = build(tmp_path, [stopping, keep, recorder], metrics, max_steps=12).fit()
    assert result.state.stopped_early and result.state.step == 8
    # step 8's evaluation stands as the final one: no second evaluation of it
    assert saved == [(2, 5.0), (4, 4.0)] and stopping.best_step == 4
    assert stopping.bad_evaluations == 2
    assert [s for e, s in recorder.events if e == "new_best"] == [2, 4]


def test_a_best_metric_alone_never_stops(tmp_path):
    best = BestMetric("val_loss")
    metrics = {2: 5.0, 4: 6.0, 6: 7.0, 8: 8.0, 10: 9.0, 12: 10.0}
    result = build(tmp_path, [best], metrics, max_steps=12).fit()
    assert not result.state.stopped_early and result.state.step == 12
    assert best.best_step == 2 and best.bad_evaluations == 5  # 4, 6, 8, 10 and the final 12


def test_an_unknown_metric_is_named_with_a_suggestion(tmp_path):
    with pytest.raises(TermwiseUserError, match="did you mean 'val_loss'"):
        build(tmp_path, [EarlyStopping("val_los")]).fit()


def test_a_callbacks_state_is_resumed_from_the_checkpoint(tmp_path):
    metrics = {2: 3.0, 4: 2.0, 6: 9.0}
    first = BestMetric("val_loss")
    build(tmp_path, [first], metrics, max_steps=4, checkpoint_every=4).fit()
    assert first.best_step == 4
    resumed = BestMetric("val_loss")
    build(tmp_path, [resumed], metrics, max_steps=6, checkpoint_every=4).fit(resume=True)
    assert resumed.best_step == 4 and resumed.best == 2.0 and resumed.bad_evaluations == 1
