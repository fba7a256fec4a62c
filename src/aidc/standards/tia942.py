"""TIA-942 in its own terms: the rating tables for telecommunications, architectural, electrical and mechanical.

ANSI/TIA-942 rates each of the four subsystems 1–4 from a table of its own (Annex F in -B, carried into -C) and
the data centre takes the lowest. A subsystem reaches rating k when every row of its table up to k holds; a
finding names the row that stops it. These are TIA's rows, not Uptime's tiers re-labelled: fuel autonomy grows
with the rating (8 / 24 / 72 / 96 h), generators need no "unlimited runtime" rating, the architectural table
grades floors, siting and fire protection, and the telecom table grades access providers, entrances, entrance
rooms and backbone. The tables were recalled from secondary sources, not read in the standard: every rule's
citation says so, and the recalled figures are thresholds a spec can override.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aidc.facility.derived import Derived, cooling_systems
from aidc.facility.failure import PowerAnalysis
from aidc.facility.model import Facility
from aidc.standards import ratings as rt
from aidc.standards.rule import Context, Outcome, rule

TIA = "ANSI/TIA-942-C (2024), rating tables as in ANSI/TIA-942-B (2017) Annex F"
SUBSYSTEMS = ("telecom", "architectural", "electrical", "mechanical")

# Defaults of the recalled figures; a spec overrides them under checks.thresholds.<rule id>.
FUEL_H = {"1": 8.0, "2": 24.0, "3": 72.0, "4": 96.0, "ups_only_min_1": 8.0}  # Rated-1: no generator with 8 min of UPS
ARCH = {
    "floor_kpa_1": 7.2,  # 150 lbf/ft²
    "floor_kpa_2": 8.4,  # 175 lbf/ft²
    "floor_kpa_3": 12.0,  # 250 lbf/ft²
    "floor_kpa_4": 12.0,
    "traffic_m_3": 91.0,  # major traffic arteries (highway, railway): 100 yd
    "traffic_m_4": 800.0,  # ½ mile
    "airport_m_3": 1600.0,  # 1 mile
    "airport_m_4": 1600.0,
}
TELECOM = {"maintenance_hole_m_2": 20.0, "providers_3": 2}


@dataclass(frozen=True)
class Row:
    """One row of a rating table: what rating ``rating`` asks, and whether the design has it."""

    rating: int
    name: str
    ok: bool
    measured: str
    expected: str
    path: tuple[str | int, ...]
    rule: str  # the rule that reports this row


def _t(f: Facility, rule_id: str, defaults: dict[str, float]) -> dict[str, float]:
    over = f.checks.thresholds.get(rule_id, {})
    return {k: float(over.get(k, v)) for k, v in defaults.items()}


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def _proof(a: PowerAnalysis | None, scenarios: str, default: tuple[str | int, ...]) -> tuple[bool, str, Any]:
    """(holds, what breaks it, where in the spec) for the failure analysis of a chain under ``scenarios``
    (``maintenance`` or ``faults``): the first element whose loss leaves a rack or hall short is named."""
    if a is None:
        return True, "yes", default
    found = a.normal + getattr(a, scenarios)
    if not found:
        return True, "yes", default
    s = found[0]
    element = a.oneline.elements.get(s.removed[0]) if s.removed else None
    return False, s.describe(limit=3), element.path if element is not None and element.path else default


def electrical_rows(f: Facility, d: Derived) -> list[Row]:
    ups, gens = d.systems["ups"], d.systems["generators"]
    fuel = _t(f, "AV-TIA-FUEL", FUEL_H)
    hours = rt.min_fuel_hours(f)
    has_gens = gens.present

    def row(k: int, name: str, ok: bool, measured: str, expected: str, path: tuple[str | int, ...]) -> Row:
        return Row(k, name, ok, measured, expected, path, "AV-TIA-ELEC")

    cm, cm_said, cm_at = _proof(d.power, "maintenance", ("power",))
    ft, ft_said, ft_at = _proof(d.power, "faults", ("power",))

    if f.power.components:  # the one-line form: its failure analysis (the rows below) is what proves the paths
        paths_said = active_said = "one-line drawn: judged by its failure analysis"
    else:
        paths_said = f"{len(f.power.paths)} path(s), racks dual-fed {_yes(rt.racks_dual_fed(f))}"
        active_said = f"{rt.active_paths(f)} active"

    def fuel_row(k: int) -> Row:
        need = fuel[str(k)]
        ok = has_gens and hours >= need
        measured = f"{hours:g} h" if has_gens else "no generators"
        battery = rt.min_battery_minutes(f)
        if k == 1 and not has_gens and battery >= fuel["ups_only_min_1"]:
            return Row(1, "generator fuel, or UPS battery without a generator", True,
                       f"no generators, {battery:g} min of UPS", f"≥ {fuel['ups_only_min_1']:g} min", ("power", "ups"),
                       "AV-TIA-FUEL")  # fmt: skip
        return Row(k, "generator fuel at full load", ok, measured, f"≥ {need:g} h", ("power", "generators"),
                   "AV-TIA-FUEL")  # fmt: skip

    return [
        row(1, "UPS carries the IT load", ups.meets("N"), ups.scheme, "N", ("power", "ups")),
        fuel_row(1),
        row(2, "UPS redundancy", ups.meets("N+1"), ups.scheme, "N+1", ("power", "ups")),
        row(2, "generators carry the load", gens.meets("N"), gens.scheme, "N", ("power", "generators")),
        fuel_row(2),
        row(3, "generator redundancy", gens.meets("N+1"), gens.scheme, "N+1", ("power", "generators")),
        row(3, "active and alternate path to every rack", rt.paths_ok(f), paths_said, "2 paths, racks on both",
            ("power", "paths")),
        row(3, "one-line concurrently maintainable", cm, cm_said, "any one element out, racks served", cm_at),
        fuel_row(3),
        row(4, "UPS 2(N+1)", ups.meets("2(N+1)"), ups.scheme, "2(N+1)", ("power", "ups")),
        row(4, "two simultaneously active paths", rt.active_ok(f), active_said, "2 active", ("power", "paths")),
        row(4, "one-line fault tolerant", ft, ft_said, "any one element failed, racks served", ft_at),
        fuel_row(4),
    ]  # fmt: skip


def mechanical_rows(f: Facility, d: Derived) -> list[Row]:
    systems = cooling_systems(d)
    chain = d.cooling
    scheme = ", ".join(f"{s.system.removeprefix('cooling.')} {s.scheme}" for s in systems) or "no cooling units"

    def row(k: int, name: str, ok: bool, measured: str, expected: str, path: tuple[str | int, ...]) -> Row:
        return Row(k, name, ok, measured, expected, path, "AV-TIA-MECH")

    rows = [
        row(1, "cooling units carry the heat", bool(systems) and all(s.meets("N") for s in systems), scheme, "N",
            ("cooling", "units")),
        row(2, "redundant cooling units", bool(systems) and all(s.meets("N+1") for s in systems), scheme, "N+1",
            ("cooling", "units")),
        row(3, "redundant distribution (piping, air paths)", f.cooling.distribution_paths >= 2,
            f"{f.cooling.distribution_paths} path(s)", "≥ 2", ("cooling", "distribution_paths")),
        row(4, "continuous cooling", rt.continuous_cooling(f), rt.continuous_cooling_said(f),
            "fans and pumps on UPS, ride-through covers the plant's restart", ("cooling", "continuous_cooling")),
    ]  # fmt: skip
    if chain is not None:  # the chain drawn: proven by taking each unit out, as the power one-line is
        at: tuple[str | int, ...] = ("cooling", "units")
        normal = chain.normal[0].describe(limit=3) if chain.normal else "yes"
        rows.append(row(1, "cooling chain carries every hall", not chain.normal, normal, "every hall's heat removed",
                        at))  # fmt: skip
        cm, cm_said, cm_at = _proof(chain, "maintenance", at)
        ft, ft_said, ft_at = _proof(chain, "faults", at)
        rows.append(row(3, "cooling chain concurrently maintainable", cm, cm_said, "any one unit out, halls cooled",
                        cm_at))  # fmt: skip
        rows.append(row(4, "cooling chain fault tolerant", ft, ft_said, "any one unit failed, halls cooled", ft_at))
    return rows


def telecom_rows(f: Facility) -> list[Row]:
    s = f.site
    t = _t(f, "AV-TIA-TEL", TELECOM)
    declared = bool(f.telecom_spaces)
    ers, mdas, sdas = (rt.spaces(f, kind) for kind in ("entrance_room", "mda", "sda"))
    backbone = bool(f.fabrics) and all(fab.redundant_uplinks for fab in f.fabrics)
    holes = s.maintenance_hole_separation_m

    def row(k: int, name: str, ok: bool, measured: str, expected: str, path: tuple[str | int, ...],
            rule_id: str = "AV-TIA-TEL") -> Row:  # fmt: skip
        return Row(k, name, ok, measured, expected, path, rule_id)

    rows = [
        row(2, "diverse access-provider routes: maintenance holes apart",
            holes is not None and holes >= t["maintenance_hole_m_2"],
            "not declared" if holes is None else f"{holes:g} m", f"≥ {t['maintenance_hole_m_2']:g} m",
            ("site", "maintenance_hole_separation_m")),
        row(3, "access providers", s.access_providers >= t["providers_3"], str(s.access_providers),
            f"≥ {t['providers_3']:g}", ("site", "access_providers")),
        row(3, "diverse building entrances", s.diverse_entrances, _yes(s.diverse_entrances), "yes",
            ("site", "diverse_entrances")),
        row(3, "redundant backbone cabling", backbone,
            "no fabrics declared" if not f.fabrics else f"redundant uplinks {_yes(backbone)}", "every fabric",
            ("fabrics",)),
    ]  # fmt: skip
    if declared:  # the spaces prove the entrance-room and distribution-area rows (AV-TIA-SPACES reports them)
        rows += [
            row(1, "entrance room and main distribution area", ers >= 1 and mdas >= 1, f"{ers} ER, {mdas} MDA",
                "≥ 1 each", ("telecom_spaces",), "AV-TIA-SPACES"),
            row(3, "second entrance room", ers >= 2, f"{ers} ER", "≥ 2", ("telecom_spaces",), "AV-TIA-SPACES"),
            row(4, "secondary distribution area", sdas >= 1, f"{sdas} SDA", "≥ 1", ("telecom_spaces",), "AV-TIA-SPACES"),
        ]  # fmt: skip
    else:  # Rated-4's secondary distribution area is proven only by a declared one (AV-TIA-SPACES does not apply)
        rows.append(row(4, "secondary distribution area", False, "telecom spaces not declared", "≥ 1 SDA",
                        ("telecom_spaces",)))  # fmt: skip
    return rows


def _min_floor(f: Facility) -> tuple[float | None, str, tuple[str | int, ...]]:
    """The weakest hall floor (kPa, hall, spec path); None for the first hall that declares no rating."""
    rated = []
    for i, h in enumerate(f.halls):
        if h.floor_rating_kpa is None:
            return None, h.name, ("halls", i)
        rated.append((h.floor_rating_kpa, i))
    if not rated:
        return None, "no halls", ("halls",)
    kpa, i = min(rated)
    return kpa, f.halls[i].name, ("halls", i, "floor_rating_kpa")


def architectural_rows(f: Facility) -> list[Row]:
    t = _t(f, "AV-TIA-ARCH", ARCH)
    kpa, hall, floor_at = _min_floor(f)
    hz, sec = f.site.hazards, f.security
    traffic = [(v, n) for v, n in ((hz.highway_m, "highway"), (hz.railway_m, "railway")) if v is not None]
    near = min(traffic, default=None)
    rows: list[Row] = []

    def row(k: int, name: str, ok: bool, measured: str, expected: str, path: tuple[str | int, ...]) -> Row:
        return Row(k, name, ok, measured, expected, path, "AV-TIA-ARCH")

    for k in (1, 2, 3, 4):
        need = t[f"floor_kpa_{k}"]
        measured = f"{kpa:g} kPa ({hall})" if kpa is not None else f"not declared ({hall})"
        rows.append(row(k, "floor loading (superimposed live load)", kpa is not None and kpa >= need, measured,
                        f"≥ {need:g} kPa", floor_at))  # fmt: skip
    suppressed = sec.fire_suppression != "none"
    rows.append(row(2, "automatic fire suppression", suppressed, sec.fire_suppression, "sprinkler, gas or mist",
                    ("security", "fire_suppression")))  # fmt: skip
    guarded = sec.access_control and sec.access_logged and sec.cctv
    rows.append(row(3, "access control with entries logged, and CCTV", guarded,
                    f"access control {_yes(sec.access_control)}, logged {_yes(sec.access_logged)}, "
                    f"CCTV {_yes(sec.cctv)}", "all three", ("security",)))  # fmt: skip
    for k in (3, 4):
        need = t[f"traffic_m_{k}"]
        ok = near is None or near[0] >= need
        measured = "none nearby" if near is None else f"{near[0]:g} m ({near[1]})"
        rows.append(row(k, "distance to major traffic arteries", ok, measured, f"≥ {need:g} m", ("site", "hazards")))
        need = t[f"airport_m_{k}"]
        ok = hz.airport_m is None or hz.airport_m >= need
        measured = "none nearby" if hz.airport_m is None else f"{hz.airport_m:g} m"
        rows.append(row(k, "distance to an airport", ok, measured, f"≥ {need:g} m", ("site", "hazards", "airport_m")))
    assessed = f.site.tia942_architectural
    if assessed is not None and assessed < 4:  # an assessor's finding (construction type, flood plain …) caps it
        rows.append(row(assessed + 1, "rating as assessed on site", False, f"Rated-{assessed}", f"Rated-{assessed + 1}",
                        ("site", "tia942_architectural")))  # fmt: skip
    return rows


def table(f: Facility, d: Derived) -> dict[str, list[Row]]:
    return {
        "telecom": telecom_rows(f),
        "architectural": architectural_rows(f),
        "electrical": electrical_rows(f, d),
        "mechanical": mechanical_rows(f, d),
    }


def reached(rows: list[Row]) -> int:
    """The highest rating whose rows, and every lower rating's, all hold."""
    level = 0
    for k in (1, 2, 3, 4):
        if not all(r.ok for r in rows if r.rating == k):
            break
        level = k
    return level


