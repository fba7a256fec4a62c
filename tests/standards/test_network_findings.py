"""Which nodes and fabrics a network finding is about: the GPU nodes (every node with a GPU, one GPU included; never
a switch) and the compute fabric (not storage or management), as the DGX SuperPOD reference architecture words its
compute-fabric requirements (one compute NIC per GPU; a non-blocking compute fabric).

The lab example: two 4-GPU servers (`gpu`) with four 100 Gb/s NICs each on `lab-net` (compute), a switch node
(`switch`, no GPU) and an out-of-band fabric `bmc-net`, all single-tier.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from aidc.facility.loader import facility_from_source
from aidc.specfile import SpecSource
from aidc.standards import builtin_rules
from aidc.standards.checker import run_check
from aidc.standards.rule import Finding

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"
LAB = EXAMPLES / "lab-two-servers.yaml"
CN = EXAMPLES / "gb200-nvl72-china.yaml"  # compute, storage, in-band and out-of-band fabrics, each two tiers
RULES = {r.id: r for r in builtin_rules()}


def lab() -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(yaml.safe_load(LAB.read_text()))
    spec.pop("checks")
    return spec


def with_workstation(spec: dict[str, Any], compute_nics: int) -> dict[str, Any]:
    """A one-GPU workstation in the lab's rack, with ``compute_nics`` NICs on the compute fabric (and one on the
    out-of-band network)."""
    nics = [{"fabric": "bmc-net", "count": 1, "gbps": 1}]
    if compute_nics:
        nics.insert(0, {"fabric": "lab-net", "count": compute_nics, "gbps": 100})
    spec["nodes"].append(
        {
            "name": "ws",
            "model": "1-GPU workstation",
            "rack": "lab-rack",
            "gpus": 1,
            "nominal_kw": 0.5,
            "max_kw": 0.6,
            "nics": nics,
            "bmc": {"protocol": "redfish", "address": "https://ws-bmc.lab.example"},
        }
    )
    return spec


def findings(rule: str, spec: dict[str, Any]) -> list[Finding]:
    return run_check(facility_from_source(SpecSource(spec, {}, "lab")), rules=[RULES[rule]]).findings


def test_a_one_gpu_node_needs_its_own_compute_nic() -> None:
    [f] = findings("NET-NIC-PER-GPU", with_workstation(lab(), 0))
    assert (f.status, f.subject, f.measured, f.expected) == ("fail", "ws", "0 NICs for 1 GPU", "≥ 1")
    assert f.path == ("nodes", 2, "nics")


def test_the_gpu_nodes_are_checked_and_the_switch_is_not() -> None:
    """Passes fold into one line that counts what was checked: the two GPU node groups, not the switch."""
    [f] = findings("NET-NIC-PER-GPU", with_workstation(lab(), 1))
    assert (f.status, f.subject) == ("pass", "all 2 checked")


def test_the_nic_speed_of_a_one_gpu_node_is_judged_on_its_compute_nic() -> None:
    spec = with_workstation(lab(), 1)
    spec["nodes"][2]["nics"][0]["gbps"] = 25  # below the lab's 100 Gb/s target
    ws = [f for f in findings("NET-NIC-SPEED", spec) if f.subject == "ws"]
    assert [(f.status, f.measured, f.expected, f.path) for f in ws] == [
        ("fail", "25 Gb/s", "≥ 100 Gb/s", ("nodes", 2, "nics", 0, "gbps"))
    ]


def test_only_the_compute_fabric_is_held_to_one_to_one() -> None:
    """The China example's two-tier fabrics: a 2:1 storage leaf is no finding of this rule; a 2:1 compute leaf
    fails, and the finding names the fabric, its tier and where it is declared."""
    spec: dict[str, Any] = yaml.safe_load(CN.read_text())
    spec.pop("checks", None)
    spec["fabrics"][1].update(leaf_downlinks=16, leaf_uplinks=8)  # storage
    assert [(f.status, f.subject) for f in findings("NET-NONBLOCK", spec)] == [("pass", "compute leaf")]
    spec["fabrics"][0].update(leaf_downlinks=16, leaf_uplinks=8)  # compute
    [f] = findings("NET-NONBLOCK", spec)
    assert (f.status, f.measured, f.expected, f.path, f.subject) == (
        "fail",
        "2:1",
        "≤ 1:1",
        ("fabrics", 0),
        "compute leaf",
    )


@pytest.mark.parametrize(
    ("port_gbps", "measured", "note"),
    [(100, "100 Gb/s", ""), (50, "50 Gb/s", "limited by switch port")],
    ids=["port as fast as the NIC", "port slower than the NIC"],
)
def test_a_slow_nic_is_blamed_on_the_switch_port_only_when_the_port_is_slower(
    port_gbps: int, measured: str, note: str
) -> None:
    """The lab's 100 Gb/s NICs against a 200 Gb/s target: a NIC no faster than its port is itself too slow."""
    spec = lab()
    spec["targets"]["gpu_nic_gbps"] = 200
    spec["fabrics"][0]["port_gbps"] = port_gbps
    [f] = findings("NET-NIC-SPEED", spec)
    assert (f.status, f.subject, f.measured, f.expected, f.note) == ("fail", "gpu", measured, "≥ 200 Gb/s", note)
    assert f.path == ("nodes", 0, "nics", 0, "gbps")
