"""TIA-942 in its own terms: each subsystem rated from its own table, row by row, not mapped from Uptime's tiers.

The numbers are the table's (ANSI/TIA-942-B Annex F as recalled): fuel 8 / 24 / 72 / 96 h, floors 7.2 / 8.4 /
12 kPa, traffic arteries 91 m / 0.8 km, airports 1.6 km, maintenance holes 20 m apart, two access providers.
The at/below/above cases of each number are in test_thresholds.py; these tests show what a row does to the rating.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.standards.findings import no_generators, overriding

from aidc.facility import load_facility
from aidc.standards.checker import Report, run_check

DGX = "dgx-h100-tier3.yaml"  # Rated-3 target, 2N UPS, N+1 generators with 72 h of fuel
TIER4 = "nvl72-tier4-oneline.yaml"  # Uptime IV one-line with a cooling chain


def check(variant: Callable[..., Path], example: str, edit: Callable[[dict[str, Any]], None], **targets: Any) -> Report:
    return run_check(load_facility(variant(example, edit)), targets=targets or None)


def failing(report: Report, rule: str) -> list[str]:
    return [f.subject for f in report.findings if f.rule.id == rule and f.status == "fail"]


def test_the_example_is_rated_3_in_every_subsystem(variant: Callable[..., Path]) -> None:
    tia = check(variant, DGX, lambda d: None).ratings["tia942"]
    assert tia == {"telecom": 3, "architectural": 3, "electrical": 3, "mechanical": 3, "overall": 3}


def test_rated_3_telecom_needs_a_redundant_backbone(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["fabrics"][0]["redundant_uplinks"] = False

    report = check(variant, DGX, edit)
    assert report.ratings["tia942"]["telecom"] == 2
    assert failing(report, "AV-TIA-TEL") == ["telecom: redundant backbone cabling"]


def test_a_standby_generator_is_no_bar_to_tia_rated_3_as_it_is_to_uptime_tier_iii(
    variant: Callable[..., Path],
) -> None:
    # Uptime Tier III asks for generators rated with no runtime limit; TIA-942's electrical table does not.
    def edit(d: dict[str, Any]) -> None:
        for g in d["power"]["generators"]:
            g["rating"] = "standby"

    report = check(variant, DGX, edit)
    assert report.ratings["uptime"]["electrical"] == "II"
    assert report.ratings["tia942"]["electrical"] == 3
    assert failing(report, "AV-TIA-ELEC") == []


def test_fuel_is_part_of_the_electrical_rating(variant: Callable[..., Path]) -> None:
    # 48 h: Rated-2's 24 h is met, Rated-3's 72 h is not; Uptime's 12 h is met (it is no TIA figure).
    def edit(d: dict[str, Any]) -> None:
        for g in d["power"]["generators"]:
            g["fuel_hours"] = 48

    base = check(variant, DGX, lambda d: None)
    report = check(variant, DGX, edit)
    assert report.ratings["tia942"]["electrical"] == 2 and report.ratings["tia942"]["overall"] == 2
    assert report.ratings["uptime"]["electrical"] == base.ratings["uptime"]["electrical"]
    f = next(f for f in report.findings if f.rule.id == "AV-TIA-FUEL" and f.status == "fail")
    assert f.measured == "48 h" and f.expected == "≥ 72 h (Rated-3)" and "(inf)" in f.citation


def test_without_generators_rated_1_needs_8_minutes_of_ups(variant: Callable[..., Path]) -> None:
    assert check(variant, DGX, no_generators(8)).ratings["tia942"]["electrical"] == 1
    assert check(variant, DGX, no_generators(7.9)).ratings["tia942"]["electrical"] == 0


def test_rated_4_electrical_asks_for_2_n_plus_1_ups(variant: Callable[..., Path]) -> None:
    report = check(variant, DGX, lambda d: None, tia942=4)
    assert "electrical: UPS 2(N+1)" in failing(report, "AV-TIA-ELEC")
    f = next(f for f in report.findings if f.subject == "electrical: UPS 2(N+1)")
    assert f.measured == "2N" and f.expected == "2(N+1) (Rated-4)"


def test_mechanical_rating_follows_the_cooling_chain_failure_analysis(variant: Callable[..., Path]) -> None:
    # The Tier IV example's cooling chain, with every CDU and CRAH piped to one pump only: two pumps are
    # installed, but as connected the second backs nothing up, so the pumps are N and the chain is neither
    # maintainable nor fault tolerant.
    def edit(d: dict[str, Any]) -> None:
        pumps = [u["name"] for u in d["cooling"]["units"] if u["kind"] == "pump"]
        for u in d["cooling"]["units"]:
            if u.get("fed_by") and set(u["fed_by"]) <= set(pumps):
                u["fed_by"] = pumps[:1]

    base = check(variant, TIER4, lambda d: None, tia942=4)
    assert base.ratings["tia942"]["mechanical"] == 4 and base.ratings["uptime"]["mechanical"] == "IV"
    report = check(variant, TIER4, edit, tia942=4)
    assert report.ratings["tia942"]["mechanical"] == 1
    assert report.ratings["uptime"]["mechanical"] == "I"
    assert failing(report, "AV-TIA-MECH") == [
        "mechanical: redundant cooling units",
        "mechanical: cooling chain concurrently maintainable",
        "mechanical: cooling chain fault tolerant",
    ]


def test_architectural_rating_needs_the_floor_declared(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["halls"][0].pop("floor_rating_kpa")

    report = check(variant, DGX, edit)
    assert report.ratings["tia942"]["architectural"] == 0
    # one finding for the floor row, at the target's figure, pointing at the hall
    [f] = [f for f in report.findings if f.rule.id == "AV-TIA-ARCH" and f.status == "fail"]
    assert f.measured == "not declared (hall-1)" and f.expected == "≥ 12 kPa (Rated-3)"
    assert f.path == ("halls", 0) and f.line is not None


@pytest.mark.parametrize("kpa,rating", [(7.1, 0), (7.2, 1), (8.3, 1), (8.4, 2), (11.9, 2), (12.0, 3)])
def test_architectural_rating_steps_with_the_floor_loading(
    variant: Callable[..., Path], kpa: float, rating: int
) -> None:
    report = check(variant, DGX, lambda d: d["halls"][0].update(floor_rating_kpa=kpa))
    assert report.ratings["tia942"]["architectural"] == rating


def test_an_assessed_architectural_rating_caps_the_computed_one(variant: Callable[..., Path]) -> None:
    report = check(variant, DGX, lambda d: d["site"].update(tia942_architectural=2))
    assert report.ratings["tia942"]["architectural"] == 2
    assert failing(report, "AV-TIA-ARCH") == ["architectural: rating as assessed on site"]


def test_a_recalled_figure_can_be_overridden_and_the_rating_follows(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        for g in d["power"]["generators"]:
            g["fuel_hours"] = 48
        overriding("AV-TIA-FUEL", {"3": 48})(d)

    report = check(variant, DGX, edit)
    assert report.ratings["tia942"]["electrical"] == 3
    f = next(f for f in report.findings if f.rule.id == "AV-TIA-FUEL")
    assert f.status == "pass" and "overridden in the spec (3)" in f.citation


def test_rated_4_telecom_without_declared_spaces_names_the_missing_sda(variant: Callable[..., Path]) -> None:
    report = check(variant, DGX, lambda d: d.pop("telecom_spaces", None), tia942=4)
    assert report.ratings["tia942"]["telecom"] == 3
    f = next(f for f in report.findings if f.subject == "telecom: secondary distribution area")
    assert f.rule.id == "AV-TIA-TEL" and f.measured == "telecom spaces not declared"


def test_a_failing_maintainability_row_names_the_element_and_points_at_it(variant: Callable[..., Path]) -> None:
    # Every rack corded to the A busway alone: taking any element of side A out leaves them all short.
    def edit(d: dict[str, Any]) -> None:
        for rack in d["halls"][0]["racks"]:
            rack["feeds"] = ["pdu-A"]

    path = variant(TIER4, edit)
    report = run_check(load_facility(path), targets={"tia942": 3})
    f = next(f for f in report.findings if f.subject == "electrical: one-line concurrently maintainable")
    assert f.status == "fail" and "8 rack(s) short" in f.measured and f.line is not None
    named = f.measured.split()[1]  # "with ats-A out: …"
    side_a = {"utility-A", "gen-A", "ats-A", "swgr-A", "ups-A", "pdu-A"}
    assert named in side_a
    assert f.path[:2] == ("power", "components")
    component = yaml.safe_load(path.read_text())["power"]["components"][f.path[2]]
    assert component["name"] == named  # the finding points at the element it names


# What the report says, row by row: each row a design misses up to the target, with the spec field to change, the row's
# name, the design's figure and what the row asks (at the rating it belongs to); or one pass line per rule.
TIA_RULES = ("AV-TIA-OVERALL", "AV-TIA-ELEC", "AV-TIA-FUEL", "AV-TIA-MECH", "AV-TIA-TEL", "AV-TIA-ARCH")
ONE_LINE = "(the one-line analysis' own words)"


def said(report: Report) -> list[tuple[str, str, str, str, str, str]]:
    from aidc.specfile import format_path

    return [
        (
            f.rule.id,
            f.status,
            format_path(f.path),
            f.subject,
            ONE_LINE if "one-line" in f.subject else str(f.measured),
            str(f.expected),
        )
        for f in report.findings
        if f.rule.id in TIA_RULES
    ]


def test_a_lab_judged_for_rated_4_is_told_every_row_it_misses(variant: Callable[..., Path]) -> None:
    report = check(variant, "lab-two-servers.yaml", lambda d: None, tia942=4)
    assert said(report) == [
        ("AV-TIA-OVERALL", "fail", "targets.tia942", "",
         "Rated-0 (telecom 1, architectural 0, electrical 1, mechanical 2)", "Rated-4"),
        ("AV-TIA-ELEC", "fail", "power.ups", "electrical: UPS redundancy", "N", "N+1 (Rated-2)"),
        ("AV-TIA-ELEC", "fail", "power.generators", "electrical: generators carry the load", "none", "N (Rated-2)"),
        ("AV-TIA-ELEC", "fail", "power.generators", "electrical: generator redundancy", "none", "N+1 (Rated-3)"),
        ("AV-TIA-ELEC", "fail", "power.paths", "electrical: active and alternate path to every rack",
         "1 path(s), racks dual-fed no", "2 paths, racks on both (Rated-3)"),
        ("AV-TIA-ELEC", "fail", "power.paths[0]", "electrical: one-line concurrently maintainable", ONE_LINE,
         "any one element out, racks served (Rated-3)"),
        ("AV-TIA-ELEC", "fail", "power.ups", "electrical: UPS 2(N+1)", "N", "2(N+1) (Rated-4)"),
        ("AV-TIA-ELEC", "fail", "power.paths", "electrical: two simultaneously active paths", "1 active",
         "2 active (Rated-4)"),
        ("AV-TIA-ELEC", "fail", "power.paths[0]", "electrical: one-line fault tolerant", ONE_LINE,
         "any one element failed, racks served (Rated-4)"),
        ("AV-TIA-FUEL", "fail", "power.generators", "electrical: generator fuel at full load", "no generators",
         "≥ 96 h (Rated-4)"),
        ("AV-TIA-MECH", "fail", "cooling.distribution_paths", "mechanical: redundant distribution (piping, air paths)",
         "1 path(s)", "≥ 2 (Rated-3)"),
        ("AV-TIA-MECH", "fail", "cooling.continuous_cooling", "mechanical: continuous cooling",
         "declared no, on UPS no", "fans and pumps on UPS, ride-through covers the plant's restart (Rated-4)"),
        ("AV-TIA-TEL", "fail", "site.maintenance_hole_separation_m",
         "telecom: diverse access-provider routes: maintenance holes apart", "not declared", "≥ 20 m (Rated-2)"),
        ("AV-TIA-TEL", "fail", "site.access_providers", "telecom: access providers", "1", "≥ 2 (Rated-3)"),
        ("AV-TIA-TEL", "fail", "site.diverse_entrances", "telecom: diverse building entrances", "no",
         "yes (Rated-3)"),
        ("AV-TIA-TEL", "fail", "telecom_spaces", "telecom: secondary distribution area",
         "telecom spaces not declared", "≥ 1 SDA (Rated-4)"),
        ("AV-TIA-ARCH", "fail", "halls[0]", "architectural: floor loading (superimposed live load)",
         "not declared (room-214)", "≥ 12 kPa (Rated-4)"),
        ("AV-TIA-ARCH", "fail", "security.fire_suppression", "architectural: automatic fire suppression", "none",
         "sprinkler, gas or mist (Rated-2)"),
        ("AV-TIA-ARCH", "fail", "security", "architectural: access control with entries logged, and CCTV",
         "access control no, logged no, CCTV no", "all three (Rated-3)"),
    ]  # fmt: skip
    assert [f.measured for f in report.findings if f.rule.id == "AV-TIA-ELEC" and "one-line" in f.subject] == [
        "with switchgear:A out: 1 rack(s) short (lab-rack); 1 with no live cord; "
        "load:mechanical short: 9.0 of 9.0 kW not served (utility)"
    ] * 2


def test_a_rated_3_design_passes_with_one_line_per_subsystem_and_is_told_what_rated_4_adds(
    variant: Callable[..., Path],
) -> None:
    cn = "gb200-nvl72-china.yaml"  # Rated-3 target; architectural reaches 4
    assert said(check(variant, cn, lambda d: None, tia942=3)) == [
        ("AV-TIA-OVERALL", "pass", "targets.tia942", "",
         "Rated-3 (telecom 3, architectural 4, electrical 3, mechanical 3)", "Rated-3"),
        ("AV-TIA-ELEC", "pass", "power.ups", "electrical", "Rated-3", "Rated-3"),
        ("AV-TIA-FUEL", "pass", "power.generators", "electrical", "Rated-3", "Rated-3"),
        ("AV-TIA-MECH", "pass", "cooling.units", "mechanical", "Rated-3", "Rated-3"),
        ("AV-TIA-TEL", "pass", "site.maintenance_hole_separation_m", "telecom", "Rated-3", "Rated-3"),
        ("AV-TIA-ARCH", "pass", "halls[0].floor_rating_kpa", "architectural", "Rated-4", "Rated-3"),
    ]  # fmt: skip
    assert said(check(variant, cn, lambda d: None, tia942=4)) == [
        ("AV-TIA-OVERALL", "fail", "targets.tia942", "",
         "Rated-3 (telecom 3, architectural 4, electrical 3, mechanical 3)", "Rated-4"),
        ("AV-TIA-ELEC", "fail", "power.ups", "electrical: UPS 2(N+1)", "2N", "2(N+1) (Rated-4)"),
        ("AV-TIA-FUEL", "fail", "power.generators", "electrical: generator fuel at full load", "72 h",
         "≥ 96 h (Rated-4)"),
        ("AV-TIA-MECH", "fail", "cooling.continuous_cooling", "mechanical: continuous cooling",
         "declared no, on UPS yes", "fans and pumps on UPS, ride-through covers the plant's restart (Rated-4)"),
        ("AV-TIA-TEL", "fail", "telecom_spaces", "telecom: secondary distribution area",
         "telecom spaces not declared", "≥ 1 SDA (Rated-4)"),
        ("AV-TIA-ARCH", "pass", "halls[0].floor_rating_kpa", "architectural", "Rated-4", "Rated-4"),
    ]  # fmt: skip


def test_at_rated_1_each_rule_passes_once_even_one_with_no_row_that_low(variant: Callable[..., Path]) -> None:
    # AV-TIA-TEL's rows start at Rated-2 (Rated-1's entrance room and MDA are AV-TIA-SPACES'): it has nothing to
    # ask of a Rated-1 target, and says so with one pass pointing at no field rather than failing to run.
    assert said(check(variant, DGX, lambda d: None, tia942=1)) == [
        ("AV-TIA-OVERALL", "pass", "targets.tia942", "",
         "Rated-3 (telecom 3, architectural 3, electrical 3, mechanical 3)", "Rated-1"),
        ("AV-TIA-ELEC", "pass", "power.ups", "electrical", "Rated-3", "Rated-1"),
        ("AV-TIA-FUEL", "pass", "power.generators", "electrical", "Rated-3", "Rated-1"),
        ("AV-TIA-MECH", "pass", "cooling.units", "mechanical", "Rated-3", "Rated-1"),
        ("AV-TIA-TEL", "pass", "", "telecom", "Rated-3", "Rated-1"),
        ("AV-TIA-ARCH", "pass", "halls[0].floor_rating_kpa", "architectural", "Rated-3", "Rated-1"),
    ]  # fmt: skip
