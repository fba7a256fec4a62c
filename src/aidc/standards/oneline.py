"""One-line and cooling-chain rules: loads carried within ratings (N), redundancy proven by taking parts out.

The verdicts come from the failure analysis in ``aidc.facility.failure``; a finding names the element
whose loss breaks the rule and the racks (or halls) that lose power or cooling, and points at that element
in the spec.
"""

from __future__ import annotations

from typing import Any

from aidc.facility.failure import PowerAnalysis, Shortfall, survives
from aidc.standards.rule import Context, Outcome, rule

UT = "Uptime Institute Tier Standard: Topology (2018 edition)"
_TIER = {"I": 1, "II": 2, "III": 3, "IV": 4}
_CHAINS = (("power", "one-line", ("power",)), ("cooling", "cooling chain", ("cooling", "units")))


def _where(a: PowerAnalysis, s: Shortfall, default: tuple[Any, ...]) -> tuple[Any, ...]:
    for name in s.removed:
        e = a.oneline.elements.get(name)
        if e is not None and e.path:
            return e.path
    return default


def _outcomes(
    a: PowerAnalysis, shortfalls: list[Shortfall], expected: str, what: str, chain: str, path: tuple[Any, ...]
) -> list[Outcome]:
    if not shortfalls:
        n = sum(1 for e in a.oneline.elements.values() if e.kind != "load")
        served = "every rack served" if chain == "one-line" else "every hall cooled"
        return [Outcome(True, f"{what} of any of {n} elements: {served}", expected, path, chain)]
    return [
        Outcome(
            False,
            s.describe(named=False),
            expected,
            _where(a, s, path),
            # Short, element first: narrow terminal tables cut the subject column.
            (f"without {s.element}" if s.removed else "all in service") + ("" if chain == "one-line" else " (cooling)"),
        )
        for s in shortfalls
    ]


def _chains(ctx: Context, pick: str) -> list[Outcome] | None:
    """The power one-line's and (when drawn) the cooling chain's failures: under maintenance or faults."""
    if not ctx.derived.racks or ctx.derived.power is None:
        return None
    out: list[Outcome] = []
    for attr, chain, path in _CHAINS:
        a: PowerAnalysis | None = getattr(ctx.derived, attr)
        if a is None:
            continue
        found = a.normal + (a.maintenance if pick == "maintenance" else a.faults)
        verb = "out" if pick == "maintenance" else "failed"
        what = "removal" if pick == "maintenance" else "failure"
        out += _outcomes(a, found, f"every rack and hall served with any one element {verb}", what, chain, path)
    return out


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
    a = ctx.derived.power
    if a is None or not ctx.derived.racks or ctx.derived.it_load_kw <= 0:
        return None
    return _outcomes(a, a.normal, "every rack within ratings, on each source", "none", "one-line", ("power",))


@rule(
    "ENV-COOL-CHAIN",
    "Every hall's heat is carried through its cooling chain (units in series limit it)",
    family="environment",
    standard=UT,
    clause="§2.1 Tier I: cooling capacity components (N) and distribution for the design heat load",
    remediation="Raise the stage named (terminal units, pumps, chillers or heat rejection) on the path to the "
    "hall, or connect the hall's units to more upstream capacity (fed_by).",
)
def cooling_chain(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    a = ctx.derived.cooling
    if a is None or ctx.derived.it_load_kw <= 0:
        return None
    return _outcomes(a, a.normal, "every hall's heat removed", "none", "cooling chain", ("cooling", "units"))


@rule(
    "AV-UT-CM",
    "Concurrent maintainability, proven by taking each element out",
    family="availability",
    standard=UT,
    clause="§2.3 Tier III: each and every capacity component and distribution element can be removed from "
    "service on a planned basis without impact to the IT",
    remediation="Give the element named a redundant twin on another path (a second switchgear, UPS system, "
    "PDU, pump or CRAH) and connect the racks or hall to both, or add a manual alternate path around it.",
)
def uptime_cm(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    if _TIER.get(ctx.targets.uptime or "", 0) < 3:
        return None
    return _chains(ctx, "maintenance")


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
    if ctx.targets.uptime != "IV":
        return None
    return _chains(ctx, "faults")


def ups_margin(ctx: Context, level: str, factor: float) -> Shortfall | None:
    """The UPS stage alone (others unlimited) carrying factor × the racks at ``level``; None when it does."""
    a = ctx.derived.power
    return None if a is None else survives(a.oneline, "ups", level, factor)