def tia942_ratings(tables: dict[str, list[Row]]) -> dict[str, Any]:
    """Each subsystem's rating from its table, and the overall (the lowest)."""
    levels = {name: reached(rows) for name, rows in tables.items()}
    return {**levels, "overall": min(levels.values())}


# ---------------------------------------------------------------- rules


def _rows(ctx: Context, subsystem: str, rule_id: str) -> list[Outcome] | None:
    """The table's rows up to the target that this rule reports: each failing one, or one pass line."""
    target = ctx.targets.tia942
    if target is None:
        return None
    rows = [r for r in ctx.tables["tia942"][subsystem] if r.rule == rule_id and r.rating <= target]
    got = ctx.ratings["tia942"][subsystem]
    # A row that grows with the rating (fuel hours, floor loading) is reported once, at the highest rating it fails.
    worst: dict[str, Row] = {}
    for r in rows:
        if not r.ok and (r.name not in worst or r.rating > worst[r.name].rating):
            worst[r.name] = r
    bad = list(worst.values())
    if not bad:
        path: tuple[str | int, ...] = rows[0].path if rows else ()
        return [Outcome(True, f"Rated-{got}", f"Rated-{target}", path, subsystem)]
    return [
        Outcome(False, r.measured, f"{r.expected} (Rated-{r.rating})", r.path, f"{subsystem}: {r.name}") for r in bad
    ]


