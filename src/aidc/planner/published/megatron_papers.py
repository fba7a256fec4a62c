"""The Megatron-LM team's papers (Shoeybi 2019, Narayanan 2021, Korthikanti 2022) and Megatron-Turing NLG (Smith
2022): the runs as their tables print them, on DGX-2H and DGX A100."""

from __future__ import annotations

from dataclasses import replace

from aidc.planner.architecture import Architecture
from aidc.planner.memory import Layout
from aidc.planner.published.run import Cluster, PublishedRun
from aidc.planner.published.shapes import gpt
from aidc.planner.published.sources import KORTHIKANTI, NARAYANAN, SHOEYBI, SMITH

DGX_2H = Cluster(
    gpus_per_node=16,
    nics_per_node=8,
    nic_gbps=100,
    source="NVIDIA DGX-2H datasheet: 16 V100 32GB on NVSwitch, 8x 100 Gb/s InfiniBand (the catalog's V100-DGX2H node)",
)


def megatron_flops(arch: Architecture, batch: int) -> float:
    """Narayanan et al. eq. 3: 96·B·s·l·h²·(1 + s/6h + V/16lh), FLOPs per iteration with full recompute."""
    s, l_, h, v = arch.seq_len, arch.layers, arch.hidden, arch.vocab
    return 96 * batch * s * l_ * h * h * (1 + s / (6 * h) + v / (16 * l_ * h))


def _narayanan(
    params_b: float, heads: int, hidden: int, layers: int, tp: int, pp: int, gpus: int, batch: int, tflops: float
) -> PublishedRun:
    arch = gpt(layers, hidden, heads)
    layout = Layout(
        tp=tp,
        pp=pp,
        dp=gpus // (tp * pp),
        zero=0,
        recompute="full",
        micro_batch=1,
        sequence_parallel=False,
        overlap=False,  # Megatron-LM reduced gradients after the pipeline flush until 2023
    )
    # The paper reports achieved TFLOP/s per GPU; its own FLOP count turns that back into seconds per iteration.
    seconds = megatron_flops(arch, batch) / (gpus * tflops * 1e12)
    return PublishedRun(
        f"GPT {params_b}B on {gpus} GPUs ({tflops:.0f} TF/GPU)",
        NARAYANAN,
        "Narayanan 2021",
        "Megatron-LM",
        arch,
        layout,
        batch,
        seconds,
        precision="fp16",
    )


def _korthikanti(
    params_b: int,
    heads: int,
    hidden: int,
    layers: int,
    pp: int,
    gpus: int,
    batch: int,
    full_s: float,
    selective_s: float,
) -> list[PublishedRun]:
    arch = gpt(layers, hidden, heads)
    base = Layout(tp=8, pp=pp, dp=gpus // (8 * pp), zero=0, micro_batch=1, overlap=False)
    return [
        PublishedRun(
            f"GPT {params_b}B {label}",
            KORTHIKANTI,
            "Korthikanti 2022",
            "Megatron-LM",
            arch,
            replace(base, recompute=recompute, sequence_parallel=sp),
            batch,
            seconds,
            precision="fp16",
        )
        for label, recompute, sp, seconds in (
            ("full recompute", "full", False, full_s),
            ("selective + SP", "selective", True, selective_s),
        )
    ]


MEGATRON_RUNS: list[PublishedRun] = [
    _narayanan(1.7, 24, 2304, 24, 1, 1, 32, 512, 137),
    _narayanan(3.6, 32, 3072, 30, 2, 1, 64, 512, 138),
    _narayanan(7.5, 32, 4096, 36, 4, 1, 128, 512, 142),
    _narayanan(18.4, 48, 6144, 40, 8, 1, 256, 1024, 135),
    _narayanan(39.1, 64, 8192, 48, 8, 2, 512, 1536, 138),
    _narayanan(76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140),
    _narayanan(145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148),
    _narayanan(310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155),
    _narayanan(529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163),
    _narayanan(1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163),
    *_korthikanti(22, 64, 6144, 48, 1, 8, 4, 1.42, 1.10),
    *_korthikanti(175, 96, 12288, 96, 8, 64, 64, 18.13, 13.75),
    *_korthikanti(530, 128, 20480, 105, 35, 280, 280, 49.05, 37.83),
    *_korthikanti(1000, 160, 25600, 128, 64, 512, 512, 94.42, 71.49),
]


def _shoeybi(params_b: float, hidden: int, heads: int, layers: int, tp: int, dp: int, tflops: float) -> PublishedRun:
    # The paper's sustained FLOP/s are the application's (activation checkpointing included), the same count the
    # team's later paper writes as eq. 3 (Narayanan 2021), so that count turns them back into seconds.  Batch 8
    # per model-parallel group (§5.1, weak scaling).
    arch = gpt(layers, hidden, heads, seq_len=1024)
    batch = 8 * dp
    layout = Layout(tp=tp, pp=1, dp=dp, zero=0, recompute="full", micro_batch=8, sequence_parallel=False, overlap=False)
    seconds = megatron_flops(arch, batch) / (tp * dp * tflops * 1e12)
    return PublishedRun(
        f"GPT {params_b}B on {tp * dp} V100 ({tflops:.1f} TF/GPU)",
        SHOEYBI,
        "Shoeybi 2019",
        "Megatron-LM",
        arch,
        layout,
        batch,
        seconds,
        gpu="V100-DGX2H",
        precision="fp16",
        cluster=DGX_2H,
    )


def _mtnlg(nodes: int, seconds: float) -> PublishedRun:
    arch = gpt(105, 20480, 128)
    layout = Layout(
        tp=8,
        pp=35,
        dp=nodes * 8 // 280,
        zero=1,
        recompute="full",
        micro_batch=1,
        sequence_parallel=False,
        overlap=False,
    )
    return PublishedRun(
        f"MT-NLG 530B on {nodes * 8} A100", SMITH, "Smith 2022", "Megatron-DeepSpeed", arch, layout, 1920, seconds
    )


SCALE_RUNS: list[PublishedRun] = [
    _shoeybi(1.2, 1536, 16, 40, 1, 1, 39.0),
    _shoeybi(8.3, 3072, 32, 72, 8, 64, 15.1e3 / 512),
    _mtnlg(280, 60.1),
    _mtnlg(350, 50.2),
    _mtnlg(420, 44.4),
]
