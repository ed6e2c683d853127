"""Run by test_distributed.py under a 2-process CPU launch (torchrun, gloo).

``ddp_script.py RUN_DIR SIZE MAX_STEPS FORMAT [resume]``: trains a linear model on SIZE
items (an odd SIZE exercises the sampler's padding), checkpointing every 3 steps in FORMAT
(termwise or accelerate), and writes each rank's seen items and final weights.
"""

import sys
from pathlib import Path

import orjson
import torch
from torch.utils.data import Dataset

from termwise import Objective
from termwise.trainer import StepOutput, Trainer, TrainerConfig, seed_everything

OBJECTIVE = Objective({"mse": "data"})


class Indexed(Dataset):
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor([float(i), 1.0])
        return x, torch.tensor(float(i))


def main(run_dir: Path, size: int, max_steps: int, checkpoint_format: str, resume: bool) -> None:
    seed_everything(0)
    model = torch.nn.Linear(2, 1)
    seen: list[int] = []

    def loss_fn(model, batch, step):
        x, y = batch
        seen.extend(int(v) for v in x[:, 0].tolist())
        pred = model(x).squeeze(-1)
        return StepOutput(*OBJECTIVE(step, mse=(pred - y).square() / 100))

    config = TrainerConfig(
        max_steps=max_steps,
        batch_size=2,
        progress=False,
        tensorboard=False,
        checkpoint_every=3,
        log_every=1,
        checkpoint_format=checkpoint_format,
    )
    trainer = Trainer(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        train_data=Indexed(size),
        loss_fn=loss_fn,
        config=config,
        run_dir=run_dir,
    )
    trainer.fit(resume=resume)
    rank = trainer.accelerator.process_index
    weights = [p.detach().flatten().tolist() for p in model.parameters()]
    payload = {"seen": seen, "weights": weights, "epoch": trainer.state.epoch}
    (run_dir / f"rank{rank}.json").write_bytes(orjson.dumps(payload))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], "resume" in sys.argv)
