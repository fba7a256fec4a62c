"""Where a stage may run, from the facility spec's node labels, the Ray nodes' own labels and the nodes' holds.

Pure: the nodes are given as the inventory reads them from Ray; the facility is a real spec file (the lab's two
GPU servers plus a CPU server). The same placement on a real two-node Ray is in tests/training/test_two_nodes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aidc.cluster.inventory import ComputeNode
from aidc.cluster.placement import WORKLOAD, node_labels, place
from aidc.errors import InvalidInput
from aidc.facility.loader import load_facility
from aidc.facility.model import Facility

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"


def ray_node(name: str, **labels: str) -> ComputeNode:
    return ComputeNode(f"{name}.lab", f"id-{name}", "10.0.0.1", True, 8.0, 0.0, None, 2**34, labels)


@pytest.fixture()
def facility(tmp_path: Path) -> Facility:
    doc = yaml.safe_load(LAB.read_text())
    gpu = next(n for n in doc["nodes"] if n["name"] == "gpu")
    cpu = {**gpu, "name": "cpu", "count": 1, "gpus": 0, "gpu_type": None, "labels": {WORKLOAD: "preprocessing"}}
    gpu["labels"] = {WORKLOAD: "training", "zone": "a"}
    doc["nodes"].append(cpu)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_facility(path)


def test_a_nodes_labels_are_its_spec_servers_under_its_own(facility: Facility) -> None:
    assert node_labels(ray_node("gpu-001"), {}, facility) == {WORKLOAD: "training", "zone": "a"}
    assert node_labels(ray_node("gpu-002", zone="b"), {}, facility) == {WORKLOAD: "training", "zone": "b"}
    assert node_labels(ray_node("stray", zone="c"), {}, facility) == {"zone": "c"}  # not in the spec: Ray's only
    assert node_labels(ray_node("box", **{"aidc.node": "cpu-001"}), {}, facility)[WORKLOAD] == "preprocessing"


def test_a_stage_goes_where_its_labels_or_its_kinds_workload_say(facility: Facility) -> None:
    nodes = [ray_node("gpu-001"), ray_node("gpu-002", zone="b"), ray_node("cpu-001")]
    train = place("train", {}, {WORKLOAD: "training"}, nodes, {}, facility)
    assert train is not None and train.names == ("gpu-001", "gpu-002")
    assert train.selector() == {"ray.io/node-id": "in(id-gpu-001,id-gpu-002)"}
    asked = place("train", {"zone": "b"}, {WORKLOAD: "training"}, nodes, {}, facility)  # asked wins over implied
    assert asked is not None and asked.names == ("gpu-002",)
    data = place("data", {}, {WORKLOAD: "preprocessing"}, nodes, {}, facility)
    assert data is not None and data.describe() == "on the node(s) labelled workload=preprocessing: cpu-001"


def test_without_labels_anywhere_a_stage_runs_anywhere_as_before(facility: Facility) -> None:
    assert place("train", {}, {WORKLOAD: "training"}, [ray_node("laptop")], {}, None) is None
    assert place("data", {}, {WORKLOAD: "preprocessing"}, [ray_node("gpu-001")], {}, facility) is None


def test_labels_no_live_node_carries_are_an_error_naming_what_the_nodes_carry(facility: Facility) -> None:
    dead = ComputeNode("gpu-002.lab", "id-gpu-002", "", False, 8.0, 0.0, None, 0.0, {"zone": "b"})
    with pytest.raises(InvalidInput, match=r"stage 'train' asks for nodes labelled zone=b; none of the .* 1 live") as e:
        place("train", {"zone": "b"}, {}, [ray_node("gpu-001"), dead], {}, facility)
    assert "workload=training" in e.value.message and "zone=a" in e.value.message
    assert e.value.hint is not None and "nodes[].labels" in e.value.hint


def test_a_cordoned_node_is_left_out_while_another_fits(facility: Facility) -> None:
    nodes = [ray_node("gpu-001"), ray_node("gpu-002"), ray_node("cpu-001")]
    train = place("train", {}, {WORKLOAD: "training"}, nodes, {}, facility, held={"id-gpu-001"})
    assert train is not None and train.names == ("gpu-002",)
    # every training node held: a hold alone never stops a run — it goes on there
    both = place("train", {}, {WORKLOAD: "training"}, nodes, {}, facility, held={"id-gpu-001", "id-gpu-002"})
    assert both is not None and both.names == ("gpu-001", "gpu-002")
    # no labels at all: any node but the held one
    plain = [ray_node("a"), ray_node("b")]
    anywhere = place("x", {}, {}, plain, {}, None, held={"id-a"})
    assert anywhere is not None and anywhere.names == ("b.lab",) and "not cordoned" in anywhere.describe()
    assert place("x", {}, {}, plain, {}, None, held={"id-a", "id-b"}) is None
