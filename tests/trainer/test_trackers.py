"""Scalars reach Accelerate's trackers (TensorBoard by default) beside scalars.csv."""

import pytest
from pydantic import ValidationError

from termwise.trainer import TrainerConfig, read_scalars
from tests.trainer.test_loop import build


def tensorboard_scalars(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_the_default_tracker_gets_what_scalars_csv_gets(tmp_path):
    trainer, _ = build(tmp_path, tensorboard=True)
    assert trainer.config.trackers() == ["tensorboard"]
    trainer.fit()
    logged = tensorboard_scalars(tmp_path / "tb")
    csv = read_scalars(tmp_path)
    assert set(logged) == set(csv)
    assert [step for step, _ in logged["mse.raw"]] == [step for step, _ in csv["mse.raw"]]
    assert not trainer.accelerator.trackers  # finished with the run


def test_tensorboard_false_leaves_no_tracker(tmp_path):
    trainer, _ = build(tmp_path, tensorboard=False)
    trainer.fit()
    assert not (tmp_path / "tb").exists() and (tmp_path / "scalars.csv").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [("tensorbord", "did you mean 'tensorboard'"), ("aim", "'aim' is not installed")],
)
def test_an_unknown_or_missing_tracker_is_refused_at_construction(name, message):
    with pytest.raises(ValidationError, match=message):
        TrainerConfig(log_with=[name])
