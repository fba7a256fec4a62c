"""What a rule is (data plus one small function), what it reports (outcomes, findings), and the registry.

A rule module declares rules with ``@rule(...)``; importing the module registers them. User rule modules
(entry point group ``aidc.rules`` or a path under ``checks.rule_modules``) use the very same decorator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from aidc.facility.derived import Derived
    from aidc.facility.model import Facility, Targets

Severity = Literal["error", "warning", "info"]
Status = Literal["pass", "fail", "warn", "info"]
FAMILIES = ("availability", "environment", "energy", "power", "network", "security", "physical", "plausibility")


@dataclass(frozen=True)
class Context:
    """What a rule looks at: the facility, its derived quantities, and the effective targets."""

    facility: Facility
    derived: Derived
    targets: Targets
    ratings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Rating tables built once per check for the rules that report them row by row (TIA-942's, by subsystem).
    tables: dict[str, Any] = field(default_factory=dict)

    @property
    def in_china(self) -> bool:
        return self.facility.site.country == "CN"


@dataclass(frozen=True)
class Outcome:
    """One measurement against one threshold; ``path`` points at the spec node to change."""

    ok: bool
    measured: Any
    expected: Any
    path: tuple[str | int, ...] = ()
    subject: str = ""
    note: str = ""


CheckResult = Outcome | Iterable[Outcome] | None
CheckFn = Callable[[Context, dict[str, Any]], CheckResult]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    family: str
    standard: str
    clause: str
    severity: Severity
    remediation: str
    fn: CheckFn
    thresholds: dict[str, Any]
    inferred: tuple[str, ...] = ()
    module: str = ""
    read: bool = False

    def citation(self, overridden: Iterable[str] = ()) -> str:
        """``standard clause``, saying which thresholds are recalled defaults (inf) or user overrides."""
        text = f"{self.standard} {self.clause}".strip()
        if not self.read and not self.standard.startswith("none"):
            # Honesty about sources: the clause was recalled from secondary sources, not checked in the text.
            text += "; text not read, clause recalled: verify against the standard"
        over = sorted(set(overridden))
        inferred = [n for n in self.inferred if n not in over]
        if inferred:
            text += f"; default threshold ({', '.join(inferred)}) is (inf), overridable in checks.thresholds"
        if over:
            text += f"; threshold overridden in the spec ({', '.join(over)})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "family": self.family,
            "standard": self.standard,
            "clause": self.clause,
            "severity": self.severity,
            "remediation": self.remediation,
            "thresholds": self.thresholds,
            "inferred": list(self.inferred),
            "citation": self.citation(),
            "read": self.read,
        }


@dataclass(frozen=True)
class Finding:
    """A rule's verdict on one subject, with where in the spec it points (line/col when known)."""

    rule: Rule
    status: Status
    measured: Any
    expected: Any
    subject: str
    note: str
    path: tuple[str | int, ...]
    citation: str
    line: int | None = None
    col: int | None = None

    @property
    def message(self) -> str:
        who = f"{self.subject}: " if self.subject else ""
        text = f"{who}measured {fmt(self.measured)}, required {fmt(self.expected)}"
        return f"{text} — {self.note}" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        from aidc.specfile import format_path

        return {
            "rule": self.rule.id,
            "title": self.rule.title,
            "family": self.rule.family,
            "severity": self.rule.severity,
            "status": self.status,
            "subject": self.subject,
            "measured": self.measured,
            "expected": self.expected,
            "note": self.note,
            "standard": self.rule.standard,
            "clause": self.rule.clause,
            "citation": self.citation,
            "remediation": self.rule.remediation if self.status != "pass" else "",
            "field": format_path(self.path),
            "line": self.line,
            "col": self.col,
        }


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def count(n: int, noun: str) -> str:
    """``n`` of ``noun`` as a finding says it: "1 unit", "2 units", "0 NICs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


REGISTRY: dict[str, Rule] = {}


def rule(
    id: str,
    title: str,
    *,
    family: str,
    standard: str,
    clause: str,
    remediation: str,
    severity: Severity = "error",
    thresholds: dict[str, Any] | None = None,
    inferred: Iterable[str] = (),
    read: bool = False,
) -> Callable[[CheckFn], Rule]:
    """Declare a rule: ``fn(ctx, t)`` returns Outcome(s), or None when the rule does not apply.

    ``read=True`` only where the clause was checked in the standard's own text; otherwise the citation says
    it was recalled.
    """

    def register(fn: CheckFn) -> Rule:
        r = Rule(
            id=id,
            title=title,
            family=family,
            standard=standard,
            clause=clause,
            severity=severity,
            remediation=remediation,
            fn=fn,
            thresholds=dict(thresholds or {}),
            inferred=tuple(inferred),
            module=fn.__module__,
            read=read,
        )
        REGISTRY[id] = r
        return r

    return register


def builtin_rules() -> list[Rule]:
    """The catalog shipped with aidc (importing the family modules registers them)."""
    from aidc.standards import (  # noqa: F401  (imported for their @rule side effect)
        availability,
        cabling,
        en50600,
        energy,
        environment,
        network,
        oneline,
        physical,
        plausibility,
        power,
        security,
        tia942,
    )

    return [r for r in REGISTRY.values() if r.module.startswith("aidc.standards.")]
