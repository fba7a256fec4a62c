"""Published training runs the planner is checked against, each with its source (tests and benchmarks use them).

Every figure here is as its paper or report prints it; what a source does not give (a GPU count, a pipeline
schedule, a micro-batch) is named in the run's ``free`` fields and searched by the planner the way ``aidc plan``
would for a user, never filled in from the published result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aidc.planner.architecture import Architecture
from aidc.planner.memory import Layout

NARAYANAN = (
    "Narayanan et al., Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM, "
    "SC'21, Table 1 (A100-80GB, seq 2048, vocab 51200, full recompute)"
)
KORTHIKANTI = (
    "Korthikanti et al., Reducing Activation Recomputation in Large Transformer Models, 2022, "
    "Tables 3 and 5 (A100-80GB, seq 2048, vocab 51200, micro-batch 1)"
)
SHOEYBI = (
    "Shoeybi et al., Megatron-LM: Training Multi-Billion Parameter Language Models Using Model Parallelism, 2019, "
    "Table 1 and §5.1 (DGX-2H V100 32GB; 1.2B on one GPU at 39 TF/s; 8.3B on 512 GPUs, 8-way model parallel, "
    "15.1 PF/s; seq 1024, vocab 51200, activation checkpointing)"
)
SMITH = (
    "Smith et al., Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B, 2022, system-throughput "
    "table (280/350/420 DGX A100 nodes: 60.1/50.2/44.4 s per iteration, batch 1920, seq 2048, TP8 PP35)"
)
LLAMA3 = (
    "Llama Team, The Llama 3 Herd of Models, 2024: Table 3 (405B: 126 layers, model dimension 16,384, FFN "
    "53,248, 128 heads, 8 KV heads, vocabulary 128,000, SwiGLU) and Table 4 (H100, BF16: TP8 CP1 PP16 DP64 "
    "on 8,192 GPUs at 430 TF/GPU; DP128 on 16,384 at 400; TP8 CP16 PP16 DP8, sequence 131,072, at 380; "
    "16M tokens per batch)"
)
LLAMA1 = (
    "Touvron et al., LLaMA: Open and Efficient Foundation Language Models, 2023: Table 2 (shapes; 1.0T tokens "
    "for 6.7B/13B, 1.4T for 32.5B/65.2B; 4M-token batches, seq 2048), §2.4 (65B on 2048 A100-80GB at 380 "
    "tokens/s/GPU) and Table 15 (GPU-hours 82,432 / 135,168 / 530,432 / 1,022,362)"
)
LLAMA2 = (
    "Touvron et al., Llama 2: Open Foundation and Fine-Tuned Chat Models, 2023: Table 1 (2.0T tokens, seq 4096, "
    "GQA for 34B and 70B), §2.2 (4M-token batches) and Table 2 (A100-80GB GPU-hours 184,320 / 368,640 / "
    "1,038,336 / 1,720,320)"
)
MPT = (
    "MosaicML, Introducing MPT-7B, 2023 (blog): 1T tokens on 440 A100-40GB in 9.5 days; 32 layers, d_model "
    "4096, 32 heads, seq 2048, FSDP, FlashAttention"
)
DEEPSEEK_V2 = (
    "DeepSeek-AI, DeepSeek-V2, 2024: §2-3 (60 layers, d 5120, 128 heads of 128, MLA kv 512 q 1536 rope 64, "
    "2 shared + 160 routed experts of 1536, top-6, first layer dense; batch 9216 x 4096; 16-way zero-bubble PP, "
    "8-way EP, ZeRO-1, no TP) and §3.2.3 (H800: 172.8K GPU-hours per trillion tokens; DeepSeek 67B 300.6K)"
)
DEEPSEEK_LLM = (
    "DeepSeek-AI, DeepSeek LLM, 2024: Table 2 (67B: 95 layers, d 8192, 64 heads, 8 KV heads, FFN 22016, "
    "vocab 102400, seq 4096, batch 4608); its H800 rate, 300.6K GPU-hours per trillion tokens, from "
    "DeepSeek-V2 §3.2.3"
)
DEEPSEEK_V3 = (
    "DeepSeek-AI, DeepSeek-V3 Technical Report, 2024: §4.2 (61 layers, d 7168, 128 heads of 128, MLA kv 512 "
    "q 1536 rope 64, 1 shared + 256 routed experts of 2048, top-8, first 3 layers dense FFN 18432, vocab "
    "129,280, seq 4096, batch 15360), §3.2 (2048 H800, PP16, EP64, ZeRO-1, FP8) and Table 1 / §1 (180K "
    "H800 GPU-hours per trillion tokens)"
)

GPU_HOURS = "GPU-hours per 1e12 tokens"
ITERATION = "iteration s"


@dataclass(frozen=True)
class Cluster:
    """The machine a run ran on where it is not the catalog GPU's reference node (a DGX): GPUs per node, and the
    NICs each node has and their line rate, which set each GPU's share of the scale-out network.  Taken from the
    run's own source, never fitted."""

    gpus_per_node: int
    nics_per_node: int
    nic_gbps: float  # line rate of one NIC
    source: str

    @property
    def nic_bytes_per_gpu(self) -> float:
        """Each GPU's share of its node's NICs, bytes/s (the NICs side by side; rings run one per NIC)."""
        return self.nics_per_node * self.nic_gbps * 1e9 / 8 / self.gpus_per_node


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
DGX_2H = Cluster(
    gpus_per_node=16,
    nics_per_node=8,
    nic_gbps=100,
    source="NVIDIA DGX-2H datasheet: 16 V100 32GB on NVSwitch, 8x 100 Gb/s InfiniBand (the catalog's V100-DGX2H node)",
)


