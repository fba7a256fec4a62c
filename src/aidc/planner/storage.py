"""Storage and resilience: dataset and checkpoint sizes, write bandwidth, Young/Daly interval, goodput."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# bf16 weights (2) + fp32 master (4) + Adam m and v (4 + 4): the reference's 13–14 B/param full checkpoint
CHECKPOINT_BYTES_PER_PARAM = 14.0
DEFAULT_STALL_S = 60.0  # tolerated pause when neither the stall nor the storage bandwidth is given
HOST_COPY_BYTES_PER_S = 25e9  # per GPU, device to pinned host memory over PCIe Gen4/5 x16 (inf)


def checkpoint_stall(
    params: float, gpus: int, given_s: float | None, storage_gbps: float | None, asynchronous: bool
) -> tuple[float, str]:
    """Seconds training pauses per checkpoint, and where the figure comes from.

    Synchronous: the whole checkpoint over the storage system's aggregate write bandwidth.  Asynchronous
    (PyTorch DCP async save, Megatron's async checkpointing): only each GPU's shard copied to host memory; the
    write to storage overlaps training and needs only to finish within the checkpoint interval.
    """
    if given_s is not None:
        return given_s, "given"
    ckpt = params * CHECKPOINT_BYTES_PER_PARAM
    if asynchronous:
        return ckpt / gpus / HOST_COPY_BYTES_PER_S, "host snapshot (async)"
    if storage_gbps is not None:
        return ckpt / (storage_gbps * 1e9), "storage bandwidth"
    return DEFAULT_STALL_S, "default tolerance"


WEIGHTS_BYTES_PER_PARAM = 2.0

# Llama 3 (Dubey et al. 2024, "The Llama 3 Herd of Models", §3.3.4, Table 5 "Root-cause categorization of
# unexpected interruptions during a 54-day period of Llama 3 405B pre-training"): 419 unexpected interruptions on
# 16,384 H100 GPUs in 8-GPU hosts.  Each row is charged to what it scales with: GPU faults per GPU, host parts
# per host, switches and cables per switch of the fabric, software and NCCL timeouts per GPU (one rank more is
# one more process that can hang).  The switch count of that cluster is not published (§3.3.1: a three-layer
# RoCE Clos of 24K GPUs); the planner's own fat tree for 16,384 GPUs at radix 64 stands in for it.
LLAMA3_GPUS = 16_384
LLAMA3_GPUS_PER_HOST = 8
LLAMA3_HOURS = 54 * 24.0
LLAMA3_RADIX = 64
INTERRUPTIONS: tuple[tuple[str, str, int], ...] = (
    ("faulty GPU", "gpu", 148),
    ("GPU HBM3 memory", "gpu", 72),
    ("software bug", "software", 54),
    ("network switch/cable", "switch", 35),
    ("host maintenance (unplanned)", "host", 32),
    ("GPU SRAM memory", "gpu", 19),
    ("GPU system processor", "gpu", 17),
    ("NIC", "host", 7),
    ("NCCL watchdog timeout", "software", 7),
    ("silent data corruption", "gpu", 6),
    ("GPU thermal interface + sensor", "gpu", 6),
    ("SSD", "host", 3),
    ("power supply", "host", 3),
    ("server chassis", "host", 2),
    ("IO expansion board", "host", 2),
    ("dependency", "software", 2),
    ("CPU", "host", 2),
    ("system memory", "host", 2),
)


def failures_per_hour(gpus: int, gpus_per_host: int, switches: int, llama3_switches: int) -> dict[str, float]:
    """Expected interruptions per hour of a job, by component, at Llama 3's per-component rates.

    ``llama3_switches`` is the switch count the same fabric model gives Llama 3's 16,384 GPUs (the rate per
    switch is Table 5's switch/cable count over it).  The GPU, host and software terms grow with the job's GPUs;
    the network term with its switches, which grow faster once the fabric needs another tier.
    """
    units = {
        "gpu": gpus / LLAMA3_GPUS,
        "software": gpus / LLAMA3_GPUS,
        "host": math.ceil(gpus / gpus_per_host) / (LLAMA3_GPUS / LLAMA3_GPUS_PER_HOST),
        "switch": switches / max(1, llama3_switches),
    }
    return {name: count / LLAMA3_HOURS * units[per] for name, per, count in INTERRUPTIONS}


@dataclass(frozen=True)
class Resilience:
    dataset_tb: float
    checkpoint_tb: float
    weights_tb: float
    write_gbps: float  # GB/s the storage must write: one checkpoint per stall, or (async) per interval
    checkpoint_interval_h: float
    job_mtbf_h: float
    interruptions: float  # expected failures over the run
    goodput: float  # useful fraction of wall-clock time
    stall_s: float = 0.0  # training paused per checkpoint
    stall_source: str = ""  # given, storage bandwidth, host snapshot (async), or the default tolerance
    mtbf_source: str = ""  # "per component (Llama 3 Table 5)" or "given per-GPU MTBF"
    # expected interruptions over the run by cause (per component), largest first
    causes: tuple[tuple[str, float], ...] = ()

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def young_daly_interval(stall_s: float, job_mtbf_s: float) -> float:
    """Optimal checkpoint interval τ ≈ √(2·δ·M) (Young 1974; Daly 2006 adds δ when δ ≪ M)."""
    return math.sqrt(2 * stall_s * job_mtbf_s) + stall_s


def resilience(
    params: float,
    tokens: float,
    bytes_per_token: float,
    gpus: int,
    gpu_mtbf_h: float | dict[str, float],
    stall_s: float,
    restart_min: float,
    run_hours: float,
    goodput: float | None = None,
    asynchronous: bool = False,
    storage_bytes_per_s: float | None = None,
) -> Resilience:
    """Checkpoint cost plus expected lost work and restart per failure gives the goodput of the run.

    ``gpu_mtbf_h`` is one all-causes MTBF per GPU, or the job's failures per hour by component
    (failures_per_hour).  An asynchronous checkpoint's write to storage must finish within the interval, so the
    storage is sized for one checkpoint per interval rather than per stall; where the storage is given and
    slower than that, the next snapshot waits for the last write and the interval stretches to the write time
    (more work lost per failure)."""
    ckpt = params * CHECKPOINT_BYTES_PER_PARAM
    if isinstance(gpu_mtbf_h, dict):
        rate_h = sum(gpu_mtbf_h.values())
        mtbf_s = 3600 / rate_h
        by_cause = sorted(gpu_mtbf_h.items(), key=lambda kv: -kv[1])
        source = "per component (Llama 3 Table 5)"
    else:
        mtbf_s = gpu_mtbf_h * 3600 / gpus
        by_cause, source = [("all causes", gpus / gpu_mtbf_h)], "given per-GPU MTBF"
    tau = young_daly_interval(stall_s, mtbf_s)
    if asynchronous and storage_bytes_per_s:
        tau = max(tau, ckpt / storage_bytes_per_s + stall_s)
    if goodput is None:
        # time lost: one stall per interval, half an interval redone per failure, plus the restart
        lost = stall_s / tau + (tau / 2 + restart_min * 60) / mtbf_s
        goodput = max(0.05, 1 - lost)
    wall_h = run_hours / goodput
    return Resilience(
        dataset_tb=tokens * bytes_per_token / 1e12,
        checkpoint_tb=ckpt / 1e12,
        weights_tb=params * WEIGHTS_BYTES_PER_PARAM / 1e12,
        write_gbps=ckpt / (max(tau - stall_s, stall_s) if asynchronous else stall_s) / 1e9,
        checkpoint_interval_h=tau / 3600,
        job_mtbf_h=mtbf_s / 3600,
        interruptions=wall_h * 3600 / mtbf_s,
        goodput=goodput,
        stall_s=stall_s,
        mtbf_source=source,
        causes=tuple((name, rate * wall_h) for name, rate in by_cause),
    )
