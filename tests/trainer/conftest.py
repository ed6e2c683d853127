import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from termwise import Objective
from termwise.trainer import StepOutput


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def make_dataset(n: int = 10) -> TensorDataset:
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(n, 3, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    return TensorDataset(x, y)


OBJECTIVE = Objective({"mse": "data", "l2": "regularizer"}, weights={"l2": 1e-3})


def mse_loss(model, batch, step):
    x, y = batch
    pred = model(x)
    l2 = torch.stack([p.square().sum() for p in model.parameters()]).sum()
    total, breakdown = OBJECTIVE(step, mse=(pred - y).square(), l2=l2)
    return StepOutput(total, breakdown)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return TinyNet()
