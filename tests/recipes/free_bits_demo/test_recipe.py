import pytest
from rich.console import Console

import termwise.recipes.free_bits_demo.recipe as demo
from termwise.health import read_findings
from termwise.recipes.free_bits_demo.recipe import FreeBitsDemoConfig
from termwise.trainer.recipe import run_recipe


@pytest.mark.slow
def test_demo_flags_all_free_then_lands_in_healthy_band(tmp_path):
    console = Console(file=open("/dev/null", "w"))  # noqa: SIM115
    config = FreeBitsDemoConfig()
    config.trainer.progress = False
    config.trainer.tensorboard = False
    outcome = run_recipe(demo, config, tmp_path, console)
    assert outcome["run1_finding"] == "free_bits.all_free"
    first, _ = read_findings(tmp_path / "run1" / "health.jsonl")
    all_free = [f for f in first if f.code == "free_bits.all_free"]
    assert all_free and all(f.evidence["kl_raw"] < 0.1 for f in all_free)
    assert outcome["suggested_free_bits"] == all_free[-1].evidence["suggested_free_bits"]
    second, _ = read_findings(tmp_path / "run2" / "health.jsonl")
    final_band = [f for f in second if f.code == "free_bits.band"][-1]
    assert "healthy" in final_band.message
    assert 0.2 <= final_band.evidence["penalty_reduction"] <= 0.4