@dataclass(frozen=True)
class PublishedRun:
    """One published run: the model, hardware and layout as its source gives them, and the measured figure.

    ``metric`` is seconds per iteration, or GPU-hours per trillion tokens as the source gives them (LLaMA 65B
    and DeepSeek: from throughput; MPT-7B: wall clock, restarts included; the other LLaMA/Llama 2 tables do not
    say), predicted at 100% goodput.  ``free`` names the layout fields the source does not give: the planner
    searches them (fastest that fits in memory), as it would for a user who left them out.
    """

    name: str
    source: str
    paper: str
    stack: str
    arch: Architecture
    layout: Layout
    global_batch: int
    published: float
    gpu: str = "A100-80GB"
    precision: str = "bf16"
    metric: str = ITERATION
    free: tuple[str, ...] = ()
    gpus_published: bool = True
    tflops_published: float = 0.0  # the source's own model TFLOP/s per GPU where it prints one beside the metric
    cluster: Cluster | None = None  # where the machine was not the catalog GPU's reference node (a DGX)

    @property
    def gpus(self) -> int:
        return self.layout.gpus

    @property
    def iteration_s(self) -> float:
        """The published figure as seconds per iteration (GPU-hours per 1e12 tokens converted back)."""
        if self.metric == ITERATION:
            return self.published
        tokens = self.global_batch * self.arch.seq_len
        return self.published * 3600 / self.gpus * tokens / 1e12


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


def _llama3_shape(seq_len: int) -> Architecture:
    """Llama 3.1 405B (Llama 3 Table 3)."""
    return Architecture(
        layers=126, hidden=16384, heads=128, kv_heads=8, ffn_hidden=53248, vocab=128000, seq_len=seq_len, glu=True
    )


def _llama3(seq_len: int, cp: int, dp: int, tflops: float) -> PublishedRun:
    arch = _llama3_shape(seq_len)
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


ALL_FREE = ("tp", "pp", "dp", "zero", "recompute", "micro_batch", "interleave", "sequence_parallel", "ep")


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


def _mla_moe(
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


OTHER_RUNS: list[PublishedRun] = [
    _shoeybi(1.2, 1536, 16, 40, 1, 1, 39.0),
    _shoeybi(8.3, 3072, 32, 72, 8, 64, 15.1e3 / 512),
    _mtnlg(280, 60.1),
    _mtnlg(350, 50.2),
    _mtnlg(420, 44.4),
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
        _mla_moe(60, 5120, 160, 2, 6, 1536, 1, 12288, 102400, 0),
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
        _mla_moe(61, 7168, 256, 1, 8, 2048, 3, 18432, 129280, 4),
        15360,
        180e3,
        Layout(tp=1, pp=16, dp=128, zero=1, ep=64, sequence_parallel=False, schedule="dualpipe"),
        ("recompute", "micro_batch", "interleave"),
        precision="fp8",
    ),
]

