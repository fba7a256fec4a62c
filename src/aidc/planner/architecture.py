"""The shape of a transformer: parameter counts, FLOPs per token and KV-cache bytes, from layers and widths."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    """A decoder-only transformer (dense or MoE). ``assumed`` is True when the shape was guessed from params."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn_hidden: int
    vocab: int
    seq_len: int
    glu: bool = False
    experts: int = 1
    top_k: int = 1
    tied_embeddings: bool = False
    flash_attention: bool = True
    assumed: bool = False
    shared_experts: int = 0  # MoE: experts every token passes through (DeepSeek), each ffn_hidden wide
    dense_layers: int = 0  # MoE: the first layers keep a dense MLP of dense_ffn_hidden
    dense_ffn_hidden: int = 0
    route_nodes: int = 0  # MoE: most nodes one token's experts may span (DeepSeek-V3: 4; V2 limits devices, EP8 stays in a node); 0 = any
    kv_lora_rank: int = 0  # multi-head latent attention (DeepSeek-V2/V3): compressed KV width; 0 = plain MHA/GQA
    q_lora_rank: int = 0
    rope_head_dim: int = 0
    attention_head_dim: int = 0  # per-head width where it is not hidden/heads (MLA: 128 at hidden 7168, 128 heads)
    dropout: bool = False  # dropout masks are stored for backward only where the model trains with dropout
    # MoE: routed tokens on the busiest expert-parallel rank over the mean, which sets every rank's step (the others
    # wait for it at the combine).  1.0 where routing caps each device at an even budget and drops the excess
    # (DeepSeek-V2 §2.2.4: device-level token dropping, "capacity factor for each device is equivalent to 1.0")
    # or balances it well (DeepSeek-V3 §2.1.2: no token dropped, "keeps a good load balance"); a dropless stack
    # with looser balancing sets its measured imbalance here
    capacity_factor: float = 1.0

    @property
    def head_dim(self) -> int:
        return self.attention_head_dim or self.hidden // self.heads

    @property
    def attention_params(self) -> int:
        h, d = self.hidden, self.head_dim
        if self.kv_lora_rank:
            q = h * self.q_lora_rank + self.q_lora_rank * self.heads * (d + self.rope_head_dim)
            kv = h * (self.kv_lora_rank + self.rope_head_dim) + self.kv_lora_rank * self.heads * 2 * d
            return q + kv + self.heads * d * h
        kv = 2 * h * self.kv_heads * d
        # Q and output projections span heads x head width, which is not hidden where the head width is set apart
        # from it (Qwen3: 64 heads of 128 on hidden 4096)
        q_width = self.heads * d if self.attention_head_dim else h
        return 2 * h * q_width + kv

    @property
    def expert_params(self) -> int:
        """One MLP (one expert): up/gate and down projections."""
        return (3 if self.glu else 2) * self.hidden * self.ffn_hidden

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.is_moe else 0

    @property
    def dense_mlp_params(self) -> int:
        ffn = self.dense_ffn_hidden or self.ffn_hidden
        return (3 if self.glu else 2) * self.hidden * ffn

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def layer_params(self) -> float:
        """Parameters of an average layer (MoE models mix dense and expert layers)."""
        moe = self.attention_params + (self.experts + self.shared_experts) * self.expert_params
        dense = self.attention_params + self.dense_mlp_params
        return (self.moe_layers * moe + (self.layers - self.moe_layers) * dense) / self.layers

    @property
    def layer_active_params(self) -> float:
        """Parameters one token passes through in an average layer."""
        moe = self.attention_params + (self.top_k + self.shared_experts) * self.expert_params
        dense = self.attention_params + self.dense_mlp_params
        return (self.moe_layers * moe + (self.layers - self.moe_layers) * dense) / self.layers

    @property
    def layer_routed_active_params(self) -> float:
        """Routed-expert parameters one token passes through in an average layer (the load-imbalanced part)."""
        return self.moe_layers * self.top_k * self.expert_params / self.layers

    @property
    def routed_expert_params(self) -> float:
        """Parameters in routed experts, which expert parallelism splits (the rest is replicated)."""
        return self.moe_layers * self.experts * self.expert_params

    @property
    def params(self) -> int:
        return round(self.layers * self.layer_params + self.embedding_params)

    @property
    def active_params(self) -> int:
        return round(self.layers * self.layer_active_params + self.embedding_params)

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    def layer_forward_flops(self, seq_len: int | None = None) -> float:
        """Forward FLOPs of one layer per token: 2 per active weight plus attention scores (QKᵀ and AV).

        Counted without a causal discount, as Megatron-LM and the published MFU figures count them.
        """
        return 2.0 * self.layer_active_params + self.score_flops(seq_len or self.seq_len)

    def score_flops(self, seq_len: int) -> float:
        """Forward FLOPs per token of QKᵀ and AV: 2·s·heads·(query-key width + value width); 4·s·h for MHA."""
        return 2.0 * seq_len * self.heads * (2 * self.head_dim + self.rope_head_dim)

    @property
    def logit_forward_flops(self) -> float:
        return 2.0 * self.hidden * self.vocab

    def model_flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward = 3× forward), without recomputation."""
        return 3.0 * (self.layers * self.layer_forward_flops() + self.logit_forward_flops)

    def kv_bytes_per_token(self, bytes_per_value: float) -> float:
        """KV cache per token: 2 (K and V) · layers · KV heads · head dim · bytes."""
        if self.kv_lora_rank:  # MLA caches the compressed latent and the shared RoPE key, not per-head K and V
            return self.layers * (self.kv_lora_rank + self.rope_head_dim) * bytes_per_value
        return 2.0 * self.layers * self.kv_heads * self.head_dim * bytes_per_value

    @classmethod
    def from_params(cls, params: float, seq_len: int = 4096, vocab: int = 32000) -> Architecture:
        """A GPT-3-like shape for a parameter count (aspect ratio hidden ≈ 128·layers, ffn = 4·hidden).

        Used only when the workload gives params without an architecture; the plan marks it as assumed.
        """
        body = max(params - 2 * vocab * 1024, params * 0.8)
        hidden = (body * 128 / 12) ** (1 / 3)
        hidden = max(128, int(round(hidden / 128)) * 128)
        layers = max(1, int(round(body / (12 * hidden * hidden))))
        heads = max(1, hidden // 128)
        return cls(
            layers=layers,
            hidden=hidden,
            heads=heads,
            kv_heads=heads,
            ffn_hidden=4 * hidden,
            vocab=vocab,
            seq_len=seq_len,
            assumed=True,
        )


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))
