"""Checks that read the floor plan: cable reach to the leaf switches, TIA-942 horizontal and zone cabling,
seismic anchoring. Each threshold is tried at, just below and just above the clause's own number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aidc.facility import load_facility
from aidc.standards.checker import Report, run_check


def floor(tmp_path: Path, *, pitch: float, slots: dict[str, int], extra: dict[str, Any] | None = None) -> Path:
    """One hall, one row: racks at the given slots, 1 m drops; a GPU node in every rack but `leaf`."""
    racks = [
        {"name": name, "row": "A", "position": f"A{slot:02d}", "power_budget_kw": 20, "weight_kg": 900}
        for name, slot in slots.items()
    ]
    spec: dict[str, Any] = {
        "name": "plan",
        "site": {"name": "s", "country": "DE"},
        "halls": [{"name": "h", "rack_pitch_m": pitch, "racks": racks}],
        "nodes": [
            {
                "name": "gpu",
                "model": "x",
                "racks": [n for n in slots if n != "leaf"],
                "gpus": 8,
                "nominal_kw": 5,
                "max_kw": 6,
                "nics": [{"fabric": "compute", "count": 8, "gbps": 400}],
            }
        ]
        if len(slots) > 1
        else [],
        "fabrics": [{"name": "compute", "kind": "compute", "port_gbps": 400, "cable": "mmf", "switch_racks": ["leaf"]}],
    }
    for key, value in (extra or {}).items():
        spec[key] = value
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def findings(report: Report, rule: str) -> list[Any]:
    return [f for f in report.findings if f.rule.id == rule]


# 400GBASE-SR4/SR8 on OM4: 100 m. The run is 98 slots × pitch + two 1 m drops.
@pytest.mark.parametrize("pitch,status", [(0.99, "pass"), (1.0, "pass"), (1.01, "fail")])
def test_multimode_reach_is_100_m_along_the_tray(tmp_path: Path, pitch: float, status: str) -> None:
    report = run_check(load_facility(floor(tmp_path, pitch=pitch, slots={"leaf": 1, "far": 99})))
    (f,) = findings(report, "NET-CABLE-REACH")
    assert f.status == status
    assert f"{98 * pitch + 2:.1f} m to leaf" in str(f.measured)


def test_copper_reach_shrinks_with_the_lane_rate(tmp_path: Path) -> None:
    # Next-door racks: 0.6 m across + two 1 m drops = 2.6 m: beyond 400G DAC (2 m), within 200G DAC (3 m).
    # A rack in the next row is 2.4 m + 2 m away: beyond both.
    def failing(gbps: int) -> set[str]:
        spec = floor(tmp_path, pitch=0.6, slots={"leaf": 1, "next": 2, "other": 1})
        data = yaml.safe_load(spec.read_text())
        data["halls"][0]["racks"][2].update(row="B", position="B01")
        data["fabrics"][0].update(cable="dac", port_gbps=gbps)
        spec.write_text(yaml.safe_dump(data))
        report = run_check(load_facility(spec))
        return {f.subject for f in findings(report, "NET-CABLE-REACH") if f.status == "fail"}

    assert failing(400) == {"compute: next", "compute: other"}
    assert failing(200) == {"compute: other"}


def test_a_fabric_with_switch_racks_but_no_cable_type_is_not_measured(tmp_path: Path) -> None:
    # The reach depends on the media: a fabric that names its switch racks but not its cable has no limit to
    # check, whatever the other fabrics declare.
    spec = floor(tmp_path, pitch=1, slots={"leaf": 1, "gpu": 2})
    data = yaml.safe_load(spec.read_text())
    data["fabrics"].append({"name": "storage", "kind": "storage", "port_gbps": 200, "switch_racks": ["leaf"]})
    data["nodes"][0]["nics"].append({"fabric": "storage", "count": 2, "gbps": 200})
    spec.write_text(yaml.safe_dump(data))
    assert [f.subject for f in findings(run_check(load_facility(spec)), "NET-CABLE-REACH")] == ["compute: gpu"]


def test_leaf_in_the_same_rack_is_reached_by_its_height(tmp_path: Path) -> None:
    spec = floor(tmp_path, pitch=0.6, slots={"leaf": 1, "gpu": 2})
    data = yaml.safe_load(spec.read_text())
    data["fabrics"][0].update(cable="dac", switch_racks=["gpu"])
    spec.write_text(yaml.safe_dump(data))
    (f,) = findings(run_check(load_facility(spec)), "NET-CABLE-REACH")
    assert f.status == "pass" and "1.9 m to gpu" in str(f.measured)  # 42 U × 44.45 mm


def test_an_unknown_switch_rack_is_a_located_spec_error(tmp_path: Path) -> None:
    spec = floor(tmp_path, pitch=0.6, slots={"leaf": 1, "gpu": 2})
    data = yaml.safe_load(spec.read_text())
    data["fabrics"][0]["switch_racks"] = ["lef"]
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(Exception) as err:
        load_facility(spec)
    assert "lef" in str(err.value) and "did you mean 'leaf'" in str(err.value)


# TIA-568.2-D permanent link: 90 m. The HDA sits at slot 1; the run is 88 slots × pitch + 2 m.
@pytest.mark.parametrize(
    "pitch,status,measured",
    [(0.99, "pass", "89.1 m to far"), (1.0, "pass", "90.0 m to far"), (1.01, "fail", "90.9 m to far")],
)
def test_horizontal_cabling_is_at_most_90_m(tmp_path: Path, pitch: float, status: str, measured: str) -> None:
    spaces = [{"name": "hda-1", "kind": "hda", "rack": "leaf", "serves": ["far"]}]
    report = run_check(
        load_facility(floor(tmp_path, pitch=pitch, slots={"leaf": 1, "far": 89}, extra={"telecom_spaces": spaces}))
    )
    (f,) = findings(report, "NET-TIA-HORIZ")
    assert (f.status, f.subject, f.measured) == (status, "hda-1", measured)


# TIA-942 ZDA: at least 15 m of cable from the HDA, at most 288 connections.
@pytest.mark.parametrize("pitch,status", [(0.99, "fail"), (1.0, "pass"), (1.01, "pass")])
def test_a_zone_distribution_area_stands_15_m_from_its_hda(tmp_path: Path, pitch: float, status: str) -> None:
    spaces = [
        {"name": "hda-1", "kind": "hda", "rack": "leaf"},
        {"name": "zda-1", "kind": "zda", "rack": "far"},
    ]
    report = run_check(
        load_facility(floor(tmp_path, pitch=pitch, slots={"leaf": 1, "far": 14}, extra={"telecom_spaces": spaces}))
    )
    (f,) = findings(report, "NET-TIA-ZDA")
    assert f.status == status  # 13 × pitch + 2 m


def test_a_zone_distribution_area_without_an_hda_on_the_floor_is_not_measured(tmp_path: Path) -> None:
    # No HDA placed: there is no distance to judge (and no "inf m from the nearest HDA" to pass).
    spaces = [{"name": "zda-1", "kind": "zda", "rack": "far"}]
    report = run_check(
        load_facility(floor(tmp_path, pitch=1, slots={"leaf": 1, "far": 14}, extra={"telecom_spaces": spaces}))
    )
    assert findings(report, "NET-TIA-ZDA") == [] and "NET-TIA-ZDA" in report.skipped


@pytest.mark.parametrize("connections,status", [(287, "pass"), (288, "pass"), (289, "fail")])
def test_a_zone_distribution_area_terminates_at_most_288(tmp_path: Path, connections: int, status: str) -> None:
    spaces = [{"name": "zda-1", "kind": "zda", "connections": connections}]
    report = run_check(load_facility(floor(tmp_path, pitch=1, slots={"leaf": 1}, extra={"telecom_spaces": spaces})))
    (f,) = findings(report, "NET-TIA-ZDA")
    assert f.status == status


def _site(sds: float, risk: str = "II") -> dict[str, Any]:
    return {"name": "s", "country": "US", "seismic_sds_g": sds, "risk_category": risk}


# ASCE 7-22 Table 11.6-1: SDC D from S_DS 0.50 g (risk I–III); SDC C with Ip = 1 is exempt (§13.1.4).
@pytest.mark.parametrize("sds,status", [(0.49, "pass"), (0.50, "fail"), (0.51, "fail")])
def test_racks_are_anchored_from_seismic_design_category_d(tmp_path: Path, sds: float, status: str) -> None:
    report = run_check(load_facility(floor(tmp_path, pitch=1, slots={"leaf": 1}, extra={"site": _site(sds)})))
    (f,) = findings(report, "PHYS-SEISMIC")
    assert f.status == status
    assert ("SDC D" if sds >= 0.5 else "SDC C") in str(f.measured)


# Risk category IV: Ip = 1.5, and 0.167 g already gives SDC C: anchorage from there.
@pytest.mark.parametrize("sds,status", [(0.166, "pass"), (0.167, "fail"), (0.168, "fail")])
def test_an_essential_facility_anchors_from_category_c(tmp_path: Path, sds: float, status: str) -> None:
    report = run_check(load_facility(floor(tmp_path, pitch=1, slots={"leaf": 1}, extra={"site": _site(sds, "IV")})))
    (f,) = findings(report, "PHYS-SEISMIC")
    assert f.status == status


# §13.1.4: in SDC D with Ip = 1, equipment of 400 lb (181.4 kg) or less is exempt; an AI rack is far heavier.
@pytest.mark.parametrize("kg,status", [(181.3, "pass"), (181.4, "pass"), (181.5, "fail"), (1360, "fail")])
def test_only_light_racks_are_exempt_in_category_d(tmp_path: Path, kg: float, status: str) -> None:
    spec = floor(tmp_path, pitch=1, slots={"leaf": 1}, extra={"site": _site(0.8)})
    data = yaml.safe_load(spec.read_text())
    data["halls"][0]["racks"][0]["weight_kg"] = kg
    spec.write_text(yaml.safe_dump(data))
    (f,) = findings(run_check(load_facility(spec)), "PHYS-SEISMIC")
    assert f.status == status
    data["halls"][0]["racks"][0]["anchored"] = True
    spec.write_text(yaml.safe_dump(data))
    (f,) = findings(run_check(load_facility(spec)), "PHYS-SEISMIC")
    assert f.status == "pass"
