"""The model shapes the published runs train, each as its paper or released configuration gives it."""

from __future__ import annotations

from aidc.planner.architecture import Architecture


def gpt(layers: int, hidden: int, heads: int, seq_len: int = 2048) -> Architecture:
    return Architecture(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=heads,
        ffn_hidden=4 * hidden,
        vocab=51200,
        seq_len=seq_len,
        flash_attention=False,
        dropout=True,
    )


def llama31_405b(seq_len: int) -> Architecture:
    """Llama 3.1 405B (Llama 3 Table 3)."""
    return Architecture(
        layers=126, hidden=16384, heads=128, kv_heads=8, ffn_hidden=53248, vocab=128000, seq_len=seq_len, glu=True
    )


def mla_moe(
    layers: int,
    hidden: int,
    experts: int,
    shared: int,
    top_k: int,
    ffn: int,
    dense: int,
    dense_ffn: int,
    vocab: int,
    route_nodes: int,
) -> Architecture:
    return Architecture(
        layers=layers,
        hidden=hidden,
        heads=128,
        kv_heads=128,
        ffn_hidden=ffn,
        vocab=vocab,
        seq_len=4096,
        glu=True,
        experts=experts,
        top_k=top_k,
        shared_experts=shared,
        dense_layers=dense,
        dense_ffn_hidden=dense_ffn,
        kv_lora_rank=512,
        q_lora_rank=1536,
        rope_head_dim=64,
        attention_head_dim=128,
        route_nodes=route_nodes,
    )


def llama3_shape(size: str, seq_len: int) -> Architecture:
    layers, hidden, heads, ffn = {"8B": (32, 4096, 32, 14336), "70B": (80, 8192, 64, 28672)}[size]
    return Architecture(
        layers=layers, hidden=hidden, heads=heads, kv_heads=8, ffn_hidden=ffn, vocab=128256, seq_len=seq_len, glu=True
    )


def llama2_shape(size: str) -> Architecture:
    """Llama 2 7B/13B/70B as in the Llama 2 runs above (Llama 2 Table 1, GQA for 70B)."""
    layers, hidden, heads, kv, ffn = {
        "7B": (32, 4096, 32, 32, 11008),
        "13B": (40, 5120, 40, 40, 13824),
        "70B": (80, 8192, 64, 8, 28672),
    }[size]
    return Architecture(
        layers=layers, hidden=hidden, heads=heads, kv_heads=kv, ffn_hidden=ffn, vocab=32000, seq_len=4096, glu=True
    )


def gpt3_175b() -> Architecture:
    """NeMo's GPT-3 175B: Brown et al. 2020's 96 layers x 12288, 96 heads, sequence 2048, fused attention.  The
    table does not say whether it trains with dropout; taken without, as the other Megatron-Core runs."""
    return Architecture(layers=96, hidden=12288, heads=96, kv_heads=96, ffn_hidden=4 * 12288, vocab=51200, seq_len=2048)


def nemotron4_340b() -> Architecture:
    return Architecture(layers=96, hidden=18432, heads=96, kv_heads=8, ffn_hidden=73728, vocab=256000, seq_len=4096)


def qwen3_moe(size: str) -> Architecture:
    layers, hidden, heads, ffn = {"235B-A22B": (94, 4096, 64, 1536), "30B-A3B": (48, 2048, 32, 768)}[size]
    return Architecture(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=4,
        ffn_hidden=ffn,
        vocab=151936,
        seq_len=4096,
        glu=True,
        experts=128,
        top_k=8,
        attention_head_dim=128,
    )


def deepseek_v2() -> Architecture:
    """DeepSeek-V2 236B-A21B (DeepSeek-V2 §2-3)."""
    return mla_moe(60, 5120, 160, 2, 6, 1536, 1, 12288, 102400, 0)


def deepseek_v3() -> Architecture:
    """DeepSeek-V3 671B-A37B (DeepSeek-V3 §4.2)."""
    return mla_moe(61, 7168, 256, 1, 8, 2048, 3, 18432, 129280, 4)
