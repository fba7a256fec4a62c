"""Alert rules derived from the facility spec when the server loads it: the design envelope, held to live telemetry.

Every number comes from the spec or from the standards catalogue that ``aidc check`` judged it with (ASHRAE ranges
and altitude derating, cord ratings), so an alert and the design check can never disagree about a limit.
"""

from __future__ import annotations

import re
from typing import Any

from aidc.facility.derived import derive, redundancy
from aidc.facility.model import Facility
from aidc.monitoring.alerts.rules import AlertRule, Expr
from aidc.standards.environment import STAGES, allowable_max_c
from aidc.standards.physical import cord_kw
from aidc.standards.rule import REGISTRY, builtin_rules

POWER = "node_power_watts"
INLET = "node_inlet_temperature_celsius"
FACILITY_POWER = "facility_power_watts"  # a facility meter's reading (spec telemetry endpoint measuring power_kw)


def _thresholds(facility: Facility, rule_id: str) -> dict[str, Any]:
    """A catalogue rule's thresholds with the spec's own overrides (``checks.thresholds``), as ``aidc check`` uses."""
    if rule_id not in REGISTRY:
        builtin_rules()
    return {**REGISTRY[rule_id].thresholds, **facility.checks.thresholds.get(rule_id, {})}


def places(facility: Facility) -> dict[str, dict[str, str]]:
    """Where each server of the spec sits: node name → {rack, hall} (labels the evaluator adds to its series)."""
    hall_of = {rack.name: hall.name for hall, rack in facility.racks()}
    return {inst.name: {"rack": inst.rack, "hall": hall_of.get(inst.rack, "")} for inst in facility.node_instances()}


def facility_rules(facility: Facility) -> list[AlertRule]:
    """The design limits as alert rules: rack power, cords, inlet temperature, room cooling, UPS load, PUE."""
    return [
        *_rack_rules(facility),
        *_inlet_rules(facility),
        *_cooling_rules(facility),
        *_ups_rules(facility),
        *_pue_rules(facility),
    ]


def _rule(name: str, key: str, severity: str, for_: str, expr: Expr, summary: str, runbook: str) -> AlertRule:
    return AlertRule.model_validate(
        {
            "name": name,
            "key": key,
            "severity": severity,
            "for": for_,
            "expr": expr,
            "summary": summary,
            "runbook": runbook,
            "origin": "facility",
        }
    )


def _rack_rules(facility: Facility) -> list[AlertRule]:
    out = []
    cord = _thresholds(facility, "PHYS-CORD")
    for _hall, rack in facility.racks():
        match = {"rack": rack.name}
        out.append(
            _rule(
                "RackPowerOverBudget",
                f"RackPowerOverBudget:{rack.name}",
                "critical",
                "2m",
                Expr(metric=POWER, match=match, by=["rack"], aggregate="sum", op=">", value=rack.power_budget_kw * 1e3),
                "rack {rack} draws {value:.0f} W, above its designed budget of {threshold:.0f} W",
                f"Rack {rack.name} is designed for {rack.power_budget_kw:g} kW. Cap power on its nodes "
                "(nvidia-smi -pl), move jobs off it (`aidc nodes drain`), or raise the budget in the facility spec and "
                "run `aidc check` again.",
            )
        )
        if rack.cord_amps is not None:
            limit = cord_kw(
                rack.cord_amps, rack.cord_volts, rack.cord_phases, cord["continuous_factor"], cord["power_factor"]
            )
            out.append(
                _rule(
                    "RackPowerOverFeedCapacity",
                    f"RackPowerOverFeedCapacity:{rack.name}",
                    "critical",
                    "1m",
                    Expr(metric=POWER, match=match, by=["rack"], aggregate="sum", op=">", value=limit * 1e3),
                    "rack {rack} draws {value:.0f} W, above what one of its feeds carries continuously "
                    "({threshold:.0f} W)",
                    f"One {rack.cord_phases}-phase {rack.cord_volts:g} V {rack.cord_amps:g} A cord carries "
                    f"{limit:.1f} kW continuously (NEC 80 %): if the other feed fails this rack trips its breaker. "
                    "Shed load now.",
                )
            )
    return out


