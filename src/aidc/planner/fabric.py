"""The compute fabric: a rail-optimised fat tree sized for the GPU count at a switch radix and NIC speed."""

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
    down = max(1, int(round(k * oversubscription / (1 + oversubscription))))
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
