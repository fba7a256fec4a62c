"""Plausibility screen: values no real equipment has (watts typed into `_kw` fields, a hall with no load).

These are not requirements of any standard; they catch a spec that would make every other verdict
meaningless. Bounds are set well above the largest equipment on the market, so they only fire on typos.
"""

from __future__ import annotations

from typing import Any

from aidc.standards.rule import Context, Outcome, rule

SCREEN = "none (plausibility screen, not a standard)"


def _above(value: float, limit: float, path: tuple[Any, ...], subject: str) -> Outcome:
    return Outcome(
        value <= limit,
        f"{value:,.1f} kW",
        f"≤ {limit:,.0f} kW",
        path,
        subject,
        "" if value <= limit else "looks like watts typed into a kW field",
    )


@rule(
    "PLAUS-NODE-KW",
    "Server power is plausible",
    family="plausibility",
    standard=SCREEN,
    clause="bound: one node ≤ 250 kW (an NVL72 rack modelled as one node draws ≈ 132 kW)",
    severity="warning",
    thresholds={"max_node_kw": 250.0},
    remediation="Give nominal_kw and max_kw in kilowatts (10.2, not 10200).",
)
def node_kw(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    return [
        _above(n.max_kw, t["max_node_kw"], ("nodes", i, "max_kw"), n.name) for i, n in enumerate(ctx.facility.nodes)
    ] or None


@rule(
    "PLAUS-RACK-KW",
    "Rack power is plausible",
    family="plausibility",
    standard=SCREEN,
    clause="bound: one rack ≤ 1,000 kW (the densest announced racks are ≈ 600 kW)",
    severity="warning",
    thresholds={"max_rack_kw": 1000.0},
    remediation="Give power_budget_kw in kilowatts, and check node counts per rack.",
)
def rack_kw(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    out = []
    for _, rack in ctx.facility.racks():
        kw = max(rack.power_budget_kw, ctx.derived.rack_load_kw.get(rack.name, 0.0))
        out.append(_above(kw, t["max_rack_kw"], ctx.derived.rack_path[rack.name] + ("power_budget_kw",), rack.name))
    return out or None


@rule(
    "PLAUS-UNIT-KW",
    "Power and cooling unit ratings are plausible",
    family="plausibility",
    standard=SCREEN,
    clause="bounds per unit: UPS module ≤ 5,000 kW, generator ≤ 20,000 kW, transformer ≤ 100,000 kW, "
    "PDU ≤ 10,000 kW, cooling unit ≤ 50,000 kW",
    severity="warning",
    thresholds={
        "ups_kw": 5000.0,
        "generator_kw": 20000.0,
        "transformer_kw": 100000.0,
        "pdu_kw": 10000.0,
        "cooling_kw": 50000.0,
    },
    remediation="Give ratings in kilowatts per unit (count says how many), not watts or totals.",
)
def unit_kw(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    p, out = ctx.facility.power, []
    for i, u in enumerate(p.ups):
        out.append(_above(u.module_kw, t["ups_kw"], ("power", "ups", i, "module_kw"), u.name))
    for i, g in enumerate(p.generators):
        out.append(_above(g.capacity_kw, t["generator_kw"], ("power", "generators", i, "capacity_kw"), g.name))
    for i, x in enumerate(p.transformers):
        out.append(_above(x.capacity_kw, t["transformer_kw"], ("power", "transformers", i, "capacity_kw"), x.name))
    for i, d in enumerate(p.pdus):
        out.append(_above(d.capacity_kw, t["pdu_kw"], ("power", "pdus", i, "capacity_kw"), d.name))
    for i, c in enumerate(ctx.facility.cooling.units):
        out.append(_above(c.capacity_kw, t["cooling_kw"], ("cooling", "units", i, "capacity_kw"), c.name))
    return out or None


@rule(
    "PLAUS-LOAD",
    "The facility carries an IT load",
    family="plausibility",
    standard=SCREEN,
    clause="racks are declared but no node draws power: every capacity verdict would be against 0 kW",
    severity="warning",
    remediation="Place node groups in the racks (nodes[].rack or racks) with their max_kw.",
)
def some_load(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if ctx.derived.racks == 0:
        return None
    kw = ctx.derived.it_load_kw
    return Outcome(kw > 0, f"{kw:,.1f} kW", "> 0 kW", ("nodes",), "IT load")
