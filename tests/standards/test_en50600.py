"""EN 50600 in its own terms (availability class per infrastructure, protection class, granularity level) and
the TIA-942 telecom spaces, each judged at the step where the class changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.specfile import format_path
from aidc.standards.checker import Report, run_check

DGX = "dgx-h100-tier3.yaml"


def check(variant: Callable[..., Path], edit: Callable[[dict[str, Any]], None], **targets: Any) -> Report:
    return run_check(load_facility(variant(DGX, edit)), targets=targets or None)


def failing(report: Report, rule: str) -> list[str]:
    return [f.subject for f in report.findings if f.rule.id == rule and f.status == "fail"]


def test_the_example_reaches_class_3_in_every_infrastructure(variant: Callable[..., Path]) -> None:
    en = check(variant, lambda d: None).ratings["en50600"]
    assert en["power_supply"] == 4 and en["power_distribution"] == 4
    # two entrance rooms declared: the cabling reaches class 4
    assert en["environmental_control"] == 3 and en["telecommunications_cabling"] == 4
    assert en["overall"] == 3


def test_without_generators_the_power_supply_is_class_1(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["power"]["generators"] = []
        d["targets"]["uptime"] = None
        d["targets"]["tia942"] = None

    report = check(variant, edit)
    assert report.ratings["en50600"]["power_supply"] == 1
    assert failing(report, "AV-EN-CLASS") == ["power supply (EN 50600-2-2)"]


def test_one_utility_supply_with_n_plus_1_generators_is_class_3_not_4(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        for feed in d["power"]["utility_feeds"]:
            feed["substation"] = "only-one"

    report = check(variant, edit, en50600=4)
    assert report.ratings["en50600"]["power_supply"] == 3
    assert "power supply (EN 50600-2-2)" in failing(report, "AV-EN-CLASS")


@pytest.mark.parametrize("providers,cls", [(1, 2), (2, 3)])  # one entrance room: class 4 out of reach
def test_cabling_class_3_needs_two_providers(variant: Callable[..., Path], providers: int, cls: int) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["site"]["access_providers"] = providers
        d["telecom_spaces"] = [{"name": "er", "kind": "entrance_room"}, {"name": "mda", "kind": "mda"}]

    report = check(variant, edit)
    assert report.ratings["en50600"]["telecommunications_cabling"] == cls
    assert ("telecommunications cabling (EN 50600-2-4)" in failing(report, "AV-EN-CLASS")) == (cls < 3)


def test_cabling_class_4_needs_two_entrance_rooms(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["telecom_spaces"] = [
            {"name": "er-1", "kind": "entrance_room"},
            {"name": "er-2", "kind": "entrance_room"},
            {"name": "mda", "kind": "mda"},
        ]

    assert check(variant, edit).ratings["en50600"]["telecommunications_cabling"] == 4


# Protection class: 2 access control (1 zone), 3 + logged + CCTV + a second zone, 4 + two-factor + a third.
@pytest.mark.parametrize(
    "zones,two_factor,cls",
    [(1, False, 2), (2, False, 3), (3, False, 3), (2, True, 3), (3, True, 4)],
)
def test_protection_class_follows_the_nested_zones(
    variant: Callable[..., Path], zones: int, two_factor: bool, cls: int
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["security"].update(access_zones=zones, access_two_factor=two_factor)

    report = check(variant, edit, en50600_protection=3)
    assert report.ratings["en50600"]["protection_class"] == cls
    assert bool(failing(report, "SEC-EN-PROTECT")) == (cls < 3)


def test_protection_class_3_needs_cctv(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["security"]["cctv"] = False

    report = check(variant, edit, en50600_protection=3)
    assert failing(report, "SEC-EN-PROTECT") == ["computer room"]


# Fire protection class (SEC-EN-FIRE): 1 detection and alarm; 2 + automatic suppression; 3 + early (aspirating)
# detection; 4 + gas / water mist / aerosol released by 2 independent detector groups.
@pytest.mark.parametrize(
    "groups,suppression,early,cls",
    [
        (0, "gas", True, 0),
        (1, "none", True, 1),
        (1, "sprinkler", False, 2),
        (1, "pre_action", True, 3),
        (2, "pre_action", True, 3),  # water on the IT: class 3 at most
        (1, "gas", True, 3),  # one detector group cannot release gas for class 4
        (2, "gas", True, 4),
        (2, "water_mist", True, 4),
        (2, "gas", False, 2),
    ],
)
def test_fire_protection_class_follows_detection_and_suppression(
    variant: Callable[..., Path], groups: int, suppression: str, early: bool, cls: int
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["security"].update(fire_detector_groups=groups, fire_suppression=suppression, fire_early_detection=early)

    report = check(variant, edit, en50600_fire=3)
    assert report.ratings["en50600"]["fire_protection_class"] == cls
    assert bool(failing(report, "SEC-EN-FIRE")) == (cls < 3)


def test_fire_protection_class_is_not_judged_without_a_target(variant: Callable[..., Path]) -> None:
    report = check(variant, lambda d: None)
    assert "SEC-EN-FIRE" in report.skipped
    assert report.ratings["en50600"]["fire_protection_class"] == 2  # gas, 2 groups, no early detection


def _meter(target: str) -> dict[str, Any]:
    return {"name": f"m-{target}", "protocol": "modbus", "address": "10.0.1.1:502", "measures": ["power_kw"],
            "target": target}  # fmt: skip


@pytest.mark.parametrize(
    "metered,level",
    [([], 1), (["rpp-A"], 1), (["rpp-A", "rpp-B"], 2)],
)
def test_granularity_level_2_meters_every_distribution_board(
    variant: Callable[..., Path], metered: list[str], level: int
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["telemetry"]["endpoints"] += [_meter(b) for b in metered]
        for node in d["nodes"]:
            node["bmc"] = None  # no per-device metering: level 3 stays out of reach

    report = check(variant, edit, en50600_granularity=2)
    assert report.ratings["en50600"]["granularity_level"] == level
    assert bool(failing(report, "KPI-EN-GRAN")) == (level < 2)


def test_granularity_level_3_with_every_device_metered_by_its_bmc(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["telemetry"]["endpoints"] += [_meter("rpp-A"), _meter("rpp-B")]

    assert check(variant, edit).ratings["en50600"]["granularity_level"] == 3


def test_granularity_level_0_without_a_facility_meter(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["telemetry"]["endpoints"] = [e for e in d["telemetry"]["endpoints"] if e["name"] != "utility-meter"]

    report = check(variant, edit, en50600_granularity=1)
    assert report.ratings["en50600"]["granularity_level"] == 0
    assert failing(report, "KPI-EN-GRAN") == ["energy metering"]


# TIA-942 spaces: an ER and an MDA always; Rated-3 a second ER; Rated-4 an SDA.
@pytest.mark.parametrize(
    "kinds,telecom",
    [
        (["mda"], 0),
        (["entrance_room", "mda"], 2),
        (["entrance_room", "entrance_room", "mda"], 3),
        (["entrance_room", "entrance_room", "mda", "sda"], 4),
    ],
)
def test_declared_spaces_bound_the_telecom_rating(variant: Callable[..., Path], kinds: list[str], telecom: int) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["telecom_spaces"] = [{"name": f"s{i}", "kind": k} for i, k in enumerate(kinds)]

    report = check(variant, edit)
    assert report.ratings["tia942"]["telecom"] == telecom
    assert bool(failing(report, "AV-TIA-SPACES")) == (telecom < 3)


# What the findings say: the class reached and asked for, the infrastructure (or room) and the part of the spec to change.
def said(report: Report, rule: str) -> list[tuple[str, str, str, str, str]]:
    return [
        (f.status, format_path(f.path), f.subject, str(f.measured), str(f.expected))
        for f in report.findings
        if f.rule.id == rule
    ]


def test_each_infrastructure_short_of_the_class_is_named_with_where_to_raise_it(variant: Callable[..., Path]) -> None:
    # the lab: no utility feed or generator, one UPS, N cooling, one fabric (the ratings above step class by class)
    report = run_check(load_facility(variant("lab-two-servers.yaml")), targets={"en50600": 3})
    assert said(report, "AV-EN-CLASS") == [
        ("fail", "power.generators", "power supply (EN 50600-2-2)", "Class 0", "Class 3"),
        ("fail", "power", "power distribution (EN 50600-2-2)", "Class 1", "Class 3"),
        ("fail", "cooling", "environmental control (EN 50600-2-3)", "Class 2", "Class 3"),
        ("fail", "fabrics", "telecommunications cabling (EN 50600-2-4)", "Class 2", "Class 3"),
    ]


def test_the_protection_finding_lists_what_the_class_is_made_of(variant: Callable[..., Path]) -> None:
    report = check(variant, lambda d: None, en50600_protection=4)
    assert said(report, "SEC-EN-PROTECT") == [
        (
            "fail",
            "security.access_zones",
            "computer room",
            "Class 3 (access control yes, 3 zone(s), logged yes, CCTV yes, two-factor no)",
            "Class 4",
        )
    ]
    report = check(variant, lambda d: d["security"].update(access_two_factor=True), en50600_protection=4)
    assert said(report, "SEC-EN-PROTECT") == [
        (
            "pass",
            "security.access_zones",
            "computer room",
            "Class 4 (access control yes, 3 zone(s), logged yes, CCTV yes, two-factor yes)",
            "Class 4",
        )
    ]
    bare = run_check(load_facility(variant("lab-two-servers.yaml")), targets={"en50600_protection": 2})
    assert said(bare, "SEC-EN-PROTECT") == [
        (
            "fail",
            "security.access_zones",
            "computer room",
            "Class 1 (access control no, 0 zone(s), logged no, CCTV no, two-factor no)",
            "Class 2",
        )
    ]


def test_the_fire_finding_lists_detection_suppression_and_early_detection(variant: Callable[..., Path]) -> None:
    report = check(variant, lambda d: None, en50600_fire=4)
    assert said(report, "SEC-EN-FIRE") == [
        (
            "fail",
            "security.fire_suppression",
            "computer room",
            "Class 2 (2 detector group(s), suppression gas, early detection no)",
            "Class 4",
        )
    ]
    report = check(variant, lambda d: d["security"].update(fire_early_detection=True), en50600_fire=4)
    assert said(report, "SEC-EN-FIRE") == [
        (
            "pass",
            "security.fire_suppression",
            "computer room",
            "Class 4 (2 detector group(s), suppression gas, early detection yes)",
            "Class 4",
        )
    ]


def test_the_granularity_finding_names_the_level_and_the_telemetry(variant: Callable[..., Path]) -> None:
    report = check(variant, lambda d: None, en50600_granularity=3)
    assert said(report, "KPI-EN-GRAN") == [("fail", "telemetry.endpoints", "energy metering", "level 1", "level 3")]