def _inlet_rules(facility: Facility) -> list[AlertRule]:
    cls = facility.targets.ashrae
    if cls is None:
        return []
    rec = _thresholds(facility, "ENV-ASHRAE-REC")
    allow = _thresholds(facility, "ENV-ASHRAE-ALLOW")
    rec_lo, rec_hi = float(rec["min_c"]), float(rec["h1_max_c"] if cls == "H1" else rec["max_c"])
    allow_lo, allow_hi = float(allow[f"{cls}_min_c"]), allowable_max_c(cls, facility.site.altitude_m, allow)
    derated = (
        f" (derated for {facility.site.altitude_m:g} m)" if facility.site.altitude_m > allow["derate_above_m"] else ""
    )
    by = ["hall", "rack", "node"]
    rules = [
        ("InletTemperatureAboveRecommended", "warning", "10m", ">", rec_hi, "recommended", rec_lo, rec_hi),
        ("InletTemperatureBelowRecommended", "warning", "10m", "<", rec_lo, "recommended", rec_lo, rec_hi),
        ("InletTemperatureAboveAllowable", "critical", "1m", ">", allow_hi, "allowable", allow_lo, allow_hi),
        ("InletTemperatureBelowAllowable", "critical", "1m", "<", allow_lo, "allowable", allow_lo, allow_hi),
    ]
    return [
        _rule(
            name,
            name,
            severity,
            for_,
            Expr(metric=INLET, by=by, aggregate="max" if op == ">" else "min", op=op, value=value),
            f"inlet of {{node}} in {{rack}} at {{value:.1f}} °C, outside ASHRAE {cls} {envelope} "
            f"{lo:g}–{hi:g} °C{derated if envelope == 'allowable' else ''}",
            "Check the cooling units serving the room, the rack's blanking panels and the containment, and the "
            f"supply setpoint; ASHRAE {cls} {envelope} is {lo:g}–{hi:g} °C at the server inlet.",
        )
        for name, severity, for_, op, value, envelope, lo, hi in rules
    ]


def _cooling_rules(facility: Facility) -> list[AlertRule]:
    """Per room: its IT heat (≈ its IT power) against the terminal units that cool it, with the design's redundant
    units failed (N of N+X): above that, losing one more unit overheats the room."""
    out = []
    loads = derive(facility).rack_load_kw
    for hall in facility.halls:
        if not hall.racks:
            continue
        named = set(hall.cooled_by)
        units = [
            u
            for u in facility.cooling.units
            if STAGES.get(u.kind) == "terminal" and (not named or u.name in named) and u.serves in ("all", "air")
        ]
        if not units:
            continue
        caps = [(u.path, u.capacity_kw) for u in units for _ in range(u.count)]
        total = sum(kw for _, kw in caps)
        design = redundancy("cooling", caps, sum(loads.get(rack.name, 0.0) for rack in hall.racks))
        spare = max(1, design.x)  # the design's redundant units (N+X: X), at least one: "with one unit failed"
        failed = sorted((kw for _, kw in caps), reverse=True)[:spare]
        capacity = total - sum(failed)
        if capacity <= 0:
            continue  # a single unit: any failure loses the room; the design check already says so
        out.append(
            _rule(
                "RoomHeatOverCoolingCapacity",
                f"RoomHeatOverCoolingCapacity:{hall.name}",
                "critical",
                "5m",
                Expr(
                    metric=POWER, match={"hall": hall.name}, by=["hall"], aggregate="sum", op=">", value=capacity * 1e3
                ),
                f"room {{hall}} gives off {{value:.0f}} W of heat, more than its cooling carries with {len(failed)} "
                f"of {len(caps)} units failed ({{threshold:.0f}} W)",
                f"Room {hall.name} has {total:g} kW of terminal cooling in {len(caps)} units; with {len(failed)} failed "
                f"it carries {capacity:g} kW. Shed or move load before a unit trips, or add cooling.",
            )
        )
    return out


def _ups_rules(facility: Facility) -> list[AlertRule]:
    """Each IT UPS against the IT power of what it feeds, shared equally among the power paths (2N: half each)."""
    ups = [u for u in facility.power.ups if u.serves in ("it", "mixed")]
    paths = {u.path for u in ups} or {None}
    out = []
    for u in ups:
        rating = u.module_kw * u.modules * u.derate
        racks = [
            rack.name
            for _hall, rack in facility.racks()
            if u.path is None or not rack.power_paths or u.path in rack.power_paths
        ]
        if not racks:
            continue
        share = len(paths)
        out.append(
            _rule(
                "UpsLoadOverRating",
                f"UpsLoadOverRating:{u.name}",
                "critical",
                "2m",
                Expr(
                    metric=POWER,
                    match={"rack": "=~" + "|".join(re.escape(r) for r in racks)},
                    by=[],
                    aggregate="sum",
                    scale=1.0 / share,
                    op=">",
                    value=rating * 1e3,
                ),
                f"UPS {u.name} carries about {{value:.0f}} W, above its rating of {{threshold:.0f}} W",
                f"UPS {u.name} is rated {rating:g} kW ({u.modules} × {u.module_kw:g} kW"
                + (f", derated {u.derate:g}" if u.derate < 1 else "")
                + "). Over its rating it goes to bypass or drops the load on a mains failure: shed load now.",
            )
        )
    return out


def _pue_rules(facility: Facility) -> list[AlertRule]:
    target = facility.targets.pue_target
    if target is None:
        return []
    return [
        _rule(
            "PueOverTarget",
            "PueOverTarget",
            "warning",
            "0s",
            Expr(
                kind="average",
                metric=FACILITY_POWER,
                divide_by=POWER,
                by=[],
                aggregate="sum",
                op=">",
                value=target,
                window="1d",
            ),
            "PUE over the last day is {value:.2f}, above the target of {threshold:.2f}",
            "Facility power over IT power (ISO/IEC 30134-2) is above the design target: check cooling setpoints, "
            "economiser hours and part-load UPS efficiency; `aidc energy report` breaks it down.",
        )
    ]
