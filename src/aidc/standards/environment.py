"""Environmental rules: ASHRAE TC9.9 inlet envelopes (A1–A4, H1), liquid W classes, GB 50174 ranges, rack density vs cooling."""

from __future__ import annotations

import re
from typing import Any

from aidc.facility.model import Range
from aidc.standards.rule import Context, Outcome, rule

ASHRAE = "ASHRAE TC9.9 Thermal Guidelines (2021, 5th ed.)"
GB = "GB 50174-2017"
_ALLOW = {"A1": (15, 32), "A2": (10, 35), "A3": (5, 40), "A4": (5, 45), "H1": (5, 25)}
_DP_MAX = {"A1": 17, "A2": 21, "A3": 24, "A4": 24, "H1": 17}
_RH = {"A1": (8, 80), "A2": (8, 80), "A3": (8, 85), "A4": (8, 90), "H1": (8, 80)}
_W_MAX = {"W17": 17, "W27": 27, "W32": 32, "W40": 40, "W45": 45, "W+": None}
_LIQUID_GPUS = ("GB200", "GB300")
# Rack-scale NVLink systems (NVL36, NVL72, NVL144…) are liquid-cooled; "H100 NVL"/"H200 NVL" are air-cooled PCIe
# cards and GH200 NVL2 an air-cooled server: the name alone says liquid only with a rack-scale domain size.
_RACK_SCALE_NVL = re.compile(r"NVL\s?\d{2,}")


def _within(r: Range | None, lo: float, hi: float, path: tuple[Any, ...], unit: str, what: str) -> Outcome:
    if r is None:
        return Outcome(False, "not declared", f"{lo:g}–{hi:g} {unit}", path, what, "declare the design range")
    return Outcome(lo <= r.min and r.max <= hi, f"{r.min:g}–{r.max:g} {unit}", f"{lo:g}–{hi:g} {unit}", path, what)


