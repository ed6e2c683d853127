"""``termwise health fix``: findings as config changes, applied and proven on a rerun."""

import json

import pytest

from termwise.health import Finding
from termwise.health.findings import read_findings
from termwise.health.fix import fix_config
from tests.cli.test_cli import assert_one_line_exit_2, run_main


@pytest.mark.slow
def test_all_free_is_fixed_and_cleared_on_a_rerun(tmp_path, monkeypatch, capsys):
    demo = ["demo", "free-bits", "--max-steps", "200"]
    code, err = run_main(monkeypatch, capsys, *demo, "--run-dir", str(tmp_path / "a"))
    assert code == 0, err
    first, _ = read_findings(tmp_path / "a" / "run1" / "health.jsonl")
    flagged = [f for f in first if f.code == "free_bits.all_free"]
    assert flagged and flagged[-1].changes[0]["config_key"] == "free_bits"
    code, err = run_main(monkeypatch, capsys, "health", "fix", str(tmp_path / "a" / "run1"))
    assert code == 0, err
    fixed = tmp_path / "a" / "run1" / "fixed.yaml"
    text = fixed.read_text()
    assert f"free_bits: {flagged[-1].changes[0]['to']:g}" in text and "# health fix:" in text
    assert "free_bits: 0.1" in (tmp_path / "a" / "config.yaml").read_text()  # never in place
    code, err = run_main(
        monkeypatch, capsys, *demo, "-c", str(fixed), "--run-dir", str(tmp_path / "b")
    )
    assert code == 0, err
    rerun, _ = read_findings(tmp_path / "b" / "run1" / "health.jsonl")
    assert not [f for f in rerun if f.code == "free_bits.all_free"]
    bands = [f for f in rerun if f.code == "free_bits.band"]
    assert bands and bands[-1].evidence["penalty_reduction"] < 1  # was 100 %: KL has a gradient


def _run(tmp_path, findings, config="kl:\n  free_bits: 0.1\nkl_weight: 1.0\n"):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(config)
    lines = [json.dumps(json.loads(f.to_json())) for f in findings]
    (run / "health.jsonl").write_text("\n".join(lines) + "\n")
    return run


def _finding(code, subject, key, to, step=10):
    return Finding(
        step,
        "warning",
        code,
        "m",
        "s",
        {"x": 1.0},
        subject,
        [{"config_key": key, "from": 0.1, "to": to}],
    )


def test_conflicting_changes_are_reported_not_merged(tmp_path):
    run = _run(
        tmp_path,
        [
            _finding("free_bits.all_free", "kl", "kl.free_bits", 0.02),
            _finding("free_bits.band", "kl", "kl.free_bits", 0.05),
            _finding("term.negligible", "kl", "kl_weight", 3.0),
        ],
    )
    result = fix_config(run)
    assert len(result.conflicts) == 1 and "kl.free_bits" in result.conflicts[0]
    assert "kl_weight: 3" in result.text and "free_bits: 0.1" in result.text
    only = fix_config(run, only="free_bits.band")
    assert "free_bits: 0.05" in only.text and not only.conflicts


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no config", "no config.yaml"),
        ("renamed key", "kl.free_bits: the config has no such key"),
        ("no findings", "no health.jsonl"),
        ("a file", "is a file, expected a run directory"),
    ],
)
def test_a_malformed_run_is_one_line(case, message, tmp_path, monkeypatch, capsys):
    finding = _finding("free_bits.all_free", "kl", "kl.free_bits", 0.02)
    run = _run(tmp_path, [finding], config="kl:\n  threshold: 0.1\n")
    if case == "no config":
        (run / "config.yaml").unlink()
    elif case == "no findings":
        (run / "health.jsonl").unlink()
        (run / "config.yaml").write_text("kl:\n  free_bits: 0.1\n")
    if case == "a file":
        run = run / "config.yaml"
    code, err = run_main(monkeypatch, capsys, "health", "fix", str(run))
    assert_one_line_exit_2(code, err, message)


def test_auto_fix_reruns_with_the_suggested_value(tmp_path, tiny_bert, monkeypatch, capsys):
    import yaml

    from tests.recipes.vae.conftest import tiny_config

    path = tiny_config(tmp_path, tiny_bert, kl={"free_bits": 2.0}, teacher={"enabled": False})
    run = tmp_path / "run"
    code, err = run_main(
        monkeypatch, capsys, "vae", "train", "-c", str(path), "-o", str(run), "--auto-fix", "1"
    )
    assert code == 0, err
    before, _ = read_findings(run / "health.jsonl")
    assert any(f.code == "free_bits.all_free" for f in before)  # 2 nats a dim: all free
    fixed = yaml.safe_load((run / "fix1.yaml").read_text())
    assert 0 < fixed["kl"]["free_bits"] < 2.0
    assert (run / "fix1" / "best").is_dir()  # the rerun ran, in its own directory


@pytest.mark.slow
def test_a_dominant_kl_weight_is_fixed_and_cleared_on_a_rerun(tmp_path, monkeypatch, capsys):
    from tests.recipes.bayes_clf.test_recipe import series_csv, write_config

    data = tmp_path / "signal.csv"
    series_csv(data, signal=True)
    config = write_config(tmp_path, data, prior_sigma=0.1, kl_weight=1.0)
    first = tmp_path / "first"
    code, err = run_main(
        monkeypatch, capsys, "bayes-clf", "train", "-c", str(config), "-o", str(first)
    )
    assert code == 0, err
    found, _ = read_findings(first / "health.jsonl")
    dominant = [f for f in found if f.code == "term.dominant" and f.subject == "kl"]
    assert dominant and dominant[-1].changes[0]["config_key"] == "kl_weight"
    code, err = run_main(
        monkeypatch, capsys, "health", "fix", str(first), "--only", "term.dominant"
    )
    assert code == 0, err
    second = tmp_path / "second"
    code, err = run_main(
        monkeypatch,
        capsys,
        "bayes-clf",
        "train",
        "-c",
        str(first / "fixed.yaml"),
        "-o",
        str(second),
    )
    assert code == 0, err
    rerun, _ = (
        read_findings(second / "health.jsonl") if (second / "health.jsonl").exists() else ([], 0)
    )
    assert not [f for f in rerun if f.code == "term.dominant" and f.subject == "kl"]
