"""``aidc alerts export``: the same rules — shipped, site and derived from the facility spec — as a Prometheus rule
file over the names the server's ``/metrics`` exposes, for a site that already runs Prometheus and Alertmanager.

What Prometheus cannot see is said, not guessed: a rule over a metric ``/metrics`` does not expose is left out and
named in the file's header. Racks and rooms are not labels of a node's series there, so a rule on a rack selects
that rack's nodes by name (from the spec) and carries ``rack`` as a static label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import yaml

from aidc.monitoring.alerts.engine import matches
from aidc.monitoring.alerts.rules import AlertRule, Expr, duration_text
from aidc.monitoring.metrics import NODE_METRICS

PLACE_LABELS = ("rack", "hall")  # from the spec, not on a node's series in /metrics
_FIELD = re.compile(r"\{(\w+)(?::([^}]*))?\}")


def exposed_name(metric: str) -> str | None:
    """The name ``/metrics`` gives a stored metric (counters keep their ``_total``), or None if it is not exposed."""
    if metric in NODE_METRICS:
        return "aidc_" + metric
    return None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _selector(
    metric: str, expr: Expr, places: dict[str, dict[str, str]]
) -> tuple[str | None, dict[str, str], str | None]:
    """(PromQL selector, static labels it implies, why it cannot be written)."""
    name = exposed_name(metric)
    if name is None:
        return None, {}, f"{metric} is not exposed on /metrics"
    parts: list[str] = []
    static: dict[str, str] = {}
    place_match = {k: v for k, v in expr.match.items() if k in PLACE_LABELS}
    if place_match:
        regexes = {v: re.compile(v[2:]) for v in place_match.values() if v.startswith("=~")}
        nodes = sorted(n for n, p in places.items() if matches(p, place_match, regexes))
        if not nodes:
            return None, {}, "no node of the facility spec sits there"
        parts.append(f"node=~{_quote('|'.join(re.escape(n) for n in nodes))}")
        static = {k: v for k, v in place_match.items() if not v.startswith(("=~", "!="))}
    for key, want in expr.match.items():
        if key in PLACE_LABELS:
            continue
        if want.startswith("=~"):
            parts.append(f"{key}=~{_quote(want[2:])}")
        elif want.startswith("!="):
            parts.append(f"{key}!={_quote(want[2:])}")
        else:
            parts.append(f"{key}={_quote(want)}")
    return name + ("{" + ",".join(parts) + "}" if parts else ""), static, None


def promql(rule: AlertRule, places: dict[str, dict[str, str]]) -> tuple[str | None, dict[str, str], str | None]:
    """The rule's expression in PromQL, the static labels to add, or why it has none."""
    expr = rule.expr
    by = [b for b in expr.by if b not in PLACE_LABELS]
    grouping = f" by ({', '.join(by)})" if by else ""
    sel, static, why = _selector(expr.metric, expr, places)
    if sel is None:
        return None, {}, why
    window = duration_text(expr.window_s)
    if expr.kind == "absent":
        # seen within the hour, silent now: the series left /metrics (the server shows fresh readings only)
        return f"count{grouping} (last_over_time({sel}[1h])) unless count{grouping} ({sel})", static, None

    def inner(selector: str) -> str:
        if expr.kind == "average":
            return f"avg_over_time({selector}[{window}])"
        if expr.kind in ("rate", "increase"):
            return f"{expr.kind}({selector}[{window}])"
        return selector

    text = f"{expr.aggregate}{grouping} ({inner(sel)})"
    if expr.divide_by:
        below, _, why = _selector(expr.divide_by, expr, places)
        if below is None:
            return None, {}, why
        text = f"{text} / {expr.aggregate}{grouping} ({inner(below)})"
    if expr.scale != 1.0:
        text = f"({text}) * {expr.scale:g}"
    return f"{text} {expr.op} {expr.value:g}", static, None


def _template(rule: AlertRule, text: str, static: dict[str, str]) -> str:
    """A rule's text in Prometheus's template language: {value} → $value, {node} → $labels.node; a rack or room
    is written in where the rule names one (they are not labels of the series Prometheus sees)."""

    def field(m: re.Match[str]) -> str:
        name, spec = m.group(1), m.group(2) or ""
        if name == "threshold":
            return format(rule.expr.value, spec)
        if name in static:
            return static[name]
        if name in PLACE_LABELS:
            return f"its {name}"
        if name == "value" and rule.expr.kind == "absent":
            return f"more than {rule.expr.window_s:g}"
        if name == "value":
            if spec.endswith("%"):
                return "{{ $value | humanizePercentage }}"
            return '{{ printf "%' + spec + '" $value }}' if spec.endswith("f") else "{{ $value }}"
        return "{{ $labels." + name + " }}"

    return _FIELD.sub(field, text)


def prometheus_rule_file(
    rules: Sequence[AlertRule], places: dict[str, dict[str, str]], *, interval_s: float = 10
) -> str:
    """A rule file ``promtool check rules`` accepts: one group per origin (facility, platform, site)."""
    groups: dict[str, list[dict[str, object]]] = {}
    skipped: list[str] = []
    for rule in rules:
        text, static, why = promql(rule, places)
        if text is None:
            skipped.append(f"{rule.id}: {why}")
            continue
        item: dict[str, object] = {"alert": rule.name, "expr": text}
        if rule.for_s > 0:
            item["for"] = duration_text(rule.for_s)
        item["labels"] = {**rule.labels, **static, "severity": rule.severity, "origin": rule.origin}
        annotations = {"summary": _template(rule, rule.summary or rule.name, static)}
        if rule.runbook:
            annotations["runbook"] = _template(rule, rule.runbook, static)
        item["annotations"] = annotations
        groups.setdefault(rule.origin, []).append(item)
    doc = {
        "groups": [
            {"name": f"aidc-{origin}", "interval": duration_text(interval_s), "rules": items}
            for origin, items in groups.items()
        ]
    }
    header = [
        "# aidc alert rules for Prometheus (aidc alerts export): the shipped, site and facility-derived rules",
        "# over the names aidc's /metrics exposes. Scrape the server with a token that holds nodes:read.",
    ]
    if skipped:
        header.append("# Left out (Prometheus cannot see what they watch; aidc's own evaluator judges them):")
        header += [f"#   {s}" for s in skipped]
    body: str = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
    return "\n".join(header) + "\n" + body
