"""Node inventory: the compute nodes Ray sees (or this host alone), reconciled with the facility spec's servers.

A Ray node is matched to a server of the spec (its rack, hall, power feeds and role) by, in order: its Ray label
``aidc.node``, the host → name map an operator configured (AIDC_NODE_NAMES), its hostname, or its hostname's first
DNS label; a node outside the spec is named by its ``aidc.node`` label, else its hostname (two raylets on one host
are two nodes). Nodes Ray has and the spec lacks, and servers the spec has and Ray lacks, are both listed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aidc.facility.model import Facility, NodeInstance

NODE_LABEL = "aidc.node"
COMPUTE_ROLES = ("compute",)


@dataclass(frozen=True)
class ComputeNode:
    """A node as the compute layer sees it."""

    host: str
    ray_node_id: str | None
    address: str
    alive: bool
    cpus: float
    gpus: float
    gpu_model: str | None
    memory_bytes: float
    labels: dict[str, str] = field(default_factory=dict)


def ray_nodes() -> list[ComputeNode]:
    """The nodes of the Ray cluster this process is connected to (the caller connects)."""
    import ray

    out = []
    for n in ray.nodes():  # type: ignore[no-untyped-call]
        resources: dict[str, float] = n.get("Resources", {}) or {}
        accelerators = [k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:")]
        out.append(
            ComputeNode(
                host=str(n.get("NodeManagerHostname") or n.get("NodeManagerAddress") or ""),
                ray_node_id=str(n.get("NodeID")),
                address=str(n.get("NodeManagerAddress") or ""),
                alive=bool(n.get("Alive")),
                cpus=float(resources.get("CPU", 0.0)),
                gpus=float(resources.get("GPU", 0.0)),
                gpu_model=accelerators[0] if accelerators else None,
                memory_bytes=float(resources.get("memory", 0.0)),
                labels={str(k): str(v) for k, v in (n.get("Labels") or {}).items()},
            )
        )
    return out


def this_host() -> ComputeNode:
    """This host alone, as psutil sees it: the embedded default, where no Ray cluster runs."""
    import psutil

    return ComputeNode(
        host=socket.gethostname(),
        ray_node_id=None,
        address="127.0.0.1",
        alive=True,
        cpus=float(psutil.cpu_count() or 1),
        gpus=0.0,
        gpu_model=None,
        memory_bytes=float(psutil.virtual_memory().total),
    )


def discover() -> list[ComputeNode]:
    """Ray's nodes when this process is connected to a cluster, else this host."""
    try:
        import ray

        if ray.is_initialized():
            found = ray_nodes()
            if found:
                return found
    except Exception:  # Ray went away under us: this host is still here
        pass
    return [this_host()]


def spec_name(node: ComputeNode, names: Mapping[str, str], spec: Iterable[str]) -> str | None:
    """The spec server ``node`` is, by label, configured map, hostname or its first DNS label; None if none."""
    known = set(spec)
    for candidate in (
        node.labels.get(NODE_LABEL),
        names.get(node.host),
        names.get(node.host.split(".")[0]),
        node.host,
        node.host.split(".")[0],
    ):
        if candidate and candidate in known:
            return candidate
    return None


def node_name(node: ComputeNode, names: Mapping[str, str], facility: Facility | None) -> str:
    """What aidc calls ``node``: its spec server's name where it has one, else its hostname."""
    spec = [i.name for i in facility.node_instances()] if facility is not None else []
    return spec_name(node, names, spec) or names.get(node.host) or node.labels.get(NODE_LABEL) or node.host


def _feeds(facility: Facility, rack: str) -> list[str]:
    for _, r in facility.racks():
        if r.name == rack:
            return list(r.feeds or r.power_paths or [p.name for p in facility.power.paths])
    return []


def _hall(facility: Facility, rack: str) -> str | None:
    return next((h.name for h, r in facility.racks() if r.name == rack), None)