NEMO_2407 = (
    "NVIDIA NeMo Framework performance summary, NeMo 24.07 container, DGX-H100, FP8 (NVIDIA/NeMo "
    "docs/source/performance/performance_summary.md, pre-training table): #GPUs, GBS, MBS, sequence length, "
    "TP/PP/CP/VP, tokens/s/GPU and model TFLOP/s/GPU per model"
)
BRIDGE_2511 = (
    "NVIDIA Megatron-Bridge performance summary, 25.11 NeMo container (NVIDIA-NeMo/Megatron-Bridge "
    "docs/performance-summary.md, pre-training tables for DGX-H100, DGX-B200, DGX-GB200): #GPUs, precision, GBS, "
    "MBS, sequence length, FSDP, TP/PP/CP/VP/EP, tokens/s/GPU and model TFLOP/s/GPU; MoE runs force-balance the "
    "tokens over experts and drop none"
)
NEMOTRON4 = (
    "NVIDIA, Nemotron-4 340B Technical Report, 2024: 768 DGX H100 nodes; Table 2, the longest stage (7.6T "
    "tokens): 6144 GPUs, batch 2304 x 4096, 8.0 s per iteration, MFU ~41% of the 989 TF BF16 peak (as quoted by "
    "Epoch AI, aiportalx.com/nvidia/nemotron-4-340b); shape from the released model_config.yaml: 96 layers, "
    "hidden 18432, 96 heads, 8 KV groups, FFN 73728 (one FFN input, not gated), vocabulary 256,000"
)
QWEN3 = (
    "Qwen3 MoE configurations (Qwen/Qwen3-235B-A22B: 94 layers, hidden 4096, 64 query heads of 128, 4 KV heads, "
    "128 experts of 1536, top-8, vocabulary 151,936; Qwen3-30B-A3B: 48 layers, hidden 2048, 32 heads of 128, 4 KV "
    "heads, 128 experts of 768, top-8)"
)
GPT3_SHAPE = "Brown et al. 2020, Table 2.1 (GPT-3 175B: 96 layers, d_model 12,288, 96 heads, context 2,048)"
LLAMA3_SHAPES = (
    "Llama 3 8B / 70B shapes (Llama 3 paper Table 3 and the released configs): 32 / 80 layers, hidden 4096 / 8192, "
    "FFN 14,336 / 28,672, 32 / 64 heads, 8 KV heads, vocabulary 128,256"
)
BLOOM = (
    "BigScience, BLOOM: A 176B-Parameter Open-Access Multilingual Language Model, 2022 (arXiv 2211.05100): 384 "
    "A100-80GB on Jean Zay (48 nodes), Megatron-DeepSpeed, bf16; 70 layers, hidden 14,336, 112 heads, sequence "
    "2,048, vocabulary 250,680, global batch 2,048; 366B tokens; 1,082,990 compute hours (as summarised at "
    "ai-papers.xuzou.cn/papers/bloom_2022); BigScience model page: one copy of the model takes 48 GPUs, training "
    "throughput about 150 TFLOPs (bigscience.notion.site); Hugging Face blog 'The Technology Behind BLOOM "
    "Training' (2022): checkpoint every ~3 h = 100 iterations, no sequence parallelism, embedding counted as a "
    "pipeline layer"
)
NEOX = (
    "Black et al., GPT-NeoX-20B: An Open-Source Autoregressive Language Model, 2022: 12 servers of 8 A100-SXM4-40GB "
    "(96 GPUs), GPT-NeoX (Megatron + DeepSpeed), fp16, ZeRO; 44 layers, d_model 6,144, d_ff 24,576, 64 heads, "
    "context 2,048, vocabulary padded to 50,432; batch 1,538 contexts, 150,000 steps; model card: tensor parallel "
    "2, pipeline parallel 4; training time 1,830 hours (as summarised at nl2code.github.io/posts/GPT-NeoX)"
)
# NVIDIA's own training stack since 2024: Megatron-Core with Transformer Engine (fused attention, FP8), driven by
# NeMo or Megatron-Bridge.  Not Megatron-LM as Narayanan/Korthikanti ran it in 2021-22 (no TE, no FP8, no
# overlapped gradient reduction), so it gets its own GEMM factor.
MCORE = "Megatron-Core + Transformer Engine (NeMo / Megatron-Bridge, 2024+)"


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


