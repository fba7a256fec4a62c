"""The `gpt` model: a decoder-only Transformer (rotary positions, pre-norm RMSNorm, grouped-query causal attention
through scaled_dot_product_attention, SwiGLU MLP, tied output head) and its key/value cache for generation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


@dataclass(frozen=True)
class GPTConfig:
    """The architecture. ``hidden`` defaults to the SwiGLU size ≈ 8/3·dim rounded up to a multiple of 64."""

    vocab_size: int
    context: int = 256
    dim: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    hidden: int | None = None
    rope_base: float = 10_000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dim {self.dim} must split into {self.heads} heads of an even size")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads {self.heads} must be a multiple of kv_heads {self.kv_heads}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def mlp_hidden(self) -> int:
        return self.hidden or 64 * -(-(8 * self.dim // 3) // 64)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPTConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def matmul_params(self) -> int:
        """Weights that take part in a matrix multiply per token (the tied head counts once, the lookup not)."""
        kv = self.kv_heads * self.head_dim
        per_layer = self.dim * (self.dim + 2 * kv) + self.dim * self.dim + 3 * self.dim * self.mlp_hidden
        return self.layers * per_layer + self.dim * self.vocab_size

    def train_flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token, as PaLM counts them: 6·N for the weights (forward and backward) plus
        12·layers·dim·T for the attention scores and mixing at sequence length T."""
        t = seq_len or self.context
        return 6.0 * self.matmul_params() + 12.0 * self.layers * self.dim * t


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        return y


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary positions (halves layout): x is (B, heads, T, head_dim), cos/sin (B or 1, 1, T, head_dim/2)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


@dataclass
class KVCache:
    """Keys and values per layer for a batch of sequences, each at its own length (continuous batching).

    ``k[i]``/``v[i]`` are (B, kv_heads, capacity, head_dim); ``lengths`` (B,) counts the positions each row holds.
    """

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    lengths: torch.Tensor
    pending: int = 0  # tokens written by the forward now running (committed by advance())
    _mask: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    def empty(cls, config: GPTConfig, batch: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        shape = (batch, config.kv_heads, config.context, config.head_dim)
        return cls(
            [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.layers)],
            [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.layers)],
            torch.zeros(batch, dtype=torch.long, device=device),
        )

    @property
    def batch(self) -> int:
        return int(self.lengths.shape[0])

    def positions(self, tokens: int) -> torch.Tensor:
        return self.lengths[:, None] + torch.arange(tokens, device=self.lengths.device)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this forward's keys/values; the keys/values to attend over (up to the longest row)."""
        t = k.shape[2]
        if t == 1:
            rows = torch.arange(self.batch, device=k.device)
            self.k[layer][rows, :, self.lengths] = k[:, :, 0]
            self.v[layer][rows, :, self.lengths] = v[:, :, 0]
        else:  # a prefill: every row starts at the same length
            start = int(self.lengths[0])
            self.k[layer][:, :, start : start + t] = k
            self.v[layer][:, :, start : start + t] = v
        self.pending = t
        end = int(self.lengths.max()) + t
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def mask(self, tokens: int) -> torch.Tensor | None:
        """Which cached positions each row's new tokens may see; None when plain causal masking is right."""
        if tokens > 1:
            return None if int(self.lengths.max()) == 0 else self._causal_mask(tokens)
        if self._mask is None:
            end = int(self.lengths.max()) + 1
            keys = torch.arange(end, device=self.lengths.device)
            self._mask = (keys[None, :] <= self.lengths[:, None])[:, None, None, :]
        return self._mask

    def _causal_mask(self, tokens: int) -> torch.Tensor:
        start = int(self.lengths[0])
        keys = torch.arange(start + tokens, device=self.lengths.device)
        queries = start + torch.arange(tokens, device=self.lengths.device)
        return (keys[None, :] <= queries[:, None])[None, None]

    def advance(self) -> None:
        self.lengths += self.pending
        self.pending, self._mask = 0, None

    def select(self, rows: torch.Tensor) -> KVCache:
        """The cache of some rows only (requests that left the batch are dropped)."""
        return KVCache([k[rows] for k in self.k], [v[rows] for v in self.v], self.lengths[rows].clone())

    @staticmethod
    def concat(caches: list[KVCache]) -> KVCache:
        """One batch from several caches (a request joining the running batch)."""
        layers = len(caches[0].k)
        return KVCache(
            [torch.cat([c.k[i] for c in caches]) for i in range(layers)],
            [torch.cat([c.v[i] for c in caches]) for i in range(layers)],
            torch.cat([c.lengths for c in caches]),
        )


