"""The health monitor: accumulates breakdowns on the device, runs rules every N steps."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from termwise.health.base import MetricReport, Rule, Window
from termwise.health.defaults import default_rules
from termwise.health.findings import HEALTH_FILE, SEVERITY_RANK, Finding
from termwise.health.report import finding_line
from termwise.health.windows import WINDOWS_FILE, metrics_line, window_line
from termwise.meter import DeviceMeter
from termwise.objective import Breakdown, stack_scalars

ConfigKeys = str | list[str]
# The mapping, or a function of the step giving the mapping in force then.
ConfigKeysSpec = Mapping[str, ConfigKeys] | Callable[[int], Mapping[str, ConfigKeys]]
# (evidence key a rule suggests a value under, what it sets): a recipe maps
# "<subject>.<what>" to its config field.
SUGGESTIONS = (
    ("suggested_free_bits", "free_bits"),
    ("suggested_weight", "weight"),
    ("suggested_clamp_low", "clamp_low"),
    ("suggested_clamp_high", "clamp_high"),
)
# The evidence key holding the value in force now, where it is not named like the setting.
CURRENT_VALUE = {"clamp_low": "weight", "clamp_high": "weight"}


class HealthMonitor:
    """Watches an objective while it trains.

    ``observe(step, breakdown, stats)`` costs one device op per step (no host sync); every
    ``every`` observed steps (more often at the start: :meth:`closes_window`) the means
    are read once and each rule checks the window.
    Findings go to the console (the first warning or error of each (code, subject), and
    again when its severity rises), to ``run_dir/health.jsonl`` (all of them, info notes
    too, flushed as written) and to :attr:`findings` for the final report; each window
    the rules saw goes to ``run_dir/health_windows.jsonl`` (:func:`recheck`).

    >>> import torch
    >>> from termwise.objective import Objective
    >>> from termwise.terms import bradley_terry, log_square
    >>> objective = Objective({"bt": "data", "logsq": "regularizer"}, weights={"logsq": 50.0})
    >>> monitor = HealthMonitor(every=10)
    >>> generator = torch.Generator().manual_seed(0)
    >>> for step in range(60):
    ...     r_pos = torch.randn(8, generator=generator) + 1
    ...     r_neg = torch.randn(8, generator=generator)
    ...     terms = {"bt": bradley_terry(r_pos, r_neg), "logsq": log_square(r_pos)}
    ...     total, breakdown = objective(step, **terms)
    ...     _ = monitor.observe(step, breakdown)
    >>> sorted({(f.code, f.subject) for f in monitor.findings if f.severity == "warning"})
    [('term.dominant', 'logsq')]
    """

    def __init__(
        self,
        rules: Iterable[Rule] | None = None,
        every: int = 50,
        run_dir: str | Path | None = None,
        console: Console | None = None,
        history: int = 200,
        config_keys: ConfigKeysSpec | None = None,
        early_windows: int = 5,
    ) -> None:
        """``config_keys`` maps what a rule can suggest (``"<term>.free_bits"``,
        ``"<term>.weight"``, ``"<term>.clamp_high"``: see :data:`SUGGESTIONS`) to the
        recipe's config field that sets it (a dotted path, list items by index:
        ``objective.clamp.1``), or to several fields set to the same value, so such findings
        carry a machine-readable change (``termwise health fix``). A function of the step
        gives the mapping in force at each step (a curriculum stage owns its own weights)."""
        if every < 1:
            raise ValueError(f"HealthMonitor: every must be >= 1, got {every}")
        self.rules: list[Rule] = list(default_rules() if rules is None else rules)
        self.every = every
        self.early_windows = early_windows
        self.console = console
        self.path = None if run_dir is None else Path(run_dir) / HEALTH_FILE
        self.findings: list[Finding] = []
        self.windows: deque[Window] = deque(maxlen=history)
        self.reports: list[MetricReport] = []
        self.listeners: list[Callable[[Finding], None]] = []
        self._meter = DeviceMeter()
        self._terms: tuple[str, ...] = ()
        self._roles: tuple[str, ...] = ()
        self._nonfinite = 0
        self._window_index = 0
        self._shown: dict[tuple[str, str], int] = {}
        self._last_step = -1
        self.config_keys: ConfigKeysSpec = (
            config_keys if callable(config_keys) else dict(config_keys or {})
        )

    def config_keys_at(self, step: int) -> Mapping[str, ConfigKeys]:
        """Which config field sets each suggested value at ``step``."""
        keys = self.config_keys
        return keys(step) if callable(keys) else keys

    def observe(
        self, step: int, breakdown: Breakdown, stats: Mapping[str, Tensor] | None = None
    ) -> list[Finding]:
        """Add one step; returns the findings when this step closes a window."""
        keys, values = breakdown.flat()
        if stats:
            keys = keys + list(stats)
            values = torch.cat([values, stack_scalars(list(stats.values()))])
        return self.observe_flat(step, keys, values, breakdown.names, breakdown.roles)

    def observe_flat(
        self,
        step: int,
        keys: Sequence[str],
        values: Tensor,
        terms: tuple[str, ...],
        roles: tuple[str, ...],
    ) -> list[Finding]:
        """:meth:`observe` for a caller that already built the flat vector (the trainer
        builds it once for its scalar log and the monitor)."""
        self._meter.add(keys, values)
        self._terms, self._roles = terms, roles
        return self._tick(step)

    def record_nonfinite(self, step: int) -> list[Finding]:
        """Count a step that was skipped because its loss or gradient was not finite."""
        self._nonfinite += 1
        return self._tick(step)

    def _tick(self, step: int) -> list[Finding]:
        self._last_step = step
        if self.closes_window(step):
            return self.flush(step)
        return []

    def closes_window(self, step: int) -> bool:
        """Every ``every`` steps; the first ``every`` steps are cut into ``early_windows``
        shorter windows, so a setting that is wrong from the start is flagged within the
        first few percent of a run, not after a full window (share rules skip the first
        window, where a warm-up usually starts)."""
        if step + 1 < self.every and self.early_windows > 1:
            return (step + 1) % max(1, self.every // self.early_windows) == 0
        return (step + 1) % self.every == 0

    def flush(self, step: int | None = None) -> list[Finding]:
        """Close the current window now (also called at the end of training)."""
        step = self._last_step if step is None else step
        if self._meter.count == 0 and self._nonfinite == 0:
            return []
        window = Window(
            self._window_index,
            step,
            self._meter.count,
            self._meter.pop(),
            self._terms,
            self._roles,
            self._nonfinite,
        )
        self._window_index += 1
        self._nonfinite = 0
        return self.check(window)

    def check(self, window: Window) -> list[Finding]:
        """Run every rule on a closed window (also how :func:`recheck` replays a run)."""
        self._record(window_line(window, self.config_keys_at(window.step)))
        history = list(self.windows)
        found = [f for rule in self.rules for f in rule.check_window(window, history)]
        self.windows.append(window)
        self._emit(found)
        return found

    def report_metrics(self, step: int, metrics: Mapping[str, float]) -> list[Finding]:
        """Evaluation metrics (``train_loss``, ``val_loss`` ...) for the fit rules."""
        report = MetricReport(step, dict(metrics))
        self._record(metrics_line(report))
        self.reports.append(report)
        found = [f for rule in self.rules for f in rule.check_metrics(self.reports)]
        self._emit(found)
        return found

    def _record(self, line: bytes) -> None:
        """Keep what the rules saw (``health_windows.jsonl``) so the run can be rechecked."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / WINDOWS_FILE).open("ab") as handle:
            handle.write(line)

    def _with_changes(self, finding: Finding) -> Finding:
        """The finding with the config change its suggested value amounts to, when the
        recipe said which config field sets that value (a field, or several set together)."""
        evidence, changes = finding.evidence, []
        for suggested, what in SUGGESTIONS:
            keys = self.config_keys_at(finding.step).get(f"{finding.subject}.{what}")
            if keys is None or suggested not in evidence:
                continue
            current = evidence.get(CURRENT_VALUE.get(what, what))
            for key in [keys] if isinstance(keys, str) else keys:
                changes.append({"config_key": key, "from": current, "to": evidence[suggested]})
        return dataclasses.replace(finding, changes=changes) if changes else finding

    def _emit(self, found: list[Finding]) -> None:
        if not found:
            return
        found = [self._with_changes(f) for f in found]
        self.findings.extend(found)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as handle:
                for finding in found:
                    handle.write(finding.to_json() + b"\n")
        for finding in found:
            rank = SEVERITY_RANK[finding.severity]
            # Info notes (a healthy band, a calibration) go to health.jsonl, not the console.
            shown = rank > max(self._shown.get(finding.key, -1), SEVERITY_RANK["info"])
            if self.console is not None and shown:
                self.console.print(finding_line(finding))
            self._shown[finding.key] = max(rank, self._shown.get(finding.key, -1))
            for listener in self.listeners:
                listener(finding)

    def state_dict(self) -> dict[str, Any]:
        return {
            "rules": {rule.code: rule.state_dict() for rule in self.rules},
            "window_index": self._window_index,
            "shown": [[code, subject, rank] for (code, subject), rank in self._shown.items()],
            "reports": [{"step": r.step, "metrics": dict(r.metrics)} for r in self.reports],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for rule in self.rules:
            rule.load_state_dict(state.get("rules", {}).get(rule.code, {}))
        self._window_index = int(state.get("window_index", 0))
        self._shown = {(c, s): int(r) for c, s, r in state.get("shown", [])}
        reports = state.get("reports", [])
        self.reports = [MetricReport(int(r["step"]), r["metrics"]) for r in reports]
