"""One-line rules: every rack carried within ratings (N), and redundancy proven by taking parts out (CM, FT).

The verdicts come from the failure analysis in ``aidc.facility.failure``; a finding names the element
whose loss breaks the rule and the racks that lose power, and points at that element in the spec.
"""

from __future__ import annotations

from typing import Any

from aidc.facility.failure import PowerAnalysis, Shortfall, survives
from aidc.standards.rule import Context, Outcome, rule

UT = "Uptime Institute Tier Standard: Topology (2018 edition)"
GB = "GB 50174-2017"
_TIER = {"I": 1, "II": 2, "III": 3, "IV": 4}


def _analysis(ctx: Context) -> PowerAnalysis | None:
    a = ctx.derived.power
    return a if a is not None and ctx.derived.racks else None


def _where(a: PowerAnalysis, s: Shortfall) -> tuple[Any, ...]:
    for name in s.removed:
        e = a.oneline.elements.get(name)
        if e is not None and e.path:
            return e.path
    return ("power",)


def _outcomes(a: PowerAnalysis, shortfalls: list[Shortfall], expected: str, what: str) -> list[Outcome]:
    if not shortfalls:
        n = sum(1 for e in a.oneline.elements.values() if e.kind != "load")
        return [Outcome(True, f"{what} of any of {n} elements: every rack served", expected, ("power",), "one-line")]
    return [
        Outcome(
            False,
            s.describe(named=False),
            expected,
            _where(a, s),
            f"loss of {s.element}" if s.removed else "in service",
        )
        for s in shortfalls
    ]


@rule(
    "PWR-ONELINE-N",
    "Every rack gets its load through the one-line with everything in service",
    family="power",
    standard=UT,
    clause="§2.1 Tier I: capacity components and distribution path for the IT load (N), on each source",
    remediation="Raise the rating of the element that limits the flow (UPS modules, PDUs, transformers) or "
    "cord the short racks to another path.",
)
def oneline_n(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    a = _analysis(ctx)
    if a is None or ctx.derived.it_load_kw <= 0:
        return None
    return _outcomes(a, a.normal, "every rack within ratings, on each source", "none")


@rule(
    "AV-UT-CM",
    "Concurrent maintainability, proven by taking each element out",
    family="availability",
    standard=UT,
    clause="§2.3 Tier III: each and every capacity component and distribution element can be removed from "
    "service on a planned basis without impact to the IT",
    remediation="Give the element named a redundant twin on another path (a second switchgear, UPS system, "
    "PDU) and cord the racks to both, or add a manual alternate path around it.",
)
def uptime_cm(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    a = _analysis(ctx)
    if a is None or _TIER.get(ctx.targets.uptime or "", 0) < 3:
        return None
    return _outcomes(a, a.normal + a.maintenance, "every rack within ratings with any one element out", "removal")


@rule(
    "AV-UT-FT",
    "Fault tolerance, proven by failing each element on generator power",
    family="availability",
    standard=UT,
    clause="§2.4 Tier IV: the failure of any one capacity component or distribution element leaves N to the "
    "IT, with no manual intervention",
    remediation="Make the element named one of two independent systems, each able to carry the load alone, "
    "with automatic transfer (dual-corded racks or STS) and no shared bus downstream of both.",
)
def uptime_ft(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    a = _analysis(ctx)
    if a is None or ctx.targets.uptime != "IV":
        return None
    return _outcomes(a, a.normal + a.faults, "every rack within ratings after any one fault", "failure")


def ups_margin(ctx: Context, level: str, factor: float) -> Shortfall | None:
    """The UPS stage alone (others unlimited) carrying factor × the racks at ``level``; None when it does."""
    a = ctx.derived.power
    return None if a is None else survives(a.oneline, "ups", level, factor)
