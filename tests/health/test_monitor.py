import math

import orjson
import torch
from rich.console import Console

from termwise import Objective
from termwise.health import HealthMonitor, read_findings
from termwise.schedules import linear_warmup
from termwise.terms import free_bits_kl


def _kl_inputs(kl: float):
    return torch.full((8, 4), math.sqrt(2 * kl)), torch.zeros(8, 4)


def test_monitor_fires_all_free_once_on_console_and_logs_every_window(tmp_path):
    objective = Objective({"recon": "data", "kl": "kl"}, weights={"kl": 0.5})
    console = Console(record=True, width=200)
    monitor = HealthMonitor(every=10, run_dir=tmp_path, console=console, early_windows=1)
    for step in range(30):
        kl = free_bits_kl(*_kl_inputs(0.05), free_bits=0.1)
        _, breakdown = objective(step, recon=torch.tensor(1.0), kl=kl)
        monitor.observe(step, breakdown, {"grad_norm": torch.tensor(1.0)})
    codes = [f.code for f in monitor.findings]
    # The first window has no earlier weight to compare: it counts as a ramp, where a KL
    # at half the threshold may still grow past it; the next two are judged.
    assert codes.count("free_bits.all_free") == 2
    assert len((tmp_path / "health_windows.jsonl").read_bytes().splitlines()) == 3
    text = console.export_text()
    assert text.count("free_bits.all_free") == 1 and "0.015" in text
    on_disk, bad = read_findings(tmp_path / "health.jsonl")
    assert bad == 0 and [f.code for f in on_disk] == codes
    assert on_disk[0].evidence["kl_raw"] == 0.05


def test_the_first_window_is_cut_into_early_windows():
    closing = [s for s in range(60) if HealthMonitor(every=25).closes_window(s)]
    assert closing == [4, 9, 14, 19, 24, 49]  # a wrong setting shows by step 9 of 300
    assert [s for s in range(60) if HealthMonitor(every=25, early_windows=1).closes_window(s)] == [
        24,
        49,
    ]


def test_monitor_quiet_on_healthy_run(tmp_path):
    objective = Objective({"recon": "data", "kl": "kl"}, weights={"kl": linear_warmup(0, 1, 5)})
    monitor = HealthMonitor(every=10, run_dir=tmp_path)
    for step in range(30):
        kl = free_bits_kl(*_kl_inputs(0.05), free_bits=0.015)
        _, breakdown = objective(step, recon=torch.tensor(1.0 / (step + 1)), kl=kl)
        monitor.observe(step, breakdown)
    assert {f.severity for f in monitor.findings} == {"info"}
    assert all("healthy" in f.message for f in monitor.findings)


def test_nonfinite_skips_are_reported(tmp_path):
    objective = Objective({"loss": "data"})
    monitor = HealthMonitor(every=5, run_dir=tmp_path)
    for step in range(5):
        if step == 2:
            monitor.record_nonfinite(step)
        else:
            monitor.observe(step, objective(step, loss=torch.tensor(1.0))[1])
    assert [f.code for f in monitor.findings] == ["nonfinite"]


def test_truncated_last_line_is_counted_not_fatal(tmp_path):
    path = tmp_path / "health.jsonl"
    good = {"step": 1, "severity": "info", "code": "x", "message": "m", "suggestion": "s"}
    path.write_bytes(orjson.dumps(good) + b"\n" + b'{"step": 2, "sev')
    findings, bad = read_findings(path)
    assert len(findings) == 1 and bad == 1
