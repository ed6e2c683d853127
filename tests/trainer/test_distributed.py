import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

SCRIPT = Path(__file__).with_name("ddp_script.py")


@pytest.mark.slow
def test_two_cpu_processes_split_data_and_stay_in_sync(tmp_path):
    launcher = Path(sys.executable).with_name("accelerate")
    # accelerate 1.15: `launch --cpu --num_processes 2` starts ONE process unless MPI is set
    # up; two CPU processes come from the torchrun launcher with ACCELERATE_USE_CPU (gloo).
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "ACCELERATE_USE_CPU": "1",
    }
    result = subprocess.run(
        [
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
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [orjson.loads((tmp_path / f"rank{r}.json").read_bytes()) for r in range(2)]
    seen = [set(r["seen"]) for r in ranks]
    assert not seen[0] & seen[1]  # each process trains on its own shard
    assert len(seen[0] | seen[1]) == 16  # 4 steps x 2 processes x batch 2 = one epoch
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP keeps replicas identical
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert checkpoints == ["step_00000002", "step_00000004"]
