"""Runs from the reports of the teams that trained the models (LLaMA, Llama 2, Llama 3, MPT, DeepSeek, BLOOM,
GPT-NeoX, Nemotron-4): layouts where the report gives them, searched where it does not."""

from __future__ import annotations

from aidc.planner.architecture import Architecture
from aidc.planner.memory import Layout
from aidc.planner.published.run import ALL_FREE, GPU_HOURS, Cluster, PublishedRun
from aidc.planner.published.shapes import deepseek_v2, deepseek_v3, llama31_405b, nemotron4_340b
from aidc.planner.published.sources import (
    BLOOM,
    DEEPSEEK_LLM,
    DEEPSEEK_V2,
    DEEPSEEK_V3,
    LLAMA1,
    LLAMA2,
    LLAMA3,
    MCORE,
    MPT,
    NEMOTRON4,
    NEOX,
)

JEAN_ZAY = Cluster(
    gpus_per_node=8,
    nics_per_node=4,
    nic_gbps=100,
    source=(
        "BLOOM (arXiv 2211.05100) §3.5 as summarised at ai-papers.xuzou.cn/papers/bloom_2022: Jean Zay nodes of 8 "
        "A100 80GB on four NVLink GPU-to-GPU interconnects, four Omni-Path 100 Gbps links per node; the Hugging "
        "Face blog 'The Technology Behind BLOOM Training': 8 GPUs per node, NVLink 4 inter-gpu connects, 4 OmniPath "
        "links"
    ),
)
NEOX_CLUSTER = Cluster(
    gpus_per_node=8,
    nics_per_node=4,
    nic_gbps=200,
    source=(
        "Black et al. 2022 (GPT-NeoX-20B) §3 as summarised at ai-papers.xuzou.cn/papers/gpt_neox_2022: twelve "
        "Supermicro AS-4124GO-NART servers of eight A100-SXM4-40GB, each GPU reaching the InfiniBand fabric through "
        "one of four ConnectX-6 HCAs, two NVIDIA MQM8700-HS2R switches as the spine; the HCAs taken at the "
        "switches' port rate, HDR 200 Gb/s (the MQM87x0 Quantum HDR family: 40 ports of 200 Gb/s, "
        "mellanoxnetwork.com MQM8790-HS2F technical reference)"
    ),
)


def _llama3(seq_len: int, cp: int, dp: int, tflops: float) -> PublishedRun:
    arch = llama31_405b(seq_len)
    gpus = 8 * cp * 16 * dp
    batch = 16 * 2**20 // seq_len
    layout = Layout(tp=8, pp=16, dp=dp, cp=cp, zero=1, recompute="none", micro_batch=1, sequence_parallel=True)
    seconds = batch * seq_len * arch.model_flops_per_token() / (gpus * tflops * 1e12)
    return PublishedRun(
        f"Llama 3.1 405B on {gpus} H100, CP{cp} ({tflops:.0f} TF/GPU)",
        LLAMA3,
        "Llama 3 2024",
        # not LLaMA's stack: Llama 3 §3.3 describes its own 4D parallelism (TP, CP, PP, FSDP) and pipeline
        # schedule on H100, where LLaMA §2.4 used xformers attention and hand-written backward on A100
        "Meta Llama 3 (4D parallelism, 2024)",
        arch,
        layout,
        batch,
        seconds,
        gpu="H100",
        # §3.3.2: the interleaving depth, micro-batch and recomputation are tuned, not given
        free=("interleave", "recompute", "micro_batch", "zero"),
    )


def _llama(
    paper: str,
    source: str,
    label: str,
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    ffn: int,
    seq_len: int,
    gpu_hours_per_t: float,
    gpus: int,
    gpus_published: bool,
) -> PublishedRun:
    arch = Architecture(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        ffn_hidden=ffn,
        vocab=32000,
        seq_len=seq_len,
        glu=True,
    )
    batch = 4 * 2**20 // seq_len
    return PublishedRun(
        f"{label} on {gpus} A100{'' if gpus_published else ' (count not published)'}",
        source,
        paper,
        "Meta LLaMA (xformers, 2023)",
        arch,
        Layout(dp=gpus),
        batch,
        gpu_hours_per_t,
        metric=GPU_HOURS,
        free=("tp", "pp", "dp", "zero", "recompute", "micro_batch", "interleave", "sequence_parallel"),
        gpus_published=gpus_published,
    )


