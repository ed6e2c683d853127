"""Findings read back from health.jsonl: a record of another shape is skipped and counted."""

import orjson
import pytest

from termwise.health.findings import Finding, read_findings

GOOD = Finding(3, "warning", "kl.swamps", "m", "s", {"share": 0.9}, "kl")


@pytest.mark.parametrize(
    "record",
    [
        {"step": 1, "severity": "fatal", "code": "x.y", "message": "m"},
        {"step": "1", "severity": "info", "code": "x.y", "message": "m"},
        {"step": True, "severity": "info", "code": "x.y", "message": "m"},
        {"step": 1, "severity": "info", "code": 7, "message": "m"},
        {"step": 1, "severity": "info", "code": "x.y", "message": "m", "evidence": [1]},
        {"step": 1, "severity": "info", "code": "x.y", "message": "m", "changes": [{"to": 1}]},
        {"step": 1, "severity": "info", "code": "x.y", "changes": [{"config_key": "a", "to": "x"}]},
        [1, 2],
    ],
)
def test_a_finding_of_another_shape_is_skipped_and_counted(record, tmp_path):
    path = tmp_path / "health.jsonl"
    path.write_bytes(GOOD.to_json() + b"\n" + orjson.dumps(record) + b"\n")
    findings, unreadable = read_findings(path)
    assert findings == [GOOD] and unreadable == 1


def test_health_explain_all_on_an_unknown_severity_is_no_traceback(tmp_path):
    from typer.testing import CliRunner

    from termwise.cli import app

    record = {"step": 1, "severity": "fatal", "code": "x.y", "message": "m"}
    (tmp_path / "health.jsonl").write_bytes(GOOD.to_json() + b"\n" + orjson.dumps(record) + b"\n")
    result = CliRunner().invoke(app, ["health", "explain", str(tmp_path), "--all"])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "kl.swamps" in result.output and "1 unreadable line" in result.output
