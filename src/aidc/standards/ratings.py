"""The rating a facility achieves per subsystem and overall: Uptime tier, TIA-942 rating, EN 50600 class, GB 50174 class.

The availability rules compare these to the targets; reports show them whether or not a target is set.
Each level is the highest whose topology conditions all hold (source: reference §A rules 1, 4, 5, 7).
"""

from __future__ import annotations

from typing import Any

from aidc.facility.derived import Derived, Redundancy, cooling_systems
from aidc.facility.model import Facility

TIERS = ["none", "I", "II", "III", "IV"]
GB_CLASSES = ["below C", "C", "B", "A"]
UPTIME_MIN_FUEL_H = 12.0  # Uptime: every tier, at N load, without the redundant tank


def active_paths(f: Facility) -> int:
    return sum(1 for p in f.power.paths if p.active)


def racks_dual_fed(f: Facility) -> bool:
    """Every rack reaches two power paths (a rack with no list is fed by all of them)."""
    total = len(f.power.paths)
    return all(len(set(r.power_paths)) >= 2 if r.power_paths else total >= 2 for _, r in f.racks())


def _gensets(f: Facility) -> list[tuple[str, float]]:
    """(rating, fuel hours) of every generator, from the per-path lists or the one-line's components."""
    out: list[tuple[str, float]] = [(g.rating, g.fuel_hours) for g in f.power.generators]
    out += [(c.rating or "standby", c.fuel_hours or 0.0) for c in f.power.components if c.kind == "generator"]
    return out


def unlimited_gensets(f: Facility) -> bool:
    sets = _gensets(f)
    return bool(sets) and all(rating != "standby" for rating, _ in sets)


def min_fuel_hours(f: Facility) -> float:
    return min((hours for _, hours in _gensets(f)), default=0.0)


def ups_serving(f: Facility, what: tuple[str, ...]) -> list[float]:
    """Battery minutes of every UPS serving one of ``what`` (it, cooling, mixed), in either spec form."""
    out = [u.battery_minutes for u in f.power.ups if u.serves in what]
    out += [c.battery_minutes or 0.0 for c in f.power.components if c.kind == "ups" and (c.serves or "it") in what]
    return out


def min_battery_minutes(f: Facility) -> float:
    return min(ups_serving(f, ("it", "mixed")), default=0.0)


def _all_meet(systems: list[Redundancy], level: str) -> bool:
    return bool(systems) and all(s.meets(level) for s in systems)


def uptime_electrical(f: Facility, d: Derived) -> int:
    ups, gen = d.systems["ups"], d.systems["generators"]
    if not ups.meets("N") or not gen.meets("N") or min_fuel_hours(f) < UPTIME_MIN_FUEL_H:
        return 0
    level = 1
    if ups.meets("N+1") and gen.meets("N+1"):
        level = 2
    if level == 2 and _paths_ok(f) and unlimited_gensets(f) and maintainable(d):
        level = 3
    if level == 3 and ups.fault_tolerant and _active_ok(f) and f.power.compartmentalized and fault_tolerant(d):
        level = 4
    return level


def maintainable(d: Derived) -> bool:
    """Concurrent maintainability as the failure analysis proved it (any one element out, racks served)."""
    return d.power is None or d.power.concurrently_maintainable


def fault_tolerant(d: Derived) -> bool:
    return d.power is None or d.power.fault_tolerant


def _paths_ok(f: Facility) -> bool:
    """Two paths with every rack on both; in the one-line form the failure analysis has already judged them."""
    if f.power.components:
        return True
    return len(f.power.paths) >= 2 and active_paths(f) >= 1 and racks_dual_fed(f)


def _active_ok(f: Facility) -> bool:
    return bool(f.power.components) or active_paths(f) >= 2


