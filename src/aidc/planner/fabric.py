"""The compute fabric: a fat tree sized for the GPU count at a switch radix and NIC speed, and what it gives one
job's collectives (oversubscribed leaf uplinks, in-network reduction, where the job's groups sit on it)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FatTree:
    endpoints: int
    radix: int
    tiers: int
    leaves: int
    spines: int
    cores: int
    oversubscription: float
    nic_gbps: float

    @property
    def switches(self) -> int:
        return self.leaves + self.spines + self.cores

    @property
    def bisection_tbps(self) -> float:
        return self.endpoints * self.nic_gbps / 2 / 1000 / self.oversubscription

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "switches": self.switches, "bisection_tbps": self.bisection_tbps}


def leaf_downlinks(radix: int, oversubscription: float) -> int:
    """GPU-facing ports of one leaf switch: radix·o/(1+o) (half of them on a non-blocking leaf)."""
    return max(1, int(round(radix * oversubscription / (1 + oversubscription))))


@dataclass(frozen=True)
class Network:
    """The scale-out network as one job's collectives see it.

    Ranks are placed in order (node by node, nodes leaf by leaf) and the job's groups are laid out the way Megatron
    orders them (tensor-parallel ranks adjacent, then context, then data parallel, pipeline stages outermost: a
    data-parallel group is a block of TP·CP·DP consecutive ranks, the next pipeline stage the next block).  A
    collective whose group stays under one leaf never touches the leaf uplinks; one that spans leaves shares
    uplinks that carry 1/o of what enters them on an o:1 oversubscribed fabric.
    """

    nic_bytes_per_s: float | None = None  # per GPU, line rate; None: the GPU's own NIC
    oversubscription: float = 1.0
    leaf_gpus: int | None = None  # GPUs under one leaf switch (its down-ports); None: one leaf holds the job
    # in-network reduction (InfiniBand SHARP through NCCL's CollNet, NVLink SHARP): the switches add the
    # gradients, so each GPU sends its share once and receives the sum once instead of 2(n−1)/n times
    sharp: bool = False

    def spans_leaves(self, span: int, job: int) -> bool:
        """Whether a group of ``span`` consecutive ranks, in a job of ``job`` ranks, reaches beyond one leaf.

        Blocks of ``span`` ranks start at multiples of ``span``; under one leaf only if the job fits in one, or
        the blocks tile the leaf exactly (the slowest group sets the pace of a synchronous step)."""
        leaf = self.leaf_gpus
        if leaf is None or job <= leaf:
            return False
        return span > leaf or leaf % span != 0

    def bandwidth(self, nic: float, span: int, job: int) -> float:
        """Per-GPU bytes/s of a group's cross-node collective: the NIC's, or 1/o of it across oversubscribed leaves."""
        if self.oversubscription > 1 and self.spans_leaves(span, job):
            return nic / self.oversubscription
        return nic


def _spread(needed: int, uplinks: int) -> int:
    """Spines must take an equal share of every leaf's uplinks: the smallest divisor of ``uplinks`` ≥ needed.

    That is why a DGX H100 SuperPOD of 3 SUs has 16 spines rather than 12 (NVIDIA DGX SuperPOD RA).
    """
    for d in range(max(1, needed), uplinks + 1):
        if uplinks % d == 0:
            return d
    return needed


def fat_tree(endpoints: int, radix: int = 64, oversubscription: float = 1.0, nic_gbps: float = 400) -> FatTree:
    """Leaf/spine(/core) counts (reference B: 2-tier ≤ k²/2 endpoints, 3-tier ≤ k³/4)."""
    k = radix
    down = leaf_downlinks(k, oversubscription)
    up = k - down
    if endpoints <= down:
        return FatTree(endpoints, k, 1, 1, 0, 0, oversubscription, nic_gbps)
    leaves = math.ceil(endpoints / down)
    if leaves * up <= k * up and leaves <= k:
        spines = _spread(math.ceil(leaves * up / k), up)
        return FatTree(endpoints, k, 2, leaves, spines, 0, oversubscription, nic_gbps)
    # three tiers: pods of k/2 leaves; each leaf's `up` uplinks land on `up` spines of its pod (k/2 at 1:1, fewer
    # when oversubscribed); cores take the spines' uplinks
    pod_endpoints = down * (k // 2)
    pods = math.ceil(endpoints / pod_endpoints)
    spines = pods * up
    cores = math.ceil(spines * (k // 2) / k)
    return FatTree(endpoints, k, 3, leaves, spines, cores, oversubscription, nic_gbps)
