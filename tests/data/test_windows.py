import numpy as np
import torch

from termwise.data.windows import WindowDataset, window_ends


def test_windows_never_span_two_series():
    groups = np.array(["a"] * 5 + ["b"] * 3)
    assert window_ends(groups, 3).tolist() == [2, 3, 4, 7]
    assert window_ends(groups, 4).tolist() == [3, 4]


def test_window_contents_and_batch_view():
    x = np.arange(20, dtype=float).reshape(10, 2)
    y = np.arange(10) % 2
    data = WindowDataset(x, y, np.array([2, 5]), length=3)
    steps, label = data[1]
    assert steps.tolist() == [[6.0, 7.0], [8.0, 9.0], [10.0, 11.0]] and label.item() == 1
    all_x, all_y = data.tensors()
    assert all_x.shape == (2, 3, 2) and torch.equal(all_x[1], steps)
    assert all_y.tolist() == [0, 1]