def mechanical(f: Facility, d: Derived) -> int:
    systems = cooling_systems(d)
    if not _all_meet(systems, "N"):
        return 0
    level = 1
    if _all_meet(systems, "N+1"):
        level = 2
    if level == 2 and f.cooling.distribution_paths >= 2:
        level = 3
    cooling_on_ups = bool(ups_serving(f, ("cooling", "mixed")))
    if level == 3 and f.cooling.continuous_cooling and cooling_on_ups:
        level = 4
    return level


def tia_electrical(f: Facility, d: Derived) -> int:
    level = min(uptime_electrical(f, d), 3)
    ups = d.systems["ups"]
    if level == 3 and ups.scheme == "2(N+1)" and _active_ok(f) and fault_tolerant(d):
        level = 4
    return level


def tia_telecom(f: Facility) -> int:
    s = f.site
    level = 1
    if s.maintenance_hole_separation_m is not None and s.maintenance_hole_separation_m >= 20:
        level = 2
    # TIA-942's telecom table asks Rated-3 for a redundant backbone as well as two providers through diverse
    # entrances (it was only checked at Rated-4 before). Rated-4's own extra (a second entrance room, fully
    # redundant horizontal cabling) is not modelled: a Rated-3 telecom system is reported as Rated-4.
    backbone = bool(f.fabrics) and all(fab.redundant_uplinks for fab in f.fabrics)
    if level == 2 and s.access_providers >= 2 and s.diverse_entrances and backbone:
        level = 4
    return level


def en50600_power(f: Facility, d: Derived) -> int:
    ups = d.systems["ups"]
    if not ups.meets("N"):
        return 0
    level = 2 if ups.meets("N+1") else 1
    if level == 2 and _paths_ok(f) and maintainable(d):
        level = 3
    if level == 3 and ups.fault_tolerant and _active_ok(f) and fault_tolerant(d):
        level = 4
    return level


def gb_power(f: Facility, d: Derived) -> int:
    s = d.systems
    ups = s["ups"]
    if not ups.meets("N"):
        return 0
    substations = {feed.substation or feed.name for feed in f.power.utility_feeds}
    battery = min_battery_minutes(f)
    level = 1
    if ups.meets("N+1") and s["generators"].meets("N") and len(substations) >= 2 and battery >= 7:
        level = 2
    # Class A is fault tolerant: the UPS must survive losing a whole system (2N, or M(N+1) groups that
    # cover for each other), as the failure analysis proves; pooled modules on two paths are not enough.
    ups_a = ups.fault_tolerant
    if level == 2 and ups_a and s["generators"].meets("N+1") and s["transformers"].fault_tolerant and battery >= 15:
        level = 3
    return level


def gb_cooling(d: Derived) -> int:
    systems = cooling_systems(d)
    if not _all_meet(systems, "N"):
        return 0
    return 3 if _all_meet(systems, "N+1") else 1


def achieved_ratings(f: Facility, d: Derived) -> dict[str, dict[str, Any]]:
    """Per family: each subsystem's level and the overall (the lowest subsystem, as TIA-942 counts it)."""
    ue, um = uptime_electrical(f, d), mechanical(f, d)
    te, tm, tt = tia_electrical(f, d), mechanical(f, d), tia_telecom(f)
    ta = f.site.tia942_architectural
    tia_levels = [te, tm, tt] + ([ta] if ta is not None else [])
    ep, ee = en50600_power(f, d), mechanical(f, d)
    gp, gc = gb_power(f, d), gb_cooling(d)
    return {
        "uptime": {"electrical": TIERS[ue], "mechanical": TIERS[um], "overall": TIERS[min(ue, um)]},
        "tia942": {
            "electrical": te,
            "mechanical": tm,
            "telecom": tt,
            "architectural": ta if ta is not None else "not assessed",
            "overall": min(tia_levels),
        },
        "en50600": {"power": ep, "environmental_control": ee, "overall": min(ep, ee)},
        "gb50174": {"power": GB_CLASSES[gp], "cooling": GB_CLASSES[gc], "overall": GB_CLASSES[min(gp, gc)]},
    }
