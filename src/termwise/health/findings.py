"""Findings: what a health rule saw, why it matters and what to change."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

HEALTH_FILE = "health.jsonl"
Severity = Literal["info", "warning", "error"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Finding:
    """One observation of a rule at one step.

    ``code`` names the rule (``free_bits.all_free``), ``subject`` what it is about (a term
    or metric name, may be empty), ``evidence`` the numbers it was decided on.
    """

    step: int
    severity: Severity
    code: str
    message: str
    suggestion: str
    evidence: dict[str, Any] = field(default_factory=dict)
    subject: str = ""
    # Machine-readable fixes: [{"config_key": "kl.free_bits", "from": 0.1, "to": 0.0224}]
    # (dotted paths into the run's config; empty when the advice is not a value).
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.code, self.subject)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_dict(cls, data: Any) -> Finding:
        """A finding as ``to_json`` wrote it; anything else (a field of another type, an
        unknown severity, a change without its config key) raises ValueError, so readers
        skip and count the record instead of failing later on it."""
        if not isinstance(data, dict):
            raise ValueError(f"a finding is a JSON object, not {type(data).__name__}")
        step, severity = data.get("step"), data.get("severity")
        if not isinstance(step, int) or isinstance(step, bool):
            raise ValueError(f"step: expected an integer, got {step!r}")
        if severity not in SEVERITY_RANK:
            raise ValueError(f"severity: {severity!r} is not one of {', '.join(SEVERITY_RANK)}")
        texts = {k: data.get(k, "") for k in ("code", "message", "suggestion", "subject")}
        if not all(isinstance(v, str) for v in texts.values()) or not texts["code"]:
            raise ValueError("code, message, suggestion and subject must be strings (code set)")
        evidence, changes = data.get("evidence", {}), data.get("changes", [])
        if not isinstance(evidence, dict) or not isinstance(changes, list):
            raise ValueError("evidence must be an object and changes a list")
        if not all(_is_change(c) for c in changes):
            raise ValueError("every change must be an object with a config_key and a number 'to'")
        return cls(step=step, severity=severity, evidence=dict(evidence), changes=changes, **texts)


def _is_change(change: Any) -> bool:
    """``{"config_key": str, "to": number, ...}``, what ``health fix`` applies."""
    if not isinstance(change, dict) or not isinstance(change.get("config_key"), str):
        return False
    to = change.get("to")
    return isinstance(to, int | float) and not isinstance(to, bool) and math.isfinite(to)


@dataclass
class FindingGroup:
    """All findings with the same (code, subject): how often, when, and the latest one."""

    latest: Finding
    count: int
    first_step: int
    worst: Severity


def group_findings(findings: Iterable[Finding]) -> list[FindingGroup]:
    """Group by (code, subject), worst severity first, then by first appearance."""
    groups: dict[tuple[str, str], FindingGroup] = {}
    for finding in findings:
        group = groups.get(finding.key)
        if group is None:
            groups[finding.key] = FindingGroup(finding, 1, finding.step, finding.severity)
            continue
        group.count += 1
        if finding.step >= group.latest.step:
            group.latest = finding
        group.first_step = min(group.first_step, finding.step)
        if SEVERITY_RANK[finding.severity] > SEVERITY_RANK[group.worst]:
            group.worst = finding.severity
    return sorted(groups.values(), key=lambda g: (-SEVERITY_RANK[g.worst], g.first_step))


def read_findings(path: Path) -> tuple[list[Finding], int]:
    """Findings from a ``health.jsonl``; also the number of unreadable lines.

    A run that is still writing may leave a half-written last line: it is counted, not fatal.
    """
    findings: list[Finding] = []
    unreadable = 0
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                findings.append(Finding.from_dict(orjson.loads(raw)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                unreadable += 1
    return findings, unreadable
