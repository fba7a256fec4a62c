"""Memory per GPU for a parallel layout: weights, gradients, optimizer state, activations (Korthikanti 2022)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import GPU

# The framework (CUDA context, NCCL buffers, allocator fragmentation) keeps ~10% of HBM plus ~1 GB to itself;
# layouts that fill the rest tend to OOM in practice (inf, trade experience: no measurement of it was found).  Of
# the capacity the driver reports (GPU.hbm_capacity_bytes), not the datasheet's rounded figure.
USABLE_FRACTION = 0.90
FRAMEWORK_BYTES = 1e9


@dataclass(frozen=True)
class Layout:
    """A parallel layout: tensor × pipeline × data × context parallel, plus how state and activations are kept."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    zero: int = 1
    recompute: str = "selective"
    micro_batch: int = 1
    interleave: int = 1
    sequence_parallel: bool = True
    ep: int = 1  # expert parallel: routed experts split over this many ranks of the data-parallel group
    schedule: str = "1f1b"  # pipeline schedule: 1f1b (interleaved when interleave > 1), zero-bubble, dualpipe
    overlap: bool = True  # gradient reduction overlapped with backward (FSDP, DeepSpeed, Megatron since 2023)
    recompute_fraction: float = 1.0  # recompute="partial": the share of each stage's layers fully recomputed
    # ZeRO-Offload (Ren et al. 2021): fp32 master weights and Adam moments kept in host memory and updated there;
    # gradients go down and updated weights come back over PCIe every step
    offload: bool = False

    @property
    def _fraction(self) -> str:
        return f" {self.recompute_fraction:.0%}" if self.recompute == "partial" else ""

    @property
    def full_share(self) -> float:
        """Share of layers recomputed in full (1 for full, the fraction for partial, else 0)."""
        return {"full": 1.0, "partial": self.recompute_fraction}.get(self.recompute, 0.0)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    def label(self) -> str:
        sp = "+SP" if self.sequence_parallel and self.tp > 1 else ""
        vp = f" v{self.interleave}" if self.interleave > 1 else ""
        ep = f" EP{self.ep}" if self.ep > 1 else ""
        off = " offload" if self.offload else ""
        return (
            f"TP{self.tp}{sp} PP{self.pp}{vp} DP{self.dp}{ep} CP{self.cp} ZeRO-{self.zero}{off} "
            f"recompute={self.recompute}{self._fraction} mb={self.micro_batch}"
        )


