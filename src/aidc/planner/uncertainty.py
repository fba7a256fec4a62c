"""The band around a predicted iteration time: the same layout re-priced under the assumptions a user did not state."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import GPU
from aidc.planner.fabric import Network
from aidc.planner.iteration import DEFAULT_EFFICIENCY, Efficiency, iteration_time
from aidc.planner.memory import Layout

# Each assumption with the low and high values a plan is re-priced at.  The spans are those the published runs
# disagree by (benchmarks/planner_accuracy.py: a GEMM-efficiency factor per software stack of 0.7-1.1, network
# efficiency 0.56-1.0 across fits, the overlap penalty 0-1), not a statistical interval.
ASSUMPTIONS: dict[str, tuple[str, float, float]] = {
    "matmul_efficiency": ("how close the software stack's GEMMs come to the GPU's measured best (MAMF)", 0.8, 1.1),
    "network": ("achieved network bandwidth of the fabric", 0.75, 1.5),
    "overlap_contention": ("how much overlapped communication slows compute", 0.0, 3.0),
    "flash_attention": ("fused-attention kernel speed", 0.75, 1.3),
}


@dataclass(frozen=True)
class Band:
    """Low and high multipliers of a predicted time (and of anything proportional: days, GPU-hours, cost)."""

    low: float
    high: float
    assumptions: tuple[str, ...]

    def around(self, value: float) -> tuple[float, float]:
        return value * self.low, value * self.high

    def as_dict(self) -> dict[str, object]:
        return {"low": self.low, "high": self.high, "assumptions": list(self.assumptions)}


def iteration_band(
    arch: Architecture,
    layout: Layout,
    gpu: GPU,
    global_batch: int,
    precision: str,
    nic_bytes_per_s: float | None = None,
    eff: Efficiency = DEFAULT_EFFICIENCY,
    network: Network | None = None,
) -> Band:
    """Re-price ``layout`` with each unstated assumption at its low and high value, one at a time; the band is
    the spread of the slowest and fastest against the central prediction."""
    central = iteration_time(arch, layout, gpu, global_batch, precision, nic_bytes_per_s, eff, network).total
    times = [central]
    for name, (_, low, high) in ASSUMPTIONS.items():
        for scale in (low, high):
            value = (
                min(1.0, getattr(eff, name) * scale) if name != "overlap_contention" else eff.overlap_contention * scale
            )
            trial_eff = dataclasses.replace(eff, **{name: value})
            times.append(
                iteration_time(arch, layout, gpu, global_batch, precision, nic_bytes_per_s, trial_eff, network).total
            )
    named = tuple(f"{text} (×{low:g}–{high:g})" for text, low, high in ASSUMPTIONS.values())
    return Band(min(times) / central, max(times) / central, named)
