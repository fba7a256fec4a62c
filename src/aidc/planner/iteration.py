"""Time per training iteration: GEMM and memory-bound compute, TP/CP/PP/DP communication, pipeline bubble."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import GPU
from aidc.planner.memory import Layout, stage_params


@dataclass(frozen=True)
class Efficiency:
    """How close real kernels and collectives come to the datasheet.

    Calibrated once against Megatron-LM runs on A100 (Narayanan et al. 2021, Korthikanti et al. 2022; minimax fit of
    these five and the catalog's matmul_efficiency, benchmarks/planner_accuracy.py prints it and the held-out
    refits) and assumed to carry to other GPUs through their own peaks.
    """

    gemm_knee: float = 0.0  # GEMM efficiency = matmul_efficiency · w/(w + knee), w = hidden/TP (the fit
    #                                  finds no thin-GEMM loss down to hidden/TP = 768 once DP is priced per rail)
    elementwise_passes: float = 26.0  # HBM bytes moved per (token · hidden · 2 B) by norms, activations, dropout
    softmax_passes: float = 8.3  # HBM passes over the score matrix when attention is not fused
    nvlink: float = 1.0  # achieved NVLink bus bandwidth / datasheet (at its bound: see design-plan.md)
    network: float = 0.56  # achieved NIC bus bandwidth / line rate
    latency_s: float = 10e-6  # per collective step
    dp_overlap: float = 0.0  # fraction of gradient reduction hidden behind backward
    cp_overlap: float = 0.5  # fraction of ring-attention KV exchange hidden behind attention


DEFAULT_EFFICIENCY = Efficiency()


@dataclass(frozen=True)
class IterationTime:
    """Seconds per iteration, split the way a profiler would show them on the critical path."""

    compute: float
    tp_comm: float
    cp_comm: float
    pp_comm: float
    dp_comm: float
    bubble: float
    optimizer: float
    micro_batches: int
    model_flops: float

    @property
    def total(self) -> float:
        return self.compute + self.tp_comm + self.cp_comm + self.pp_comm + self.dp_comm + self.bubble + self.optimizer

    def mfu(self, gpus: int, peak: float) -> float:
        return self.model_flops / (gpus * peak * self.total)

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def ring_all_reduce(size: float, n: int, bandwidth: float, latency: float) -> float:
    """Ring all-reduce: 2(n−1)/n · S/B + 2(n−1)·α (the reference's collective formula)."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) / n * size / bandwidth + 2 * (n - 1) * latency


def data_parallel_bandwidth(gpu: GPU, tp: int, dp_group: int, nic: float, nvlink: float) -> float:
    """Bus bandwidth of the data-parallel ring all-reduce per GPU.

    Megatron places the TP ranks of a replica next to each other, so a node holds g = min(DP, node GPUs / TP)
    members of each DP group.  Inside one node the ring runs over NVLink.  Across nodes NCCL runs one ring per
    rail (each GPU's own NIC, DGX rail-optimised fabric), so the g members' NICs carry the ring side by side:
    g × NIC, capped by NVLink.  TP8 leaves one member per node and one NIC (the slow case); TP1 has eight.
    """
    if tp * dp_group <= gpu.node.gpus:
        return nvlink
    per_node = max(1, min(dp_group, gpu.node.gpus // max(1, tp)))
    return min(nvlink, per_node * nic)


def iteration_time(
    arch: Architecture,
    layout: Layout,
    gpu: GPU,
    global_batch: int,
    precision: str = "bf16",
    nic_bytes_per_s: float | None = None,
    eff: Efficiency = DEFAULT_EFFICIENCY,
) -> IterationTime:
    t, p, c, b, v = layout.tp, layout.pp, layout.cp, layout.micro_batch, max(1, layout.interleave)
    h, s = arch.hidden, arch.seq_len
    s_local = s / c
    m = max(1, math.ceil(global_batch / (layout.dp * b)))
    peak = gpu.peak(precision)
    hbm = gpu.hbm_bytes_per_s
    nic = (nic_bytes_per_s or gpu.nic_bytes_per_s) * eff.network
    # TP/CP groups beyond the NVLink domain fall back to the network
    tp_bw = gpu.nvlink_bytes_per_s * eff.nvlink if t <= gpu.nvlink_domain else nic
    cp_bw = gpu.nvlink_bytes_per_s * eff.nvlink if t * c <= gpu.nvlink_domain else nic

    layers = math.ceil(arch.layers / p)
    tokens = b * s_local
    width = h / t
    gemm_eff = gpu.matmul_efficiency * width / (width + eff.gemm_knee)
    layer_gemm = tokens * (2.0 * arch.layer_active_params + 4.0 * s * h) / t
    attn_core = tokens * 4.0 * s * h / t
    split = (1 / t) if (layout.sequence_parallel or t == 1) else (10 / 34 + 24 / 34 / t)
    layer_elem = eff.elementwise_passes * tokens * h * 2 * split / hbm
    softmax = 0.0 if arch.flash_attention else eff.softmax_passes * arch.heads / t * tokens * s * 2 / hbm
    fwd_layer = layer_gemm / (peak * gemm_eff) + layer_elem + softmax
    fwd_logits = 2.0 * tokens * h * arch.vocab / t / (peak * gemm_eff)
    recompute = {"none": 0.0, "full": fwd_layer, "selective": attn_core / (peak * gemm_eff) + softmax}[layout.recompute]
    # the slowest stage holds the logits when there are several stages (Megatron does not rebalance)
    compute_mb = layers * (3 * fwd_layer + recompute) + 3 * fwd_logits

    act = tokens * h * 2
    per_ar = ring_all_reduce(act, t, tp_bw, eff.latency_s)
    tp_collectives = 4 + (2 if layout.recompute == "full" else 0)
    tp_mb = layers * tp_collectives * per_ar
    kv = tokens * 2 * arch.kv_heads * arch.head_dim * 2 / t
    cp_mb = layers * 3 * (c - 1) * (kv / cp_bw + eff.latency_s) * (1 - eff.cp_overlap) if c > 1 else 0.0

    stage_mb = compute_mb + tp_mb + cp_mb
    bubble = (p - 1) / v * stage_mb
    pp_comm = 0.0
    if p > 1:
        hop = act / t / nic + eff.latency_s  # scatter/gather: each TP rank sends its slice
        pp_comm = 2 * v * (m + p - 1) * hop

    psi = stage_params(arch, layout)
    dp_group = layout.dp * c
    grad_bytes = psi * (4.0 if precision == "fp32" else 2.0)
    dp_volume = grad_bytes * (1.5 if layout.zero >= 3 else 1.0)
    dp_bw = data_parallel_bandwidth(gpu, t, dp_group, nic, gpu.nvlink_bytes_per_s * eff.nvlink)
    dp_comm = ring_all_reduce(dp_volume, dp_group, dp_bw, eff.latency_s) * (1 - eff.dp_overlap)
    optimizer = psi / (dp_group if layout.zero >= 1 else 1) * 32.0 / hbm

    model_flops = global_batch * s * arch.model_flops_per_token()
    return IterationTime(
        compute=m * compute_mb,
        tp_comm=m * tp_mb,
        cp_comm=m * cp_mb,
        pp_comm=pp_comm,
        dp_comm=dp_comm,
        bubble=bubble,
        optimizer=optimizer,
        micro_batches=m,
        model_flops=model_flops,
    )
