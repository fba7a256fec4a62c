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


@dataclass(frozen=True)
class Resilience:
    dataset_tb: float
    checkpoint_tb: float
    weights_tb: float
    write_gbps: float  # GB/s to write one checkpoint within the tolerated stall
    checkpoint_interval_h: float
    job_mtbf_h: float
    interruptions: float  # expected failures over the run
    goodput: float  # useful fraction of wall-clock time
    stall_s: float = 0.0  # training paused per checkpoint
    stall_source: str = ""  # given, storage bandwidth, host snapshot (async), or the default tolerance

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
    gpu_mtbf_h: float,
    stall_s: float,
    restart_min: float,
    run_hours: float,
    goodput: float | None = None,
) -> Resilience:
    """Checkpoint cost plus expected lost work and restart per failure gives the goodput of the run."""
    ckpt = params * CHECKPOINT_BYTES_PER_PARAM
    mtbf_s = gpu_mtbf_h * 3600 / gpus
    tau = young_daly_interval(stall_s, mtbf_s)
    if goodput is None:
        # time lost: one stall per interval, half an interval redone per failure, plus the restart
        lost = stall_s / tau + (tau / 2 + restart_min * 60) / mtbf_s
        goodput = max(0.05, 1 - lost)
    wall_h = run_hours / goodput
    return Resilience(
        dataset_tb=tokens * bytes_per_token / 1e12,
        checkpoint_tb=ckpt / 1e12,
        weights_tb=params * WEIGHTS_BYTES_PER_PARAM / 1e12,
        write_gbps=ckpt / stall_s / 1e9,
        checkpoint_interval_h=tau / 3600,
        job_mtbf_h=mtbf_s / 3600,
        interruptions=wall_h * 3600 / mtbf_s,
        goodput=goodput,
        stall_s=stall_s,
    )
