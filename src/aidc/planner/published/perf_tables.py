"""NVIDIA's published performance tables (NeMo 24.07; Megatron-Bridge 25.11 on H100, B200 and GB200 NVL72): one
row per run, the layout as printed and the throughput measured."""

from __future__ import annotations

from dataclasses import dataclass

from aidc.planner.architecture import Architecture
from aidc.planner.memory import Layout
from aidc.planner.published.run import PublishedRun
from aidc.planner.published.shapes import (
    deepseek_v3,
    gpt3_175b,
    llama2_shape,
    llama3_shape,
    llama31_405b,
    nemotron4_340b,
    qwen3_moe,
)
from aidc.planner.published.sources import (
    BRIDGE_2511,
    DEEPSEEK_V3,
    GPT3_SHAPE,
    LLAMA2,
    LLAMA3,
    LLAMA3_SHAPES,
    MCORE,
    NEMO_2407,
    NEMOTRON4,
    QWEN3,
)


def _shape_source(label: str) -> str:
    """Where a performance-table row's model shape is published (the tables name the model only)."""
    sources = {
        "GPT-3 175B": GPT3_SHAPE,
        "Llama 2": LLAMA2,
        "Llama 3 ": LLAMA3_SHAPES,
        "Llama 3.1 405B": LLAMA3,
        "Nemotron-4 340B": NEMOTRON4,
        "Qwen3": QWEN3,
        "DeepSeek-V3": DEEPSEEK_V3,
    }
    return next(v for k, v in sources.items() if label.startswith(k))


@dataclass(frozen=True)
class PerfTable:
    """One published performance table: its citation and the short name the benchmark groups its runs by."""

    source: str
    paper: str

    def row(
        self,
        label: str,
        arch: Architecture,
        gpu: str,
        precision: str,
        gpus: int,
        batch: int,
        micro_batch: int,
        tp: int,
        pp: int,
        cp: int,
        vp: int,
        ep: int,
        tokens_per_gpu_s: float,
        tflops: float,
        fsdp: bool = False,
    ) -> PublishedRun:
        """A row as printed; tokens/s/GPU turned into seconds per iteration (batch x sequence / (tokens/s/GPU x
        GPUs)), which needs no FLOP count.  The tables do not say whether activations are recomputed, nor the
        optimizer sharding or sequence parallelism under DDP: those are searched."""
        layout = Layout(
            tp=tp,
            pp=pp,
            dp=gpus // (tp * pp * cp),
            cp=cp,
            zero=3 if fsdp else 1,
            micro_batch=micro_batch,
            interleave=vp,
            ep=ep,
        )
        seconds = batch * arch.seq_len / (tokens_per_gpu_s * gpus)
        free = ("recompute", "sequence_parallel") if fsdp else ("recompute", "sequence_parallel", "zero")
        short = {"H100": "H100", "B200": "B200", "GB200-NVL72": "GB200"}[gpu]
        return PublishedRun(
            f"{label} on {gpus} {short} {precision.upper()} ({tokens_per_gpu_s:.0f} tok/s/GPU)",
            f"{self.source}; shape: {_shape_source(label)}",
            self.paper,
            MCORE,
            arch,
            layout,
            batch,
            seconds,
            gpu=gpu,
            precision=precision,
            free=free,
            tflops_published=tflops,
        )


NEMO = PerfTable(NEMO_2407, "NeMo 24.07 perf")
BRIDGE = PerfTable(BRIDGE_2511, "Megatron-Bridge 25.11 perf")

