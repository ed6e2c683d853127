"""Running means on the device: NaN means "no value this step" and is not counted."""

import math

import torch

from termwise.meter import DeviceMeter


def test_means_skip_nan_and_keep_infinities_and_key_lists():
    meter = DeviceMeter()
    meter.add(["a", "b"], torch.tensor([1.0, math.nan]))
    meter.add(["a", "b"], torch.tensor([3.0, 4.0]))
    meter.add(["a", "c"], torch.tensor([5.0, math.inf]))
    meter.add(["a", "d"], torch.tensor([2.0, math.nan]))
    means = meter.pop()
    assert means == {"a": 11.0 / 4, "b": 4.0, "c": math.inf}  # d: never a value, left out
    assert meter.pop() == {}