@dataclass(frozen=True)
class MemoryUse:
    """Bytes per GPU on the busiest pipeline stage."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    usable: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.logits

    @property
    def fits(self) -> bool:
        return self.total <= self.usable

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def stage_params(arch: Architecture, layout: Layout) -> float:
    """Parameters held by one GPU of the heaviest stage (embedding on the first or last stage)."""
    layers = math.ceil(arch.layers / layout.pp)
    # routed experts are split over the expert-parallel ranks only; everything else is replicated
    routed = arch.routed_expert_params / arch.layers
    per_layer = arch.layer_params - routed + routed / max(1, layout.ep)
    embed = arch.embedding_params if layout.pp == 1 else arch.vocab * arch.hidden
    return (layers * per_layer + embed) / layout.tp


def saved_bytes_per_token(arch: Architecture, precision: str = "bf16") -> tuple[float, float]:
    """Bytes one token keeps for backward in one layer: (all of them, those every TP rank keeps without SP).

    Korthikanti et al. 2022 (Table 2, §4.1) count 34 bytes per token per hidden unit for a GPT layer with
    dropout: layer-norm inputs 4; attention 11 — the QKV GEMM's input 2, Q and K 4, V 2, the output projection's
    input 2, its dropout mask 1; MLP 19 — fc1's input 2, GeLU's input 8, fc2's input 8, a mask 1 (plus the
    score matrices, counted apart).  Counted here from the model's own widths rather than for MHA at 4h:

    - Q, K and V are as wide as their heads: K and V shrink with grouped-query attention (Nemotron-4 340B: 8 KV
      groups of 96 heads keep 0.33 instead of 4), and Q and the attention output widen where heads × head width
      exceeds hidden (Qwen3).  Megatron-LM's own accounting (megatron/training/theoretical_memory_usage.py,
      compute_activation_memory) keeps Korthikanti's MHA figure and notes "TODO: This function needs to take into
      account query_projection_size potentially being different from hidden_size".  MLA (DeepSeek) is left at
      MHA's count: its stacks recompute the up-projections in backward (DeepSeek-V3 §3.2.3).
    - FP8 (Transformer Engine): each linear layer keeps its input as the FP8 copy it cast for the GEMM, 1 byte
      instead of 2 (TransformerEngine transformer_engine/pytorch/module/linear.py, _Linear.forward: with fp8
      and wgrad not overridden it saves ``inputmat``/``inputmat_t``, the FP8 cast, else ``inputmat_no_fp8``).
      That halves the QKV, fc1 and fc2 inputs; the attention output is kept twice — by fused attention in 16
      bits, whose backward needs it (FlashAttention-2, Dao 2023, Algorithm 2: O is an input of the backward
      pass), and by the projection as its FP8 copy.  Norm inputs and the activation function's input stay 16-bit.
    - Dropout masks only where the model trains with dropout.
    """
    h = arch.hidden
    drop = 1.0 if arch.dropout else 0.0
    lin = 1.0 if precision == "fp8" else 2.0  # bytes of a saved linear-layer input
    if arch.kv_lora_rank:
        qkv, out = 6.0, 2.0
    else:
        d = arch.head_dim
        q = arch.heads * d if arch.attention_head_dim else h
        qkv = 2.0 * (q + 2 * arch.kv_heads * d) / h
        out = 2.0 * q / h
    proj_input = out * lin / 2 if precision == "fp8" else 0.0  # the FP8 copy beside fused attention's output
    attention = lin + qkv + out + proj_input + drop
    f = arch.ffn_hidden / h
    # fc1's output: the activation function's input, 16-bit (gate and up for a GLU); fc2's input: its output
    mlp = lin + (4 * f if arch.glu else 2 * f) + lin * f + drop
    experts = (arch.top_k + arch.shared_experts) if arch.is_moe else 1
    total = 4.0 + attention + mlp * experts
    # without sequence parallelism every TP rank keeps the norms' inputs, the QKV and fc1 inputs and the masks
    return total, 4.0 + 2 * lin + 2 * drop


def activation_bytes_per_layer(
    arch: Architecture, layout: Layout, seq_len: int | None = None, precision: str = "bf16"
) -> float:
    """Stored activations of one layer for one micro-batch (Korthikanti et al. 2022, Table 2, generalised)."""
    s = (seq_len or arch.seq_len) / layout.cp
    b, h, t = layout.micro_batch, arch.hidden, layout.tp
    drop = 1 if arch.dropout else 0
    per_token, replicated = saved_bytes_per_token(arch, precision)
    scores = 0.0 if arch.flash_attention else (2 + 3 * drop) * arch.heads * s / h
    if layout.recompute == "partial":
        # some layers keep only their input (full recompute), the others everything (Megatron's block method)
        f = layout.recompute_fraction
        full = activation_bytes_per_layer(arch, replace(layout, recompute="full"), seq_len, precision)
        kept = activation_bytes_per_layer(arch, replace(layout, recompute="none"), seq_len, precision)
        return f * full + (1 - f) * kept
    if layout.recompute == "full":
        return 2 * s * b * h / (t if layout.sequence_parallel else 1)
    if layout.recompute == "selective":
        scores = 0.0
    if layout.sequence_parallel or t == 1:
        return s * b * h * (per_token + scores) / t
    return s * b * h * (replicated + (per_token - replicated) / t + scores / t)


def memory_per_gpu(
    arch: Architecture, layout: Layout, gpu: GPU, global_batch: int, precision: str = "bf16"
) -> MemoryUse:
    """Model state (16 B/param mixed-precision Adam, sharded by ZeRO stage) plus activations in flight.

    Gradients are 2 bytes: reduced in BF16, as NVIDIA's own Nemotron-4 340B configuration does
    (NeMo-Framework-Launcher conf/training/nemotron/nemotron_340b.yaml: mcore_distributed_optim with
    ``grad_sync_dtype: bf16``, no activation checkpointing, at TP8 PP8 VP12).  Megatron-LM's own accounting
    (theoretical_memory_usage.py) assumes FP32 main gradients, 6 + 12/DP bytes per parameter with the
    distributed optimizer; a stack that keeps them so needs 2 bytes more per parameter than counted here."""
    psi = stage_params(arch, layout)
    shard = layout.dp * layout.cp
    w_b, g_b, o_b = (4.0, 4.0, 8.0) if precision == "fp32" else (2.0, 2.0, 12.0)
    weights = psi * w_b / (shard if layout.zero >= 3 else 1)
    grads = psi * g_b / (shard if layout.zero >= 2 else 1)
    optimizer = 0.0 if layout.offload else psi * o_b / (shard if layout.zero >= 1 else 1)

    micro_batches = max(1, global_batch // (layout.dp * layout.micro_batch))
    layers = math.ceil(arch.layers / layout.pp)
    per_layer = activation_bytes_per_layer(arch, layout, precision=precision)
    # 1F1B keeps p micro-batches alive on the first stage; interleaving adds (p-1)/(p·v) of that.
    in_flight = float(min(layout.pp, micro_batches))
    if layout.interleave > 1 and layout.pp > 1:
        in_flight *= 1 + (layout.pp - 1) / (layout.pp * layout.interleave)
    activations = in_flight * layers * per_layer
    if layout.recompute in ("full", "partial"):
        # the layer being recomputed holds its full activations for a moment
        activations += activation_bytes_per_layer(arch, replace(layout, recompute="selective"), precision=precision)
    s = arch.seq_len / layout.cp
    logits = 6.0 * layout.micro_batch * s * arch.vocab / layout.tp  # bf16 logits + fp32 softmax for the loss
    if layout.pp > 1:
        last_stage = layers * per_layer + logits
        logits = max(0.0, last_stage - activations)
    usable = gpu.hbm_capacity_bytes * USABLE_FRACTION - FRAMEWORK_BYTES
    return MemoryUse(weights, grads, optimizer, activations, logits, usable)
