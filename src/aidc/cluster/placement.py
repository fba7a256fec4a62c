"""Placement by node labels: the Ray nodes a stage may run on, by the labels the facility spec gives its servers
(``nodes[].labels``) merged with those the Ray nodes carry themselves (``ray start --labels``; Ray's win).

A stage asks for labels in its pipeline spec (``node_labels: {workload: training}``); a stage kind may imply one
(``workload``: the train stage ``training``, the data stage ``preprocessing``), which applies only where some node
of the cluster carries it — a cluster without such labels runs every stage anywhere, as before. What a stage asked
for and no live node carries is an error that names the labels the nodes do carry. Cordoned nodes (an operator's
hold, or the system's after repeated failures) are left out while another node fits.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aidc.cluster.inventory import ComputeNode, spec_name
from aidc.errors import InvalidInput

if TYPE_CHECKING:
    from aidc.facility.model import Facility

WORKLOAD = "workload"  # the label a stage kind implies: training, preprocessing


def node_labels(node: ComputeNode, names: Mapping[str, str], facility: Facility | None) -> dict[str, str]:
    """The node's labels: its spec server's (if it is one) under its own Ray labels."""
    own: dict[str, str] = {}
    if facility is not None:
        servers = {i.name: i for i in facility.node_instances()}
        name = spec_name(node, names, servers)
        if name is not None:
            own = dict(servers[name].group.labels)
    return {**own, **node.labels}


@dataclass(frozen=True)
class Placement:
    """Where a stage runs: the labels it wanted and the live Ray nodes that carry them."""

    wanted: dict[str, str]
    node_ids: tuple[str, ...]
    names: tuple[str, ...]

    def selector(self) -> dict[str, str]:
        """A Ray label selector (tasks, actors, placement group bundles) for exactly these nodes."""
        return {"ray.io/node-id": f"in({','.join(self.node_ids)})"}

    def describe(self) -> str:
        if not self.wanted:
            return f"on the node(s) not cordoned: {', '.join(self.names)}"
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.wanted.items()))
        return f"on the node(s) labelled {labels}: {', '.join(self.names)}"


def place(
    stage: str,
    wanted: Mapping[str, str],
    implied: Mapping[str, str],
    nodes: list[ComputeNode],
    names: Mapping[str, str],
    facility: Facility | None,
    held: Collection[str] = (),
) -> Placement | None:
    """The nodes ``stage`` may run on: those carrying every label it ``wanted`` (InvalidInput if none does), else
    those carrying what its kind ``implied`` (if any live node does); None: anywhere. ``held``: the Ray node ids
    of cordoned nodes, left out while another node fits (a run is never stopped by a hold alone)."""
    from aidc.cluster.inventory import node_name

    alive = [(n, node_labels(n, names, facility)) for n in nodes if n.alive and n.ray_node_id]

    def matching(labels: Mapping[str, str]) -> Placement | None:
        found = [n for n, own in alive if all(own.get(k) == v for k, v in labels.items())]
        if not found:
            return None
        free = [n for n in found if n.ray_node_id not in held]
        if free and (labels or len(free) < len(found)):
            found = free
        elif not labels:
            return None  # nothing asked, nothing held: anywhere
        return Placement(
            dict(labels),
            tuple(str(n.ray_node_id) for n in found),
            tuple(node_name(n, names, facility) for n in found),
        )

    if wanted:
        chosen = matching(wanted)
        if chosen is None:
            carried = sorted({f"{k}={v}" for _, own in alive for k, v in own.items() if not k.startswith("ray.io/")})
            asked = ", ".join(f"{k}={v}" for k, v in sorted(wanted.items()))
            raise InvalidInput(
                f"stage {stage!r} asks for nodes labelled {asked}; none of the cluster's {len(alive)} live node(s) "
                f"carries that (their labels: {', '.join(carried) or 'none'})",
                hint="label servers in the facility spec (nodes[].labels) or with `ray start --labels`, or change "
                "the stage's node_labels",
            )
        return chosen
    return (matching(implied) if implied else None) or (matching({}) if held else None)
