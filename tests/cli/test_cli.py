import json

from typer.testing import CliRunner

from termwise import __version__
from termwise.cli import app, main
from termwise.health import Finding

runner = CliRunner()


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "health" in result.output and "demo" in result.output


def test_health_explain_groups_findings(tmp_path):
    lines = [
        Finding(
            10,
            "warning",
            "free_bits.all_free",
            "all KL is free",
            "set free_bits to 0.015",
            {"kl_raw": 0.05},
            "kl",
        ),
        Finding(
            20,
            "warning",
            "free_bits.all_free",
            "all KL is free",
            "set free_bits to 0.015",
            {"kl_raw": 0.05},
            "kl",
        ),
        Finding(20, "error", "nonfinite", "NaN in total", "lower the learning rate"),
    ]
    (tmp_path / "health.jsonl").write_bytes(b"".join(f.to_json() + b"\n" for f in lines))
    result = runner.invoke(app, ["health", "explain", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "free_bits.all_free" in result.output and "10-20" in result.output
    assert result.output.index("nonfinite") < result.output.index("free_bits.all_free")


def assert_one_line_exit_2(code, err, *fragments):
    """A user's mistake: status 2 and exactly one ``error:`` line holding ``fragments``."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err


def run_main(monkeypatch, capsys, *args):
    monkeypatch.setattr("sys.argv", ["termwise", *args])
    try:
        main()
    except SystemExit as exit_:
        return exit_.code, capsys.readouterr().err
    return 0, capsys.readouterr().err


def test_user_errors_are_one_line_exit_2(tmp_path, monkeypatch, capsys):
    code, err = run_main(monkeypatch, capsys, "health", "explain", str(tmp_path / "missing"))
    assert (
        code == 2 and err.strip().count("\n") == 0 and "not found: expected a run directory" in err
    )
    code, err = run_main(monkeypatch, capsys, "health", "explain", str(tmp_path))
    assert code == 2 and "no health.jsonl" in err


def test_bad_demo_config_names_file_line_and_field(tmp_path, monkeypatch, capsys):
    config = tmp_path / "demo.yaml"
    config.write_text("free_bits: 0.1\ntrainer:\n  max_step: 3\n")
    code, err = run_main(monkeypatch, capsys, "demo", "free-bits", "-c", str(config))
    assert code == 2
    assert err.strip() == (
        f"error: {config}:3: trainer.max_step: unknown key 'max_step' (did you mean 'max_steps'?)"
    )
    config.write_text("free_bits: -1\n")
    code, err = run_main(monkeypatch, capsys, "demo", "free-bits", "-c", str(config))
    assert code == 2 and f"{config}:1: free_bits:" in err


def test_findings_round_trip_json():
    finding = Finding(3, "info", "x", "m", "s", {"a": 1.5}, "t")
    assert Finding.from_dict(json.loads(finding.to_json())) == finding