class Attention(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = c.heads, c.kv_heads, c.head_dim
        self.qkv = nn.Linear(c.dim, (c.heads + 2 * c.kv_heads) * c.head_dim, bias=False)
        self.out = nn.Linear(c.dim, c.dim, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None, layer: int
    ) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).split(
            [self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim], dim=-1
        )
        q = _rotate(q.view(b, t, self.heads, self.head_dim).transpose(1, 2), cos, sin)
        k = _rotate(k.view(b, t, self.kv_heads, self.head_dim).transpose(1, 2), cos, sin)
        v = v.view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        mask = None
        if cache is not None:
            mask = cache.mask(t)
            k, v = cache.update(layer, k, v)
        gqa = self.heads != self.kv_heads
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and t > 1, enable_gqa=gqa)
        out: torch.Tensor = self.out(y.transpose(1, 2).reshape(b, t, -1))
        return out


class SwiGLU(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.gate_up = nn.Linear(c.dim, 2 * c.mlp_hidden, bias=False)
        self.down = nn.Linear(c.mlp_hidden, c.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        out: torch.Tensor = self.down(F.silu(gate) * up)
        return out


class Block(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(c.dim, c.norm_eps), Attention(c)
        self.mlp_norm, self.mlp = RMSNorm(c.dim, c.norm_eps), SwiGLU(c)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None, layer: int = 0
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, cache, layer)
        out: torch.Tensor = x + self.mlp(self.mlp_norm(x))
        return out


class GPT(nn.Module):
    """``forward(tokens)`` → logits (B, T, vocab); with a ``cache`` the tokens continue each row's sequence."""

    cos: torch.Tensor
    sin: torch.Tensor

    def __init__(self, config: GPTConfig, *, activation_checkpointing: bool = False) -> None:
        super().__init__()
        self.config = config
        self.activation_checkpointing = activation_checkpointing
        self.embed = nn.Embedding(config.vocab_size, config.dim)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        inv = 1.0 / (config.rope_base ** (torch.arange(0, config.head_dim, 2).float() / config.head_dim))
        angles = torch.outer(torch.arange(config.context).float(), inv)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith(("out.weight", "down.weight")):
                nn.init.normal_(p, std=0.02 / (2 * config.layers) ** 0.5)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        t = tokens.shape[1]
        if cache is None:
            cos, sin = self.cos[None, None, :t], self.sin[None, None, :t]
        else:
            pos = cache.positions(t)
            if int(pos.max()) >= self.config.context:
                raise ValueError(f"sequence longer than the model's context of {self.config.context} tokens")
            cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]
        cos, sin = cos.to(self.embed.weight.dtype), sin.to(self.embed.weight.dtype)
        x = self.embed(tokens)
        for i, block in enumerate(self.blocks):
            if self.activation_checkpointing and self.training and cache is None:
                x = checkpoint(block, x, cos, sin, use_reentrant=False)
            else:
                x = block(x, cos, sin, cache, i)
        if cache is not None:
            cache.advance()
        return F.linear(self.norm(x), self.embed.weight)  # the head is the embedding, tied

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


SIZES: dict[str, dict[str, int]] = {
    # name → dim, layers, heads, kv_heads, context (vocab from the tokenizer)
    "tiny": {"dim": 64, "layers": 2, "heads": 4, "kv_heads": 2, "context": 128},
    "small": {"dim": 192, "layers": 4, "heads": 6, "kv_heads": 2, "context": 256},
    "gpt2-124m": {"dim": 768, "layers": 12, "heads": 12, "kv_heads": 12, "context": 1024},
    "350m": {"dim": 1024, "layers": 24, "heads": 16, "kv_heads": 8, "context": 2048},
    "1b": {"dim": 2048, "layers": 16, "heads": 32, "kv_heads": 8, "context": 2048},
    "7b": {"dim": 4096, "layers": 32, "heads": 32, "kv_heads": 8, "context": 4096},
}


def gpt(arch: dict[str, Any]) -> GPT:
    """Build from an architecture dict (a GPTConfig's fields; ``size`` picks defaults from SIZES)."""
    fields = {**SIZES.get(str(arch.get("size", "")), {}), **{k: v for k, v in arch.items() if v is not None}}
    return GPT(GPTConfig.from_dict(fields), activation_checkpointing=bool(arch.get("activation_checkpointing")))
