import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

SCRIPT = Path(__file__).with_name("ddp_script.py")


def _launch(run_dir: Path, *args: str) -> list[dict]:
    launcher = Path(sys.executable).with_name("accelerate")
    # accelerate 1.15: `launch --cpu --num_processes 2` starts ONE process unless MPI is set
    # up; two CPU processes come from the torchrun launcher with ACCELERATE_USE_CPU (gloo).
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "ACCELERATE_USE_CPU": "1",
    }
    command = [
        str(launcher),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(SCRIPT),
        str(run_dir),
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return [orjson.loads((run_dir / f"rank{r}.json").read_bytes()) for r in range(2)]


@pytest.mark.slow
def test_two_cpu_processes_split_data_and_stay_in_sync(tmp_path):
    ranks = _launch(tmp_path, "16", "4", "termwise")
    seen = [set(r["seen"]) for r in ranks]
    assert not seen[0] & seen[1]  # each process trains on its own shard
    assert len(seen[0] | seen[1]) == 16  # 4 steps x 2 processes x batch 2 = one epoch
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP keeps replicas identical
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert checkpoints == ["step_00000003", "step_00000004"]


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_format", ["termwise", "accelerate"])
def test_resume_under_two_processes_equals_a_straight_run(tmp_path, checkpoint_format):
    # 15 items over 2 ranks: padded to 8 a rank, 4 batches an epoch; 7 steps cross an epoch.
    straight = _launch(tmp_path / "straight", "15", "7", checkpoint_format)
    _launch(tmp_path / "resumed", "15", "3", checkpoint_format)
    resumed = _launch(tmp_path / "resumed", "15", "7", checkpoint_format, "resume")
    assert [r["epoch"] for r in straight] == [r["epoch"] for r in resumed] == [1, 1]
    for before, after in zip(straight, resumed, strict=True):
        assert after["weights"] == before["weights"]
        assert after["seen"] == before["seen"][-len(after["seen"]) :]  # the same batches