@rule(
    "AV-TIA-OVERALL",
    "TIA-942 rating achieved (= lowest subsystem rating)",
    family="availability",
    standard=TIA,
    clause="§ rating tables (Annex F): overall rating = the lowest of telecommunications, architectural, "
    "electrical and mechanical",
    remediation="Raise the lowest-rated subsystem shown in the ratings table to the target rating.",
)
def tia_overall(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    target = ctx.targets.tia942
    if target is None:
        return None
    r = ctx.ratings["tia942"]
    sub = ", ".join(f"{k} {r[k]}" for k in SUBSYSTEMS)
    return Outcome(r["overall"] >= target, f"Rated-{r['overall']} ({sub})", f"Rated-{target}", ("targets", "tia942"))


@rule(
    "AV-TIA-ELEC",
    "TIA-942 electrical rating, row by row",
    family="availability",
    standard=TIA,
    clause="Annex F electrical table: Rated-1 UPS at N; Rated-2 N+1 UPS modules and generators at N; Rated-3 "
    "N+1 generators, active and alternate paths to dual-corded equipment, concurrently maintainable; Rated-4 "
    "2(N+1) UPS on two active paths, fault tolerant (fuel rows: AV-TIA-FUEL)",
    remediation="Fix the row named: add UPS modules (N+1) or a second UPS system per side (2(N+1)), a "
    "redundant generator, a second path with every rack corded to both, or remove the shared element the "
    "one-line analysis names.",
)
def tia_electrical(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    return _rows(ctx, "electrical", "AV-TIA-ELEC")


@rule(
    "AV-TIA-FUEL",
    "On-site fuel for the TIA-942 rating",
    family="availability",
    standard=TIA,
    clause="Annex F electrical table, generator fuel capacity at full load: Rated-1 8 h (no generator needed "
    "with 8 min of UPS battery), Rated-2 24 h, Rated-3 72 h, Rated-4 96 h",
    thresholds=dict(FUEL_H),
    inferred=tuple(FUEL_H),
    remediation="Store fuel for the hours the rating asks at full load (tanks, not counting a contracted "
    "delivery), or override the hours in checks.thresholds if the edition you build to says otherwise.",
)
def tia_fuel(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    return _rows(ctx, "electrical", "AV-TIA-FUEL")


@rule(
    "AV-TIA-MECH",
    "TIA-942 mechanical rating, row by row",
    family="availability",
    standard=TIA,
    clause="Annex F mechanical table: Rated-1 cooling at N; Rated-2 N+1 units; Rated-3 redundant distribution "
    "(piping, air paths), concurrently maintainable; Rated-4 continuous cooling, fault tolerant",
    remediation="Fix the row named: add a redundant unit to the stage that is short, a second distribution "
    "path, a twin for the unit whose loss the chain analysis names, or put fans and pumps on UPS with thermal "
    "storage that outlasts the plant's restart.",
)
def tia_mechanical(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    return _rows(ctx, "mechanical", "AV-TIA-MECH")


@rule(
    "AV-TIA-TEL",
    "TIA-942 telecommunications rating, row by row",
    family="availability",
    standard=TIA,
    clause="Annex F telecommunications table: Rated-2 diverse access-provider routes (maintenance holes ≥ 20 m "
    "apart); Rated-3 ≥ 2 access providers, diverse entrances, redundant backbone cabling, a second entrance "
    "room; Rated-4 a secondary distribution area (spaces: AV-TIA-SPACES)",
    thresholds=dict(TELECOM),
    inferred=("maintenance_hole_m_2",),
    remediation="Contract a second access provider through a physically diverse entrance (maintenance holes "
    "at least 20 m apart) and give every fabric redundant uplinks.",
)
def tia_telecom(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    return _rows(ctx, "telecom", "AV-TIA-TEL")


@rule(
    "AV-TIA-ARCH",
    "TIA-942 architectural rating, row by row",
    family="availability",
    standard=TIA,
    clause="Annex F architectural table: floor loading (superimposed live load) Rated-1 7.2 kPa (150 lbf/ft²), "
    "Rated-2 8.4 kPa (175), Rated-3/4 12 kPa (250); Rated-2 automatic fire suppression; Rated-3 access "
    "control, logged entries and CCTV; proximity to major traffic arteries Rated-3 ≥ 91 m, Rated-4 ≥ 0.8 km, "
    "to airports ≥ 1.6 km (construction type and flood plain: declare site.tia942_architectural as assessed)",
    thresholds=dict(ARCH),
    inferred=tuple(ARCH),
    remediation="Fix the row named: declare or strengthen each hall's floor_rating_kpa, add automatic "
    "suppression, access control with logged entries and CCTV, or site the building farther from the hazard.",
)
def tia_architectural(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    return _rows(ctx, "architectural", "AV-TIA-ARCH")