# label, arch, GPU, precision (FP8-CS/MXFP8 as fp8), GPUs, GBS, MBS, TP, PP, CP, VP, EP, tokens/s/GPU, model
# TFLOP/s/GPU; VP "n/a" is 1
TABLE_RUNS: list[PublishedRun] = [
    NEMO.row("GPT-3 175B", gpt3_175b(), "H100", "fp8", 128, 256, 1, 4, 8, 1, 6, 1, 726, 782),
    NEMO.row("GPT-3 175B", gpt3_175b(), "H100", "fp8", 512, 2048, 2, 4, 8, 1, 6, 1, 782, 842),
    NEMO.row("Llama 2 7B", llama2_shape("7B"), "H100", "fp8", 8, 128, 1, 1, 1, 1, 1, 1, 16847, 776),
    NEMO.row("Llama 2 13B", llama2_shape("13B"), "H100", "fp8", 16, 128, 1, 1, 4, 1, 10, 1, 8646, 754),
    NEMO.row("Llama 2 70B", llama2_shape("70B"), "H100", "fp8", 64, 128, 1, 4, 4, 1, 20, 1, 1707, 759),
    NEMO.row("Nemotron-4 340B", nemotron4_340b(), "H100", "fp8", 128, 32, 1, 8, 8, 1, 12, 1, 322, 678),
    NEMO.row("Llama 3 8B", llama3_shape("8B", 8192), "H100", "fp8", 8, 128, 1, 1, 1, 2, 1, 1, 12036, 697),
    NEMO.row("Llama 3 70B", llama3_shape("70B", 8192), "H100", "fp8", 64, 128, 1, 4, 4, 2, 5, 1, 1533, 738),
    BRIDGE.row("Llama 3 8B", llama3_shape("8B", 8192), "H100", "fp8", 8, 128, 1, 1, 1, 1, 1, 1, 14451, 744, fsdp=True),
    BRIDGE.row("Llama 3 70B", llama3_shape("70B", 8192), "H100", "fp8", 64, 128, 1, 4, 8, 1, 5, 1, 1602, 719),
    BRIDGE.row("Llama 3.1 405B", llama31_405b(8192), "H100", "fp8", 1024, 512, 1, 8, 8, 2, 8, 1, 292, 737),
    BRIDGE.row("Qwen3 30B-A3B (MoE)", qwen3_moe("30B-A3B"), "H100", "fp8", 16, 512, 2, 1, 2, 1, 24, 8, 5275, 121),
    # the 25.11 table leaves this row's GBS cell empty: 2048 is the later Megatron-Bridge recipe's
    # (qwen3_workload_base_configs.py); the error hardly moves with it (the layout is the table's)
    BRIDGE.row("Qwen3 235B-A22B (MoE)", qwen3_moe("235B-A22B"), "H100", "fp8", 256, 2048, 1, 2, 8, 1, 4, 32, 1575, 233),
    BRIDGE.row("Llama 3 8B", llama3_shape("8B", 8192), "B200", "fp8", 8, 128, 2, 1, 1, 1, 1, 1, 30624, 1576),
    BRIDGE.row("Llama 3.1 405B", llama31_405b(8192), "B200", "fp8", 128, 64, 1, 4, 8, 2, 8, 1, 661, 1667),
    BRIDGE.row("Qwen3 30B-A3B (MoE)", qwen3_moe("30B-A3B"), "B200", "fp8", 8, 512, 1, 1, 1, 1, 1, 8, 9299, 214),
    BRIDGE.row("Qwen3 235B-A22B (MoE)", qwen3_moe("235B-A22B"), "B200", "fp8", 64, 1024, 1, 1, 8, 1, 2, 8, 3269, 484),
    BRIDGE.row("Llama 3 8B", llama3_shape("8B", 8192), "GB200-NVL72", "fp8", 8, 128, 2, 1, 1, 1, 1, 1, 31508, 1622),
    BRIDGE.row(
        "Llama 3 70B", llama3_shape("70B", 8192), "GB200-NVL72", "fp8", 64, 256, 2, 1, 1, 1, 1, 1, 4312, 1937, fsdp=True
    ),
    BRIDGE.row("Llama 3.1 405B", llama31_405b(8192), "GB200-NVL72", "fp8", 256, 1536, 1, 4, 16, 1, 4, 1, 813, 2053),
    BRIDGE.row(
        "DeepSeek-V3 (MoE, no MTP)", deepseek_v3(), "GB200-NVL72", "bf16", 256, 4096, 1, 1, 4, 1, 4, 64, 3139, 782
    ),
    BRIDGE.row(
        "Qwen3 235B-A22B (MoE)", qwen3_moe("235B-A22B"), "GB200-NVL72", "bf16", 256, 8192, 1, 1, 8, 1, 3, 32, 4916, 728
    ),
]