def _throughput_run(
    label: str,
    source: str,
    paper: str,
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
    tokens_per_gpu_s: float,
    tflops: float,
    shape_source: str,
    ep: int = 1,
    fsdp: bool = False,
) -> PublishedRun:
    """A performance-table row: the layout as printed; tokens/s/GPU turned into seconds per iteration
    (batch x sequence / (tokens/s/GPU x GPUs)), which needs no FLOP count.  The tables do not say whether
    activations are recomputed, nor the optimizer sharding or sequence parallelism under DDP: those are searched."""
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
        f"{source}; shape: {shape_source}",
        paper,
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


def _nemo(
    label: str,
    arch: Architecture,
    gpus: int,
    batch: int,
    mb: int,
    tp: int,
    pp: int,
    cp: int,
    vp: int,
    tok: float,
    tflops: float,
) -> PublishedRun:
    return _throughput_run(
        label,
        NEMO_2407,
        "NeMo 24.07 perf",
        arch,
        "H100",
        "fp8",
        gpus,
        batch,
        mb,
        tp,
        pp,
        cp,
        vp,
        tok,
        tflops,
        _shape_source(label),
    )


def _bridge(
    label: str,
    arch: Architecture,
    gpu: str,
    precision: str,
    gpus: int,
    batch: int,
    mb: int,
    tp: int,
    pp: int,
    cp: int,
    vp: int,
    ep: int,
    tok: float,
    tflops: float,
    fsdp: bool = False,
) -> PublishedRun:
    return _throughput_run(
        label,
        BRIDGE_2511,
        "Megatron-Bridge 25.11 perf",
        arch,
        gpu,
        precision,
        gpus,
        batch,
        mb,
        tp,
        pp,
        cp,
        vp,
        tok,
        tflops,
        _shape_source(label),
        ep=ep,
        fsdp=fsdp,
    )


_DSV3 = _mla_moe(61, 7168, 256, 1, 8, 2048, 3, 18432, 129280, 4)

