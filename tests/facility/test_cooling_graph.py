"""The cooling chain as a graph: chillers → pumps → CRAHs → hall, series stages, N−1 and maintenance."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from aidc.errors import InvalidSpec
from aidc.facility import derive, parse_facility
from aidc.standards.checker import run_check


def hall(pump_kw: float, pumps: int = 2, crah_kw: float = 300.0, **targets: Any) -> str:
    """A 500 kW air-cooled hall: 2 chillers × 500 kW → pumps → 2 CRAHs → the hall."""
    data = {
        "name": "chain",
        "site": {"name": "t", "country": "US"},
        "targets": targets,
        "halls": [
            {
                "name": "h1",
                "cooled_by": ["crah-1", "crah-2"],
                "racks": [{"name": f"r{i}", "power_budget_kw": 50} for i in range(10)],
            }
        ],
        "nodes": [{"name": "n", "model": "box", "racks": [f"r{i}" for i in range(10)], "nominal_kw": 50, "max_kw": 50}],
        "cooling": {
            "units": [
                {"name": "ch-1", "kind": "chiller", "capacity_kw": 500},
                {"name": "ch-2", "kind": "chiller", "capacity_kw": 500},
                {"name": "pumps", "kind": "pump", "capacity_kw": pump_kw, "count": pumps, "fed_by": ["ch-1", "ch-2"]},
                {"name": "crah-1", "kind": "crah", "capacity_kw": crah_kw, "serves": "air", "fed_by": ["pumps"]},
                {"name": "crah-2", "kind": "crah", "capacity_kw": crah_kw, "serves": "air", "fed_by": ["pumps"]},
            ]
        },
    }
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize("pump_kw,ok", [(249.0, False), (250.0, True), (251.0, True)])
def test_the_hall_is_limited_by_its_smallest_stage(pump_kw: float, ok: bool) -> None:
    # 1000 kW of chillers and 600 kW of CRAHs, but the pumps carry 2 × pump_kw: 500 kW needs 250 kW each.
    report = run_check(parse_facility(hall(pump_kw)))
    f = next(f for f in report.findings if f.rule.id == "ENV-COOL-CHAIN")
    assert (f.status == "pass") == ok
    if not ok:
        assert "h1 (air heat)" in str(f.measured)


@pytest.mark.parametrize("pump_kw,pumps,maintainable", [(250.0, 2, False), (250.0, 3, True), (500.0, 2, True)])
def test_a_pump_out_for_maintenance_must_leave_the_hall_cooled(pump_kw: float, pumps: int, maintainable: bool) -> None:
    d = derive(parse_facility(hall(pump_kw, pumps)))
    assert d.cooling is not None and d.cooling.normal == []
    lost = {s.element for s in d.cooling.maintenance}
    assert ("pumps" in " ".join(lost)) != maintainable
    # One chiller (500 kW) carries the hall alone; one CRAH (300 kW) does not.
    assert "ch-1" not in lost and "crah-1" in lost
    assert d.systems["cooling.pump"].scheme == ("N+1" if maintainable else "N")


def test_tier_iii_names_the_cooling_element_whose_loss_breaks_maintainability() -> None:
    def cooling_cm(text: str) -> list[Any]:
        report = run_check(parse_facility(text), targets={"uptime": "III"})
        return [
            f
            for f in report.findings
            if f.rule.id == "AV-UT-CM" and f.status == "fail" and f.subject.endswith("(cooling)")
        ]

    assert cooling_cm(hall(500.0, 2, crah_kw=500.0)) == []  # every stage has a spare able to carry 500 kW
    cm = cooling_cm(hall(250.0, 2, crah_kw=500.0))
    assert [f.subject for f in cm] == ["without 1 of 2 units of pumps (cooling)"]
    assert cm[0].path == ("cooling", "units", 2) and cm[0].line is not None
    assert "h1 (air heat)" in str(cm[0].measured)


def test_unknown_cooling_names_are_located_errors() -> None:
    data = yaml.safe_load(hall(300.0))
    data["cooling"]["units"][3]["fed_by"] = ["pump"]
    data["halls"][0]["cooled_by"][1] = "crah-3"
    with pytest.raises(InvalidSpec) as err:
        parse_facility(yaml.safe_dump(data, sort_keys=False))
    msg = str(err.value)
    assert "cooling.units[3].fed_by[0]: no" in msg and "did you mean 'pumps'" in msg
    assert "halls[0].cooled_by[1]: no" in msg


def chain(units: list[dict[str, Any]], cooled_by: list[str]) -> str:
    """The 500 kW air-cooled hall with the cooling ``units`` given and the terminal units ``cooled_by``."""
    data = yaml.safe_load(hall(500.0))
    data["halls"][0]["cooled_by"] = cooled_by
    data["cooling"]["units"] = units
    return yaml.safe_dump(data, sort_keys=False)


def side(tag: str, kw: float, count: int = 1) -> list[dict[str, Any]]:
    """One chiller → pump → CRAH chain, each stage ``count`` × ``kw``."""
    return [
        {"name": f"ch-{tag}", "kind": "chiller", "capacity_kw": kw, "count": count},
        {"name": f"pump-{tag}", "kind": "pump", "capacity_kw": kw, "count": count, "fed_by": [f"ch-{tag}"]},
        {"name": f"crah-{tag}", "kind": "crah", "capacity_kw": kw, "count": count, "serves": "air",
         "fed_by": [f"pump-{tag}"]},
    ]  # fmt: skip


# Textbook cooling topologies for the 500 kW hall: (units, terminal units, carried, maintainable, fault tolerant,
# schemes per kind). N: every stage exactly the load. N+1: three 250 kW units a stage. 2N: two whole chains of
# 500 kW. 2N that meets at one CRAH: the CRAH is a single point, whatever the plant upstream.
TEXTBOOK = [
    ("N", side("a", 500.0), ["crah-a"], True, False, False, {"chiller": "N", "pump": "N", "crah": "N"}),
    ("N+1", side("a", 250.0, 3), ["crah-a"], True, True, True, {"chiller": "N+1", "pump": "N+1", "crah": "N+1"}),
    ("2N", side("a", 500.0) + side("b", 500.0), ["crah-a", "crah-b"], True, True, True,
     {"chiller": "2N", "pump": "2N", "crah": "2N"}),
    ("2N into one CRAH", side("a", 500.0)[:2] + side("b", 500.0)[:2]
     + [{"name": "crah-x", "kind": "crah", "capacity_kw": 500, "serves": "air", "fed_by": ["pump-a", "pump-b"]}],
     ["crah-x"], True, False, False, {"chiller": "2N", "pump": "2N", "crah": "N"}),
    ("below N", side("a", 450.0), ["crah-a"], False, False, False, None),
]  # fmt: skip


@pytest.mark.parametrize(
    "units,cooled_by,carried,maintainable,tolerant,schemes", [t[1:] for t in TEXTBOOK], ids=[t[0] for t in TEXTBOOK]
)
def test_textbook_cooling_topologies(
    units: list[dict[str, Any]],
    cooled_by: list[str],
    carried: bool,
    maintainable: bool,
    tolerant: bool,
    schemes: dict[str, str] | None,
) -> None:
    d = derive(parse_facility(chain(units, cooled_by)))
    assert d.cooling is not None
    assert (d.cooling.normal == []) == carried
    assert d.cooling.concurrently_maintainable == maintainable
    assert d.cooling.fault_tolerant == tolerant
    if schemes is not None:
        assert {k: d.systems[f"cooling.{k}"].scheme for k in schemes} == schemes
    if carried and not maintainable:  # the finding names a unit of the chain
        assert all(s.removed for s in d.cooling.maintenance)