@rule(
    "ENV-ASHRAE-REC",
    "IT inlet temperature within the ASHRAE recommended envelope",
    family="environment",
    standard=ASHRAE,
    clause="Table 2.1 (air-cooling envelopes), recommended: A1–A4 18–27 °C; H1 18–22 °C",
    read=True,
    severity="warning",
    thresholds={"min_c": 18.0, "max_c": 27.0, "h1_max_c": 22.0},
    remediation="Set the cold-aisle supply setpoint inside the recommended band; excursions into allowable "
    "should be occasional, not the design point.",
)
def ashrae_recommended(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    cls = ctx.targets.ashrae
    if cls is None:
        return None
    hi = t["h1_max_c"] if cls == "H1" else t["max_c"]
    return _within(ctx.facility.cooling.inlet_c, t["min_c"], hi, ("cooling", "inlet_c"), "°C", f"inlet ({cls})")


# Table 2.1 notes: above 900 m the maximum allowable dry-bulb falls 1 °C per this many metres.
_ALT_M_PER_C = {"A1": 300.0, "A2": 300.0, "A3": 175.0, "A4": 125.0, "H1": 300.0}


def allowable_max_c(cls: str, altitude_m: float, t: dict[str, Any]) -> float:
    """The class's maximum allowable inlet at this altitude (derated above ``derate_above_m``)."""
    over = max(altitude_m - float(t["derate_above_m"]), 0.0)
    return float(t[f"{cls}_max_c"]) - over / float(t[f"{cls}_m_per_c"])


@rule(
    "ENV-ASHRAE-ALLOW",
    "IT inlet temperature within the class allowable envelope, derated for altitude",
    family="environment",
    standard=ASHRAE,
    clause="Table 2.1 allowable: A1 15–32, A2 10–35, A3 5–40, A4 5–45, H1 5–25 °C (H1 lower bound inf); "
    "notes: derate the maximum 1 °C per 300 m above 900 m (A1/A2), per 175 m (A3), per 125 m (A4)",
    thresholds={
        **{f"{c}_{e}": v[i] for c, v in _ALLOW.items() for i, e in enumerate(("min_c", "max_c"))},
        "derate_above_m": 900.0,
        **{f"{c}_m_per_c": v for c, v in _ALT_M_PER_C.items()},
    },
    inferred=("H1_min_c", "H1_m_per_c"),
    read=True,
    remediation="Narrow the design inlet range to the class's allowable envelope at this altitude, or buy IT "
    "rated for a wider class (A3/A4).",
)
def ashrae_allowable(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    cls = ctx.targets.ashrae
    if cls is None:
        return None
    altitude = ctx.facility.site.altitude_m
    hi = allowable_max_c(cls, altitude, t)
    out = _within(ctx.facility.cooling.inlet_c, t[f"{cls}_min_c"], hi, ("cooling", "inlet_c"), "°C", f"inlet ({cls})")
    if altitude > t["derate_above_m"]:
        note = f"maximum derated from {t[f'{cls}_max_c']:g} °C for {altitude:g} m"
        return Outcome(out.ok, out.measured, out.expected, out.path, out.subject, note)
    return out


@rule(
    "ENV-ASHRAE-DP",
    "Dew point within the class allowable envelope",
    family="environment",
    standard=ASHRAE,
    clause="Table 2.1 allowable dew point: min −12 °C; max A1 17, A2 21, A3/A4 24 °C (H1 max inf)",
    read=True,
    thresholds={"min_c": -12.0, **{f"{c}_max_c": float(v) for c, v in _DP_MAX.items()}},
    inferred=("H1_max_c",),
    remediation="Add humidification/dehumidification control so the dew point stays inside the class limits.",
)
def ashrae_dew_point(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    cls = ctx.targets.ashrae
    if cls is None:
        return None
    return _within(
        ctx.facility.cooling.dew_point_c, t["min_c"], t[f"{cls}_max_c"], ("cooling", "dew_point_c"), "°C", "dew point"
    )


@rule(
    "ENV-ASHRAE-RH",
    "Relative humidity within the class allowable envelope",
    family="environment",
    standard=ASHRAE,
    clause="Table 2.1 allowable RH: A1/A2 8–80 %, A3 8–85 %, A4 8–90 % (H1 inf)",
    read=True,
    thresholds={f"{c}_{e}": float(v[i]) for c, v in _RH.items() for i, e in enumerate(("min_pct", "max_pct"))},
    inferred=("H1_min_pct", "H1_max_pct"),
    remediation="Control humidity to the class's allowable band.",
)
def ashrae_rh(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    cls = ctx.targets.ashrae
    if cls is None:
        return None
    return _within(
        ctx.facility.cooling.rh_pct,
        t[f"{cls}_min_pct"],
        t[f"{cls}_max_pct"],
        ("cooling", "rh_pct"),
        "%",
        "relative humidity",
    )


@rule(
    "ENV-ASHRAE-RH-REC",
    "Relative humidity within the recommended limit (lower where air is corrosive)",
    family="environment",
    standard=ASHRAE,
    clause="Table 2.1 notes: recommended RH ≤ 70 %; ≤ 50 % if coupons exceed Ag 200 or Cu 300 Å/month",
    read=True,
    severity="warning",
    thresholds={"max_pct": 70.0, "corrosive_max_pct": 50.0, "ag_a_per_month": 200.0, "cu_a_per_month": 300.0},
    remediation="Lower the humidity setpoint, or filter the air until corrosion coupons read below the limits.",
)
def ashrae_rh_recommended(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    c = ctx.facility.cooling
    if ctx.targets.ashrae is None or c.rh_pct is None:
        return None
    corrosive = (c.corrosion_ag_a_per_month or 0) > t["ag_a_per_month"] or (c.corrosion_cu_a_per_month or 0) > t[
        "cu_a_per_month"
    ]
    limit = t["corrosive_max_pct"] if corrosive else t["max_pct"]
    return Outcome(
        c.rh_pct.max <= limit,
        f"{c.rh_pct.max:g} %",
        f"≤ {limit:g} %",
        ("cooling", "rh_pct"),
        "relative humidity",
        "corrosive air" if corrosive else "",
    )


@rule(
    "ENV-ASHRAE-ALT",
    "Site altitude within the envelope's limit",
    family="environment",
    standard=ASHRAE,
    clause="Table 2.1: maximum altitude 3050 m, all classes",
    read=True,
    thresholds={"max_m": 3050.0},
    remediation="Above this altitude IT needs derating and a vendor statement; choose a lower site or "
    "derate the inlet maximum.",
)
def ashrae_altitude(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if ctx.targets.ashrae is None:
        return None
    alt = ctx.facility.site.altitude_m
    return Outcome(alt <= t["max_m"], f"{alt:g} m", f"≤ {t['max_m']:g} m", ("site", "altitude_m"))


@rule(
    "ENV-ASHRAE-ROC",
    "Inlet temperature rate of change",
    family="environment",
    standard=ASHRAE,
    clause="Table 2.1 notes: max rate of change 20 °C/h (5 °C/h with tape media)",
    read=True,
    severity="warning",
    thresholds={"max_c_per_h": 20.0, "tape_max_c_per_h": 5.0},
    remediation="Slow the control loop (ramped setpoints, larger thermal mass) to keep the change rate down.",
)
def ashrae_rate(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    c = ctx.facility.cooling
    if ctx.targets.ashrae is None or c.rate_of_change_c_per_h is None:
        return None
    limit = t["tape_max_c_per_h"] if c.tape_storage else t["max_c_per_h"]
    return Outcome(
        c.rate_of_change_c_per_h <= limit,
        f"{c.rate_of_change_c_per_h:g} °C/h",
        f"≤ {limit:g} °C/h",
        ("cooling", "rate_of_change_c_per_h"),
    )


@rule(
    "ENV-LIQ-W",
    "Liquid loop supply temperature within its W class",
    family="environment",
    standard=ASHRAE,
    clause="Table 2.2 (liquid-cooling classes): W17/W27/W32/W40/W45/W+ = max facility supply °C",
    inferred=tuple(_W_MAX),
    thresholds={k: float(v) for k, v in _W_MAX.items() if v is not None},
    remediation="Lower the facility water supply temperature, or specify IT rated for a warmer W class.",
)
def liquid_class(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    loops = ctx.facility.cooling.liquid_loops
    out = []
    for i, loop in enumerate(loops):
        limit = t.get(loop.w_class)
        ok = limit is None or loop.supply_c <= limit
        out.append(
            Outcome(
                ok,
                f"{loop.supply_c:g} °C",
                "any" if limit is None else f"≤ {limit:g} °C ({loop.w_class})",
                ("cooling", "liquid_loops", i, "supply_c"),
                loop.name,
            )
        )
    return out or None


@rule(
    "ENV-LIQ-LOOP",
    "Direct-liquid racks have a liquid loop and liquid heat capacity",
    family="environment",
    standard="ASHRAE TC9.9 Liquid Cooling Guidelines for Datacom Equipment Centers (2nd ed., 2014)",
    clause="§ facility water system (FWS) serving the technology cooling system",
    remediation="Declare the liquid loop (cooling.liquid_loops) and CDUs/chillers serving liquid with enough kW.",
)
def liquid_loop(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    heat = ctx.derived.liquid_heat_kw
    if heat <= 0:
        return None
    cap = sum(u.capacity_kw * u.count for u in ctx.facility.cooling.units if u.serves in ("liquid", "all"))
    loops = len(ctx.facility.cooling.liquid_loops)
    return Outcome(
        loops > 0 and cap >= heat,
        f"{loops} loop(s), {cap:,.0f} kW",
        f"≥ 1 loop, ≥ {heat:,.0f} kW",
        ("cooling", "liquid_loops"),
    )


@rule(
    "ENV-DENSITY",
    "Rack density suits its cooling type",
    family="environment",
    standard="ASHRAE TC9.9 white paper: Emergence and Expansion of Liquid Cooling in Mainstream Data Centers (2021)",
    clause="§ air-cooling limits: air ≤ ~25–30 kW/rack; above, rear-door or direct liquid",
    thresholds={"air_max_kw": 30.0, "rear_door_max_kw": 60.0},
    inferred=("air_max_kw", "rear_door_max_kw"),
    remediation="Move the rack to rear-door heat exchangers or direct liquid cooling, or spread its nodes over "
    "more racks.",
)
def density(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    out = []
    for _, rack in ctx.facility.racks():
        kw = ctx.derived.rack_load_kw.get(rack.name, 0.0)
        limit = {"air": t["air_max_kw"], "rear_door": t["rear_door_max_kw"]}.get(rack.cooling)
        out.append(
            Outcome(
                limit is None or kw <= limit,
                f"{kw:,.1f} kW ({rack.cooling})",
                "any (liquid)" if limit is None else f"≤ {limit:g} kW for {rack.cooling}",
                ctx.derived.rack_path[rack.name] + ("cooling",),
                rack.name,
            )
        )
    return out or None


@rule(
    "ENV-LIQ-REQUIRED",
    "Liquid-only systems sit in direct-liquid racks",
    family="environment",
    standard="NVIDIA GB200 NVL72 product specifications (2024)",
    clause="§ specifications: NVL72 racks are liquid-cooled (≈120 kW)",
    remediation="Place GB200/GB300 NVL72 systems only in racks with cooling: direct_liquid.",
)
def liquid_required(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    cooling = {r.name: r.cooling for _, r in ctx.facility.racks()}
    out = []
    for i, node in enumerate(ctx.facility.nodes):
        liquid_only = (node.gpu_type or "").upper().startswith(_LIQUID_GPUS) or bool(
            _RACK_SCALE_NVL.search(node.model.upper())
        )
        if liquid_only:
            for rack in node.placement:
                out.append(
                    Outcome(
                        cooling.get(rack) == "direct_liquid",
                        cooling.get(rack),
                        "direct_liquid",
                        ("nodes", i),
                        f"{node.name} in {rack}",
                    )
                )
    return out or None


# Stages a unit of each kind sits in, heat flowing room → terminal → pumps → chillers → rejection. Stages
# work in series: the room is limited by the smallest, so their capacities are never added together.
STAGES = {
    "crah": "terminal",
    "crac": "terminal",
    "cdu": "terminal",
    "rdhx": "terminal",
    "inrow": "terminal",
    "pump": "pumps",
    "chiller": "chillers",
    "dry_cooler": "heat rejection",
    "cooling_tower": "heat rejection",
}


def stage_capacity(ctx: Context) -> list[Outcome]:
    """Per series stage: air-only + shared units cover the air heat, liquid likewise, and all of them both."""
    d = ctx.derived
    heat = {"air": d.air_heat_kw, "liquid": d.liquid_heat_kw}
    cap: dict[str, dict[str, float]] = {}
    for u in ctx.facility.cooling.units:
        served = cap.setdefault(STAGES[u.kind], {"air": 0.0, "liquid": 0.0, "all": 0.0})
        served[u.serves] += u.capacity_kw * u.count
    out = []
    for stage, c in cap.items():
        checks = [(h, c[h] + c["all"], kw) for h, kw in heat.items() if kw > 0]
        if c["all"] > 0 and heat["air"] > 0 and heat["liquid"] > 0:
            checks.append(("air + liquid", sum(c.values()), heat["air"] + heat["liquid"]))
        for what, have, need in checks:
            if what in ("air", "liquid") and c[what] == 0 and c["all"] == 0:
                continue  # this stage does not handle that heat (e.g. no pumps on the air side)
            out.append(
                Outcome(
                    have >= need, f"{have:,.0f} kW", f"≥ {need:,.0f} kW", ("cooling", "units"), f"{stage}, {what} heat"
                )
            )
    return out


@rule(
    "ENV-COOL-CAP",
    "Each cooling stage covers the heat it carries (stages in series, never added)",
    family="environment",
    standard="Uptime Institute Tier Standard: Topology (2018 edition)",
    clause="§2.1 Tier I: cooling capacity components (N) for the design heat load",
    remediation="Add units to the stage that falls short: a room is cooled only as far as its weakest stage "
    "(terminal units, pumps, chillers, heat rejection) allows.",
)
def cooling_capacity(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    if ctx.derived.it_load_kw <= 0:
        return None
    return stage_capacity(ctx) or [
        Outcome(False, "no cooling units", f"≥ {ctx.derived.it_load_kw:,.0f} kW", ("cooling", "units"), "cooling")
    ]


@rule(
    "ENV-LIQ-FLOW",
    "Liquid loops carry the liquid heat at their design flow and ΔT",
    family="environment",
    standard="ASHRAE TC9.9 Liquid Cooling Guidelines for Datacom Equipment Centers (2nd ed., 2014)",
    clause="§ heat transport: Q = ṁ · cp · ΔT (water: cp 4.18 kJ/kg·K, 1 kg/L)",
    thresholds={"cp_kj_per_kg_k": 4.18, "kg_per_l": 1.0},
    remediation="Raise the loop flow or its ΔT (warmer return), or add a loop: Q [kW] = L/min ÷ 60 × kg/L × cp × ΔT.",
)
def liquid_flow(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    heat = ctx.derived.liquid_heat_kw
    loops = [x for x in ctx.facility.cooling.liquid_loops if x.flow_lpm is not None and x.return_c is not None]
    if heat <= 0 or not loops:
        return None
    kw = sum(
        (x.flow_lpm or 0.0) / 60 * t["kg_per_l"] * t["cp_kj_per_kg_k"] * ((x.return_c or 0.0) - x.supply_c)
        for x in loops
    )
    flows = ", ".join(f"{x.name} {x.flow_lpm:g} L/min × {(x.return_c or 0.0) - x.supply_c:g} K" for x in loops)
    return Outcome(kw >= heat, f"{kw:,.1f} kW ({flows})", f"≥ {heat:,.1f} kW", ("cooling", "liquid_loops"))


def _gb_applies(ctx: Context) -> bool:
    return ctx.targets.gb50174 is not None or ctx.in_china


@rule(
    "ENV-GB-TEMP",
    "Cold-aisle temperature in the GB 50174 range",
    family="environment",
    standard=GB,
    clause="Annex A (Table A, environment): cold aisle 18–27 °C",
    read=True,
    thresholds={"min_c": 18.0, "max_c": 27.0},
    remediation="Set the cold-aisle design range to 18–27 °C.",
)
def gb_temperature(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _gb_applies(ctx):
        return None
    return _within(ctx.facility.cooling.inlet_c, t["min_c"], t["max_c"], ("cooling", "inlet_c"), "°C", "cold aisle")


@rule(
    "ENV-GB-DP",
    "Dew point in the GB 50174 range",
    family="environment",
    standard=GB,
    clause="Annex A (Table A, environment): dew point 5.5–15 °C",
    read=True,
    thresholds={"min_c": 5.5, "max_c": 15.0},
    remediation="Control humidity so the dew point stays between 5.5 and 15 °C.",
)
def gb_dew_point(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _gb_applies(ctx):
        return None
    return _within(
        ctx.facility.cooling.dew_point_c, t["min_c"], t["max_c"], ("cooling", "dew_point_c"), "°C", "dew point"
    )


@rule(
    "ENV-GB-RH",
    "Relative humidity in the GB 50174 range",
    family="environment",
    standard=GB,
    clause="Annex A (Table A, environment): RH ≤ 60 %",
    read=True,
    thresholds={"max_pct": 60.0},
    remediation="Lower the humidity setpoint to 60 % RH or below.",
)
def gb_rh(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _gb_applies(ctx):
        return None
    return _within(ctx.facility.cooling.rh_pct, 0.0, t["max_pct"], ("cooling", "rh_pct"), "%", "relative humidity")


@rule(
    "ENV-GB-BATT",
    "Battery room temperature",
    family="environment",
    standard=GB,
    clause="Annex A (Table A, environment): battery room 20–30 °C",
    read=True,
    thresholds={"min_c": 20.0, "max_c": 30.0},
    remediation="Condition the battery room to 20–30 °C (battery life halves for each ~10 °C above).",
)
def gb_battery_room(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _gb_applies(ctx) or not ctx.facility.power.ups:
        return None
    return _within(
        ctx.facility.cooling.battery_room_c, t["min_c"], t["max_c"], ("cooling", "battery_room_c"), "°C", "battery room"
    )
