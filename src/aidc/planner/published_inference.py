"""Published inference measurements the serving model is checked against, each with its source.

Nothing here is fitted: the serving model's constants (serving_step.Engine) were set before these cases were
scored, and the benchmark (benchmarks/planner_accuracy.py, the inference section) reports every case as held out.
What a source does not state is an assumption written beside the case, never set from its figure.

Three kinds of figure:

- ``throughput``: output tokens/s of one replica fed requests with no delay (TensorRT-LLM's offline benchmark) —
  predicted by inference.saturated_throughput;
- ``tpot``: seconds per output token at a stated concurrency and cached length (DeepSeek's production decode, the
  RTP-LLM reproduction) — predicted by serving_step.step_time / tokens kept per step;
- ``prefill``: seconds for a GPU to prefill a stated batch of prompts — predicted by serving_step.prefill_time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aidc.planner.catalog import Catalog
from aidc.planner.inference import saturated_throughput
from aidc.planner.serving_step import BYTES, Shard, prefill_time, step_time
from aidc.planner.workload import InferenceService, ModelSpec

TRTLLM = (
    "NVIDIA TensorRT-LLM, docs/source/performance/perf-overview.md (github.com/NVIDIA/TensorRT-LLM, commit "
    "00f37686aa854010d68bcbd0f4ab000221541ca6), Throughput Measurements: 'Total Output Throughput (tokens/sec)', "
    "requests at an infinite rate, FP8 ModelOpt checkpoints, PyTorch backend, kv_cache_free_gpu_mem_fraction 0.90-0.95"
)
DEEPSEEK_DAY6 = (
    "DeepSeek-AI, DeepSeek-V3/R1 Inference System Overview (github.com/deepseek-ai/open-infra-index, "
    "202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_overview.md): decode EP144 over 18 "
    "nodes; ~14.8k output tokens/s per H800 node; average output speed 20-22 tokens/s; average KV-cache length per "
    "output token 4,989"
)
RTP_LLM = (
    "Alibaba RTP-LLM, 'RTP-LLM DeepSeek Reproduce Tech Report' (2025): H800 RoCE, PD-disaggregated, TP1 DP=EP; "
    "4K input / 2K output; prefill EP32: one GPU runs 2 × 4K requests in 1.5 s; decode EP144 (128 + 16 redundant): "
    "at 13,200 concurrent requests, 20 tokens/s per user and 1,850 tokens/s per GPU; MTP speculative decoding"
)
MTP = "DeepSeek-V3 Technical Report §5.4.3: acceptance of the second (MTP) token 85-90%"

LLAMA31_8B = ModelSpec(layers=32, hidden=4096, heads=32, kv_heads=8, ffn_hidden=14336, vocab=128256, glu=True)
LLAMA3_70B = ModelSpec(layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=128256, glu=True)
LLAMA31_405B = ModelSpec(layers=126, hidden=16384, heads=128, kv_heads=8, ffn_hidden=53248, vocab=128256, glu=True)
# Llama 3 architectures: The Llama 3 Herd of Models (2024), Table 3 (layers, model dimension, FFN dimension,
# attention heads, key/value heads 8, vocabulary 128,000 → 128,256 in the released tokenizer (inf))
DEEPSEEK_V3 = ModelSpec(
    layers=61,
    hidden=7168,
    heads=128,
    head_dim=128,
    kv_lora_rank=512,
    q_lora_rank=1536,
    rope_head_dim=64,
    ffn_hidden=2048,
    glu=True,
    experts=256,
    top_k=8,
    shared_experts=1,
    route_nodes=4,
    dense_layers=3,
    dense_ffn_hidden=18432,
    vocab=129280,
)
# DeepSeek-V3 Technical Report §4.2 (as in published.py and examples/workloads/deepseek-v3-moe.yaml)


@dataclass(frozen=True)
class InferenceCase:
    name: str
    source: str
    stack: str
    gpu: str
    model: ModelSpec
    kind: str  # "throughput" (tokens/s per replica), "tpot" (s per token), "prefill" (s)
    published: float
    prompt_tokens: int
    output_tokens: int
    precision: str = "fp8"
    kv_precision: str | None = None
    tp: int = 1
    ep: int = 1
    concurrency: int = 0  # tpot: sequences in flight per replica
    context: float = 0.0  # tpot: mean cached tokens per sequence
    speculative_tokens: int = 0
    acceptance: float = 0.85
    assumptions: tuple[str, ...] = field(default=())


def _trt(model: str, spec: ModelSpec, gpu: str, tp: int, lengths: tuple[int, int], tokens_s: float) -> InferenceCase:
    isl, osl = lengths
    return InferenceCase(
        f"TRT-LLM {model} {gpu} TP{tp} FP8 {isl}/{osl}",
        TRTLLM,
        "TensorRT-LLM",
        gpu,
        spec,
        "throughput",
        tokens_s,
        isl,
        osl,
        tp=tp,
        assumptions=(
            "KV cache in FP8 like the weights (the checkpoints' KV quantisation is not stated)",
            "engine max batch 2048 and max tokens per step 8192 (trtllm-bench's tuned values are not published)",
            "KV cache 0.90 of the memory the weights leave",
        ),
    )


_TRT_TABLE: list[tuple[str, ModelSpec, str, int, dict[tuple[int, int], float]]] = [
    # (model, spec, GPU, TP, {(ISL, OSL): Total Output Throughput tokens/s}) — perf-overview.md tables
    # "Llama 3.1 8B", "Llama 3.3 70B", "Llama 3.1 405B"
    (
        "Llama 3.1 8B",
        LLAMA31_8B,
        "H100",
        1,
        {(128, 2048): 22714, (1000, 1000): 15220, (2048, 128): 3450, (5000, 500): 3459, (20000, 2000): 1351},
    ),
    (
        "Llama 3.1 8B",
        LLAMA31_8B,
        "H200",
        1,
        {(128, 2048): 26221, (1000, 1000): 17744, (2048, 128): 3538, (5000, 500): 3902, (20000, 2000): 1804},
    ),
    (
        "Llama 3.3 70B",
        LLAMA3_70B,
        "H100",
        2,
        {(128, 2048): 6651, (1000, 1000): 4205, (2048, 128): 762, (5000, 500): 898, (20000, 2000): 437},
    ),
    (
        "Llama 3.3 70B",
        LLAMA3_70B,
        "H200",
        1,
        {(128, 2048): 4336, (1000, 1000): 2909, (2048, 128): 442, (5000, 500): 566, (20000, 2000): 283},
    ),
    (
        "Llama 3.1 405B",
        LLAMA31_405B,
        "H100",
        8,
        {(128, 2048): 4340, (1000, 1000): 2919, (2048, 128): 453, (5000, 500): 610, (20000, 2000): 345},
    ),
    (
        "Llama 3.1 405B",
        LLAMA31_405B,
        "H200",
        8,
        {(128, 2048): 5348, (1000, 1000): 3330, (2048, 128): 456, (5000, 500): 650, (20000, 2000): 505},
    ),
]

CASES: list[InferenceCase] = [
    _trt(model, spec, gpu, tp, lengths, value)
    for model, spec, gpu, tp, table in _TRT_TABLE
    for lengths, value in table.items()
]
CASES += [
    InferenceCase(
        "DeepSeek-V3/R1 production decode, H800 EP144 (per-user TPOT)",
        DEEPSEEK_DAY6,
        "DeepSeek",
        "H800",
        DEEPSEEK_V3,
        "tpot",
        1 / 21.0,  # 20-22 tokens/s per user: the middle
        4989,
        1,
        kv_precision="bf16",
        ep=144,
        concurrency=round(144 * 14_800 / 8 / 21.0),  # tokens/s per GPU / tokens/s per user, over the 144 GPUs
        context=4989,
        speculative_tokens=1,
        assumptions=(
            "KV cache in BF16 (the overview says MLA runs in BF16, not how the cache is stored)",
            f"one MTP draft token at 85% acceptance ({MTP}; the overview does not say MTP was on)",
            "concurrency from throughput / per-user speed: 14.8k/8 ÷ 21 ≈ 88 sequences per GPU",
        ),
    ),
    InferenceCase(
        "RTP-LLM DeepSeek-V3 decode, H800 EP144, 13,200 concurrent (per-user TPOT)",
        RTP_LLM,
        "RTP-LLM",
        "H800",
        DEEPSEEK_V3,
        "tpot",
        1 / 20.0,
        4096,
        2048,
        kv_precision="bf16",
        ep=144,
        concurrency=13_200,
        context=4096 + 1024,
        speculative_tokens=1,
        assumptions=(
            "KV cache in BF16 (not stated)",
            f"one MTP draft token at 85% acceptance ({MTP})",
            "mean cached length prompt + half the answer",
        ),
    ),
    InferenceCase(
        "RTP-LLM DeepSeek-V3 prefill, H800 EP32, 2 × 4K prompts per GPU",
        RTP_LLM,
        "RTP-LLM",
        "H800",
        DEEPSEEK_V3,
        "prefill",
        1.5,
        4096,
        0,
        kv_precision="bf16",
        ep=32,
        concurrency=2,
        assumptions=("no prefix-cache hits (the report says the test did not simulate the cache)",),
    ),
]


@dataclass(frozen=True)
class InferencePrediction:
    case: InferenceCase
    predicted: float

    @property
    def error(self) -> float:
        """Signed relative error of the predicted figure (a throughput too high or a time too short: > 0 and < 0)."""
        return self.predicted / self.case.published - 1.0


def predict(case: InferenceCase, catalog: Catalog) -> InferencePrediction:
    gpu = catalog.gpu(case.gpu)
    shard = Shard(case.tp, case.ep)
    arch = case.model.architecture()
    if case.kind == "throughput":
        svc = InferenceService(
            name=case.name,
            model=case.model,
            gpu=case.gpu,
            precision=case.precision,
            requests_per_s=1.0,
            prompt_tokens=case.prompt_tokens,
            output_tokens=case.output_tokens,
            max_batch=2048,
            tp=case.tp,
            kv_precision=case.kv_precision,
        )
        return InferencePrediction(case, saturated_throughput(svc, gpu, shard))
    if case.kind == "tpot":
        kv_tok = arch.kv_bytes_per_token(BYTES[case.kv_precision or case.precision])
        k, a = case.speculative_tokens, case.acceptance
        kept = 1 + sum(a**i for i in range(1, k + 1))
        step = step_time(arch, gpu, shard, case.precision, kv_tok, case.concurrency, case.context, verify=1 + k).total
        return InferencePrediction(case, step / kept)
    tokens = case.concurrency * case.prompt_tokens * shard.gpus  # the replica's step: every GPU's prompts
    return InferencePrediction(case, prefill_time(arch, gpu, shard, case.precision, tokens, case.prompt_tokens))
