"""Physical rules for AI racks: floor loading under 1.3-tonne racks and the ampacity of each rack's cord."""

from __future__ import annotations

import math
from typing import Any

from aidc.standards.rule import Context, Outcome, rule

TIA = "ANSI/TIA-942-C (2024), rating tables as in ANSI/TIA-942-B (2017) Annex F"
NEC = "NFPA 70 National Electrical Code (2023)"
G = 9.80665  # m/s²: kg on the floor → N


@rule(
    "PHYS-FLOOR-RATING",
    "Computer-room floor rated for the TIA-942 distributed load",
    family="physical",
    standard=TIA,
    clause="§ architectural (floor loading): minimum 7.2 kPa (150 lbf/ft²), 12 kPa (250 lbf/ft²) recommended",
    thresholds={"min_kpa": 7.2},
    remediation="Rate the slab or raised floor for at least the minimum distributed load (more for AI racks).",
)
def floor_rating(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    if ctx.targets.tia942 is None:
        return None
    # Judged where the hall declares its rating; an undeclared floor is assumed at the recommended 12 kPa by
    # PHYS-FLOOR-RACK, which is where an AI hall's floor actually fails.
    return [
        Outcome(
            hall.floor_rating_kpa >= t["min_kpa"],
            f"{hall.floor_rating_kpa:g} kPa",
            f"≥ {t['min_kpa']:g} kPa",
            ("halls", i, "floor_rating_kpa"),
            hall.name,
        )
        for i, hall in enumerate(ctx.facility.halls)
        if hall.floor_rating_kpa is not None
    ] or None


@rule(
    "PHYS-FLOOR-RACK",
    "Each rack's bearing pressure within its hall's floor rating",
    family="physical",
    standard="none (statics: pressure = weight × g ÷ footprint, against the floor's declared rating)",
    clause="rack kPa = weight_kg × 9.81 ÷ footprint_m2 ≤ floor_rating_kpa (12 kPa, TIA-942's recommendation, "
    "when the hall declares none)",
    thresholds={"default_kpa": 12.0},
    remediation="Spread the rack's weight (load-spreading plates, a wider plinth, empty neighbouring tiles) or "
    "reinforce the floor; an NVL72-class rack of ≈ 1,360 kg on 0.72 m² bears ≈ 18.5 kPa.",
)
def floor_per_rack(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    out = []
    for hall in ctx.facility.halls:
        rating = hall.floor_rating_kpa or t["default_kpa"]
        for rack in hall.racks:
            if rack.weight_kg is None:
                continue
            kpa = rack.weight_kg * G / rack.footprint_m2 / 1000
            out.append(
                Outcome(
                    kpa <= rating,
                    f"{kpa:.1f} kPa ({rack.weight_kg:g} kg on {rack.footprint_m2:g} m²)",
                    f"≤ {rating:g} kPa" + ("" if hall.floor_rating_kpa else " (assumed)"),
                    ctx.derived.rack_path[rack.name] + ("weight_kg",),
                    rack.name,
                )
            )
    return out or None


def cord_kw(amps: float, volts: float, phases: int, factor: float, pf: float) -> float:
    """kW a cord may carry continuously: (√3 ×) V × A × continuous factor × power factor."""
    return (math.sqrt(3) if phases == 3 else 1.0) * volts * amps * factor * pf / 1000


@rule(
    "PHYS-CORD",
    "Each rack's cord (busway tap, whip) carries the rack alone, continuously",
    family="physical",
    standard=NEC,
    clause="§210.19(A)(1) and §210.20(A): conductors and overcurrent devices for continuous loads at 125 % "
    "(load ≤ 80 % of the rating); a dual-corded rack carries its whole load on one cord when the other fails",
    thresholds={"continuous_factor": 0.8, "power_factor": 0.95},
    inferred=("power_factor",),
    remediation="Use a larger tap or whip (e.g. 3-phase 415 V 63 A → ≈ 34 kW at 80 %), or a second pair of "
    "cords, for racks above what one cord carries continuously.",
)
def cord_ampacity(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    out = []
    for _, rack in ctx.facility.racks():
        if rack.cord_amps is None:
            continue
        kw = ctx.derived.rack_load_kw.get(rack.name, 0.0)
        limit = cord_kw(rack.cord_amps, rack.cord_volts, rack.cord_phases, t["continuous_factor"], t["power_factor"])
        out.append(
            Outcome(
                kw <= limit,
                f"{kw:,.1f} kW",
                f"≤ {limit:,.1f} kW ({rack.cord_phases}-phase {rack.cord_volts:g} V {rack.cord_amps:g} A)",
                ctx.derived.rack_path[rack.name] + ("cord_amps",),
                rack.name,
            )
        )
    return out or None


@rule(
    "PHYS-ALT-DERATE",
    "Generators and UPS above their rating altitude carry a derating",
    family="physical",
    standard="IEC 62040-3:2021 (UPS, normal service conditions) / ISO 8528-1:2018 (generating sets, site conditions)",
    clause="IEC 62040-3 §4.2: rated up to 1000 m; ISO 8528-1 §7: output declared at standard reference "
    "conditions, site output derated per the maker",
    severity="warning",
    thresholds={"ups_m": 1000.0, "generator_m": 1000.0},
    inferred=("ups_m", "generator_m"),
    remediation="Apply the maker's altitude curve: set `derate` on each UPS and generator (e.g. 0.96) so the "
    "failure analysis judges the kW they really deliver here.",
)
def altitude_derate(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    altitude = ctx.facility.site.altitude_m
    p, out = ctx.facility.power, []
    kinds: list[tuple[str, str, list[Any]]] = [("ups", "ups_m", p.ups), ("generators", "generator_m", p.generators)]
    for section, key, items in kinds:
        if altitude <= t[key]:
            continue
        for i, item in enumerate(items):
            out.append(
                Outcome(
                    item.derate < 1.0,
                    f"derate {item.derate:g} at {altitude:g} m",
                    f"< 1 above {t[key]:g} m",
                    ("power", section, i, "derate"),
                    item.name,
                )
            )
    for i, c in enumerate(p.components):
        limit = {"ups": "ups_m", "generator": "generator_m"}.get(c.kind)
        if limit is not None and altitude > t[limit]:
            out.append(
                Outcome(
                    c.derate < 1.0,
                    f"derate {c.derate:g} at {altitude:g} m",
                    f"< 1 above {t[limit]:g} m",
                    ("power", "components", i, "derate"),
                    c.name,
                )
            )
    return out or None


ASCE = "ASCE/SEI 7-22 (2022) Minimum Design Loads and Associated Criteria for Buildings and Other Structures"
_SDC = "ABCD"


def seismic_design_category(sds_g: float, risk: str, t: dict[str, Any]) -> str:
    """Table 11.6-1: A below 0.167 g, B to 0.33 g (C for risk category IV), C to 0.50 g (D for IV), then D."""
    if sds_g < t["sds_b"]:
        return "A"
    bump = 1 if risk == "IV" else 0
    if sds_g < t["sds_c"]:
        return _SDC[1 + bump]
    if sds_g < t["sds_d"]:
        return _SDC[2 + bump]
    return "D"


@rule(
    "PHYS-SEISMIC",
    "Racks anchored where the seismic design category asks for it",
    family="physical",
    standard=ASCE,
    clause="§11.6 Table 11.6-1 (SDC from S_DS and risk category: 0.167 / 0.33 / 0.50 g); §13.1.3 Ip = 1.5 for "
    "equipment a risk-category-IV building needs to keep operating; §13.1.4 exemptions: SDC A and B, SDC C "
    "with Ip = 1, SDC D–F with Ip = 1 for equipment of 400 lb (181 kg) or less",
    thresholds={"sds_b": 0.167, "sds_c": 0.33, "sds_d": 0.50, "exempt_kg": 181.4},
    remediation="Anchor the rack to the slab (or to a seismic frame / isolation platform) with anchors sized "
    "per ASCE 7 §13.4, and set `anchored: true`; S_DS comes from the site's design maps (USGS / local code).",
)
def seismic_anchoring(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    site = ctx.facility.site
    if site.seismic_sds_g is None:
        return None
    sdc = seismic_design_category(site.seismic_sds_g, site.risk_category, t)
    ip = 1.5 if site.risk_category == "IV" else 1.0
    out = []
    for _, rack in ctx.facility.racks():
        if sdc in "AB" or (sdc == "C" and ip == 1.0):
            need, why = False, f"SDC {sdc}, Ip {ip:g}: exempt"
        elif ip == 1.0 and rack.weight_kg is not None and rack.weight_kg <= t["exempt_kg"]:
            need, why = False, f"SDC {sdc}, {rack.weight_kg:g} kg ≤ {t['exempt_kg']:g} kg: exempt"
        else:
            weight = f"{rack.weight_kg:g} kg" if rack.weight_kg is not None else "weight not given"
            need, why = True, f"SDC {sdc}, Ip {ip:g}, {weight}"
        out.append(
            Outcome(
                rack.anchored or not need,
                f"{'anchored' if rack.anchored else 'not anchored'} ({why})",
                "anchored" if need else "anchorage not required",
                ctx.derived.rack_path[rack.name] + ("anchored",),
                rack.name,
            )
        )
    return out or None