def _deepseek(
    label: str,
    source: str,
    paper: str,
    arch: Architecture,
    batch: int,
    gpu_hours_per_t: float,
    layout: Layout,
    free: tuple[str, ...],
    precision: str = "bf16",
    gpus_published: bool = True,
) -> PublishedRun:
    return PublishedRun(
        f"{label} on {layout.gpus} H800{'' if gpus_published else ' (count not published)'}",
        source,
        paper,
        "HAI-LLM (DeepSeek)",
        arch,
        layout,
        batch,
        gpu_hours_per_t,
        gpu="H800",
        precision=precision,
        metric=GPU_HOURS,
        free=free,
        gpus_published=gpus_published,
    )


# The reports' runs in the planner's first validation set (2026-11)
FIRST_RUNS: list[PublishedRun] = [
    _llama3(8192, 1, 64, 430),
    _llama3(8192, 1, 128, 400),
    _llama3(131072, 16, 8, 380),
    # LLaMA 65B's 380 tokens/s/GPU on 2048 GPUs is 730,994 GPU-hours per 1e12 tokens; Table 15 gives 730,259
    _llama("LLaMA 2023", LLAMA1, "LLaMA 65B", 80, 8192, 64, 64, 22016, 2048, 1e12 / 380 / 3600, 2048, True),
    _llama("LLaMA 2023", LLAMA1, "LLaMA 33B", 60, 6656, 52, 52, 17920, 2048, 530432 / 1.4, 2048, False),
    _llama("LLaMA 2023", LLAMA1, "LLaMA 13B", 40, 5120, 40, 40, 13824, 2048, 135168 / 1.0, 1024, False),
    _llama("LLaMA 2023", LLAMA1, "LLaMA 7B", 32, 4096, 32, 32, 11008, 2048, 82432 / 1.0, 1024, False),
    _llama("Llama 2 2023", LLAMA2, "Llama 2 70B", 80, 8192, 64, 8, 28672, 4096, 1720320 / 2.0, 2048, False),
    _llama("Llama 2 2023", LLAMA2, "Llama 2 34B", 48, 8192, 64, 8, 22016, 4096, 1038336 / 2.0, 2048, False),
    _llama("Llama 2 2023", LLAMA2, "Llama 2 13B", 40, 5120, 40, 40, 13824, 4096, 368640 / 2.0, 1024, False),
    _llama("Llama 2 2023", LLAMA2, "Llama 2 7B", 32, 4096, 32, 32, 11008, 4096, 184320 / 2.0, 1024, False),
    PublishedRun(
        "MPT-7B on 440 A100-40GB (9.5 days, wall clock)",
        MPT,
        "MosaicML 2023",
        "MosaicML LLM Foundry",
        Architecture(layers=32, hidden=4096, heads=32, kv_heads=32, ffn_hidden=16384, vocab=50432, seq_len=2048),
        Layout(dp=440, zero=3),
        # the post gives no batch; 1024 x 2048 (2M tokens) is assumed, the search picks the micro-batch
        1024,
        440 * 9.5 * 24 / 1.0,
        gpu="A100-40GB",
        metric=GPU_HOURS,
        free=("recompute", "micro_batch"),
    ),
    _deepseek(
        "DeepSeek 67B",
        DEEPSEEK_LLM,
        "DeepSeek-V2 2024",
        Architecture(
            layers=95, hidden=8192, heads=64, kv_heads=8, ffn_hidden=22016, vocab=102400, seq_len=4096, glu=True
        ),
        4608,
        300.6e3,
        Layout(dp=1024),
        ALL_FREE,
        gpus_published=False,
    ),
    _deepseek(
        "DeepSeek-V2 236B-A21B (MoE)",
        DEEPSEEK_V2,
        "DeepSeek-V2 2024",
        deepseek_v2(),
        9216,
        172.8e3,
        Layout(tp=1, pp=16, dp=64, zero=1, ep=8, sequence_parallel=False, schedule="zero-bubble"),
        ("recompute", "micro_batch", "interleave"),
        gpus_published=False,
    ),
    _deepseek(
        "DeepSeek-V3 671B-A37B (MoE, FP8)",
        DEEPSEEK_V3,
        "DeepSeek-V3 2024",
        deepseek_v3(),
        15360,
        180e3,
        Layout(tp=1, pp=16, dp=128, zero=1, ep=64, sequence_parallel=False, schedule="dualpipe"),
        ("recompute", "micro_batch", "interleave"),
        precision="fp8",
    ),
]

