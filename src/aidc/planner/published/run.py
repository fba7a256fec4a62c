"""A published run as the planner checks it: the model, the machine and layout as its source gives them, and the
measured figure."""

from __future__ import annotations

from dataclasses import dataclass

from aidc.planner.architecture import Architecture
from aidc.planner.memory import Layout

GPU_HOURS = "GPU-hours per 1e12 tokens"
ITERATION = "iteration s"


@dataclass(frozen=True)
class Cluster:
    """The machine a run ran on where it is not the catalog GPU's reference node (a DGX): GPUs per node, and the
    NICs each node has and their line rate, which set each GPU's share of the scale-out network.  Taken from the
    run's own source, never fitted."""

    gpus_per_node: int
    nics_per_node: int
    nic_gbps: float  # line rate of one NIC
    source: str

    @property
    def nic_bytes_per_gpu(self) -> float:
        """Each GPU's share of its node's NICs, bytes/s (the NICs side by side; rings run one per NIC)."""
        return self.nics_per_node * self.nic_gbps * 1e9 / 8 / self.gpus_per_node


@dataclass(frozen=True)
class PublishedRun:
    """One published run: the model, hardware and layout as its source gives them, and the measured figure.

    ``metric`` is seconds per iteration, or GPU-hours per trillion tokens as the source gives them (LLaMA 65B
    and DeepSeek: from throughput; MPT-7B: wall clock, restarts included; the other LLaMA/Llama 2 tables do not
    say), predicted at 100% goodput.  ``free`` names the layout fields the source does not give: the planner
    searches them (fastest that fits in memory), as it would for a user who left them out.
    """

    name: str
    source: str
    paper: str
    stack: str
    arch: Architecture
    layout: Layout
    global_batch: int
    published: float
    gpu: str = "A100-80GB"
    precision: str = "bf16"
    metric: str = ITERATION
    free: tuple[str, ...] = ()
    gpus_published: bool = True
    tflops_published: float = 0.0  # the source's own model TFLOP/s per GPU where it prints one beside the metric
    cluster: Cluster | None = None  # where the machine was not the catalog GPU's reference node (a DGX)

    @property
    def gpus(self) -> int:
        return self.layout.gpus

    @property
    def iteration_s(self) -> float:
        """The published figure as seconds per iteration (GPU-hours per 1e12 tokens converted back)."""
        if self.metric == ITERATION:
            return self.published
        tokens = self.global_batch * self.arch.seq_len
        return self.published * 3600 / self.gpus * tokens / 1e12


# Every layout field the planner can search, for a run whose source gives no layout at all.
ALL_FREE = ("tp", "pp", "dp", "zero", "recompute", "micro_batch", "interleave", "sequence_parallel", "ep")
