"""Fine-grained MoE and FP8 in the training step: GEMM depth, routing passes, the casts of expert operands."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import Catalog
from aidc.planner.iteration import (
    DEFAULT_EFFICIENCY,
    Efficiency,
    depth_knee,
    expert_gemms,
    iteration_time,
    routing_bytes,
)
from aidc.planner.memory import Layout
from aidc.planner.published import qwen3_moe

CATALOG = Catalog.load()
EP8 = Layout(tp=1, pp=1, dp=8, zero=1, recompute="none", micro_batch=1, ep=8)


def test_the_depth_knee_reproduces_deepgemms_measured_rates_on_h800() -> None:
    """DeepGEMM's FP8 GEMMs on H800 (README, dense, M = 4096): 590 TFLOPS at K = 512, 1025 at 2048, 1304 at 7168
    and 1358 at 16384.  The GPU's measured FP8 MAMF slowed by its depth knee lands within 5% of each."""
    h800 = CATALOG.gpu("H800")
    knee = depth_knee(h800, "fp8", DEFAULT_EFFICIENCY)
    for k, measured in ((512, 590), (2048, 1025), (7168, 1304), (16384, 1358)):
        priced = h800.achievable("fp8") / 1e12 * k / (k + knee)
        assert priced == pytest.approx(measured, rel=0.05), k


def test_a_narrow_expert_runs_below_a_wide_ones_rate() -> None:
    """Qwen3 30B-A3B's experts are 768 wide on a 2048 hidden: the down projection reduces over 768, so per FLOP
    its experts take longer than the same experts four times as wide (same tokens, compute-bound either way)."""
    gpu = CATALOG.gpu("H100")
    rate = gpu.achievable("bf16") * DEFAULT_EFFICIENCY.matmul_efficiency
    knee = depth_knee(gpu, "bf16", DEFAULT_EFFICIENCY)
    narrow = qwen3_moe("30B-A3B")
    wide = replace(narrow, ffn_hidden=4 * narrow.ffn_hidden)
    per_flop_narrow = expert_gemms(narrow, EP8, gpu, 4096, rate, "bf16", knee) / narrow.expert_params
    per_flop_wide = expert_gemms(wide, EP8, gpu, 4096, rate, "bf16", knee) / wide.expert_params
    assert per_flop_narrow > 1.05 * per_flop_wide
    # without the knee the two cost the same per FLOP: the difference is the depth, nothing else
    flat_narrow = expert_gemms(narrow, EP8, gpu, 4096, rate, "bf16") / narrow.expert_params
    flat_wide = expert_gemms(wide, EP8, gpu, 4096, rate, "bf16") / wide.expert_params
    assert flat_narrow == pytest.approx(flat_wide)


def test_fp8_gains_less_on_a_small_hidden() -> None:
    """The FP8 step's speedup over BF16 is smaller for a 2048-wide model than for a 16384-wide one: FP8 halves the
    arithmetic of each tile but not its fixed cost, which a shallow GEMM cannot hide."""
    gpu = CATALOG.gpu("H100")
    layout = Layout(tp=1, pp=1, dp=1, zero=0, recompute="none", micro_batch=16)
    eff = replace(DEFAULT_EFFICIENCY, elementwise_passes=0.0, fp8_quantize_passes=0.0)

    def gain(hidden: int, eff: Efficiency = eff) -> float:
        arch = Architecture(
            layers=2, hidden=hidden, heads=hidden // 128, kv_heads=hidden // 128, ffn_hidden=4 * hidden,
            vocab=1, seq_len=256,
        )  # fmt: skip
        bf16 = iteration_time(arch, layout, gpu, 16, "bf16", eff=eff).compute
        return bf16 / iteration_time(arch, layout, gpu, 16, "fp8", eff=eff).compute

    assert gain(2048) < 0.97 * gain(16384)
    flat = replace(eff, gemm_depth_knee=0.0)  # without the knee both gain the same: the depth is the difference
    assert gain(2048, flat) == pytest.approx(gain(16384, flat), rel=0.02)
    assert gain(16384) < gpu.achievable("fp8") / gpu.achievable("bf16")


def test_routing_moves_top_k_copies_of_each_token_through_hbm() -> None:
    """Permute and unpermute move top_k copies per token: a top-8 model routes ~4x the bytes of a top-2 one;
    a dense model routes nothing."""
    qwen = qwen3_moe("30B-A3B")
    top2 = replace(qwen, top_k=2)
    assert routing_bytes(qwen, EP8, 4096) / routing_bytes(top2, EP8, 4096) == pytest.approx(44 / 14)
    dense = replace(qwen, experts=1, top_k=1)
    assert routing_bytes(dense, EP8, 4096) == 0.0


def test_fp8_expert_gemms_pay_for_casting_their_operands() -> None:
    """In FP8 every expert's inputs and output gradients are cast from 16-bit (the permuted copies cannot reuse
    the norm's fused cast): on H100 the FP8 experts gain less than the measured FP8/BF16 GEMM ratio."""
    gpu = CATALOG.gpu("H100")
    qwen = qwen3_moe("30B-A3B")
    bf16_rate = gpu.achievable("bf16") * DEFAULT_EFFICIENCY.matmul_efficiency
    fp8_rate = gpu.achievable("fp8") * DEFAULT_EFFICIENCY.matmul_efficiency
    bf16 = expert_gemms(qwen, EP8, gpu, 4096, bf16_rate, "bf16")
    fp8 = expert_gemms(qwen, EP8, gpu, 4096, fp8_rate, "fp8")
    assert bf16 / fp8 < 0.95 * fp8_rate / bf16_rate
