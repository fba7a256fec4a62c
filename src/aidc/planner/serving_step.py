"""The time of one serving step on one GPU: prefill chunks and decode tokens priced by the roofline of each kind of
work (weights, KV cache, attention, tensor-parallel and expert-parallel communication).

A step of a continuous-batching engine (vLLM, TensorRT-LLM in-flight batching, SGLang) runs every sequence in flight
through the model once: ``decode`` sequences emit one token each (more with speculative decoding) and ``prefill``
tokens of new prompts ride along (chunked prefill) or run in steps of their own.  Per GPU:

- linear layers: the weight shard is read from HBM once per step however many tokens share it, and the GEMMs do
  2 FLOPs per active weight per token: max(weight bytes / HBM rate, FLOPs / GEMM rate);
- MoE layers: a step reads only the experts its tokens route to; with T tokens routed top-k of E uniformly the
  expected number of distinct experts is E·(1 − (1 − k/E)^T), so a small batch reads a few experts and a large one
  reads all of them (memory holds all of them either way);
- attention: each decode token reads its sequence's KV cache (memory-bound) and does 2·heads·(2·d) FLOPs per cached
  position (MLA absorbed: 2·heads·(2·kv_lora + rope), which makes MLA decode compute-heavy); prefill attention is
  compute-bound at fused-attention speed over the causal half;
- tensor parallel: two all-reduces per layer of tokens·hidden·2 B over NVLink, latency-bound at small batch;
- expert parallel (attention data-parallel, one GPU per attention rank as in DeepSeek's serving): dispatch (FP8) and
  combine (BF16) of tokens·top_k·hidden across nodes at DeepEP's measured bandwidths, on the critical path unless
  ``Engine.ep_overlap`` says how much of it micro-batching hides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import GPU
from aidc.planner.iteration import DEFAULT_EFFICIENCY, MATMUL_EFFICIENCY_WITHOUT_DEPTH, ring_all_reduce

BYTES = {"fp8": 1.0, "bf16": 2.0, "fp16": 2.0, "tf32": 4.0, "fp32": 4.0}


@dataclass(frozen=True)
class Engine:
    """What the serving stack achieves that the workload does not say: the band re-prices each of these."""

    # achieved / datasheet HBM bandwidth of decode's weight and KV reads (inf: trade guidance 0.6–0.85, not a
    # cited measurement; the band spans it)
    mbu: float = 0.7
    # one small all-reduce step inside an NVLink domain, seconds (inf: not a cited measurement; the band spans
    # 3–20 µs). A ring all-reduce of n GPUs takes 2(n−1) of them.
    allreduce_step_s: float = 5e-6
    # scheduler, sampling and kernel-launch time per step that no GPU work hides (inf; RTP-LLM's DeepSeek
    # reproduction reports ~1.5 ms of host time between steps and ~2 ms of launch overhead without CUDA graphs)
    step_overhead_s: float = 1e-3
    # the software's share of the GPU's measured best GEMM rate (MAMF): the training model's figure
    # (iteration.MATMUL_EFFICIENCY_WITHOUT_DEPTH: the step prices no GEMM depth); FP8 at the GPU's own measured FP8
    # rate (catalog mamf_tflops)
    matmul_efficiency: float = MATMUL_EFFICIENCY_WITHOUT_DEPTH
    # fused attention's rate relative to the GEMMs': FlashAttention-2's measured 0.6 (iteration.Efficiency)
    flash_attention: float = DEFAULT_EFFICIENCY.flash_attention
    network: float = DEFAULT_EFFICIENCY.network  # achieved NIC bandwidth / line rate (KV moves between pools)
    # expert all-to-all, measured by DeepEP (github.com/deepseek-ai/DeepEP README, Performance; H800 with CX7
    # InfiniBand 400 Gb/s, ~50 GB/s): the low-latency kernels decode uses send every top-k copy over RDMA and reach
    # 39 GB/s at EP128-256 (128 tokens, hidden 7168, top-8, FP8 dispatch 192 µs, BF16 combine 369 µs at EP128);
    # the normal kernels prefill uses forward one copy per node over RDMA and reach a 43-58 GB/s bottleneck
    # bandwidth at EP16-64 — the line rate, taken as 1.0
    ep_decode_network: float = 39.0 / 50.0
    ep_prefill_network: float = 1.0
    # share of the expert all-to-all hidden behind compute: the training model's figure (iteration.Efficiency:
    # none). DeepSeek's serving overlaps two micro-batches, but its published decode and prefill times are only
    # reached with the exchange priced on the critical path (see docs/design-plan.md, inference accuracy)
    ep_overlap: float = DEFAULT_EFFICIENCY.ep_overlap


DEFAULT_ENGINE = Engine()


@dataclass(frozen=True)
class Shard:
    """How one replica is spread: ``tp`` GPUs share every layer, or (MoE) ``ep`` GPUs each run attention for their
    own sequences and hold experts/ep of the routed experts."""

    tp: int = 1
    ep: int = 1

    @property
    def gpus(self) -> int:
        return self.tp * self.ep


@dataclass(frozen=True)
class StepTime:
    """Seconds of one step on one GPU, split the way a profiler would show them."""

    linear: float
    attention: float
    tp_comm: float
    ep_comm: float
    overhead: float
    ep_overlap: float = 0.0

    @property
    def total(self) -> float:
        # the hidden share of the expert all-to-all costs only what compute cannot cover
        compute = self.linear + self.attention + self.tp_comm
        hidden = self.ep_comm * self.ep_overlap
        return compute + self.ep_comm - hidden + max(0.0, hidden - compute) + self.overhead


def gemm_rate(gpu: GPU, precision: str, engine: Engine = DEFAULT_ENGINE) -> float:
    """Achieved dense GEMM FLOP/s: the GPU's measured best GEMM rate at the precision (FP8 where the GPU has FP8
    tensor cores, else BF16), times the software's share of it."""
    measured = precision if precision in gpu.peak_tflops else "bf16" if "bf16" in gpu.peak_tflops else precision
    return gpu.achievable(measured) * engine.matmul_efficiency


