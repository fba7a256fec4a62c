"""The evaluator: keeps the recent readings of the metrics its rules watch, and each round judges every rule on
every group of series, moving each group's alert pending → firing → resolved.

Readings come in through ``observe`` (from the sample store, a collector, or a test); only the metrics some rule
names are kept, and only as far back as the longest window a rule looks at, so memory is bounded by
series × window, not by time. A rule matching on an exact label (a rack, a room) reads only that label's series.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aidc.monitoring.alerts.rules import AlertRule, Expr
from aidc.store.metadata.records import Alert, Sample, parse_labels

Key = tuple[str, str]  # (node, labels text): one series of one metric
STALE_S = 300.0  # an "average" rule's series count while their latest reading is this recent (Prometheus's 5m)


@dataclass
class Series:
    tags: dict[str, str]  # node, the reading's own labels, and where the node sits (rack, hall)
    points: deque[tuple[float, float]] = field(default_factory=deque)


@dataclass
class Active:
    """A group whose condition holds (pending or firing): what the store's row says, kept in memory."""

    id: str
    rule: AlertRule
    labels: dict[str, str]
    state: str
    started: float
    fired: float | None = None
    value: float = 0.0  # the value that fired it (while pending: the latest)
    last: float = 0.0


def _utc(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def fingerprint(rule_id: str, group: dict[str, str]) -> str:
    text = rule_id + "\0" + "\0".join(f"{k}={group[k]}" for k in sorted(group))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def matches(tags: dict[str, str], match: dict[str, str], regexes: dict[str, re.Pattern[str]]) -> bool:
    for key, want in match.items():
        have = tags.get(key, "")
        if want.startswith("=~"):
            if not regexes[want].fullmatch(have):
                return False
        elif want.startswith("!="):
            if have == want[2:]:
                return False
        elif have != want:
            return False
    return True


def _counter_increase(points: Sequence[tuple[float, float]]) -> float:
    """A counter's increase across ``points``, counting a reset (a value that fell) as a restart from zero."""
    total = 0.0
    for (_, a), (_, b) in zip(points, points[1:], strict=False):
        total += b - a if b >= a else b
    return total


class Evaluator:
    """Judges ``rules`` over the readings it has observed. ``places``: node → {rack, hall} from the facility spec."""

    def __init__(self, rules: Sequence[AlertRule], *, places: dict[str, dict[str, str]] | None = None) -> None:
        self.rules = list(rules)
        self.places = places or {}
        self.keep_s: dict[str, float] = {}  # metric → seconds of history its rules need (0: the latest only)
        for rule in self.rules:
            for metric in filter(None, (rule.expr.metric, rule.expr.divide_by)):
                need = rule.expr.window_s if rule.expr.kind in ("rate", "increase") else 0.0
                self.keep_s[metric] = max(self.keep_s.get(metric, 0.0), need)
        self.series: dict[str, dict[Key, Series]] = {m: {} for m in self.keep_s}
        self._index: dict[str, dict[tuple[str, str], list[Series]]] = {}
        self._regexes = {
            want: re.compile(want[2:])
            for rule in self.rules
            for want in rule.expr.match.values()
            if want.startswith("=~")
        }
        self.active: dict[tuple[str, str], Active] = {}
        # "average" rules: each group's aggregate, one point a round, over the rule's window — a day of PUE is a few
        # thousand numbers, not a day of every node's readings
        self._history: dict[tuple[str, str, tuple[str, ...]], deque[tuple[float, float]]] = {}

    @property
    def metrics(self) -> list[str]:
        return sorted(self.keep_s)

    # -- readings in
    def observe(self, samples: Iterable[Sample]) -> int:
        """Take readings (any order across series, oldest first within one); returns how many were kept."""
        kept = 0
        for s in samples:
            table = self.series.get(s.metric)
            if table is None or s.resolution:
                continue
            series = table.get((s.node, s.labels))
            if series is None:
                tags = {**self.places.get(s.node, {}), **parse_labels(s.labels), "node": s.node}
                series = table[(s.node, s.labels)] = Series(tags)
                self._index.pop(s.metric, None)
            points = series.points
            if points and s.at <= points[-1][0]:
                continue  # seen already (pulls overlap so that late writes are not missed)
            if self.keep_s[s.metric] == 0.0:
                points.clear()
            points.append((s.at, s.value))
            kept += 1
        return kept

    def _trim(self, now: float) -> None:
        for metric, keep in self.keep_s.items():
            if keep == 0.0:
                continue
            cutoff = now - keep
            for series in self.series[metric].values():
                points = series.points
                while len(points) > 1 and points[1][0] <= cutoff:
                    points.popleft()  # keep one reading at or before the window's start: rates span the window

    def _candidates(self, expr: Expr, metric: str) -> Iterable[Series]:
        exact = next(((k, v) for k, v in expr.match.items() if not v.startswith(("=~", "!="))), None)
        table = self.series.get(metric, {})
        if exact is None:
            return table.values()
        index = self._index.get(metric)
        if index is None:
            index = self._index[metric] = {}
            for series in table.values():
                for pair in series.tags.items():
                    index.setdefault(pair, []).append(series)
        return index.get(exact, ())

    # -- judging
    def _series_value(self, expr: Expr, points: deque[tuple[float, float]], now: float) -> float | None:
        if not points:
            return None
        window = expr.window_s
        if expr.kind in ("threshold", "average"):
            at, value = points[-1]
            return value if now - at <= (window if expr.kind == "threshold" else STALE_S) else None
        span = [p for p in points if p[0] <= now]
        if len(span) < 2 or now - span[-1][0] > window:
            return None
        increase = _counter_increase(span)
        if expr.kind == "increase":
            return increase
        seconds = span[-1][0] - span[0][0]
        return increase / seconds if seconds > 0 else None

    def _groups(self, expr: Expr, metric: str, now: float) -> dict[tuple[str, ...], float]:
        values: dict[tuple[str, ...], list[float]] = {}
        for series in self._candidates(expr, metric):
            if expr.match and not matches(series.tags, expr.match, self._regexes):
                continue
            if expr.kind == "absent":
                if series.points:
                    group = tuple(series.tags.get(k, "") for k in expr.by)
                    values.setdefault(group, []).append(series.points[-1][0])
                continue
            value = self._series_value(expr, series.points, now)
            if value is not None:
                values.setdefault(tuple(series.tags.get(k, "") for k in expr.by), []).append(value)
        if expr.kind == "absent":
            return {g: now - max(ats) for g, ats in values.items()}
        agg = expr.aggregate
        out = {}
        for group, vs in values.items():
            if agg == "sum":
                v = sum(vs)
            elif agg == "avg":
                v = sum(vs) / len(vs)
            elif agg == "max":
                v = max(vs)
            elif agg == "min":
                v = min(vs)
            else:
                v = float(len(vs))
            out[group] = v
        return out

    def _averaged(self, rule: AlertRule, metric: str, now: float) -> dict[tuple[str, ...], float]:
        """Each group's aggregate now, added to its history; the mean of the history over the rule's window."""
        out = {}
        for group, value in self._groups(rule.expr, metric, now).items():
            history = self._history.setdefault((rule.id, metric, group), deque())
            if not history or history[-1][0] < now:
                history.append((now, value))
        cutoff = now - rule.expr.window_s
        for (rid, m, group), history in list(self._history.items()):
            if rid != rule.id or m != metric:
                continue
            while history and history[0][0] < cutoff:
                history.popleft()
            if history:
                out[group] = sum(v for _, v in history) / len(history)
            else:
                del self._history[(rid, m, group)]
        return out

    def conditions(self, rule: AlertRule, now: float) -> dict[tuple[str, ...], float]:
        """The groups where ``rule``'s expression holds now, with their values."""
        expr = rule.expr
        if expr.kind == "average":
            values = self._averaged(rule, expr.metric, now)
            below = self._averaged(rule, expr.divide_by, now) if expr.divide_by else {}
        else:
            values = self._groups(expr, expr.metric, now)
            below = self._groups(expr, expr.divide_by, now) if expr.divide_by else {}
        if expr.divide_by:
            values = {g: v / below[g] for g, v in values.items() if below.get(g)}
        if expr.kind == "absent":
            return {g: v for g, v in values.items() if v > expr.window_s}
        return {g: v * expr.scale for g, v in values.items() if expr.holds(v * expr.scale)}

    def evaluate(self, now: float) -> list[dict[str, Any]]:
        """One round: every rule on every group. Returns the alerts that changed, as store rows (``id`` first)
        plus ``event``: pending, firing, resolved (after firing) or inactive (cleared while pending)."""
        self._trim(now)
        changes: list[dict[str, Any]] = []
        holding: set[tuple[str, str]] = set()
        for rule in self.rules:
            for group, value in self.conditions(rule, now).items():
                labels = dict(zip(rule.expr.by, group, strict=True))
                fp = fingerprint(rule.id, labels)
                holding.add((rule.id, fp))
                alert = self.active.get((rule.id, fp))
                if alert is None:
                    alert = Active(uuid.uuid4().hex, rule, labels, "pending", now, value=value, last=value)
                    self.active[(rule.id, fp)] = alert
                    if rule.for_s > 0:
                        changes.append(self._row(alert, fp, "pending", new=True))
                        continue
                    changes_new = True
                else:
                    changes_new = False
                    alert.last = value
                    if alert.state == "pending":
                        alert.value = value
                if alert.state == "pending" and now - alert.started >= rule.for_s:
                    alert.state, alert.fired, alert.value = "firing", now, value
                    changes.append(self._row(alert, fp, "firing", new=changes_new))
        for key in [k for k in self.active if k not in holding]:
            alert = self.active.pop(key)
            event = "resolved" if alert.state == "firing" else "inactive"
            changes.append(self._row(alert, key[1], event, new=False, ended=now))
        return changes

    def _row(self, a: Active, fp: str, event: str, *, new: bool, ended: float | None = None) -> dict[str, Any]:
        rule = a.rule
        labels = {**rule.labels, **a.labels, "alertname": rule.name, "severity": rule.severity}
        row: dict[str, Any] = {
            "id": a.id,
            "state": event,
            "value": a.value,
            "summary": rule.describe(a.labels, a.value if event != "resolved" else a.last),
            "fired_at": _utc(a.fired),
            "resolved_at": _utc(ended),
        }
        if new:
            row |= {
                "fingerprint": fp,
                "rule": rule.id,
                "origin": rule.origin,
                "severity": rule.severity,
                "labels": labels,
                "project": a.labels.get("project") or rule.labels.get("project"),
                "runbook": rule.fill(rule.runbook, a.labels, a.value),
                "threshold": None if rule.expr.kind == "absent" else rule.expr.value,
                "started_at": _utc(a.started),
            }
        return row | {
            "event": event,
            "rule": rule.id,
            "labels": labels,
            "rule_name": rule.name,
            "severity": rule.severity,
        }

    def resume(self, open_alerts: Iterable[Alert]) -> int:
        """Take up the alerts a previous evaluator left pending or firing (after a server restart)."""
        rules = {r.id: r for r in self.rules}
        n = 0
        for alert in open_alerts:
            rule = rules.get(alert.rule)
            if rule is None:
                continue  # its rule is gone: the next round's resolve pass cannot reach it; leave it as it was
            group = {k: str(alert.labels.get(k, "")) for k in rule.expr.by}
            fp = fingerprint(rule.id, group)
            self.active[(rule.id, fp)] = Active(
                alert.id,
                rule,
                group,
                alert.state,
                alert.started_at.timestamp(),
                alert.fired_at.timestamp() if alert.fired_at else None,
                alert.value or 0.0,
                alert.value or 0.0,
            )
            n += 1
        return n


STORE_FIELDS = (
    "id", "fingerprint", "rule", "origin", "severity", "state", "labels", "project", "summary", "runbook", "value",
    "threshold", "started_at", "fired_at", "resolved_at",
)  # fmt: skip


def store_row(change: dict[str, Any]) -> dict[str, Any]:
    """The part of a change the store keeps (``inactive`` — cleared before it fired — is stored as that state)."""
    return {k: v for k, v in change.items() if k in STORE_FIELDS}
