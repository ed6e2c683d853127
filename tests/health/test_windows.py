"""A run's recorded windows, judged again: the same rules give the same findings, changed
rules give theirs, and info notes stay out of the summary."""

import math

import torch
from rich.console import Console
from typer.testing import CliRunner

from termwise import Objective
from termwise.cli import app
from termwise.health import HealthMonitor, default_rules, read_findings
from termwise.health.recheck import recheck
from termwise.health.report import print_summary
from termwise.health.rules_terms import FreeBitsAllFree
from termwise.health.windows import WINDOWS_FILE
from termwise.schedules import linear_warmup
from termwise.terms import free_bits_kl


def _train(run_dir, free_bits, steps=60):
    """A KL warmed up over 20 steps, its KL rising from 0.01 to 0.06 nats a dim."""
    objective = Objective(
        {"recon": "data", "kl": "kl"}, weights={"kl": linear_warmup(0.0, 0.5, 20)}
    )
    monitor = HealthMonitor(every=20, run_dir=run_dir, config_keys={"kl.free_bits": "fb"})
    for step in range(steps):
        kl = 0.01 + 0.05 * min(step, 40) / 40
        mu = torch.full((8, 4), math.sqrt(2 * kl))
        term = free_bits_kl(mu, torch.zeros_like(mu), free_bits=free_bits)
        _, breakdown = objective(step, recon=torch.tensor(2.0 - step / steps), kl=term)
        monitor.observe(step, breakdown)
    monitor.report_metrics(steps - 1, {"train_loss": 1.0, "val_loss": math.nan})
    return monitor


def test_recheck_gives_the_run_its_own_findings(tmp_path):
    monitor = _train(tmp_path, free_bits=0.1)
    live, unreadable = read_findings(tmp_path / "health.jsonl")
    assert unreadable == 0 and live == monitor.findings
    assert any(f.code == "free_bits.all_free" and f.changes for f in live)
    assert recheck(tmp_path) == live  # changes included: config keys are recorded too


def test_recheck_applies_the_rules_it_is_given(tmp_path):
    _train(tmp_path, free_bits=0.1)
    lenient = [r for r in default_rules() if r.code != "free_bits.all_free"]
    assert not any(f.code == "free_bits.all_free" for f in recheck(tmp_path, lenient))
    strict = [*lenient, FreeBitsAllFree(ramp_fraction=1.0)]
    early = [f.step for f in recheck(tmp_path, strict) if f.code == "free_bits.all_free"]
    default = [f.step for f in recheck(tmp_path) if f.code == "free_bits.all_free"]
    assert len(early) > len(default)  # also in warm-up windows where the KL is near the bar


def test_a_half_written_last_window_is_skipped(tmp_path):
    _train(tmp_path, free_bits=0.1)
    path = tmp_path / WINDOWS_FILE
    whole = recheck(tmp_path)
    path.write_bytes(path.read_bytes() + b'{"kind": "window", "step": 7')
    assert recheck(tmp_path) == whole


def test_summary_counts_info_notes_apart(tmp_path):
    monitor = _train(tmp_path, free_bits=0.02)  # healthy band after the warm-up
    assert {f.severity for f in monitor.findings} == {"info"}
    console = Console(record=True, width=200)
    print_summary(monitor.findings, console)
    text = console.export_text()
    assert "no warnings" in text and f"{len(monitor.findings)} info note(s)" in text
    console = Console(record=True, width=200)
    print_summary(monitor.findings, console, include_info=True)
    assert "free_bits.band" in console.export_text()


def test_health_recheck_command(tmp_path):
    _train(tmp_path / "run", free_bits=0.1)
    runner = CliRunner()
    result = runner.invoke(
        app, ["health", "recheck", str(tmp_path / "run")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0 and "free_bits.all_free" in result.output
    result = runner.invoke(app, ["health", "recheck", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "rechecked" in result.output  # the runs below it
    result = runner.invoke(app, ["health", "recheck", str(tmp_path / "none")])
    assert result.exit_code != 0


def test_a_corrupt_windows_file_is_one_clear_error(tmp_path):
    import pytest

    from termwise.errors import TermwiseUserError

    (tmp_path / WINDOWS_FILE).write_bytes(b'{"kind": "window", "step": 3}\n')
    with pytest.raises(TermwiseUserError, match="not a windows file"):
        recheck(tmp_path)


def test_a_malformed_window_record_is_skipped_and_counted(tmp_path):
    from termwise.health.windows import read_records

    path = tmp_path / WINDOWS_FILE
    good = '{"kind": "metrics", "step": 4, "metrics": {"val_loss": "nan"}}'
    path.write_text(f'{good}\n{{"kind": "window", "step": "three", "means": []}}\n[1]\n')
    bad: list[str] = []
    assert [r["step"] for r in read_records(path, bad)] == [4]
    assert len(bad) == 2 and bad[0].endswith(":2: step, index, steps: expected integers")