def experts_touched(experts: int, top_k: int, tokens: float) -> float:
    """Expected distinct experts that ``tokens`` tokens routed top-k of ``experts`` read (uniform routing)."""
    if experts <= 1:
        return float(experts)
    untouched: float = (1.0 - top_k / experts) ** max(0.0, tokens)
    return experts * (1.0 - untouched)


def weight_bytes_per_gpu(arch: Architecture, shard: Shard, bytes_per_param: float) -> float:
    """Weights one GPU holds: everything over TP; with EP the dense part on every GPU and routed experts / EP."""
    routed = arch.routed_expert_params
    if shard.ep > 1:
        return ((arch.params - routed) / shard.tp + routed / shard.ep) * bytes_per_param
    return arch.params / shard.tp * bytes_per_param


def kv_split(arch: Architecture, shard: Shard) -> int:
    """GPUs one sequence's KV cache is split over: TP splits KV heads (not beyond their count); MLA's latent is
    shared by every head, so each TP rank keeps all of it."""
    return 1 if arch.kv_lora_rank else max(1, min(shard.tp, arch.kv_heads))


def _read_weights(arch: Architecture, shard: Shard, tokens: float, bytes_per_param: float) -> float:
    """Weight bytes one GPU reads in a step of ``tokens`` tokens (per replica): only the experts they route to."""
    input_embedding = 0 if arch.tied_embeddings else arch.vocab * arch.hidden  # a lookup, not a read
    dense = arch.params - arch.routed_expert_params - input_embedding
    touched = experts_touched(arch.experts, arch.top_k, tokens) if arch.is_moe else 0.0
    routed = arch.moe_layers * touched * arch.expert_params
    if shard.ep > 1:
        return (dense / shard.tp + routed / shard.ep) * bytes_per_param
    return (dense + routed) / shard.tp * bytes_per_param


def decode_attention_flops(arch: Architecture, context: float) -> float:
    """FLOPs of one decode token's attention over ``context`` cached positions, all layers."""
    if arch.kv_lora_rank:  # absorbed MLA: scores against the latent + RoPE key, values from the latent
        per_position = 2.0 * arch.heads * (2 * arch.kv_lora_rank + arch.rope_head_dim)
    else:
        per_position = 2.0 * arch.heads * 2 * arch.head_dim
    return arch.layers * per_position * context


