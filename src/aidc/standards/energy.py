"""Energy rules: ISO/IEC 30134 KPIs (PUE, REF, ERF, CUE, WUE) and, for sites in China, GB 40879 grades and policy targets."""

from __future__ import annotations

from typing import Any

from aidc.standards.rule import Context, Outcome, rule

ISO = "ISO/IEC 30134"
DIESEL_KWH_PER_L = 9.9  # ISO/IEC 30134-2: fuels count in E_DC at their energy content
GAS_KWH_PER_M3 = 10.5


def total_energy_kwh(ctx: Context) -> float | None:
    """E_DC: metered electricity plus on-site fuels, the PUE numerator."""
    e = ctx.facility.energy
    if e.facility_kwh is None:
        return None
    return e.facility_kwh + e.diesel_l * DIESEL_KWH_PER_L + e.gas_m3 * GAS_KWH_PER_M3


def pue(ctx: Context) -> tuple[float | None, str]:
    """Measured annual PUE when metered energy is given, else the design PUE; and which one it is."""
    e, total = ctx.facility.energy, total_energy_kwh(ctx)
    if total is not None and e.it_kwh:
        return total / e.it_kwh, "measured"
    if e.design_pue is not None:
        return e.design_pue, "design"
    return None, "none"


def _pue_outcome(ctx: Context, limit: float, path: tuple[Any, ...], strict: bool = False) -> Outcome:
    value, kind = pue(ctx)
    if value is None:
        return Outcome(False, "not given", f"≤ {limit:g}", ("energy",), note="give energy.design_pue or metered kWh")
    ok = value < limit if strict else value <= limit
    return Outcome(ok, f"{value:.3f} ({kind})", f"{'<' if strict else '≤'} {limit:g}", path)


