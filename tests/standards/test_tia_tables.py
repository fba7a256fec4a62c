"""The four TIA-942 rating tables as a designer reads them: every row, what it measured, what it asked, where it points.

`aidc check` prints these rows (and each failing one becomes a finding pointing at its spec path), so a changed name,
figure or path is something a user sees. Each expected row is written from two sources, not from the code: the
example spec's own values (quoted beside each block) and the table's numbers as recalled in tia942.py's citation —
fuel 8 / 24 / 72 / 96 h, floors 7.2 / 8.4 / 12 / 12 kPa, traffic arteries 91 m (Rated-3) and 800 m (Rated-4),
airports 1,600 m, maintenance holes 20 m apart, two access providers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.standards.findings import EXAMPLES, no_generators, overriding

from aidc.facility import load_facility
from aidc.facility.derived import derive
from aidc.standards.tia942 import table

Rows = list[tuple[Any, ...]]


def rows_of(spec: Path) -> dict[str, Rows]:
    f = load_facility(spec)
    return {
        name: [(r.rating, r.name, r.ok, r.measured, r.expected, r.path, r.rule) for r in rows]
        for name, rows in table(f, derive(f)).items()
    }


TEL, SPACES, ARCH, ELEC, FUEL, MECH = (f"AV-TIA-{s}" for s in ("TEL", "SPACES", "ARCH", "ELEC", "FUEL", "MECH"))
FLOOR = "floor loading (superimposed live load)"
TRAFFIC, AIRPORT = "distance to major traffic arteries", "distance to an airport"
GEN_FUEL = "generator fuel at full load"
UPS_AT, GENS_AT, PATHS_AT = ("power", "ups"), ("power", "generators"), ("power", "paths")
NEEDS_ONE_ELEMENT_OUT = "any one element out, racks served"
NEEDS_ONE_ELEMENT_FAILED = "any one element failed, racks served"
NEEDS_CONTINUOUS = "fans and pumps on UPS, ride-through covers the plant's restart"


def test_the_rated_3_example_row_by_row() -> None:
    t = rows_of(EXAMPLES / "dgx-h100-tier3.yaml")
    # site: 2 access providers, diverse entrances, maintenance holes 35 m apart; one fabric with redundant
    # uplinks; telecom spaces er-north, er-south, mda (no SDA).
    assert t["telecom"] == [
        (2, "diverse access-provider routes: maintenance holes apart", True, "35 m", "≥ 20 m",
         ("site", "maintenance_hole_separation_m"), TEL),
        (3, "access providers", True, "2", "≥ 2", ("site", "access_providers"), TEL),
        (3, "diverse building entrances", True, "yes", "yes", ("site", "diverse_entrances"), TEL),
        (3, "redundant backbone cabling", True, "redundant uplinks yes", "every fabric", ("fabrics",), TEL),
        (1, "entrance room and main distribution area", True, "2 ER, 1 MDA", "≥ 1 each", ("telecom_spaces",), SPACES),
        (3, "second entrance room", True, "2 ER", "≥ 2", ("telecom_spaces",), SPACES),
        (4, "secondary distribution area", False, "0 SDA", "≥ 1", ("telecom_spaces",), SPACES),
    ]  # fmt: skip
    # hall-1 at 12 kPa; gas suppression; access control, logged, CCTV; highway 400 m, railway 1,200 m (the
    # nearer is named), airport 9 km.
    floor_at = ("halls", 0, "floor_rating_kpa")
    assert t["architectural"] == [
        (1, FLOOR, True, "12 kPa (hall-1)", "≥ 7.2 kPa", floor_at, ARCH),
        (2, FLOOR, True, "12 kPa (hall-1)", "≥ 8.4 kPa", floor_at, ARCH),
        (3, FLOOR, True, "12 kPa (hall-1)", "≥ 12 kPa", floor_at, ARCH),
        (4, FLOOR, True, "12 kPa (hall-1)", "≥ 12 kPa", floor_at, ARCH),
        (2, "automatic fire suppression", True, "gas", "sprinkler, gas or mist", ("security", "fire_suppression"), ARCH),
        (3, "access control with entries logged, and CCTV", True, "access control yes, logged yes, CCTV yes",
         "all three", ("security",), ARCH),
        (3, TRAFFIC, True, "400 m (highway)", "≥ 91 m", ("site", "hazards"), ARCH),
        (3, AIRPORT, True, "9000 m", "≥ 1600 m", ("site", "hazards", "airport_m"), ARCH),
        (4, TRAFFIC, False, "400 m (highway)", "≥ 800 m", ("site", "hazards"), ARCH),
        (4, AIRPORT, True, "9000 m", "≥ 1600 m", ("site", "hazards", "airport_m"), ARCH),
    ]  # fmt: skip
    # UPS 2N, generators N+1 (3 × 300 kW) with 72 h of fuel, two paths with every rack on both, both active.
    assert t["electrical"] == [
        (1, "UPS carries the IT load", True, "2N", "N", UPS_AT, ELEC),
        (1, GEN_FUEL, True, "72 h", "≥ 8 h", GENS_AT, FUEL),
        (2, "UPS redundancy", True, "2N", "N+1", UPS_AT, ELEC),
        (2, "generators carry the load", True, "N+1", "N", GENS_AT, ELEC),
        (2, GEN_FUEL, True, "72 h", "≥ 24 h", GENS_AT, FUEL),
        (3, "generator redundancy", True, "N+1", "N+1", GENS_AT, ELEC),
        (3, "active and alternate path to every rack", True, "2 path(s), racks dual-fed yes", "2 paths, racks on both",
         PATHS_AT, ELEC),
        (3, "one-line concurrently maintainable", True, "yes", NEEDS_ONE_ELEMENT_OUT, ("power",), ELEC),
        (3, GEN_FUEL, True, "72 h", "≥ 72 h", GENS_AT, FUEL),
        (4, "UPS 2(N+1)", False, "2N", "2(N+1)", UPS_AT, ELEC),
        (4, "two simultaneously active paths", True, "2 active", "2 active", PATHS_AT, ELEC),
        (4, "one-line fault tolerant", True, "yes", NEEDS_ONE_ELEMENT_FAILED, ("power",), ELEC),
        (4, GEN_FUEL, False, "72 h", "≥ 96 h", GENS_AT, FUEL),
    ]  # fmt: skip
    # chillers and CRAHs N+1, two distribution paths; continuous cooling not declared (fans on UPS only).
    units = "chiller N+1, crah N+1"
    assert t["mechanical"] == [
        (1, "cooling units carry the heat", True, units, "N", ("cooling", "units"), MECH),
        (2, "redundant cooling units", True, units, "N+1", ("cooling", "units"), MECH),
        (3, "redundant distribution (piping, air paths)", True, "2 path(s)", "≥ 2", ("cooling", "distribution_paths"),
         MECH),
        (4, "continuous cooling", False,
         "declared no, on UPS yes, ride-through not declared for a restart of not declared", NEEDS_CONTINUOUS,
         ("cooling", "continuous_cooling"), MECH),
    ]  # fmt: skip


def test_the_one_line_example_row_by_row() -> None:
    t = rows_of(EXAMPLES / "nvl72-tier4-oneline.yaml")
    # No telecom declared at all: one provider, no diverse entrance, no fabric, no telecom spaces (so the
    # Rated-4 SDA row is this rule's, not AV-TIA-SPACES').
    assert t["telecom"] == [
        (2, "diverse access-provider routes: maintenance holes apart", False, "not declared", "≥ 20 m",
         ("site", "maintenance_hole_separation_m"), TEL),
        (3, "access providers", False, "1", "≥ 2", ("site", "access_providers"), TEL),
        (3, "diverse building entrances", False, "no", "yes", ("site", "diverse_entrances"), TEL),
        (3, "redundant backbone cabling", False, "no fabrics declared", "every fabric", ("fabrics",), TEL),
        (4, "secondary distribution area", False, "telecom spaces not declared", "≥ 1 SDA", ("telecom_spaces",), TEL),
    ]  # fmt: skip
    # hall-3 declares no floor rating (the row points at the hall); no suppression, no access control; no
    # hazards nearby.
    assert t["architectural"] == [
        *[(k, FLOOR, False, "not declared (hall-3)", f"≥ {kpa} kPa", ("halls", 0), ARCH)
          for k, kpa in ((1, 7.2), (2, 8.4), (3, 12), (4, 12))],
        (2, "automatic fire suppression", False, "none", "sprinkler, gas or mist", ("security", "fire_suppression"),
         ARCH),
        (3, "access control with entries logged, and CCTV", False, "access control no, logged no, CCTV no",
         "all three", ("security",), ARCH),
        (3, TRAFFIC, True, "none nearby", "≥ 91 m", ("site", "hazards"), ARCH),
        (3, AIRPORT, True, "none nearby", "≥ 1600 m", ("site", "hazards", "airport_m"), ARCH),
        (4, TRAFFIC, True, "none nearby", "≥ 800 m", ("site", "hazards"), ARCH),
        (4, AIRPORT, True, "none nearby", "≥ 1600 m", ("site", "hazards", "airport_m"), ARCH),
    ]  # fmt: skip
    # The one-line: UPS 2(N+1), generators 2N with 48 h; the paths are the one-line's, proven by its failure
    # analysis (no element whose loss or failure leaves a rack short).
    one_line = "one-line drawn: judged by its failure analysis"
    assert t["electrical"] == [
        (1, "UPS carries the IT load", True, "2(N+1)", "N", UPS_AT, ELEC),
        (1, GEN_FUEL, True, "48 h", "≥ 8 h", GENS_AT, FUEL),
        (2, "UPS redundancy", True, "2(N+1)", "N+1", UPS_AT, ELEC),
        (2, "generators carry the load", True, "2N", "N", GENS_AT, ELEC),
        (2, GEN_FUEL, True, "48 h", "≥ 24 h", GENS_AT, FUEL),
        (3, "generator redundancy", True, "2N", "N+1", GENS_AT, ELEC),
        (3, "active and alternate path to every rack", True, one_line, "2 paths, racks on both", PATHS_AT, ELEC),
        (3, "one-line concurrently maintainable", True, "yes", NEEDS_ONE_ELEMENT_OUT, ("power",), ELEC),
        (3, GEN_FUEL, False, "48 h", "≥ 72 h", GENS_AT, FUEL),
        (4, "UPS 2(N+1)", True, "2(N+1)", "2(N+1)", UPS_AT, ELEC),
        (4, "two simultaneously active paths", True, one_line, "2 active", PATHS_AT, ELEC),
        (4, "one-line fault tolerant", True, "yes", NEEDS_ONE_ELEMENT_FAILED, ("power",), ELEC),
        (4, GEN_FUEL, False, "48 h", "≥ 96 h", GENS_AT, FUEL),
    ]  # fmt: skip
    # The cooling chain is drawn too: its three rows follow the four of the table.
    units, at = "dry_cooler 2N, pump 2N, cdu distributed redundant, crah 2N", ("cooling", "units")
    assert t["mechanical"] == [
        (1, "cooling units carry the heat", True, units, "N", at, MECH),
        (2, "redundant cooling units", True, units, "N+1", at, MECH),
        (3, "redundant distribution (piping, air paths)", True, "2 path(s)", "≥ 2", ("cooling", "distribution_paths"),
         MECH),
        (4, "continuous cooling", True, "declared yes, on UPS yes", NEEDS_CONTINUOUS, ("cooling", "continuous_cooling"),
         MECH),
        (1, "cooling chain carries every hall", True, "yes", "every hall's heat removed", at, MECH),
        (3, "cooling chain concurrently maintainable", True, "yes", "any one unit out, halls cooled", at, MECH),
        (4, "cooling chain fault tolerant", True, "yes", "any one unit failed, halls cooled", at, MECH),
    ]  # fmt: skip


@pytest.fixture
def edited(variant: Callable[..., Path]) -> Callable[[Callable[[dict[str, Any]], None]], dict[str, Rows]]:
    return lambda edit: rows_of(variant("dgx-h100-tier3.yaml", edit))


def electrical(rows: dict[str, Rows], name: str) -> list[tuple[Any, ...]]:
    return [r for r in rows["electrical"] if r[1] == name]


def test_without_generators_rated_1_takes_the_ups_battery_and_every_higher_fuel_row_fails(edited: Any) -> None:
    t = edited(no_generators(8))  # the table's 8 min, exactly
    assert t["electrical"][1] == (1, "generator fuel, or UPS battery without a generator", True,
                                  "no generators, 8 min of UPS", "≥ 8 min", UPS_AT, FUEL)  # fmt: skip
    assert electrical(t, GEN_FUEL) == [
        (k, GEN_FUEL, False, "no generators", f"≥ {h} h", GENS_AT, FUEL) for k, h in ((2, 24), (3, 72), (4, 96))
    ]
    short = edited(no_generators(7.5))
    assert electrical(short, GEN_FUEL)[0] == (1, GEN_FUEL, False, "no generators", "≥ 8 h", GENS_AT, FUEL)


def test_a_spec_that_overrides_the_recalled_fuel_hours_is_judged_and_told_by_its_own(edited: Any) -> None:
    assert [r[2:5] for r in electrical(edited(overriding(FUEL, {"3": 96, "4": 72})), GEN_FUEL)] == [
        (True, "72 h", "≥ 8 h"), (True, "72 h", "≥ 24 h"), (False, "72 h", "≥ 96 h"), (True, "72 h", "≥ 72 h"),
    ]  # fmt: skip


def test_one_path_with_racks_on_it_fails_both_path_rows_and_says_so(edited: Any) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["power"]["paths"] = [{"name": "A", "active": True}]
        for key in ("utility_feeds", "transformers", "ups", "pdus"):
            for item in d["power"][key]:
                item["path"] = "A"

    t = edited(edit)
    assert electrical(t, "active and alternate path to every rack") == [
        (3, "active and alternate path to every rack", False, "1 path(s), racks dual-fed no", "2 paths, racks on both",
         PATHS_AT, ELEC)
    ]  # fmt: skip
    assert electrical(t, "two simultaneously active paths") == [
        (4, "two simultaneously active paths", False, "1 active", "2 active", PATHS_AT, ELEC)
    ]
    # The one path's switchgear is now every rack's: out for maintenance or failed, it leaves all 11 (eight GPU,
    # two network, one storage) short. The row names the first three and points at the path it stands on.
    for k, name in ((3, "one-line concurrently maintainable"), (4, "one-line fault tolerant")):
        [(rating, _, ok, measured, _, at, rule)] = electrical(t, name)
        assert (rating, ok, at, rule) == (k, False, ("power", "paths", 0), ELEC)
        assert measured.startswith("with switchgear:A out: 11 rack(s) short (gpu-01, gpu-02, gpu-03, …);")


def test_with_no_cooling_units_the_unit_rows_fail_and_say_so(edited: Any) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["cooling"]["units"] = []

    assert edited(edit)["mechanical"][:2] == [
        (1, "cooling units carry the heat", False, "no cooling units", "N", ("cooling", "units"), MECH),
        (2, "redundant cooling units", False, "no cooling units", "N+1", ("cooling", "units"), MECH),
    ]


def test_a_cooling_chain_short_of_heat_names_the_halls_it_leaves_warm(variant: Callable[..., Path]) -> None:
    # The NVL72 hall split into four of two racks each, all cooled by the same units, and the three CDUs cut to
    # 10 kW each: every hall's liquid heat (2 racks × 120 kW × 0.85 = 204 kW) is short. Short: 816 kW of liquid
    # heat less the CDUs' 30; demand: the 960 kW the eight racks draw.
    def edit(d: dict[str, Any]) -> None:
        hall, racks = d["halls"][0], d["halls"][0]["racks"]
        d["halls"] = [{**hall, "name": f"hall-{c}", "racks": racks[2 * i : 2 * i + 2]} for i, c in enumerate("abcd")]
        for unit in d["cooling"]["units"]:
            if unit["kind"] == "cdu":
                unit["capacity_kw"] = 10

    mech = rows_of(variant("nvl72-tier4-oneline.yaml", edit))["mechanical"]
    short = (
        "4 hall(s) short (hall-a (liquid heat), hall-b (liquid heat), hall-c (liquid heat), …): "
        "786.0 of 960.0 kW not served (cooling)"
    )
    at = ("cooling", "units")
    assert mech[4:] == [
        (1, "cooling chain carries every hall", False, short, "every hall's heat removed", at, MECH),
        (3, "cooling chain concurrently maintainable", False, short, "any one unit out, halls cooled", at, MECH),
        (4, "cooling chain fault tolerant", False, short, "any one unit failed, halls cooled", at, MECH),
    ]  # fmt: skip


def test_a_hall_left_with_no_unit_for_its_heat_is_named_as_having_no_cooling_left(
    variant: Callable[..., Path],
) -> None:
    # The NVL72 hall's air heat (8 racks × 120 kW × 0.15 = 144 kW) cooled by crah-1 alone: the chain carries it, but
    # with crah-1 out nothing is left to remove it at all.
    def edit(d: dict[str, Any]) -> None:
        d["halls"][0]["cooled_by"] = ["cdu-1", "cdu-2", "cdu-3", "crah-1"]

    mech = rows_of(variant("nvl72-tier4-oneline.yaml", edit))["mechanical"]
    short = (
        "with crah-1 out: 1 hall(s) short (hall-3 (air heat)); 1 with no cooling left: "
        "144.0 of 960.0 kW not served (cooling)"
    )
    at = ("cooling", "units", 7)  # crah-1
    assert mech[4:] == [
        (1, "cooling chain carries every hall", True, "yes", "every hall's heat removed", ("cooling", "units"), MECH),
        (3, "cooling chain concurrently maintainable", False, short, "any one unit out, halls cooled", at, MECH),
        (4, "cooling chain fault tolerant", False, short, "any one unit failed, halls cooled", at, MECH),
    ]  # fmt: skip


def test_a_spec_that_overrides_the_telecom_figures_is_judged_by_its_own(edited: Any) -> None:
    # the example: maintenance holes 35 m apart, two access providers
    telecom = edited(overriding(TEL, {"maintenance_hole_m_2": 40, "providers_3": 3}))["telecom"]
    assert telecom[:2] == [
        (2, "diverse access-provider routes: maintenance holes apart", False, "35 m", "≥ 40 m",
         ("site", "maintenance_hole_separation_m"), TEL),
        (3, "access providers", False, "2", "≥ 3", ("site", "access_providers"), TEL),
    ]  # fmt: skip


def test_the_nearer_artery_and_the_weaker_hall_are_the_ones_named(edited: Any) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["site"]["hazards"]["railway_m"] = 90  # nearer than the highway (400 m), 1 m short of Rated-3's 91 m
        d["site"]["hazards"]["airport_m"] = 1600  # exactly the table's mile
        weak = {**d["halls"][0], "name": "hall-2", "floor_rating_kpa": 8.4, "racks": []}
        d["halls"].append(weak)

    arch = edited(edit)["architectural"]
    assert [r for r in arch if r[1] == TRAFFIC] == [
        (3, TRAFFIC, False, "90 m (railway)", "≥ 91 m", ("site", "hazards"), ARCH),
        (4, TRAFFIC, False, "90 m (railway)", "≥ 800 m", ("site", "hazards"), ARCH),
    ]
    assert [r[3:5] + (r[2],) for r in arch if r[1] == AIRPORT] == [("1600 m", "≥ 1600 m", True)] * 2
    assert [r[:6] for r in arch if r[1] == FLOOR] == [
        (k, FLOOR, ok, "8.4 kPa (hall-2)", f"≥ {kpa} kPa", ("halls", 1, "floor_rating_kpa"))
        for k, ok, kpa in ((1, True, 7.2), (2, True, 8.4), (3, False, 12), (4, False, 12))
    ]


def test_an_assessors_rating_adds_the_row_that_caps_the_architecture(edited: Any) -> None:
    def assessed(rating: int) -> Callable[[dict[str, Any]], None]:
        def edit(d: dict[str, Any]) -> None:
            d["site"]["tia942_architectural"] = rating

        return edit

    assert edited(assessed(2))["architectural"][-1] == (
        3, "rating as assessed on site", False, "Rated-2", "Rated-3", ("site", "tia942_architectural"), ARCH,
    )  # fmt: skip
    assert all(r[1] != "rating as assessed on site" for r in edited(assessed(4))["architectural"])


def test_access_control_logging_and_cctv_are_each_needed_for_rated_3(edited: Any) -> None:
    def without(*missing: str) -> Callable[[dict[str, Any]], None]:
        def edit(d: dict[str, Any]) -> None:
            for key in missing:
                d["security"][key] = False

        return edit

    def guarded(rows: dict[str, Rows]) -> tuple[Any, ...]:
        [row] = [r for r in rows["architectural"] if r[1] == "access control with entries logged, and CCTV"]
        return row[2:4]

    assert guarded(edited(without("access_logged"))) == (False, "access control yes, logged no, CCTV yes")
    assert guarded(edited(without("access_control"))) == (False, "access control no, logged yes, CCTV yes")
    assert guarded(edited(without("cctv"))) == (False, "access control yes, logged yes, CCTV no")


def test_a_spec_that_overrides_the_architectural_figures_is_judged_by_its_own(edited: Any) -> None:
    # the example: hall-1 at 12 kPa, the highway 400 m away, an airport 9 km
    arch = edited(overriding(ARCH, {"floor_kpa_3": 15, "traffic_m_3": 500, "airport_m_4": 10000}))["architectural"]
    assert [r[2:5] for r in arch if r[0] == 3 and r[1] in (FLOOR, TRAFFIC)] == [
        (False, "12 kPa (hall-1)", "≥ 15 kPa"),
        (False, "400 m (highway)", "≥ 500 m"),
    ]
    assert [r[2:5] for r in arch if r[0] == 4 and r[1] == AIRPORT] == [(False, "9000 m", "≥ 10000 m")]


def test_a_design_with_no_halls_has_no_floor_to_rate(edited: Any) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["halls"], d["nodes"], d["fabrics"] = [], [], []

    floors = [r for r in edited(edit)["architectural"] if r[1] == FLOOR]
    assert floors == [
        (k, FLOOR, False, "not declared (no halls)", f"≥ {kpa} kPa", ("halls",), ARCH)
        for k, kpa in ((1, 7.2), (2, 8.4), (3, 12), (4, 12))
    ]


def test_a_declared_secondary_distribution_area_is_counted(edited: Any) -> None:
    def edit(d: dict[str, Any]) -> None:  # the example: two entrance rooms and an MDA
        d["telecom_spaces"] += [{"name": "sda-1", "kind": "sda"}, {"name": "sda-2", "kind": "sda"}]

    assert edited(edit)["telecom"][-3:] == [
        (1, "entrance room and main distribution area", True, "2 ER, 1 MDA", "≥ 1 each", ("telecom_spaces",), SPACES),
        (3, "second entrance room", True, "2 ER", "≥ 2", ("telecom_spaces",), SPACES),
        (4, "secondary distribution area", True, "2 SDA", "≥ 1", ("telecom_spaces",), SPACES),
    ]
