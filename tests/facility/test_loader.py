"""The facility loader: examples load, and every malformed spec points at file:line:col and the field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.errors import InvalidSpec
from aidc.facility import Facility, load_facility, parse_facility

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"

MINIMAL = """\
name: lab
site: {name: lab, country: us}
halls:
  - name: h1
    racks:
      - {name: r1, power_budget_kw: 20}
nodes:
  - {name: gpu, model: 2U server, rack: r1, count: 2, gpus: 4, nominal_kw: 2.5, max_kw: 3.2}
"""


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    facility = load_facility(path)
    assert isinstance(facility, Facility)
    assert facility.source is not None and facility.source.file == str(path)


def test_minimal_spec_loads_with_defaults() -> None:
    f = parse_facility(MINIMAL)
    assert f.site.country == "US"  # normalised
    assert [n.total for n in f.nodes] == [2]
    assert f.power.paths[0].name == "A"


def test_typo_in_a_field_reports_line_col_path_and_suggestion() -> None:
    text = MINIMAL.replace("power_budget_kw: 20", "power_budget_kwh: 20")
    with pytest.raises(InvalidSpec) as info:
        parse_facility(text, "facility.yaml")
    problems = {str(p) for p in info.value.problems}
    typo = next(p for p in info.value.problems if p.field.endswith("power_budget_kwh"))
    assert typo.field == "halls[0].racks[0].power_budget_kwh"
    assert (typo.line, typo.col) == (6, text.splitlines()[5].index("power_budget_kwh") + 1)  # the key, not 20
    assert "did you mean `power_budget_kw`" in (typo.hint or "")
    assert any("halls[0].racks[0].power_budget_kw" in p and "required" in p.lower() for p in problems)


def test_unknown_key_in_block_style_points_at_the_key() -> None:
    text = MINIMAL.replace("site: {name: lab, country: us}", "site:\n  name: lab\n  country: us\n  altitude: 90")
    with pytest.raises(InvalidSpec) as info:
        parse_facility(text, "facility.yaml")
    (problem,) = info.value.problems
    assert str(problem).startswith("facility.yaml:5:3: site.altitude: unknown field")
    assert "did you mean `altitude_m`" in (problem.hint or "")


def test_node_in_a_rack_that_does_not_exist_is_located() -> None:
    text = MINIMAL.replace("rack: r1,", "rack: r2,")
    with pytest.raises(InvalidSpec) as info:
        parse_facility(text, "facility.yaml")
    (problem,) = info.value.problems
    assert problem.field == "nodes[0].rack"
    assert problem.line == 8
    assert "no rack named 'r2'" in problem.message
    assert "did you mean 'r1'" in (problem.hint or "")


@pytest.mark.parametrize(
    "old,new,field",
    [
        ("max_kw: 3.2", "max_kw: -3", "nodes[0].max_kw"),
        ("max_kw: 3.2", "max_kw: 1.0", "nodes[0]"),  # below nominal
        ("country: us}", "country: us}\ncooling: {rh_pct: {min: 20, max: 120}}", "cooling.rh_pct.max"),
    ],
)
def test_impossible_values_are_rejected(old: str, new: str, field: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_facility(MINIMAL.replace(old, new), "f.yaml")
    assert any(p.field == field for p in info.value.problems), [str(p) for p in info.value.problems]
    assert all(p.line is not None for p in info.value.problems)


def test_duplicate_rack_names_are_an_error() -> None:
    text = MINIMAL.replace(
        "      - {name: r1, power_budget_kw: 20}",
        "      - {name: r1, power_budget_kw: 20}\n      - {name: r1, power_budget_kw: 10}",
    )
    with pytest.raises(InvalidSpec, match="rack name 'r1' is used 2 times"):
        parse_facility(text)


def test_empty_and_non_mapping_documents() -> None:
    with pytest.raises(InvalidSpec, match="empty"):
        parse_facility("")
    with pytest.raises(InvalidSpec, match="mapping"):
        parse_facility("- a\n- b\n")


def test_node_instances_expand_with_bmc_endpoints() -> None:
    f = load_facility(EXAMPLES / "dgx-h100-tier3.yaml")
    dgx = [n for n in f.node_instances() if n.group.name == "dgx"]
    assert len(dgx) == 32
    assert dgx[0].rack == "gpu-01" and dgx[-1].rack == "gpu-08"
    assert dgx[0].bmc is not None and dgx[0].bmc.address == "https://dgx-001.bmc.su1.example"
    assert dgx[0].bmc.protocol == "redfish"


def test_loading_leaves_the_garbage_collector_as_it_found_it() -> None:
    import gc

    parse_facility(MINIMAL)
    with pytest.raises(InvalidSpec):
        parse_facility(MINIMAL.replace("max_kw: 3.2", "max_kw: -3"))
    assert gc.isenabled()
    gc.disable()
    try:
        parse_facility(MINIMAL)
        assert not gc.isenabled()
    finally:
        gc.enable()