@rule(
    "KPI-PUE-TARGET",
    "PUE meets the target",
    family="energy",
    standard="ISO/IEC 30134-2:2016 / EN 50600-4-2:2016",
    clause="§6 PUE = E_DC / E_IT over a year",
    remediation="Raise supply temperatures, add economiser hours, contain aisles, or move dense racks to liquid "
    "cooling to cut cooling energy.",
)
def pue_target(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    target = ctx.targets.pue_target
    return None if target is None else _pue_outcome(ctx, target, ("energy",))


@rule(
    "KPI-PUE-VALID",
    "PUE is measured as ISO/IEC 30134-2 defines it",
    family="energy",
    standard="ISO/IEC 30134-2:2016",
    clause="§6 determination of PUE: annual energy (kWh), E_DC ≥ E_IT, fuels included",
    thresholds={"min_days": 365.0},
    remediation="Report a full year of metered kWh with facility energy (including fuels) ≥ IT energy.",
)
def pue_valid(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    e = ctx.facility.energy
    total = total_energy_kwh(ctx)
    if total is None or not e.it_kwh:
        return None
    if total < e.it_kwh:
        return Outcome(
            False, f"E_DC {total:,.0f} < E_IT {e.it_kwh:,.0f} kWh", "E_DC ≥ E_IT", ("energy", "facility_kwh")
        )
    return Outcome(
        e.period_days >= t["min_days"], f"{e.period_days} days", f"≥ {t['min_days']:g} days", ("energy", "period_days")
    )


@rule(
    "KPI-PUE-METER",
    "Meters for facility and IT energy",
    family="energy",
    standard="ISO/IEC 30134-2:2016",
    clause="§7 measurement categories: E_IT at UPS output or better, E_DC at the utility input",
    severity="warning",
    remediation="Declare telemetry endpoints measuring facility_kwh (utility input) and it_kwh (UPS output or PDU).",
)
def pue_meters(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if ctx.targets.pue_target is None:
        return None
    measures = {m for ep in ctx.facility.telemetry.endpoints for m in ep.measures}
    missing = [m for m in ("facility_kwh", "it_kwh") if m not in measures]
    return Outcome(
        not missing,
        "missing " + ", ".join(missing) if missing else "facility_kwh, it_kwh",
        "facility_kwh and it_kwh meters",
        ("telemetry", "endpoints"),
    )


@rule(
    "KPI-REF",
    "Renewable energy factor",
    family="energy",
    standard="ISO/IEC 30134-3:2016",
    clause="§6 REF = E_ren / E_DC",
    remediation="Contract more renewable supply (PPA, on-site generation) or lower total energy.",
)
def ref(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    target, total = ctx.targets.ref_target, total_energy_kwh(ctx)
    if target is None or not total:
        return None
    value = ctx.facility.energy.renewable_kwh / total
    ok = target <= value <= 1.0
    return Outcome(ok, f"{value:.3f}", f"≥ {target:g} (and ≤ 1)", ("energy", "renewable_kwh"))


@rule(
    "KPI-ERF",
    "Energy reuse factor",
    family="energy",
    standard="ISO/IEC 30134-6:2021",
    clause="§6 ERF = E_reused / E_DC",
    remediation="Export waste heat (district heating, adjacent buildings); liquid-cooled halls make it easier.",
)
def erf(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    target, total = ctx.targets.erf_target, total_energy_kwh(ctx)
    if target is None or not total:
        return None
    value = ctx.facility.energy.reused_kwh / total
    return Outcome(value >= target, f"{value:.3f}", f"≥ {target:g}", ("energy", "reused_kwh"))


@rule(
    "KPI-CUE",
    "Carbon usage effectiveness",
    family="energy",
    standard="ISO/IEC 30134-8:2022",
    clause="§6 CUE = kgCO2e / E_IT; = CEF × PUE when all-electric",
    inferred=("CEF × PUE form",),
    remediation="Buy lower-carbon electricity or improve PUE.",
)
def cue(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    target = ctx.targets.cue_target_kg_per_kwh
    if target is None:
        return None
    e = ctx.facility.energy
    if e.co2_kg is not None and e.it_kwh:
        value, how = e.co2_kg / e.it_kwh, "measured"
    else:
        p, _ = pue(ctx)
        cef = ctx.facility.site.grid_carbon_g_per_kwh
        if p is None or cef is None:
            return Outcome(
                False,
                "not computable",
                f"≤ {target:g} kg/kWh",
                ("energy",),
                note="give energy.co2_kg, or site.grid_carbon_g_per_kwh and a PUE",
            )
        value, how = cef / 1000 * p * (1 - ctx.facility.site.renewable_share), "CEF×PUE"
    return Outcome(value <= target, f"{value:.3f} kg/kWh ({how})", f"≤ {target:g} kg/kWh", ("energy",))


@rule(
    "KPI-WUE",
    "Water usage effectiveness",
    family="energy",
    standard="ISO/IEC 30134-9:2022",
    clause="§6 WUE = L water / E_IT kWh",
    inferred=("definition",),
    remediation="Use dry coolers or closed-loop liquid cooling for more hours; recycle blowdown water.",
)
def wue(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    target, e = ctx.targets.wue_target_l_per_kwh, ctx.facility.energy
    if target is None:
        return None
    if e.water_l is None or not e.it_kwh:
        return Outcome(False, "not metered", f"≤ {target:g} L/kWh", ("energy", "water_l"))
    value = e.water_l / e.it_kwh
    return Outcome(value <= target, f"{value:.3f} L/kWh", f"≤ {target:g} L/kWh", ("energy", "water_l"))


@rule(
    "KPI-CN-GB40879",
    "PUE within the GB 40879 grade (grade 3 is the legal limit)",
    family="energy",
    standard="GB 40879-2021",
    clause="§4 Table 1 energy-efficiency grades 1/2/3 (mandatory from 2022-11-01)",
    thresholds={"grade1": 1.20, "grade2": 1.30, "grade3": 1.50},
    inferred=("grade1", "grade2", "grade3"),
    remediation="Bring PUE under the grade limit; grade 3 is the minimum allowed to operate.",
)
def gb40879(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not ctx.in_china and ctx.targets.gb40879_grade is None:
        return None
    grade = ctx.targets.gb40879_grade or 3
    return _pue_outcome(
        ctx, t[f"grade{grade}"], ("targets", "gb40879_grade") if ctx.targets.gb40879_grade else ("energy",)
    )


def _new_large(ctx: Context, t: dict[str, Any]) -> bool:
    return ctx.in_china and ctx.facility.site.new_build and ctx.derived.racks >= t["large_racks"]


@rule(
    "KPI-CN-NEWLARGE",
    "New large data center PUE (China policy)",
    family="energy",
    standard="NDRC et al., Implementation Plan for Computing Hub Nodes (2021); MIIT Three-Year Action Plan for "
    "New Data Centers (2021–2023)",
    clause="§ main targets: new large and hyperscale: PUE < 1.3 by 2025 (MIIT < 1.35)",
    thresholds={"max_pue": 1.3, "large_racks": 3000},
    inferred=("large_racks",),
    remediation="Design for PUE below 1.3: liquid cooling, free cooling, high-efficiency UPS.",
)
def cn_new_large(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _new_large(ctx, t):
        return None
    return _pue_outcome(ctx, t["max_pue"], ("energy",), strict=True)


@rule(
    "KPI-CN-HUB",
    "National hub node PUE and green power (China policy)",
    family="energy",
    standard="NDRC et al., Implementation Plan for Computing Hub Nodes (2021); NDRC/MIIT Action Plan for Green "
    "and Low-Carbon Development of Data Centers (2024)",
    clause="§ main targets, hub nodes: PUE < 1.25; new builds green power > 80 % by 2025",
    thresholds={"max_pue": 1.25, "min_green_share": 0.8},
    remediation="Hub-node sites need PUE below 1.25 and more than 80 % green power (PPAs, green certificates).",
)
def cn_hub(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    site = ctx.facility.site
    if not ctx.in_china or not site.hub_node:
        return None
    out = [_pue_outcome(ctx, t["max_pue"], ("site", "hub_node"), strict=True)]
    if site.new_build:
        out.append(
            Outcome(
                site.renewable_share > t["min_green_share"],
                f"{site.renewable_share:.0%}",
                f"> {t['min_green_share']:.0%}",
                ("site", "renewable_share"),
                "green power",
            )
        )
    return out


_REGIONS = {"yangtze-delta": 1.25, "beijing": 1.35}


@rule(
    "KPI-CN-REGION",
    "Regional PUE limit (China)",
    family="energy",
    standard="Yangtze River Delta hub node implementation plan (2022); Beijing Municipal Commission of "
    "Development and Reform, data-center electricity price notice (2021)",
    clause="§ PUE targets: Yangtze-Delta hub PUE ≤ 1.25; Beijing surcharge above 1.35 from 2026",
    thresholds={f"{k}_max_pue": v for k, v in _REGIONS.items()},
    remediation="Meet the regional PUE limit or budget for the electricity surcharge.",
)
def cn_region(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    region = (ctx.facility.site.region or "").lower()
    key = f"{region}_max_pue"
    if not ctx.in_china or key not in t:
        return None
    return _pue_outcome(ctx, t[key], ("site", "region"))


@rule(
    "KPI-CN-GREENLIST",
    "National green data-center list criteria",
    family="energy",
    standard="MIIT notice on the national green data-center list (2025 round)",
    clause="§ application criteria: PUE ≤ 1.30, ≥ 3000 racks, GB 40879 grade ≥ 2",
    thresholds={"max_pue": 1.30, "min_racks": 3000},
    severity="warning",
    remediation="To qualify, reach PUE ≤ 1.30 (grade 2) at a site of at least 3000 racks.",
)
def cn_green_list(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    if not ctx.targets.green_dc_list:
        return None
    racks = ctx.derived.racks
    return [
        _pue_outcome(ctx, t["max_pue"], ("targets", "green_dc_list")),
        Outcome(racks >= t["min_racks"], racks, f"≥ {t['min_racks']:g}", ("halls",), "racks"),
    ]
