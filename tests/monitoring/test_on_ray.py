"""On a real (local, one-node) Ray: the inventory reads Ray's node, a collector actor is placed on that node by its
id and samples it into the store, and the scheduler's Ray view leaves a cordoned node out of capacity and gangs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aidc.cluster.compute import ray_cluster
from aidc.cluster.inventory import ray_nodes
from aidc.jobs.scheduler import RayCluster
from aidc.monitoring.collector import start_node_actors
from aidc.store.metadata import open_metadata_store


@pytest.fixture(scope="module")
def ray_node() -> Iterator[str]:
    with ray_cluster("", num_cpus=1):
        nodes = ray_nodes()
        assert len(nodes) == 1
        yield str(nodes[0].ray_node_id)


def test_the_inventory_reads_rays_node(ray_node: str) -> None:
    (node,) = ray_nodes()
    assert node.alive and node.cpus == 1.0 and node.memory_bytes > 0
    assert node.host == socket.gethostname()


def test_a_collector_actor_is_placed_on_its_node_and_samples_it(ray_node: str, tmp_path: Path) -> None:
    import ray

    url = f"sqlite:///{tmp_path / 'aidc.db'}"
    store = open_metadata_store(url)  # migrated here, before the actor opens it
    (actor,) = start_node_actors(
        url, [{"ray_node_id": ray_node, "name": "n1", "nominal_w": 300, "max_w": 500}], interval_s=0.5
    )
    try:
        where = ray.get(actor.where.remote(), timeout=120)
        assert where["ray_node_id"] == ray_node and where["node"] == "n1"
        deadline = time.monotonic() + 60
        while not store.query_samples(node="n1", metric="node_power_watts"):
            assert time.monotonic() < deadline, "the actor wrote no samples"
            time.sleep(0.2)
        power = store.query_samples(node="n1", metric="node_power_watts")[0]
        assert not power.measured and 300 * 0.3 <= power.value <= 500
    finally:
        ray.get(actor.stop.remote(), timeout=30)
        ray.kill(actor)


def test_a_cordoned_node_leaves_the_schedulers_capacity_and_takes_no_gang(ray_node: str) -> None:
    cluster = RayCluster("", 1, node_name=lambda node: "n1")
    assert cluster.capacity().cpus == 1.0
    assert cluster.place_gang([{"CPU": 1.0, "GPU": 0.0}], timeout_s=30)
    cluster.cordon({"n1"})
    assert cluster.capacity().cpus == 0.0 and cluster.available().cpus == 0.0
    assert not cluster.place_gang([{"CPU": 1.0, "GPU": 0.0}], timeout_s=2)  # only node held: nowhere to go
    cluster.cordon(set())
    assert cluster.place_gang([{"CPU": 1.0, "GPU": 0.0}], timeout_s=30)


def test_a_replica_placed_off_held_nodes_does_not_start_on_a_cordoned_one(ray_node: str) -> None:
    import ray

    from aidc.cluster.inventory import held_ray_node_ids

    here = socket.gethostname()
    assert held_ray_node_ids(ray_nodes(), [("gpu-001", here)]) == [ray_node]  # held by its hostname
    assert held_ray_node_ids(ray_nodes(), [("gpu-001", "elsewhere")]) == []

    @ray.remote(num_cpus=0)
    class Probe:
        def node(self) -> str:
            return str(ray.get_runtime_context().get_node_id())

    # the selector the serving controller gives a new replica while the only node is cordoned: it waits
    selector = {"ray.io/node-id": f"!in({ray_node})"}
    held = Probe.options(scheduling_strategy="SPREAD", label_selector=selector).remote()  # type: ignore[attr-defined]
    ready, _ = ray.wait([held.node.remote()], timeout=3)
    assert ready == []
    ray.kill(held)
    free = Probe.remote()  # type: ignore[attr-defined]
    assert ray.get(free.node.remote(), timeout=60) == ray_node
