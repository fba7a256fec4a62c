"""The rating a facility achieves per subsystem and overall: Uptime tier, EN 50600 class, GB 50174 class.

The availability rules compare these to the targets; reports show them whether or not a target is set.
Each level is the highest whose topology conditions all hold (Uptime Tier Standard: Topology §2.1–2.4;
EN 50600-1 §6.2; GB 50174-2017 Annex A). TIA-942 is rated from its own tables in tia942.py.
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
    if level == 2 and paths_ok(f) and unlimited_gensets(f) and maintainable(d):
        level = 3
    if level == 3 and ups.fault_tolerant and active_ok(f) and f.power.compartmentalized and fault_tolerant(d):
        level = 4
    return level


def maintainable(d: Derived) -> bool:
    """Concurrent maintainability as the failure analysis proved it (any one element out, racks served)."""
    return d.power is None or d.power.concurrently_maintainable


def fault_tolerant(d: Derived) -> bool:
    return d.power is None or d.power.fault_tolerant


def paths_ok(f: Facility) -> bool:
    """Two paths with every rack on both; in the one-line form the failure analysis has already judged them."""
    if f.power.components:
        return True
    return len(f.power.paths) >= 2 and active_paths(f) >= 1 and racks_dual_fed(f)


def active_ok(f: Facility) -> bool:
    return bool(f.power.components) or active_paths(f) >= 2


def mechanical(f: Facility, d: Derived) -> int:
    """Cooling: N, N+1 units, a second distribution path, continuous cooling; where the chain is drawn, its
    failure analysis must also hold (carried at N, maintainable for level 3, fault tolerant for level 4)."""
    systems = cooling_systems(d)
    chain = d.cooling
    if not _all_meet(systems, "N") or (chain is not None and chain.normal):
        return 0
    level = 1
    if _all_meet(systems, "N+1"):
        level = 2
    if level == 2 and f.cooling.distribution_paths >= 2 and (chain is None or chain.concurrently_maintainable):
        level = 3
    if level == 3 and continuous_cooling(f) and (chain is None or chain.fault_tolerant):
        level = 4
    return level


def _compressors(f: Facility) -> bool:
    return any(u.kind in ("chiller", "crac") for u in f.cooling.units)


def continuous_cooling(f: Facility) -> bool:
    """Cooling that never stops on a utility loss: declared, fans and pumps on a UPS, and — where compressors
    must restart on generators — stored cooling that outlasts the restart."""
    c = f.cooling
    on_ups = bool(ups_serving(f, ("cooling", "mixed")))
    if not (c.continuous_cooling and on_ups):
        return False
    if c.restart_min is None and not _compressors(f):
        return True  # no compressor to restart: fans and pumps on UPS carry the heat through
    return c.ride_through_min is not None and c.restart_min is not None and c.ride_through_min >= c.restart_min


def continuous_cooling_said(f: Facility) -> str:
    """What the spec gives for continuous cooling, in a few words (for findings)."""
    c = f.cooling
    on_ups = bool(ups_serving(f, ("cooling", "mixed")))
    parts = [f"declared {'yes' if c.continuous_cooling else 'no'}", f"on UPS {'yes' if on_ups else 'no'}"]
    if c.restart_min is not None or _compressors(f):
        ride = "not declared" if c.ride_through_min is None else f"{c.ride_through_min:g} min"
        restart = "not declared" if c.restart_min is None else f"{c.restart_min:g} min"
        parts.append(f"ride-through {ride} for a restart of {restart}")
    return ", ".join(parts)


def spaces(f: Facility, kind: str) -> int:
    return sum(1 for s in f.telecom_spaces if s.kind == kind)


def en50600_distribution(f: Facility, d: Derived) -> int:
    """EN 50600-2-2 power distribution: 1 single path, 2 single path with redundant components (UPS N+1),
    3 multi-path concurrently maintainable, 4 multi-path fault tolerant."""
    ups = d.systems["ups"]
    if not ups.meets("N"):
        return 0
    level = 2 if ups.meets("N+1") else 1
    if level == 2 and paths_ok(f) and maintainable(d):
        level = 3
    if level == 3 and ups.fault_tolerant and active_ok(f) and fault_tolerant(d):
        level = 4
    return level


def independent_supplies(f: Facility) -> int:
    """Utility supplies from distinct substations (a feed without one is its own)."""
    subs = {feed.substation or feed.name for feed in f.power.utility_feeds}
    subs |= {c.name for c in f.power.components if c.kind == "utility"}
    return len(subs)


def en50600_supply(f: Facility, d: Derived) -> int:
    """EN 50600-2-2 power supply: 1 one supply; 2 a secondary supply (generators) able to carry the load;
    3 the supplies concurrently maintainable (generators N+1, or two independent utility supplies, and the
    one-line maintainable); 4 fault tolerant (two independent utility supplies and N+1 generators, and the
    one-line surviving any single fault)."""
    gens = d.systems["generators"]
    primary = independent_supplies(f)
    if primary == 0 and not gens.meets("N"):
        return 0
    level = 1
    if gens.meets("N"):
        level = 2
    if level == 2 and (gens.meets("N+1") or primary >= 2) and maintainable(d):
        level = 3
    if level == 3 and primary >= 2 and gens.meets("N+1") and fault_tolerant(d):
        level = 4
    return level


def en50600_telecom(f: Facility) -> int:
    """EN 50600-2-4 telecommunications cabling: 1 single path; 2 a redundant backbone (fixed cabling with
    redundant links); 3 multiple paths into the site (two providers through diverse entrances); 4 those paths
    kept apart inside as well (two entrance rooms declared)."""
    backbone = bool(f.fabrics) and all(fab.redundant_uplinks for fab in f.fabrics)
    level = 1
    if backbone:
        level = 2
    if level == 2 and f.site.access_providers >= 2 and f.site.diverse_entrances:
        level = 3
    if level == 3 and spaces(f, "entrance_room") >= 2:
        level = 4
    return level


def en50600_protection(f: Facility) -> int:
    """EN 50600-1 protection class against unauthorised access reached by the computer room (shell principle:
    a class-k space is entered through spaces of the classes below it): 1 public or semi-public; 2 electronic
    access control; 3 entry logged, watched by CCTV, inside a second controlled zone; 4 two-factor
    identification, inside a third."""
    s = f.security
    zones = s.access_zones
    level = 1
    if s.access_control and zones >= 1:
        level = 2
    if level == 2 and s.access_logged and s.cctv and zones >= 2:
        level = 3
    if level == 3 and s.access_two_factor and zones >= 3:
        level = 4
    return level


def en50600_fire(f: Facility) -> int:
    """EN 50600 protection class against internal fire events reached by the computer room: 1 fire detection and
    alarm; 2 also automatic suppression; 3 also early fire detection (aspirating smoke detection); 4 also
    suppression that leaves the IT dry (gas, water mist, aerosol) released by two independent detector groups."""
    s = f.security
    if s.fire_detector_groups < 1:
        return 0
    level = 1
    if s.fire_suppression != "none":
        level = 2
    if level == 2 and s.fire_early_detection:
        level = 3
    if level == 3 and s.fire_suppression in ("gas", "water_mist", "aerosol") and s.fire_detector_groups >= 2:
        level = 4
    return level


def _metered(f: Facility) -> dict[str, set[str]]:
    """What each target is metered for: target name → the measures of the endpoints naming it."""
    out: dict[str, set[str]] = {}
    for e in f.telemetry.endpoints:
        out.setdefault(e.target or "", set()).update(e.measures)
    return out


_POWER = {"power_kw", "it_kwh", "facility_kwh"}


def en50600_granularity(f: Facility) -> int:
    """EN 50600 energy-efficiency enablement granularity: level 1 the facility input and the IT energy (UPS
    output); level 2 also every distribution board (PDU, busway, RPP) output; level 3 also every rack, or every
    IT device through its BMC."""
    metered = _metered(f)
    measures = set().union(*metered.values()) if metered else set()
    if not ({"facility_kwh"} <= measures and measures & {"it_kwh", "power_kw"}):
        return 0
    level = 1
    boards = [p.name for p in f.power.pdus] + [c.name for c in f.power.components if c.kind in ("pdu", "busway", "rpp")]
    if boards and all(metered.get(b, set()) & _POWER for b in boards):
        level = 2
    racks = [r for _, r in f.racks()]
    by_bmc = {rack for n in f.nodes if n.bmc is not None and n.bmc.address for rack in n.placement}
    if level == 2 and racks and all(metered.get(r.name, set()) & _POWER or r.name in by_bmc for r in racks):
        level = 3
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
    """Per family: each subsystem's level and the overall (the lowest subsystem). TIA-942 is rated from its own
    tables (tia942.py) and merged in by the checker."""
    ue, um = uptime_electrical(f, d), mechanical(f, d)
    es, ed, ee, et = en50600_supply(f, d), en50600_distribution(f, d), mechanical(f, d), en50600_telecom(f)
    gp, gc = gb_power(f, d), gb_cooling(d)
    return {
        "uptime": {"electrical": TIERS[ue], "mechanical": TIERS[um], "overall": TIERS[min(ue, um)]},
        "en50600": {
            "power_supply": es,
            "power_distribution": ed,
            "environmental_control": ee,
            "telecommunications_cabling": et,
            "overall": min(es, ed, ee, et),
            "protection_class": en50600_protection(f),
            "fire_protection_class": en50600_fire(f),
            "granularity_level": en50600_granularity(f),
        },
        "gb50174": {"power": GB_CLASSES[gp], "cooling": GB_CLASSES[gc], "overall": GB_CLASSES[min(gp, gc)]},
    }
