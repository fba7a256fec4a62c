"""Derived quantities: redundancy classification, fat-tree arithmetic and loads, checked against known figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.facility import derive, fat_tree, load_facility, redundancy

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"


@pytest.mark.parametrize(
    "units,load,scheme",
    [
        ([("A", 500)] * 2 + [("B", 500)] * 2, 1000, "2N"),
        ([("A", 500)] * 3 + [("B", 500)] * 3, 1000, "2(N+1)"),
        ([("A", 500)] * 3, 1000, "N+1"),
        ([("A", 250)] * 6, 1000, "N+2"),
        ([("A", 500)] * 2, 1000, "N"),
        ([("A", 400)] * 2, 1000, "below N"),
        ([], 1000, "none"),
    ],
)
def test_redundancy_schemes(units: list[tuple[str, float]], load: float, scheme: str) -> None:
    assert redundancy("ups", units, load).scheme == scheme


def test_redundancy_levels_compare_as_designers_expect() -> None:
    two_n = redundancy("ups", [("A", 500)] * 2 + [("B", 500)] * 2, 1000)
    n_plus_1 = redundancy("ups", [("A", 500)] * 3, 1000)
    assert two_n.meets("2N") and two_n.meets("N+1")
    assert n_plus_1.meets("N+1") and not n_plus_1.meets("2N")
    assert not redundancy("ups", [("A", 500)] * 2, 1000).meets("N+1")


@pytest.mark.parametrize("gpus,leaves,spines", [(248, 8, 4), (504, 16, 8), (1016, 32, 16)])
def test_fat_tree_reproduces_superpod_h100_tables(gpus: int, leaves: int, spines: int) -> None:
    # DGX SuperPOD H100 RA: 1 SU → 248 GPUs / 8 leaves / 4 spines; 2 SU → 504/16/8; 4 SU → 1016/32/16.
    switches, _ = fat_tree(gpus, 64, 2)
    assert switches == {"leaf": leaves, "spine": spines}


def test_fat_tree_limits_for_radix_64() -> None:
    assert fat_tree(2048, 64, 2) == ({"leaf": 64, "spine": 32}, 2048)
    switches, limit = fat_tree(65536, 64, 3)
    assert limit == 65536 and sum(switches.values()) == 5120


def test_derived_loads_of_the_tier3_example() -> None:
    d = derive(load_facility(EXAMPLES / "dgx-h100-tier3.yaml"))
    assert d.gpus == 256 and d.nodes == 51 and d.racks == 11
    assert d.it_load_kw == pytest.approx(32 * 10.2 + 6 * 2 * 1.7 + 4 * 2.0 + 3 * 0.9)
    assert d.rack_load_kw["gpu-01"] == pytest.approx(40.8)
    assert d.systems["ups"].scheme == "2N"
    assert d.facility_load_kw == pytest.approx(d.it_load_kw * 1.3)
    compute = next(s for s in d.fabrics if s.fabric.name == "compute")
    assert compute.endpoints == 256 and compute.oversubscription == {"leaf": 1.0}


def test_liquid_heat_split_for_direct_liquid_racks() -> None:
    d = derive(load_facility(EXAMPLES / "gb200-nvl72-china.yaml"))
    assert d.liquid_heat_kw == pytest.approx(8 * 132 * 0.85)
    assert d.max_nvlink_domain == 72
