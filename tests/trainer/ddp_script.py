"""Run by test_distributed.py under `accelerate launch --cpu --num_processes 2`."""

import sys
from pathlib import Path

import orjson
import torch
from torch.utils.data import Dataset

from termwise import Objective
from termwise.trainer import StepOutput, Trainer, TrainerConfig, seed_everything

OBJECTIVE = Objective({"mse": "data"})


class Indexed(Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor([float(i), 1.0])
        return x, torch.tensor(float(i))


def main(run_dir: Path) -> None:
    seed_everything(0)
    model = torch.nn.Linear(2, 1)
    seen: list[int] = []

    def loss_fn(model, batch, step):
        x, y = batch
        seen.extend(int(v) for v in x[:, 0].tolist())
        pred = model(x).squeeze(-1)
        return StepOutput(*OBJECTIVE(step, mse=(pred - y).square() / 100))

    config = TrainerConfig(
        max_steps=4,
        batch_size=2,
        progress=False,
        tensorboard=False,
        checkpoint_every=2,
        log_every=1,
    )
    trainer = Trainer(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        train_data=Indexed(),
        loss_fn=loss_fn,
        config=config,
        run_dir=run_dir,
    )
    trainer.fit()
    rank = trainer.accelerator.process_index
    weights = [p.detach().flatten().tolist() for p in model.parameters()]
    (run_dir / f"rank{rank}.json").write_bytes(orjson.dumps({"seen": seen, "weights": weights}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
