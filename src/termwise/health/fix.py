"""``termwise health fix``: a run's findings, applied to its config as a new file.

The latest finding per (code, subject) that carries a change wins; two findings that want
the same key at different values are reported as a conflict and neither is applied. The
new config is the run's ``config.yaml`` with each changed value replaced in place and a
comment above it naming the finding and its evidence; the original is never modified.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from termwise.config import compose_bounded
from termwise.errors import TermwiseUserError
from termwise.health.findings import HEALTH_FILE, Finding, group_findings, read_findings

RUN_CONFIG = "config.yaml"


@dataclass
class Fix:
    text: str
    diff: str
    applied: list[tuple[Finding, dict[str, Any]]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def yaml_value(value: Any) -> str:
    """A value as YAML reads it back: ``%g`` floats, with a ``.0`` mantissa where PyYAML
    would otherwise read ``1e-05`` as a string."""
    if isinstance(value, bool) or not isinstance(value, float | int):
        return str(value)
    text = f"{float(value):g}"
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def find_config(run_dir: Path) -> Path:
    """The run's ``config.yaml`` (a sub-run's is its parent's: ``demo``, ``diagnose``)."""
    for directory in (run_dir, run_dir.parent):
        if (directory / RUN_CONFIG).is_file():
            return directory / RUN_CONFIG
    raise TermwiseUserError(
        f"no {RUN_CONFIG} here or in the parent: not a termwise run", path=run_dir
    )


def _child(node: yaml.Node, part: str) -> yaml.Node | None:
    """``part`` of a mapping (a key) or of a list (an index)."""
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == part), None)
    if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
        child: yaml.Node = node.value[int(part)]
        return child
    return None


def _line_of(root: yaml.Node, dotted: str, path: Path) -> yaml.ScalarNode:
    node = root
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            raise TermwiseUserError(f"{dotted}: not a key of this config", path=path)
        match = _child(node, part)
        if match is None:
            raise TermwiseUserError(
                f"{dotted}: the config has no such key (renamed since the run?)", path=path
            )
        node = match
    if not isinstance(node, yaml.ScalarNode):
        raise TermwiseUserError(f"{dotted}: not a single value", path=path)
    return node


def _run_findings(run_dir: Path) -> list[Finding]:
    health = run_dir / HEALTH_FILE
    if not health.is_file():
        raise TermwiseUserError(f"no {HEALTH_FILE}: nothing to fix", path=run_dir)
    findings, unreadable = read_findings(health)
    if unreadable and not findings:
        raise TermwiseUserError(
            f"{unreadable} unreadable line(s) and no finding: not a termwise findings file",
            path=health,
        )
    return findings


def check_rule_code(code: str, found: set[str]) -> None:
    """``--only CODE``: a code no rule has is a typo, not a run without that finding."""
    from termwise.errors import suggest
    from termwise.health.defaults import default_rules

    known = sorted({rule.code for rule in default_rules()} | found)
    if code not in known:
        raise TermwiseUserError(
            f"no rule has the code {code!r}{suggest(code, known)}", field="--only"
        )


def fix_config(
    run_dir: Path, only: str | None = None, findings: list[Finding] | None = None
) -> Fix:
    """The run's config with its findings' changes applied; ``findings`` replaces the
    run's ``health.jsonl`` (e.g. those of :func:`termwise.health.recheck.recheck`)."""
    if not run_dir.is_dir():
        reason = "is a file, expected" if run_dir.exists() else "not found: expected"
        raise TermwiseUserError(f"{reason} a run directory", path=run_dir)
    config_path = find_config(run_dir)
    if findings is None:
        findings = _run_findings(run_dir)
    if only is not None:
        check_rule_code(only, {f.code for f in findings})
    latest = [g.latest for g in group_findings(findings) if g.latest.changes]
    latest = [f for f in latest if only is None or f.code == only]
    wanted: dict[str, list[tuple[Finding, dict[str, Any]]]] = {}
    for finding in latest:
        for change in finding.changes:
            wanted.setdefault(str(change["config_key"]), []).append((finding, change))
    try:
        text = config_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise TermwiseUserError(f"unreadable config ({error})", path=config_path) from None
    root = compose_bounded(text, config_path)
    if root is None:
        raise TermwiseUserError("empty config", path=config_path)
    lines = text.splitlines()
    fix = Fix("", "")
    edits: list[tuple[yaml.ScalarNode, str, str]] = []
    for key, proposals in wanted.items():
        targets = {float(change["to"]) for _, change in proposals}
        if len(targets) > 1:
            who = ", ".join(f"{f.code}/{f.subject} -> {c['to']}" for f, c in proposals)
            fix.conflicts.append(f"{key}: findings disagree ({who}); not changed")
            continue
        finding, change = proposals[-1]
        node = _line_of(root, key, config_path)
        note = (
            f"health fix: {finding.code} ({finding.subject}) at step {finding.step}: "
            + ", ".join(
                f"{k} {v}" for k, v in finding.evidence.items() if not isinstance(v, dict | list)
            )
        )
        edits.append((node, yaml_value(change["to"]), note))
        fix.applied.append((finding, change))
    # Bottom up and right to left, so earlier marks stay valid; one comment per line even
    # when a flow list (clamp: [0.0001, 0.05]) has two values changed.
    notes: dict[int, list[str]] = {}
    for node, value, note in sorted(
        edits, key=lambda e: (-e[0].start_mark.line, -e[0].start_mark.column)
    ):
        row = node.start_mark.line
        line = lines[row]
        lines[row] = line[: node.start_mark.column] + value + line[node.end_mark.column :]
        notes.setdefault(row, []).append(note)
    for row in sorted(notes, reverse=True):
        indent = lines[row][: len(lines[row]) - len(lines[row].lstrip())]
        for note in dict.fromkeys(notes[row]):
            lines.insert(row, f"{indent}# {note}")
    fix.text = "\n".join(lines) + "\n"
    fix.diff = "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True),
            fix.text.splitlines(keepends=True),
            str(config_path),
            "fixed",
        )
    )
    return fix