def _spec_part(facility: Facility, inst: NodeInstance) -> dict[str, Any]:
    g = inst.group
    return {
        "rack": inst.rack,
        "hall": _hall(facility, inst.rack),
        "feeds": _feeds(facility, inst.rack),
        "role": g.role,
        "model": g.model,
        "spec": {
            "gpus": g.gpus,
            "gpu_type": g.gpu_type,
            "cpu_cores": g.cpu_cores,
            "memory_gb": g.memory_gb,
            "nominal_kw": g.nominal_kw,
            "max_kw": g.max_kw,
        },
        "bmc": inst.bmc.address if inst.bmc is not None else None,
    }


EMPTY_SPEC: dict[str, Any] = {
    "rack": None,
    "hall": None,
    "feeds": [],
    "role": None,
    "model": None,
    "spec": None,
    "bmc": None,
}


def reconcile(
    nodes: list[ComputeNode], facility: Facility | None, names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One entry per node of Ray and per server of the spec, matched where they are the same machine.

    ``status``: ``up`` (Ray has it alive), ``down`` (Ray knew it, it died), ``absent`` (a compute server of the
    spec Ray does not have), ``unmonitored`` (a network or other device of the spec no source reports on); and ``in_spec``/``in_cluster`` say where it was found.
    """
    names = names or {}
    instances = {i.name: i for i in facility.node_instances()} if facility is not None else {}
    out: dict[str, dict[str, Any]] = {}
    for node in sorted(nodes, key=lambda n: (not n.alive, n.host)):
        name = spec_name(node, names, instances) or names.get(node.host) or node.labels.get(NODE_LABEL) or node.host
        if name in out and out[name]["status"] == "up":
            continue  # a dead incarnation of a node Ray already lists alive
        inst = instances.get(name)
        out[name] = {
            "name": name,
            "host": node.host,
            "address": node.address,
            "ray_node_id": node.ray_node_id,
            "status": "up" if node.alive else "down",
            "in_spec": inst is not None,
            "in_cluster": True,
            "cpus": node.cpus,
            "gpus": node.gpus,
            "gpu_model": node.gpu_model,
            "memory_bytes": node.memory_bytes,
            "labels": node.labels,
        } | (_spec_part(facility, inst) if facility is not None and inst is not None else EMPTY_SPEC)
    for name, inst in instances.items():
        if name in out:
            continue
        out[name] = {
            "name": name,
            "host": None,
            "address": None,
            "ray_node_id": None,
            # a server Ray should have is absent; a switch or PDU is declared, with no source reporting on it
            "status": "absent" if inst.group.role in COMPUTE_ROLES else "unmonitored",
            "in_spec": True,
            "in_cluster": False,
            "cpus": None,
            "gpus": None,
            "gpu_model": None,
            "memory_bytes": None,
            "labels": {},
        } | _spec_part(facility, inst)  # type: ignore[arg-type]
    return sorted(out.values(), key=lambda n: (n["rack"] or "~", n["name"]))


def name_for_host(host: str, names: Mapping[str, str], facility: Facility | None) -> str:
    """aidc's name for the node at ``host`` (a job's worker host): as node_name names it, without Ray labels."""
    bare = ComputeNode(host, None, "", True, 0.0, 0.0, None, 0.0)
    return node_name(bare, names, facility)


def held_ray_node_ids(nodes: list[ComputeNode], held: Iterable[tuple[str, str]]) -> list[str]:
    """The Ray node ids of the nodes an operator holds, given as (name, hostname) pairs: matched by hostname, its
    first DNS label or the aidc.node label (what a process without the spec and the name map can tell)."""
    keys = {k for pair in held for k in pair if k}
    return sorted(
        str(n.ray_node_id)
        for n in nodes
        if n.ray_node_id and (n.host in keys or n.host.split(".")[0] in keys or n.labels.get(NODE_LABEL) in keys)
    )
