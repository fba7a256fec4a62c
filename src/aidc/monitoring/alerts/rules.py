"""Alert rules as YAML: a severity, a ``for:`` duration, labels, a runbook, and an expression over stored metrics.

An expression is a threshold on a metric's latest value, a counter's rate or increase over a window, or the absence
of a series (a heartbeat lost), grouped ``by`` labels (node, rack, hall, gpu…) and aggregated across each group.
The same model is what the facility spec's rules are derived into and what ``aidc alerts export`` writes as PromQL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aidc.specfile import read_yaml, validate

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SHIPPED = Path(__file__).with_name("platform.yaml")


def seconds(text: str | float | int) -> float:
    """``30s``, ``5m``, ``1h``, ``7d`` (Prometheus's units) or a number of seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration: write a number and a unit, e.g. 30s, 5m, 1h, 7d")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def duration_text(s: float) -> str:
    """Seconds as the shortest Prometheus duration (``300`` → ``5m``)."""
    for unit in ("d", "h", "m", "s"):
        if s >= _UNIT_S[unit] and s % _UNIT_S[unit] == 0:
            return f"{int(s // _UNIT_S[unit])}{unit}"
    return f"{int(s * 1000)}ms"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


class Expr(_Spec):
    """What a rule watches. ``match``: label → value (``=~`` prefix: a regex, ``!=``: not this value)."""

    kind: Literal["threshold", "average", "rate", "increase", "absent"] = "threshold"
    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    match: dict[str, str] = Field(default_factory=dict)
    by: list[str] = Field(default_factory=lambda: ["node"], description="labels one alert stands for")
    aggregate: Literal["max", "min", "sum", "avg", "count"] = "max"
    divide_by: str | None = Field(None, description="a metric to divide by, group by group (used / total)")
    scale: float = Field(1.0, description="multiplies the value before it is compared (W → kW: 0.001)")
    op: Literal[">", ">=", "<", "<="] = ">"
    value: float = 0.0
    window: str = Field(
        "5m",
        description="average: the group's mean over this; rate/increase: over this; absent: silent this long; threshold: "
        "older readings are stale",
    )

    @field_validator("window")
    @classmethod
    def _duration(cls, v: str) -> str:
        seconds(v)
        return v

    @field_validator("match")
    @classmethod
    def _regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for key, want in v.items():
            if want.startswith("=~"):
                try:
                    re.compile(want[2:])
                except re.error as exc:
                    raise ValueError(f"match.{key}: {want[2:]!r} is not a regular expression ({exc})") from None
        return v

    @property
    def window_s(self) -> float:
        return seconds(self.window)

    def holds(self, value: float) -> bool:
        if self.op == ">":
            return value > self.value
        if self.op == ">=":
            return value >= self.value
        if self.op == "<":
            return value < self.value
        return value <= self.value


class AlertRule(_Spec):
    """One rule: when ``expr`` holds for a group for ``for``, that group's alert fires."""

    name: str
    severity: Severity = "warning"
    for_: str = Field("0s", alias="for")
    expr: Expr
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str = Field("", description="{value}, {threshold} and the group's labels ({rack}, {node}…) fill in")
    runbook: str = ""
    origin: Literal["facility", "platform", "site"] = "site"
    key: str | None = Field(None, description="set where one name has several rules (one per rack): name:rack")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r}: a rule name is letters, digits and _ (it becomes Prometheus's alertname)")
        return v

    @field_validator("for_")
    @classmethod
    def _for(cls, v: str) -> str:
        seconds(v)
        return v

    @property
    def id(self) -> str:
        return self.key or self.name

    @property
    def for_s(self) -> float:
        return seconds(self.for_)

    def describe(self, group: dict[str, str], value: float) -> str:
        """The summary with the group's labels, the value and the threshold filled in (unknown names stay as written)."""
        return self.fill(self.summary, group, value) if self.summary else _default_summary(self, group, value)

    def fill(self, text: str, group: dict[str, str], value: float) -> str:
        fields: dict[str, object] = {**group, "value": value, "threshold": self.expr.value, "rule": self.name}
        try:
            return text.format_map(_Keep(fields))
        except (ValueError, TypeError, IndexError, KeyError):
            return text


class _Keep(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _default_summary(rule: AlertRule, group: dict[str, str], value: float) -> str:
    where = ", ".join(f"{k}={v}" for k, v in group.items()) or "everywhere"
    return f"{rule.name} on {where}: {value:g} {rule.expr.op} {rule.expr.value:g}"


class RuleFile(_Spec):
    """A rules file: the shipped platform rules, or a site's (``aidc server --alert-rules FILE``)."""

    rules: list[AlertRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> RuleFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule {rule.name!r} is defined twice: give each rule its own name")
            seen.add(rule.name)
        return self


def load_rules(path: str | Path, origin: Literal["platform", "site"] = "site") -> list[AlertRule]:
    """Rules from a YAML file; every problem names its file:line:col and field."""
    source = read_yaml(path)
    rules = validate(RuleFile, source).rules
    return [r.model_copy(update={"origin": origin}) for r in rules]


def shipped_rules() -> list[AlertRule]:
    """The platform rules aidc ships: nodes, GPUs, disks, jobs, serving."""
    return load_rules(SHIPPED, origin="platform")


def combine(*sets: list[AlertRule]) -> list[AlertRule]:
    """Rule sets in order of precedence, later ones first: a site rule of a shipped rule's name replaces it."""
    by_name: dict[str, AlertRule] = {}
    for rules in sets:
        for rule in rules:
            by_name[rule.id] = rule
    return list(by_name.values())
