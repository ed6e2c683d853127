"""Step time with and without the health monitor, side by side in one run.

A tiny variational model (the regime where per-step bookkeeping weighs most), trained by
two identical :class:`termwise.trainer.Trainer` objects, one with a ``HealthMonitor`` (rules
every 50 steps) and one without. A step is ``Trainer.train_step``: forward, objective (three
terms, one with free-bits stats), backward, clipping, the non-finite guard, Adam, the
scalar meter, and, in the monitor arm, the monitor. Arms are interleaved block by block so
machine noise hits both; the ratio of medians is reported.

    .venv/bin/python bench/monitor_overhead.py [--blocks 15 --steps 200] [--write]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from _doc import publish
from termwise import Objective
from termwise.health import HealthMonitor
from termwise.schedules import linear_warmup
from termwise.terms import free_bits_kl
from termwise.trainer import StepOutput, Trainer, TrainerConfig

MARK = "<!-- monitor_overhead -->"


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(32, 2 * 16)
        self.decoder = nn.Linear(16, 32)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mu, logvar = self.encoder(x).chunk(2, -1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decoder(z), mu, logvar


def make_trainer(monitor: HealthMonitor | None, run_dir: Path) -> Trainer:
    torch.manual_seed(0)
    model = Tiny()
    objective = Objective(
        {"recon": "data", "kl": "kl", "l2": "regularizer"},
        weights={"kl": linear_warmup(0.0, 1.0, 100), "l2": 1e-4},
    )

    def loss_fn(model: nn.Module, batch: tuple[torch.Tensor], step: int) -> StepOutput:
        (x,) = batch
        recon, mu, logvar = model(x)
        total, breakdown = objective(
            step,
            recon=F.mse_loss(recon, x, reduction="none").mean(-1),
            kl=free_bits_kl(mu, logvar, free_bits=0.02),
            l2=model.decoder.weight.square().sum(),
        )
        return StepOutput(total, breakdown)

    config = TrainerConfig(max_steps=10**9, batch_size=64, progress=False, tensorboard=False)
    return Trainer(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        train_data=TensorDataset(torch.randn(64, 32)),
        loss_fn=loss_fn,
        config=config,
        run_dir=run_dir,
        monitor=monitor,
        health=monitor is not None,
    )


def run_block(trainer: Trainer, batch: tuple[torch.Tensor], steps: int) -> float:
    began = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(batch)
    return (time.perf_counter() - began) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: less scheduler noise on a shared machine
    monitor = HealthMonitor(every=50)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {
            "without": make_trainer(None, Path(tmp) / "without"),
            "with": make_trainer(monitor, Path(tmp) / "with"),
        }
        batch = (torch.randn(64, 32),)
        arms: dict[str, list[float]] = {"without": [], "with": []}
        for block in range(args.blocks + 1):
            order = ("without", "with") if block % 2 == 0 else ("with", "without")
            for arm in order:
                seconds = run_block(trainers[arm], batch, args.steps)
                if block > 0:  # block 0 warms up both arms
                    arms[arm].append(seconds)
    without = statistics.median(arms["without"])
    with_monitor = statistics.median(arms["with"])
    ratio = with_monitor / without
    lines = [
        "## Health-monitor overhead (`bench/monitor_overhead.py`)",
        "",
        f"Command: `.venv/bin/python bench/monitor_overhead.py --blocks {args.blocks} "
        f"--steps {args.steps} --write`",
        f"Machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, torch {torch.__version__}, 1 thread.",
        "",
        "| arm | median step time | ratio |",
        "|---|---|---|",
        f"| without monitor | {1e6 * without:.1f} us | 1.000 |",
        f"| with monitor (observe every step, rules every 50) | {1e6 * with_monitor:.1f} us "
        f"| {ratio:.3f} |",
        "",
        f"Goal <= 1.02: {'met' if ratio <= 1.02 else 'NOT met'}. Medians of {args.blocks} "
        f"interleaved blocks of {args.steps} steps per arm; {len(monitor.findings)} findings.",
    ]
    publish(MARK, lines, args.write)


if __name__ == "__main__":
    main()