# Added with the performance tables (2026-12)
ADDED_RUNS: list[PublishedRun] = [
    PublishedRun(
        # compute hours over the whole run (batch ramp-up, failures and restarts included), so GPU-hours per 1e12
        # tokens: 1,082,990 / 0.366 = 2.959M, i.e. 116 s per 2,048 x 2,048-token step on 384 GPUs.  The blog's
        # checkpoint cadence (100 iterations in ~3 h) says ~108 s, and the ~150 TFLOPs quoted, read with
        # Megatron's eq. 3 count (full recompute), 104.5 s: the hours carry ~10% of downtime and ramp-up
        "BLOOM 176B on 384 A100 (1.08M compute hours / 366B tokens)",
        BLOOM,
        "BLOOM 2022",
        "Megatron-DeepSpeed",
        Architecture(
            layers=70,
            hidden=14336,
            heads=112,
            kv_heads=112,
            ffn_hidden=4 * 14336,
            vocab=250880,  # the script's --pad-vocab-size-to 250880 (250,680 tokens padded): what the GEMMs compute
            seq_len=2048,
            tied_embeddings=True,  # 176,247M parameters only with the input and output embeddings shared
            flash_attention=False,
        ),
        # the run's own script (tr11-176B-ml.slurm): TP4 x PP12 (one copy on 48 GPUs, data-parallel 8), micro-batch
        # 2, full activation recompute (--checkpoint-activations), DeepSpeed ZeRO stage 0 whose bf16 optimizer
        # "implements its own zero stage 1 equivalent"; no sequence parallelism (the Hugging Face blog: developed
        # after BLOOM was trained); DeepSpeed's pipeline, which does not interleave and reduces gradients after the
        # flush.  Not priced: the script's CUDA_LAUNCH_BLOCKING=1 (every kernel launch waits for the GPU, "or the
        # training will hang") and its batch ramp-up from 192 — no measurement of either's cost was found
        Layout(
            tp=4,
            pp=12,
            dp=8,
            zero=1,
            recompute="full",
            micro_batch=2,
            sequence_parallel=False,
            overlap=False,
        ),
        2048,
        1082990 / 0.366,
        metric=GPU_HOURS,
        # not a DGX: 4 x 100 Gb/s Omni-Path per 8 GPUs, a quarter of a DGX A100's 8 x 200 Gb/s HDR per GPU
        cluster=JEAN_ZAY,
    ),
    PublishedRun(
        # wall clock over 150,000 steps of 1,538 x 2,048 tokens (472B): GPU-hours per 1e12 tokens, restarts included
        "GPT-NeoX-20B on 96 A100-40GB (1,830 h wall clock)",
        NEOX,
        "GPT-NeoX 2022",
        "GPT-NeoX (EleutherAI, Megatron + DeepSpeed)",
        Architecture(
            layers=44,
            hidden=6144,
            heads=64,
            kv_heads=64,
            ffn_hidden=24576,
            vocab=50432,
            seq_len=2048,
            flash_attention=False,
        ),
        # the run's own configuration (gpt-neox configs/20B.yml, "as it was trained on 96x 40GB A100"): PP4 x TP2,
        # ZeRO stage 1, micro-batch 4 (x 32 accumulation steps x 12 = 1,536 of the paper's ~1,538), full activation
        # recompute (checkpoint-activations, one layer at a time); its synchronize-each-layer is not priced
        Layout(
            tp=2,
            pp=4,
            dp=12,
            zero=1,
            recompute="full",
            micro_batch=4,
            sequence_parallel=False,
            overlap=False,
        ),
        1538,
        96 * 1830 / (1538 * 2048 * 150000 / 1e12),
        gpu="A100-40GB",
        precision="fp16",
        metric=GPU_HOURS,
        cluster=NEOX_CLUSTER,  # 4 HDR HCAs per 8 GPUs: half a DGX A100's NIC per GPU
    ),
    PublishedRun(
        "Nemotron-4 340B on 6144 H100 (8.0 s, batch 2304)",
        NEMOTRON4,
        "Nemotron-4 340B 2024",
        MCORE,
        nemotron4_340b(),
        Layout(dp=6144),
        2304,
        8.0,
        gpu="H100",
        # the quoted table gives GPUs, batch and time; the layout (TP8 PP12 interleaved per the report, not
        # verified here) is searched
        free=("tp", "pp", "dp", "zero", "recompute", "micro_batch", "interleave", "sequence_parallel"),
    ),
]
