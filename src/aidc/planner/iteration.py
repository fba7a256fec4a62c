"""Time per training iteration: GEMM and memory-bound compute, TP/CP/PP/DP communication, pipeline bubble."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import GPU
from aidc.planner.fabric import Network
from aidc.planner.memory import Layout, stage_params


@dataclass(frozen=True)
class Efficiency:
    """How close real kernels and collectives come to what the hardware can do.

    Calibrated once against Megatron-LM runs on A100 (Narayanan et al. 2021, Korthikanti et al. 2022; minimax fit,
    benchmarks/planner_accuracy.py prints it and the held-out refits).  None of these is a property of one GPU
    generation: the GPU enters through its own measured figures (catalog: MAMF by precision, HBM, NVLink, NIC).
    """

    # the fraction of the GPU's measured best GEMM rate (catalog mamf_tflops) a training step's GEMMs reach: the
    # software's share, one figure for every generation, of a deep GEMM's rate (before gemm_depth_knee's loss);
    # a software stack scales it (calibration's stack factors).  0.912: the 18 Megatron-LM runs' fit moves from
    # 0.856 to 0.905 once each GEMM's depth is priced (their GEMMs lose ~5% to it), so the former A100
    # calibration 0.863 (0.75 of the 312 TF peak over A100's 271.2 TF MAMF) scaled by 0.905/0.856
    matmul_efficiency: float = 0.912
    gemm_knee: float = 0.0  # GEMM rate = MAMF · matmul_efficiency · w/(w + knee), w = hidden/TP (the fit
    #                                  finds no thin-GEMM loss down to hidden/TP = 768 once DP is priced per rail)
    # HBM bytes moved per (token · hidden · 2 B) by norms, activations, dropout: 44 from the minimax fit to the
    # 18 Megatron-LM runs once the score-matrix passes were counted rather than fitted (26 with them fitted at 8.3)
    elementwise_passes: float = 44.0
    # HBM passes over the s×s score matrix when attention is not fused, per forward-equivalent (the step counts
    # 3, 4 with recomputation); None: counted from the kernels (see unfused_score_passes), not fitted
    softmax_passes: float | None = None
    nvlink: float = 1.0  # achieved NVLink bus bandwidth / datasheet (at its bound: see design-plan.md)
    network: float = 0.56  # achieved NIC bus bandwidth / line rate
    latency_s: float = 10e-6  # per collective step
    # fused attention's rate on the work it does (causal blocks skipped) relative to the GEMMs': FlashAttention-2
    # (Dao 2023, Fig. 4, A100 SXM4 80GB, causal, forward + backward) reaches ≈ 160–190 TF/s at head dim 64–128
    # and sequences ≥ 2K, against ≈ 270 TF/s for large cuBLAS GEMMs: 0.6–0.7, the lower end taken. A measured
    # kernel speed, not fitted to the runs (which cannot identify it: see calibration.CONSTANTS)
    flash_attention: float = 0.6
    overlap_contention: float = 0.25  # share of an overlapped collective's time that still slows compute
    fp8_quantize_passes: float = 4.0  # extra HBM passes per layer to quantize activations to FP8 (inf)
    # a GEMM's rate falls with its reduction depth K as K/(K + knee): every output tile pays a fixed cost (pipeline
    # fill, epilogue) that only a deep K hides.  The knee is this many times the GPU's FLOP:byte ratio at the
    # precision (fill and epilogue move tiles at HBM speed).  Measured, not fitted: DeepGEMM's FP8 GEMMs on H800
    # SXM5 (deepseek-ai/DeepGEMM README, "Normal GEMMs for dense models", M = 4096) reach 590, 990, 1025, 1304 and
    # 1358 TFLOPS at K = 512, 1536, 2048, 7168, 16384 (N >= 4096): K/(K + 720) x 1422 TF matches all five within 3%
    # (1422 ~ H800's measured FP8 MAMF 1402.6), and 720 = 1.72 x 1402.6 TF / 3.35 TB/s
    gemm_depth_knee: float = 1.72
    cp_overlap: float = 0.5  # fraction of ring-attention KV exchange hidden behind attention
    ep_overlap: float = 0.0  # fraction of the expert all-to-all hidden behind compute


DEFAULT_EFFICIENCY = Efficiency()
# the software's share of MAMF for a model that prices no GEMM depth (the serving step): the Megatron-LM runs' fit
# before gemm_depth_knee, so a shallow-GEMM loss it cannot see stays folded into the share
MATMUL_EFFICIENCY_WITHOUT_DEPTH = 0.863


@dataclass(frozen=True)
class IterationTime:
    """Seconds per iteration, split the way a profiler would show them on the critical path."""

    compute: float
    tp_comm: float
    ep_comm: float
    cp_comm: float
    pp_comm: float
    dp_comm: float
    bubble: float
    optimizer: float
    micro_batches: int
    model_flops: float

    @property
    def total(self) -> float:
        return (
            self.compute
            + self.tp_comm
            + self.ep_comm
            + self.cp_comm
            + self.pp_comm
            + self.dp_comm
            + self.bubble
            + self.optimizer
        )

    def mfu(self, gpus: int, peak: float) -> float:
        return self.model_flops / (gpus * peak * self.total)

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def unfused_score_passes(dropout: bool) -> float:
    """HBM passes over the s×s scores of unfused attention (2-byte values), per forward-equivalent.

    Forward: QKᵀ writes S (1); scale-mask-softmax reads S, writes P (2); dropout reads P, writes P' and a 1-byte
    mask (2.5); AV reads P' (1) — 6.5. Backward: dP' written (1); dropout backward reads dP' and the mask, writes
    dP (2.5); softmax backward reads dP and P, writes dS (3); dV, dQ and dK read P' and dS (3) — 9.5. Together
    16, or 11 without dropout; the step time counts the forward three times (forward + backward), so 16/3 and
    11/3. Counted, not fitted: the runs with unfused attention are too few to identify it (a refit without the
    A100 runs made it 19, pricing small Megatron-LM models 60% slow).
    """
    return (16.0 if dropout else 11.0) / 3.0


def ring_all_reduce(size: float, n: int, bandwidth: float, latency: float) -> float:
    """Ring all-reduce: 2(n−1)/n · S/B + 2(n−1)·α (the reference's collective formula)."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) / n * size / bandwidth + 2 * (n - 1) * latency


def tree_all_reduce(size: float, n: int, bandwidth: float, latency: float) -> float:
    """NCCL's double binary tree (NCCL 2.4 release notes: "tree-based algorithms for better All Reduce performance
    at scale and with small and medium size messages"): each rank passes the whole buffer up one tree and down the
    other, 2·S/B, but the latency grows with the tree's depth, 2⌈log₂ n⌉·α, not with n as a ring's does."""
    if n <= 1:
        return 0.0
    return 2 * size / bandwidth + 2 * math.ceil(math.log2(n)) * latency


def all_reduce(size: float, n: int, bandwidth: float, latency: float) -> float:
    """An all-reduce as NCCL runs it: ring or tree, whichever its cost model finds cheaper for this size and rank
    count (NCCL_ALGO's default lets it choose per call; small buffers and many ranks go to the tree, large
    buffers on few ranks to the ring)."""
    return min(ring_all_reduce(size, n, bandwidth, latency), tree_all_reduce(size, n, bandwidth, latency))


def in_network_all_reduce(size: float, bandwidth: float, latency: float, tiers: int = 2) -> float:
    """In-network reduction (InfiniBand SHARP via NCCL's CollNet): each rank sends its buffer to the switches once
    and receives the sum once, S/B instead of the ring's 2(n−1)/n·S/B, plus one trip up and down the switch tree."""
    return size / bandwidth + 2 * tiers * latency


def data_parallel_all_reduce(
    size: float, gpu: GPU, tp: int, dp_group: int, nic: float, nvlink: float, latency: float, sharp: bool = False
) -> float:
    """Seconds for the data-parallel gradient all-reduce of ``size`` bytes per GPU.

    Inside one node: over NVLink.  Across nodes without in-network reduction: one ring or tree through every
    member, its rate set by the slower of NVLink and the g members' NICs side by side (data_parallel_bandwidth).
    The tree is offered only with one member (one NIC) per node: with several, NCCL's tree "will struggle to get
    better performance than ring" (its maintainer, NVIDIA/nccl-tests issue 196, on 8-NIC nodes), so the ring.
    With SHARP, hierarchically (NCCL's CollNet): reduce-scatter inside the node over NVLink, each GPU's 1/g shard
    summed by the switches over its own NIC, all-gather inside the node; NCCL pipelines the three phases in
    chunks, so the slowest sets the rate.
    """
    if dp_group <= 1:
        return 0.0
    g = max(1, min(dp_group, gpu.node.gpus // max(1, tp)))
    if tp * dp_group <= gpu.node.gpus or not sharp:
        bw = data_parallel_bandwidth(gpu, tp, dp_group, nic, nvlink)
        if g > 1 and tp * dp_group > gpu.node.gpus:
            return ring_all_reduce(size, dp_group, bw, latency)
        return all_reduce(size, dp_group, bw, latency)
    intra = 2 * (g - 1) / g * size / nvlink
    inter = size / g / nic
    return max(intra, inter) + 2 * (g - 1) * latency + in_network_all_reduce(0.0, nic, latency)


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


# Host link per direction: the datasheets give PCIe both ways together — A100 "PCIe Gen4: 64GB/s", H100, H200 and
# H800 "PCIe Gen5: 128GB/s" — so half each way.  Other generations are not offered offload (no figure checked).
HOST_LINK_BYTES_PER_S = {"Ampere": 32e9, "Hopper": 64e9}


def offload_seconds(params: float, gpu: GPU) -> float:
    """ZeRO-Offload's step (Ren et al. 2021): the GPU's gradient shard down to the host (2 B/param) and the updated
    bf16 weights back (2 B/param) over PCIe.  The host's Adam step itself is not priced (no CPU-Adam throughput
    could be verified), so this is a lower bound; the layout search offers offload only where nothing else fits."""
    link = HOST_LINK_BYTES_PER_S.get(gpu.generation)
    if link is None:
        return math.inf
    return 2 * params * 2.0 / link


def hidden_behind(comm: float, compute: float, eff: Efficiency) -> float:
    """What an overlapped collective still costs: the part compute cannot cover, plus the slowdown it inflicts
    on the compute it runs beside (NCCL kernels take SMs and HBM bandwidth from the GEMMs they overlap)."""
    return max(0.0, comm - compute) + eff.overlap_contention * min(comm, compute)


def pipeline_bubble(schedule: str, stages: int, interleave: int, micro_batches: int) -> float:
    """Idle time of a pipeline stage, in micro-batch stage-times.

    1F1B: p−1, divided by v with interleaving (Narayanan 2021).  Zero-bubble (Qi et al. 2023, used by
    DeepSeek-V2) fills it by splitting the weight-gradient pass out: nearly none.  DualPipe (DeepSeek-V3):
    (p/2−1) forward-and-backward chunks.  No micro-batches beyond one stage's depth: never less than 1F1B's.
    """
    if stages <= 1:
        return 0.0
    if schedule == "zero-bubble":
        return 0.0
    if schedule == "dualpipe":
        return max(0.0, stages / 2 - 1)
    return (stages - 1) / interleave


def uneven_chunks(layers: float, interleave: int) -> float:
    """How much longer the interleaved bubble is when a stage's layers do not split evenly into its v chunks.

    The interleaved bubble is p−1 chunk-times (Narayanan 2021: (p−1)/v of a stage's time when the chunks are
    equal); with layers ÷ v not whole, the largest chunk, ⌈layers/v⌉ layers, paces the pipeline."""
    if interleave <= 1 or layers <= 0:
        return 1.0
    return math.ceil(layers / interleave - 1e-9) * interleave / layers


def busiest_stage(layers: int, stages: int, head: float) -> tuple[float, float]:
    """(layers, head share) of the busiest pipeline stage, in layer-equivalents, layers placed to even them out.

    The first stages hold k layers each and the last the rest plus the output head (``head`` layers' worth); the
    planner picks the k that makes the busiest stage lightest.  Returned as (k or the last stage's layers, 1.0 if
    the head is on the busiest stage else 0.0), so compute is layers·layer + head_share·head.
    """
    if stages <= 1:
        return float(layers), 1.0
    best: tuple[float, float, float] | None = None
    for k in range(math.ceil(layers / stages), layers + 1):
        last = max(0, layers - (stages - 1) * k)
        busiest = max(k, last + head)
        if best is None or busiest < best[0] - 1e-12:
            best = (busiest, float(last) if last + head >= k else float(k), 1.0 if last + head >= k else 0.0)
        if last == 0:
            break
    assert best is not None
    return best[1], best[2]


def depth_knee(gpu: GPU, precision: str, eff: Efficiency) -> float:
    """Reduction depth K at which a GEMM at ``precision`` on ``gpu`` runs at half its large-K rate."""
    return eff.gemm_depth_knee * gpu.achievable(precision) / gpu.hbm_bytes_per_s


def depth_slowdown(k: float, knee: float) -> float:
    """How much slower than its large-K rate a GEMM of reduction depth ``k`` runs: (K + knee)/K."""
    return (k + knee) / k if k > 0 else 1.0


def training_slowdown(shapes: list[tuple[float, float]], m: float, knee: float) -> float:
    """FLOP-weighted slowdown of linear layers (K in, N out per rank; M rows) over forward, input gradient and
    weight gradient, which reduce over K, N and M respectively (each 2·M·K·N FLOPs)."""
    work = sum(k * n for k, n in shapes)
    if work <= 0:
        return 1.0
    passes = (
        k * n * (depth_slowdown(k, knee) + depth_slowdown(n, knee) + depth_slowdown(m, knee)) / 3 for k, n in shapes
    )
    return sum(passes) / work


def dense_shapes(arch: Architecture, tp: int) -> list[tuple[float, float]]:
    """Per-rank (K, N) of an average layer's linear GEMMs outside the routed experts: attention projections, the
    dense MLP or the shared experts, weighted by how many layers carry them (the router is too small to count)."""
    h, t, d = arch.hidden, tp, arch.head_dim
    if arch.kv_lora_rank:  # MLA's down/up projections, lumped as one GEMM from the hidden width
        attention = [(float(h), arch.attention_params / h / t)]
    else:
        q_width = arch.heads * d if arch.attention_head_dim else h
        attention = [(float(h), (q_width + 2 * arch.kv_heads * d) / t), (q_width / t, float(h))]
    out: list[tuple[float, float]] = list(attention)
    moe_share = arch.moe_layers / arch.layers
    mlps = (
        (1 - moe_share, arch.dense_ffn_hidden or arch.ffn_hidden),
        (moe_share, arch.shared_experts * arch.ffn_hidden),
    )
    for share, ffn in mlps:
        if share > 0 and ffn > 0:  # N scaled by the share of layers carrying this MLP, so FLOP weights match
            out += [(float(h), (2 if arch.glu else 1) * ffn / t * share), (ffn / t, h * share)]
    return out


def routing_bytes(arch: Architecture, layout: Layout, tokens: float) -> float:
    """HBM bytes per MoE layer per forward-equivalent (a third of forward + backward) on one rank for routing the
    tokens to their experts and back, counted from the kernels (Megatron-Core's fused permute/unpermute, 16-bit):
    forward, permute reads each token and writes its top_k copies, unpermute reads the copies and writes the
    weighted sum (2k + 2 hidden vectors); backward, unpermute's reads the gradient, writes k copies and reads the
    expert outputs again for the routing weights' gradient, permute's sums the k copies back (3k + 2).  Counted,
    not fitted."""
    if not arch.is_moe:
        return 0.0
    vectors = (5 * arch.top_k + 4) / 3
    return tokens / layout.tp * arch.hidden * 2.0 * vectors


def expert_exchange(
    arch: Architecture, layout: Layout, gpu: GPU, tokens: float, nic: float, eff: Efficiency, precision: str = "bf16"
) -> float:
    """Seconds per MoE layer per micro-batch for the all-to-all that sends each token to its top-k experts and back.

    Forward dispatch and combine, and the same two in backward (again on recompute): each moves tokens·top_k
    hidden vectors (bf16).  Of the EP group's ranks, those in the same node answer over NVLink, the rest over the
    NIC; the slower share sets the time.
    """
    if not arch.is_moe or layout.ep <= 1:
        return 0.0
    passes = 4 + 2 * layout.full_share
    # Megatron orders ranks TP, CP, then EP: an EP group's members sit node.gpus/(TP·CP) to a node
    per_node = max(1, gpu.node.gpus // (layout.tp * layout.cp))
    nodes = math.ceil(layout.ep / per_node)
    local = 1 / nodes
    # each token's copies go to top_k experts; node-limited routing (DeepSeek-V3: at most M nodes per token)
    # sends one copy per node over the NIC and fans it out over NVLink
    remote_copies = arch.top_k * (1 - local)
    if arch.route_nodes:
        remote_copies = min(remote_copies, arch.route_nodes * (1 - local))
    # FP8 recipes dispatch in FP8 and combine in BF16 (DeepSeek-V3 §3.3): 1.5 bytes per element on average
    # the busiest rank receives (and returns) capacity_factor × the mean tokens, and the exchange waits for it
    vector = tokens / layout.tp * arch.hidden * (1.5 if precision == "fp8" else 2.0) * arch.capacity_factor
    nvlink = gpu.nvlink_bytes_per_s * eff.nvlink
    # the NIC and NVLink legs run at once (tokens forwarded inside the node while others cross the fabric); the
    # 1/EP of copies whose expert is on the sending GPU move nowhere
    nvlink_copies = arch.top_k * (1 - 1 / layout.ep)
    seconds = vector * max(remote_copies / nic, nvlink_copies / nvlink) + layout.ep * eff.latency_s
    return passes * seconds * (1 - eff.ep_overlap)


def expert_gemms(
    arch: Architecture, layout: Layout, gpu: GPU, tokens: float, rate: float, precision: str, knee: float = 0.0
) -> float:
    """Seconds of one MoE layer's routed-expert GEMMs per forward-equivalent (a third of forward + backward) in one
    micro-batch on the busiest rank.

    The rank holds experts/EP experts and receives, from the EP ranks it serves, tokens·top_k·EP/experts tokens
    per expert on average; the busiest rank capacity_factor times that (with EP1 every rank runs every expert
    on its own tokens: no busiest rank).  Each expert's up (M × hidden → (mats−1)·ffn/TP) and down (M × ffn/TP →
    hidden) GEMM runs three times — forward, input gradient, weight gradient, reducing over K, N and M — each
    priced on the roofline: the slower of its FLOPs at the GEMM rate slowed by its reduction depth (``knee``, see
    Efficiency.gemm_depth_knee: an expert 768 wide is a shallow GEMM) and its operands' HBM traffic, 2(MK + KN + MN)
    bytes in 16-bit, the same three matrices in every pass (NVIDIA, Matrix Multiplication Background User's Guide,
    §2 "Math and Memory Bounds").  Few tokens per expert — EP1 or EP2 over a hundred small experts — make the
    weights' traffic, not the arithmetic, set the time: the reason stacks spread experts over ranks.

    FP8 adds the casts of every GEMM operand the step quantizes — forward inputs (M·hidden, M·ffn) and backward
    output gradients (M·(mats−1)·ffn, M·hidden) — each read in 16-bit and written twice in 8-bit (a row-wise copy
    and the transposed copy the weight gradient reads: Transformer Engine's Float8Tensor keeps both), 4 B an
    element; a dense layer's casts fuse into its norm and activation, but an expert's input is the permuted copy,
    top_k per token, quantized on its own.
    """
    if not arch.is_moe:
        return 0.0
    load = arch.capacity_factor if layout.ep > 1 else 1.0
    m = tokens * arch.top_k * layout.ep / arch.experts * load
    h, f = float(arch.hidden), arch.ffn_hidden / layout.tp
    up = (2 if arch.glu else 1) * f
    # FP8 GEMMs read 1-byte operands and write 16-bit results (DeepSeek-V3 §3.3); others 16-bit throughout
    operand = 1.0 if precision == "fp8" else 2.0
    seconds = 0.0
    for k, n in ((h, up), (f, h)):
        flops = 2.0 * m * k * n
        traffic = operand * (m * k + k * n) + 2.0 * m * n
        memory = traffic / gpu.hbm_bytes_per_s
        seconds += sum(max(flops / rate * depth_slowdown(depth, knee), memory) for depth in (k, n, m)) / 3
    if precision == "fp8":
        cast = 4.0 * m * (h + f + up + h) / 3
        seconds += cast / gpu.hbm_bytes_per_s
    return arch.experts / layout.ep * seconds


def iteration_time(
    arch: Architecture,
    layout: Layout,
    gpu: GPU,
    global_batch: int,
    precision: str = "bf16",
    nic_bytes_per_s: float | None = None,
    eff: Efficiency = DEFAULT_EFFICIENCY,
    network: Network | None = None,
) -> IterationTime:
    t, p, c, b, v = layout.tp, layout.pp, layout.cp, layout.micro_batch, max(1, layout.interleave)
    h, s = arch.hidden, arch.seq_len
    s_local = s / c
    m = max(1, math.ceil(global_batch / (layout.dp * b)))
    base = "bf16" if precision == "fp8" else precision
    tokens = b * s_local
    width = h / t
    # GEMMs run at the software's share of the GPU's measured best GEMM rate (MAMF), less the thin-GEMM knee
    gemm_rate = gpu.achievable(base) * eff.matmul_efficiency * width / (width + eff.gemm_knee)
    # FP8 (DeepSeek-V3 §3.3.1, Transformer Engine): only the linear layers' GEMMs (forward, input- and weight-
    # gradient) run in FP8, at the measured FP8/BF16 MAMF ratio (H100 1402.6/794.5 = 1.77, not the datasheet's 2);
    # DeepSeek-V3 keeps "the embedding module, the output head, MoE gating modules, normalization operators, and
    # attention operators" in BF16/FP32 (and master weights, gradients and optimizer states in higher precision),
    # so the scores, the head and everything memory-bound stay at BF16 rates, plus the quantize passes below
    linear_rate = gemm_rate * (gpu.achievable("fp8") / gpu.achievable(base) if precision == "fp8" else 1.0)
    hbm = gpu.hbm_bytes_per_s
    net = network or Network()
    nic = (nic_bytes_per_s or net.nic_bytes_per_s or gpu.nic_bytes_per_s) * eff.network
    # each group's cross-node traffic at the NIC, or at 1/o of it where the group spans oversubscribed leaves
    # (placement: TP, CP, DP blocks of consecutive ranks, pipeline stages outermost; see fabric.Network)
    job = layout.gpus
    # TP/CP groups beyond the NVLink domain fall back to the network
    tp_bw = gpu.nvlink_bytes_per_s * eff.nvlink if t <= gpu.nvlink_domain else net.bandwidth(nic, t, job)
    cp_bw = gpu.nvlink_bytes_per_s * eff.nvlink if t * c <= gpu.nvlink_domain else net.bandwidth(nic, t * c, job)

    # every linear GEMM slows with its reduction depth (Efficiency.gemm_depth_knee), the knee set by the precision
    # it runs at: FP8 halves the arithmetic but not the fixed cost per tile, so a shallow GEMM gains less from it
    knee = depth_knee(gpu, "fp8" if precision == "fp8" else base, eff)
    # routed experts are priced apart (expert_gemms: their own shapes and the busiest rank's load)
    linear = tokens * 2.0 * (arch.layer_active_params - arch.layer_routed_active_params) / t
    linear *= training_slowdown(dense_shapes(arch, t), tokens, knee)
    experts = arch.moe_layers / arch.layers * expert_gemms(arch, layout, gpu, tokens, linear_rate, precision, knee)
    # routing the tokens to their experts and back: HBM passes over tokens·top_k·hidden (routing_bytes)
    experts += arch.moe_layers / arch.layers * routing_bytes(arch, layout, tokens) / hbm
    attn_core = tokens * arch.score_flops(s) / t
    split = (1 / t) if (layout.sequence_parallel or t == 1) else (10 / 34 + 24 / 34 / t)
    layer_elem = eff.elementwise_passes * tokens * h * 2 * split / hbm
    score_passes = eff.softmax_passes if eff.softmax_passes is not None else unfused_score_passes(arch.dropout)
    softmax = 0.0 if arch.flash_attention else score_passes * arch.heads / t * tokens * s * 2 / hbm
    if precision == "fp8":
        layer_elem *= 1 + eff.fp8_quantize_passes / eff.elementwise_passes if eff.elementwise_passes else 1
    # fused (flash) attention runs below GEMM speed (its backward re-derives the scores) but skips the blocks a
    # causal mask hides, half of the s×s work the FLOP counts count; unfused attention computes all of it
    attn_rate = gemm_rate * (eff.flash_attention / 0.5 if arch.flash_attention else 1.0)
    fwd_layer = linear / linear_rate + experts + attn_core / attn_rate + layer_elem + softmax
    head_knee = depth_knee(gpu, base, eff)
    fwd_logits = (
        2.0 * tokens * h * arch.vocab / t / gemm_rate * training_slowdown([(h, arch.vocab / t)], tokens, head_knee)
    )
    selective = attn_core / gemm_rate + softmax if layout.recompute == "selective" else 0.0
    recompute = layout.full_share * fwd_layer + selective
    # the busiest pipeline stage: with the output head on the last stage, layers move off it when that evens the
    # stages out (Llama 3 takes one layer off the first and last); a single stage holds everything
    layers, head_layers = busiest_stage(arch.layers, p, fwd_logits / fwd_layer if p > 1 else 0.0)
    compute_mb = layers * (3 * fwd_layer + recompute) + 3 * fwd_logits * (head_layers if p > 1 else 1.0)

    act = tokens * h * 2
    per_ar = ring_all_reduce(act, t, tp_bw, eff.latency_s)
    tp_collectives = 4 + 2 * layout.full_share
    tp_mb = layers * tp_collectives * per_ar
    kv = tokens * 2 * arch.kv_heads * arch.head_dim * 2 / t
    cp_mb = layers * 3 * (c - 1) * (kv / cp_bw + eff.latency_s) * (1 - eff.cp_overlap) if c > 1 else 0.0

    ep_nic = net.bandwidth(nic, t * c * layout.ep, job)
    ep_mb = layers * arch.moe_layers / arch.layers * expert_exchange(arch, layout, gpu, tokens, ep_nic, eff, precision)
    if layout.schedule == "dualpipe":
        # DualPipe (DeepSeek-V3 §3.2.1) runs one micro-batch's forward beside another's backward so the
        # all-to-all and the pipeline sends hide behind compute; only what compute cannot cover is exposed
        ep_mb = hidden_behind(ep_mb, compute_mb, eff)
    stage_mb = compute_mb + tp_mb + cp_mb + ep_mb
    bubble = pipeline_bubble(layout.schedule, p, v, m) * stage_mb * uneven_chunks(layers, v)
    pp_comm = 0.0
    if p > 1 and layout.schedule != "dualpipe":
        # scatter/gather: each TP rank sends its slice; some stage boundary crosses leaves once the job does
        hop = act / t / net.bandwidth(nic, job, job) + eff.latency_s
        pp_comm = 2 * v * (m + p - 1) * hop

    psi = stage_params(arch, layout)
    dp_group = layout.dp * c
    grad_bytes = psi * (4.0 if precision == "fp32" else 2.0)
    dp_nic = net.bandwidth(nic, t * dp_group, job)

    def reduce(size: float) -> float:
        nvlink = gpu.nvlink_bytes_per_s * eff.nvlink
        return data_parallel_all_reduce(size, gpu, t, dp_group, dp_nic, nvlink, eff.latency_s, net.sharp)

    if layout.zero >= 3:
        # ZeRO-3/FSDP gathers the weights for forward and again for backward and reduce-scatters the gradients
        # in every micro-batch (1.5 all-reduces' worth); prefetching hides it behind that micro-batch's compute
        per_mb = 1.5 * reduce(grad_bytes)
        dp_comm = m * (hidden_behind(per_mb, compute_mb, eff) if layout.overlap else per_mb)
    else:
        dp_comm = reduce(grad_bytes)
        if layout.overlap:
            # buckets reduce while the last micro-batch's backward (2/3 of its compute) still runs; the rest shows
            dp_comm = hidden_behind(dp_comm, 2 / 3 * compute_mb, eff)
    shard = psi / (dp_group if layout.zero >= 1 else 1)
    optimizer = offload_seconds(shard, gpu) if layout.offload else shard * 32.0 / hbm

    model_flops = global_batch * s * arch.model_flops_per_token()
    return IterationTime(
        compute=m * compute_mb,
        tp_comm=m * tp_mb,
        ep_comm=m * ep_mb,
        cp_comm=m * cp_mb,
        pp_comm=pp_comm,
        dp_comm=dp_comm,
        bubble=bubble,
        optimizer=optimizer,
        micro_batches=m,
        model_flops=model_flops,
    )