NEW_RUNS: list[PublishedRun] = [
    # NeMo 24.07, DGX-H100, FP8: label, arch, GPUs, GBS, MBS, TP, PP, CP, VP, tokens/s/GPU, model TFLOP/s/GPU
    _nemo("GPT-3 175B", gpt3_175b(), 128, 256, 1, 4, 8, 1, 6, 726, 782),
    _nemo("GPT-3 175B", gpt3_175b(), 512, 2048, 2, 4, 8, 1, 6, 782, 842),
    _nemo("Llama 2 7B", llama2_shape("7B"), 8, 128, 1, 1, 1, 1, 1, 16847, 776),
    _nemo("Llama 2 13B", llama2_shape("13B"), 16, 128, 1, 1, 4, 1, 10, 8646, 754),
    _nemo("Llama 2 70B", llama2_shape("70B"), 64, 128, 1, 4, 4, 1, 20, 1707, 759),
    _nemo("Nemotron-4 340B", nemotron4_340b(), 128, 32, 1, 8, 8, 1, 12, 322, 678),
    _nemo("Llama 3 8B", llama3_shape("8B", 8192), 8, 128, 1, 1, 1, 2, 1, 12036, 697),
    _nemo("Llama 3 70B", llama3_shape("70B", 8192), 64, 128, 1, 4, 4, 2, 5, 1533, 738),
    # Megatron-Bridge 25.11: label, arch, GPU, precision (FP8-CS/MXFP8 as fp8), GPUs, GBS, MBS, TP, PP, CP, VP,
    # EP, tokens/s/GPU, model TFLOP/s/GPU; VP "n/a" is 1
    _bridge("Llama 3 8B", llama3_shape("8B", 8192), "H100", "fp8", 8, 128, 1, 1, 1, 1, 1, 1, 14451, 744, fsdp=True),
    _bridge("Llama 3 70B", llama3_shape("70B", 8192), "H100", "fp8", 64, 128, 1, 4, 8, 1, 5, 1, 1602, 719),
    _bridge("Llama 3.1 405B", _llama3_shape(8192), "H100", "fp8", 1024, 512, 1, 8, 8, 2, 8, 1, 292, 737),
    _bridge("Qwen3 30B-A3B (MoE)", qwen3_moe("30B-A3B"), "H100", "fp8", 16, 512, 2, 1, 2, 1, 24, 8, 5275, 121),
    _bridge("Qwen3 235B-A22B (MoE)", qwen3_moe("235B-A22B"), "H100", "fp8", 256, 2048, 1, 2, 8, 1, 4, 32, 1575, 233),
    _bridge("Llama 3 8B", llama3_shape("8B", 8192), "B200", "fp8", 8, 128, 2, 1, 1, 1, 1, 1, 30624, 1576),
    _bridge("Llama 3.1 405B", _llama3_shape(8192), "B200", "fp8", 128, 64, 1, 4, 8, 2, 8, 1, 661, 1667),
    _bridge("Qwen3 30B-A3B (MoE)", qwen3_moe("30B-A3B"), "B200", "fp8", 8, 512, 1, 1, 1, 1, 1, 8, 9299, 214),
    _bridge("Qwen3 235B-A22B (MoE)", qwen3_moe("235B-A22B"), "B200", "fp8", 64, 1024, 1, 1, 8, 1, 2, 8, 3269, 484),
    _bridge("Llama 3 8B", llama3_shape("8B", 8192), "GB200-NVL72", "fp8", 8, 128, 2, 1, 1, 1, 1, 1, 31508, 1622),
    _bridge(
        "Llama 3 70B", llama3_shape("70B", 8192), "GB200-NVL72", "fp8", 64, 256, 2, 1, 1, 1, 1, 1, 4312, 1937, fsdp=True
    ),
    _bridge("Llama 3.1 405B", _llama3_shape(8192), "GB200-NVL72", "fp8", 256, 1536, 1, 4, 16, 1, 4, 1, 813, 2053),
    _bridge("DeepSeek-V3 (MoE, no MTP)", _DSV3, "GB200-NVL72", "bf16", 256, 4096, 1, 1, 4, 1, 4, 64, 3139, 782),
    _bridge(
        "Qwen3 235B-A22B (MoE)", qwen3_moe("235B-A22B"), "GB200-NVL72", "bf16", 256, 8192, 1, 1, 8, 1, 3, 32, 4916, 728
    ),
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
            vocab=250680,
            seq_len=2048,
            tied_embeddings=True,  # 176,247M parameters only with the input and output embeddings shared
            flash_attention=False,
        ),
        # one model copy spans 48 GPUs (data-parallel 8) as TP4 x PP12 (the 4 and 12 as a secondary summary of
        # the run's scripts computes with them: TP all-reduce share (4-1)/4, bubble 11/m); no sequence
        # parallelism (the Hugging Face blog: developed after BLOOM was trained); DeepSpeed's pipeline, whose
        # gradient reduction follows the flush
        Layout(tp=4, pp=12, dp=8, sequence_parallel=False, overlap=False),
        2048,
        1082990 / 0.366,
        metric=GPU_HOURS,
        free=("zero", "recompute", "micro_batch"),  # DeepSpeed's pipeline engine does not interleave
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
        Layout(tp=2, pp=4, dp=12, zero=1, sequence_parallel=False, overlap=False),
        1538,
        96 * 1830 / (1538 * 2048 * 150000 / 1e12),
        gpu="A100-40GB",
        precision="fp16",
        metric=GPU_HOURS,
        free=("recompute", "micro_batch"),
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

RUNS: list[PublishedRun] = MEGATRON_RUNS + OTHER_RUNS + NEW_RUNS