def step_time(
    arch: Architecture,
    gpu: GPU,
    shard: Shard,
    precision: str,
    kv_bytes_per_token: float,
    decode: float,
    context: float,
    prefill: float = 0.0,
    prompt: float = 0.0,
    verify: float = 1.0,
    engine: Engine = DEFAULT_ENGINE,
) -> StepTime:
    """One step of a replica: ``decode`` sequences at mean ``context`` cached tokens, each verifying ``verify``
    tokens (1 without speculative decoding), plus ``prefill`` prompt tokens of prompts ``prompt`` tokens long."""
    bpp = BYTES[precision]
    hbm = gpu.hbm_bytes_per_s * engine.mbu
    rate = gemm_rate(gpu, precision, engine)
    attention_rate = gemm_rate(gpu, "bf16", engine) * engine.flash_attention
    gpus = shard.gpus
    tokens = decode * verify + prefill  # tokens through the linear layers, whole replica
    input_embedding = 0 if arch.tied_embeddings else arch.vocab * arch.hidden
    flops = 2.0 * (arch.active_params - input_embedding) * tokens / gpus
    linear = max(_read_weights(arch, shard, tokens, bpp) / hbm, flops / rate) if tokens > 0 else 0.0
    # decode attention: each GPU reads its own sequences' KV (split over TP heads), and scores them
    per_gpu_seqs = decode / shard.ep
    kv_read = per_gpu_seqs * context * kv_bytes_per_token / kv_split(arch, shard)
    decode_flops = per_gpu_seqs * verify * decode_attention_flops(arch, context) / shard.tp
    attention = max(kv_read / hbm, decode_flops / attention_rate) if decode > 0 else 0.0
    if prefill > 0:  # causal: each prompt token attends to half the prompt on average
        prefill_flops = prefill / shard.ep * arch.layers * arch.score_flops(int(prompt)) * 0.5 / shard.tp
        attention += prefill_flops / attention_rate
    tp_comm = 0.0
    if shard.tp > 1 and tokens > 0:
        size = tokens / shard.ep * arch.hidden * 2.0
        bandwidth = gpu.nvlink_bytes_per_s * DEFAULT_EFFICIENCY.nvlink
        tp_comm = 2 * arch.layers * ring_all_reduce(size, shard.tp, bandwidth, engine.allreduce_step_s)
    ep_comm = 0.0
    if shard.ep > 1 and tokens > 0:
        # per GPU and MoE layer: its tokens' copies out (FP8 dispatch, 1 B) and back (BF16 combine, 2 B). Decode
        # steps use the low-latency kernels: every copy for another GPU over RDMA. Steps with prompt tokens use the
        # normal kernels: one copy per remote node (node-limited routing, DeepSeek-V3: ≤ 4 nodes) forwarded over
        # NVLink, the node's own copies over NVLink at the same time
        vector = tokens / shard.ep * arch.hidden * 3.0 * arch.moe_layers
        if prefill > 0:
            nodes = max(1, math.ceil(shard.gpus / gpu.node.gpus))
            remote = arch.top_k * (1 - 1 / nodes)
            if arch.route_nodes:
                remote = min(remote, arch.route_nodes * (1 - 1 / nodes))
            nic = vector * remote / (gpu.nic_bytes_per_s * engine.ep_prefill_network)
            nvl = vector * arch.top_k / (gpu.nvlink_bytes_per_s * DEFAULT_EFFICIENCY.nvlink)
            ep_comm = max(nic, nvl)
        else:
            ep_comm = vector * arch.top_k * (1 - 1 / shard.gpus) / (gpu.nic_bytes_per_s * engine.ep_decode_network)
    return StepTime(linear, attention, tp_comm, ep_comm, engine.step_overhead_s, engine.ep_overlap)


def prefill_time(
    arch: Architecture,
    gpu: GPU,
    shard: Shard,
    precision: str,
    tokens: float,
    prompt: float,
    engine: Engine = DEFAULT_ENGINE,
) -> float:
    """Seconds to prefill ``tokens`` prompt tokens (whole prompts ``prompt`` long) in one step of their own."""
    return step_time(arch, gpu, shard, precision, 0.0, 0.0, 0.0, tokens, prompt, engine=engine).total
