"""Power rules: UPS ≥ 1.1 × IT load, redundancy multipliers, separate IT/cooling UPS groups, rack budgets, upstream capacity."""

from __future__ import annotations

from typing import Any

from aidc.facility.derived import Redundancy, redundancy
from aidc.standards.oneline import ups_margin
from aidc.standards.rule import Context, Outcome, rule

GB = "GB 50174-2017"
_TIER_UPS = {"I": "N", "II": "N+1", "III": "N+1", "IV": "2N"}
_GB_UPS = {"A": "2N", "B": "N+1", "C": "N"}


def usable_kw(r: Redundancy) -> float:
    """Capacity left once redundant units are set aside: one full path for 2N, N units for N+X.

    Units on one path that the one-line proves fault tolerant (three PDUs, any one of which may be lost) are N+X
    there: dividing by their one path reported all three as usable.
    """
    if r.fault_tolerant and r.paths >= 2:
        return r.capacity_kw / r.paths
    if r.units == 0:
        return 0.0
    return r.capacity_kw * r.n / r.units


@rule(
    "PWR-UPS-CAP",
    "UPS capacity ≥ 1.1 × IT load",
    family="power",
    standard=GB,
    clause="§8.1 UPS basic capacity E ≥ 1.1 P (P = IT load)",
    read=True,
    thresholds={"factor": 1.1},
    remediation="Add UPS modules until capacity without the redundant ones is at least 1.1 × the IT load.",
)
def ups_capacity(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    d = ctx.derived
    if d.it_load_kw <= 0:
        return None
    need = t["factor"] * d.it_load_kw
    # Basic capacity is the capacity of one system: the UPS stage alone (other stages unlimited) must carry
    # 1.1 × each rack's load through its cords; where the target asks for 2N it must still do so with any
    # one whole UPS system out. (Whether a spare module exists is AV-UT-UPS's question, not this one.)
    # Pooling modules across paths made two too-small sides of a "2N" look sufficient.
    wanted = _TIER_UPS.get(ctx.targets.uptime or "") or _GB_UPS.get(ctx.targets.gb50174 or "") or "N"
    level = "2N" if wanted.startswith("2") else "N"
    short = ups_margin(ctx, level, t["factor"])
    p = ctx.facility.power
    units = [(u.path, u.module_kw * u.derate) for u in p.ups if u.serves in ("it", "mixed") for _ in range(u.modules)]
    # A one-line design declares its UPS systems as components (each its own path), not under power.ups: without
    # them a design that passes read "0 kW usable (none)".
    units += [
        (c.name, c.unit_kw) for c in p.components if c.kind == "ups" and c.serves != "cooling" for _ in range(c.units)
    ]
    ups = redundancy("ups", units, need)
    expected = f"≥ {need:,.0f} kW" + (" with any one UPS system out" if level == "2N" else "")
    if short is not None:
        delivered = short.rack_demand_kw - short.rack_short_kw
        lost = f", {short.element} out" if short.removed else ""
        return Outcome(
            False, f"{delivered:,.0f} kW usable ({ups.scheme}{lost})", expected, ("power", "ups"), note=short.describe()
        )
    return Outcome(True, f"{usable_kw(ups):,.0f} kW usable ({ups.scheme})", expected, ("power", "ups"))


@rule(
    "PWR-UPS-MULT",
    "Installed UPS covers the redundancy multiplier of the target",
    family="power",
    standard=GB,
    clause="§8.1 E ≥ 1.1 P applied to Annex A (Table A, UPS configuration): N+1 → +1 module, 2N → ×2",
    thresholds={"factor": 1.1},
    remediation="Install the capacity the target's redundancy implies: twice the sized capacity for 2N, one "
    "extra module for N+1.",
)
def ups_multiplier(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    level = _TIER_UPS.get(ctx.targets.uptime or "") or _GB_UPS.get(ctx.targets.gb50174 or "")
    d = ctx.derived
    ups = [u for u in ctx.facility.power.ups if u.serves in ("it", "mixed")]
    if level is None or d.it_load_kw <= 0 or not ups:
        return None
    base = t["factor"] * d.it_load_kw
    largest = max(u.module_kw * u.derate for u in ups)
    need = base * 2 if level.startswith("2") else base + largest * (int(level[2:]) if "+" in level else 0)
    have = d.systems["ups"].capacity_kw
    return Outcome(have >= need, f"{have:,.0f} kW installed", f"≥ {need:,.0f} kW for {level}", ("power", "ups"))


@rule(
    "PWR-UPS-SPLIT",
    "IT and cooling loads on separate UPS groups",
    family="power",
    standard=GB,
    clause="§8.1: cooling loads and IT loads must not share one UPS group",
    read=True,
    remediation="Give fans, pumps and CRAHs their own UPS group (serves: cooling) instead of a mixed one.",
)
def ups_split(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    ups = ctx.facility.power.ups
    return [
        Outcome(u.serves != "mixed", u.serves, "it or cooling, not mixed", ("power", "ups", i, "serves"), u.name)
        for i, u in enumerate(ups)
    ] or None


@rule(
    "PWR-RACK-BUDGET",
    "Rack load within its power budget",
    family="power",
    standard="none (consistency of the spec: rack load against its own declared budget)",
    clause="rack kW = Σ node max kW ≤ power_budget_kw",
    remediation="Move nodes to another rack or raise the rack's feed (and cooling) budget.",
)
def rack_budget(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    out = []
    for _, rack in ctx.facility.racks():
        kw = ctx.derived.rack_load_kw.get(rack.name, 0.0)
        out.append(
            Outcome(
                kw <= rack.power_budget_kw,
                f"{kw:,.1f} kW",
                f"≤ {rack.power_budget_kw:g} kW",
                ctx.derived.rack_path[rack.name] + ("power_budget_kw",),
                rack.name,
            )
        )
    return out or None


def _capacity(ctx: Context, system: str, path: tuple[Any, ...], what: str) -> Outcome | None:
    r = ctx.derived.systems[system]
    if r.load_kw <= 0 or not r.present:
        return None
    # Only the facility load (IT × design PUE) rests on an assumed PUE; the PDUs carry the IT load alone.
    assumed = what == "facility" and not ctx.derived.design_pue_declared
    note = f"facility load assumes PUE {ctx.derived.design_pue} (inf)" if assumed else ""
    return Outcome(
        usable_kw(r) >= r.load_kw,
        f"{usable_kw(r):,.0f} kW usable of {r.capacity_kw:,.0f}",
        f"≥ {r.load_kw:,.0f} kW {what}",
        path,
        note=note,
    )


@rule(
    "PWR-GEN-CAP",
    "Generators carry the facility load",
    family="power",
    standard="Uptime Institute Tier Standard: Topology (2018 edition)",
    clause="§3.1 engine generators are the primary source, sized for N facility load",
    remediation="Add generator capacity for IT plus cooling (IT × design PUE).",
)
def generator_capacity(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if ctx.derived.it_load_kw > 0 and not ctx.derived.systems["generators"].present and ctx.targets.uptime:
        return Outcome(False, "no generators", "generators for the facility load", ("power", "generators"))
    return _capacity(ctx, "generators", ("power", "generators"), "facility")


@rule(
    "PWR-XFMR-CAP",
    "Transformers carry the facility load",
    family="power",
    standard=GB,
    clause="§8.1 (transformer capacity) for the computed load",
    remediation="Add transformer capacity (or a larger unit) for IT plus cooling.",
)
def transformer_capacity(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    return _capacity(ctx, "transformers", ("power", "transformers"), "facility")


@rule(
    "PWR-FEED-CAP",
    "Utility feeds carry the facility load",
    family="power",
    standard=GB,
    clause="§8.1 (utility supply) capacity for the computed load",
    remediation="Ask the utility for more capacity on each feed, so one feed can carry the facility.",
)
def feed_capacity(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    return _capacity(ctx, "utility_feeds", ("power", "utility_feeds"), "facility")


@rule(
    "PWR-PDU-CAP",
    "PDUs carry the IT load",
    family="power",
    standard="Uptime Institute Tier Standard: Topology (2018 edition)",
    clause="§2.1 distribution path sized for the IT load (N); §2.3 each path for the whole load",
    remediation="Add PDUs/RPPs so each path can carry the IT load alone.",
)
def pdu_capacity(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    return _capacity(ctx, "pdus", ("power", "pdus"), "IT")
