"""Availability rules: Uptime tiers I–IV, GB 50174 A/B/C, NVIDIA SuperPOD siting (TIA-942: tia942.py; EN 50600: en50600.py)."""

from __future__ import annotations

from typing import Any

from aidc.facility.derived import Redundancy, cooling_systems
from aidc.standards import ratings as rt
from aidc.standards.rule import Context, Outcome, count, rule

UT = "Uptime Institute Tier Standard: Topology (2018 edition)"
GB = "GB 50174-2017"
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4}


def _tier(ctx: Context) -> int | None:
    return _ROMAN[ctx.targets.uptime] if ctx.targets.uptime else None


def _system(r: Redundancy, required: str, path: tuple[Any, ...], subject: str = "") -> Outcome:
    measured = f"{r.scheme} ({count(r.units, 'unit')}, {r.capacity_kw:,.0f} kW for {r.load_kw:,.0f} kW)"
    return Outcome(r.meets(required), measured, required, path, subject or r.system)


@rule(
    "AV-UT-OVERALL",
    "Uptime tier achieved (lowest of electrical and mechanical)",
    family="availability",
    standard=UT,
    clause="§2.1–2.4 Tier I–IV objective topology requirements",
    remediation="Fix the electrical or mechanical availability findings until both subsystems reach the target tier.",
)
def uptime_overall(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    tier = _tier(ctx)
    if tier is None:
        return None
    got = ctx.ratings["uptime"]["overall"]
    return Outcome(rt.TIERS.index(got) >= tier, f"Tier {got}", f"Tier {ctx.targets.uptime}", ("targets", "uptime"))


@rule(
    "AV-UT-UPS",
    "UPS redundancy for the target tier",
    family="availability",
    standard=UT,
    clause="§2.1–2.4: Tier I N; Tier II–III N+1 capacity components; Tier IV fault tolerant (2N)",
    thresholds={"I": "N", "II": "N+1", "III": "N+1", "IV": "2N"},
    remediation="Add UPS modules (N+1), or a second independent UPS system on path B sized for the whole IT load (2N).",
)
def uptime_ups(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    tier = ctx.targets.uptime
    return None if tier is None else _system(ctx.derived.systems["ups"], t[tier], ("power", "ups"))


@rule(
    "AV-UT-GEN",
    "Engine generators: redundancy and a rating with no runtime limit",
    family="availability",
    standard=UT,
    clause="§2.1–2.4 and §3.1 engine generators: Tier I N; Tier II+ N+1; Tier III/IV rated with no runtime limit at N load",
    thresholds={"I": "N", "II": "N+1", "III": "N+1", "IV": "N+1"},
    remediation="Add a generator so one can be lost (N+1), and buy prime/continuous/data-center rated sets "
    "for Tier III and IV (standby ratings limit runtime).",
)
def uptime_generators(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    tier = ctx.targets.uptime
    if tier is None:
        return None
    out = _system(ctx.derived.systems["generators"], t[tier], ("power", "generators"))
    if out.ok and _ROMAN[tier] >= 3 and not rt.unlimited_gensets(ctx.facility):
        return Outcome(
            False,
            "standby rating",
            "prime, continuous or data_center rating",
            ("power", "generators"),
            "generators",
            "standby sets have a runtime limit",
        )
    return out


@rule(
    "AV-UT-FUEL",
    "On-site fuel at N load",
    family="availability",
    standard=UT,
    clause="§3.1 engine-generator fuel storage: 12 h minimum at N load, all tiers",
    thresholds={"min_hours": 12.0},
    remediation="Add fuel storage (not counting the redundant tank) for at least the required hours at N load.",
)
def uptime_fuel(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if ctx.targets.uptime is None:
        return None
    hours = rt.min_fuel_hours(ctx.facility)
    return Outcome(hours >= t["min_hours"], f"{hours:g} h", f"≥ {t['min_hours']:g} h", ("power", "generators"))


@rule(
    "AV-UT-PATHS",
    "Power distribution paths",
    family="availability",
    standard=UT,
    clause="§2.3 (Tier III) one active + one alternate path; §2.4 (Tier IV) two simultaneously active paths",
    thresholds={"III": 1, "IV": 2},
    remediation="Declare a second power path (B) from the UPS to the racks; for Tier IV make both active.",
)
def uptime_paths(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    tier = ctx.targets.uptime
    if tier not in ("III", "IV") or ctx.facility.power.components:
        return None  # in the one-line form, AV-UT-CM and AV-UT-FT judge the paths by taking them out
    paths, active = len(ctx.facility.power.paths), rt.active_paths(ctx.facility)
    need = int(t[tier])
    return Outcome(
        paths >= 2 and active >= need,
        f"{paths} paths, {active} active",
        f"2 paths, ≥ {need} active",
        ("power", "paths"),
    )


@rule(
    "AV-UT-RACKFEED",
    "Every rack fed from two power paths",
    family="availability",
    standard=UT,
    clause="§2.3 Tier III concurrent maintainability (dual-corded IT or point-of-use transfer)",
    remediation="Feed each rack from both A and B paths (dual PDUs), or add a rack transfer switch.",
)
def uptime_rack_feed(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    tier = _tier(ctx)
    if tier is None or tier < 3:
        return None
    total = len(ctx.facility.power.paths)
    graph = bool(ctx.facility.power.components)
    out = []
    for _, rack in ctx.facility.racks():
        n = len(set(rack.feeds)) if graph else (len(set(rack.power_paths)) if rack.power_paths else total)
        out.append(
            Outcome(n >= 2, f"{n} path(s)", "2 paths", ctx.derived.rack_path[rack.name] + ("power_paths",), rack.name)
        )
    return out


@rule(
    "AV-UT-COOL",
    "Cooling redundancy for the target tier",
    family="availability",
    standard=UT,
    clause="§2.1–2.4: Tier I N; Tier II+ N+1 cooling capacity components",
    thresholds={"I": "N", "II": "N+1", "III": "N+1", "IV": "N+1"},
    remediation="Add one cooling unit of each kind so any one can be serviced or fail with the heat load still "
    "removed.",
)
def uptime_cooling(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    tier = ctx.targets.uptime
    if tier is None:
        return None
    systems = cooling_systems(ctx.derived)
    if not systems:
        return [Outcome(False, "no cooling units", t[tier], ("cooling", "units"), "cooling")]
    return [_system(s, t[tier], ("cooling", "units")) for s in systems]


@rule(
    "AV-UT-COOLPATH",
    "Cooling distribution paths",
    family="availability",
    standard=UT,
    clause="§2.3–2.4: redundant cooling distribution paths (concurrently maintainable)",
    thresholds={"min_paths": 2},
    remediation="Add a second chilled-water/condenser distribution path so any pipe or valve can be isolated.",
)
def uptime_cooling_paths(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if (_tier(ctx) or 0) < 3:
        return None
    n = ctx.facility.cooling.distribution_paths
    return Outcome(n >= t["min_paths"], n, f"≥ {t['min_paths']}", ("cooling", "distribution_paths"))


@rule(
    "AV-UT-CC",
    "Continuous cooling",
    family="availability",
    standard=UT,
    clause="§2.4 Tier IV continuous cooling: cooling without interruption through a utility loss, until the "
    "plant runs again on the engine generators",
    remediation="Put fans, pumps and controls on UPS (a `serves: cooling` UPS group); where chillers must "
    "restart on generators, add stored cooling (cooling.ride_through_min) that outlasts the restart "
    "(cooling.restart_min); then set cooling.continuous_cooling.",
)
def uptime_continuous_cooling(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if ctx.targets.uptime != "IV":
        return None
    ok = rt.continuous_cooling(ctx.facility)
    return Outcome(
        ok, rt.continuous_cooling_said(ctx.facility), "continuous cooling", ("cooling", "continuous_cooling")
    )


@rule(
    "AV-UT-COMPART",
    "Compartmentalization of redundant paths",
    family="availability",
    standard=UT,
    clause="§2.4 Tier IV compartmentalization",
    remediation="Separate the A and B power paths (UPS rooms, switchgear, routes) into different fire compartments.",
)
def uptime_compartments(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if ctx.targets.uptime != "IV":
        return None
    ok = ctx.facility.power.compartmentalized
    return Outcome(ok, "yes" if ok else "no", "A and B compartmentalized", ("power", "compartmentalized"))


def _gb(ctx: Context) -> str | None:
    return ctx.targets.gb50174


@rule(
    "AV-GB-UPS",
    "UPS configuration for the GB 50174 class",
    family="availability",
    standard=GB,
    clause="Annex A (Table A, UPS configuration): A 2N or M(N+1), B N+X, C N",
    inferred=("A", "B", "C"),
    thresholds={"A": "2N", "B": "N+1", "C": "N"},
    remediation="Class A: two UPS systems each carrying the IT load (2N) or several N+1 groups on separate paths.",
)
def gb_ups(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    cls = _gb(ctx)
    if cls is None:
        return None
    ups = ctx.derived.systems["ups"]
    out = _system(ups, t[cls], ("power", "ups"))
    if cls == "A" and out.ok and ups.scheme == "distributed redundant":
        return Outcome(True, f"M(N+1) ({ups.paths} groups covering for each other)", out.expected, out.path, "ups")
    if not out.ok and ctx.derived.power is not None:
        verdict = ctx.derived.power.kinds.get("ups")
        if verdict is not None and verdict.worst is not None:
            return Outcome(False, out.measured, out.expected, out.path, out.subject, verdict.worst.describe())
    return out


@rule(
    "AV-GB-GEN",
    "Generators for the GB 50174 class",
    family="availability",
    standard=GB,
    clause="Annex A (Table A, generators): A N+X (X = 1..N), B N",
    inferred=("A", "B"),
    thresholds={"A": "N+1", "B": "N"},
    remediation="Class A: add generators so at least one can be lost at full facility load.",
)
def gb_generators(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    cls = _gb(ctx)
    if cls not in ("A", "B"):
        return None
    return _system(ctx.derived.systems["generators"], t[cls], ("power", "generators"))


@rule(
    "AV-GB-XFMR",
    "Transformers for the GB 50174 class",
    family="availability",
    standard=GB,
    clause="Annex A (Table A, transformers): A M(1+1)",
    inferred=("A",),
    thresholds={"A": "2N"},
    remediation="Class A: pair every transformer with a second one that carries its load alone (1+1).",
)
def gb_transformers(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if _gb(ctx) != "A":
        return None
    return _system(ctx.derived.systems["transformers"], t["A"], ("power", "transformers"))


@rule(
    "AV-GB-FEED",
    "Utility supply for the GB 50174 class",
    family="availability",
    standard=GB,
    clause="Annex A (Table A, utility supply): A and B dual independent sources (双重电源), C two circuits",
    inferred=("sources",),
    thresholds={"sources": 2},
    remediation="Bring a second utility feed from a different substation.",
)
def gb_feeds(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    cls = _gb(ctx)
    if cls is None:
        return None
    feeds = ctx.facility.power.utility_feeds
    n = len({f.substation or f.name for f in feeds}) if cls in ("A", "B") else len(feeds)
    what = "independent substation" if cls in ("A", "B") else "circuit"
    return Outcome(n >= t["sources"], count(n, what), f"≥ {count(t['sources'], what)}", ("power", "utility_feeds"))


@rule(
    "AV-GB-COOL",
    "Cooling redundancy for the GB 50174 class",
    family="availability",
    standard=GB,
    clause="Annex A (Table A, chillers, pumps, CRAC): A N+X, B N+1, C N",
    inferred=("A", "B", "C"),
    thresholds={"A": "N+1", "B": "N+1", "C": "N"},
    remediation="Add one unit of each cooling kind (chiller, pump, CRAC/CRAH, CDU) as standby.",
)
def gb_cooling(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    cls = _gb(ctx)
    if cls is None:
        return None
    systems = cooling_systems(ctx.derived)
    if not systems:
        return [Outcome(False, "no cooling units", t[cls], ("cooling", "units"), "cooling")]
    return [_system(s, t[cls], ("cooling", "units")) for s in systems]


@rule(
    "AV-GB-BATT",
    "UPS battery autonomy for the GB 50174 class",
    family="availability",
    standard=GB,
    clause="Annex A (Table A, UPS battery autonomy): A ≥ 15 min with genset, B ≥ 7 min",
    inferred=("A", "B"),
    thresholds={"A": 15.0, "B": 7.0},
    remediation="Add battery strings (or a longer-autonomy cabinet) on every IT UPS group.",
)
def gb_battery(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    cls = _gb(ctx)
    if cls not in ("A", "B"):
        return None
    minutes = rt.min_battery_minutes(ctx.facility)
    return Outcome(minutes >= t[cls], f"{minutes:g} min", f"≥ {t[cls]:g} min", ("power", "ups"))


_SITING = {  # field: (class A minimum, class B minimum, label)
    "parking_m": (20.0, 10.0, "parking"),
    "railway_m": (800.0, 100.0, "railway"),
    "highway_m": (800.0, 100.0, "highway"),
    "airport_m": (8000.0, 1600.0, "airport"),
    "flammable_plant_m": (2000.0, None, "flammable plant"),
    "explosives_m": (3000.0, None, "explosives"),
    "nuclear_km": (40.0, 40.0, "nuclear hazard zone"),
}


@rule(
    "AV-GB-SITE",
    "Siting distances to hazards",
    family="availability",
    standard=GB,
    clause="Annex A (Table A, siting): parking, railway/highway, airport, flammable and explosive plants, nuclear zone",
    read=True,
    thresholds={f"{k}_{c}": v[i] for k, v in _SITING.items() for i, c in enumerate("AB") if v[i] is not None},
    remediation="Choose a site farther from the hazard, or document the mitigation the authority accepts.",
)
def gb_siting(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    cls = _gb(ctx)
    if cls not in ("A", "B"):
        return None
    hazards = ctx.facility.site.hazards
    out = []
    for name, (_, _, label) in _SITING.items():
        key = f"{name}_{cls}"
        value = getattr(hazards, name)
        if key in t and value is not None:
            unit = "km" if name.endswith("_km") else "m"
            out.append(
                Outcome(value >= t[key], f"{value:g} {unit}", f"≥ {t[key]:g} {unit}", ("site", "hazards", name), label)
            )
    return out


@rule(
    "AV-NV-SUPERPOD",
    "AI SuperPOD-scale hall on a Tier III-class site",
    family="availability",
    standard="NVIDIA DGX SuperPOD Reference Architecture: DGX GB200 (2024)",
    clause="§ data-center requirements: Uptime Tier 3 / TIA-942 Rated 3 / EN 50600 Class 3, no single point of failure",
    severity="warning",
    thresholds={"min_gpus": 248},
    inferred=("min_gpus",),
    remediation="Host a scalable unit or more on a site that reaches Tier III (see the availability findings).",
)
def superpod_site(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if ctx.derived.gpus < t["min_gpus"]:
        return None
    got = ctx.ratings["uptime"]["overall"]
    return Outcome(
        rt.TIERS.index(got) >= 3, f"Tier {got} with {count(ctx.derived.gpus, 'GPU')}", "Tier III", ("targets", "uptime")
    )
