"""Inference sizing: replicas and GPUs for a request rate, KV memory, and the memory-bandwidth bound on latency."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from aidc.planner.catalog import GPU, Catalog
from aidc.planner.memory import FRAMEWORK_BYTES, USABLE_FRACTION
from aidc.planner.workload import InferenceService

MBU = 0.7  # achieved / peak HBM bandwidth in decode (trade guidance 0.6–0.85)
PREFILL_MFU = 0.5  # prefill is compute-bound GEMMs (inf)
BYTES = {"fp8": 1.0, "bf16": 2.0, "fp16": 2.0, "tf32": 4.0, "fp32": 4.0}


@dataclass(frozen=True)
class ServingPlan:
    name: str
    gpu: str
    tp: int
    batch: int
    replicas: int
    gpus: int
    weights_gb: float
    kv_gb_per_replica: float
    kv_gb_total: float
    ttft_ms: float
    tpot_ms: float
    tpot_bound_ms: float  # TPOT at batch 1: below this no batching helps
    tokens_per_s_per_replica: float
    feasible: bool
    binding: str | None = None
    alternative: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _decode_step(
    svc: InferenceService, gpu: GPU, tp: int, batch: int, weights: float, kv_avg: float, active: float
) -> float:
    """Seconds per output token: bytes read per step over HBM bandwidth, or the compute, whichever is longer."""
    memory = (weights + batch * kv_avg) / tp / (gpu.hbm_bytes_per_s * MBU)
    compute = 2 * active * batch / (tp * gpu.peak(svc.precision) * PREFILL_MFU)
    return max(memory, compute)


def size_service(svc: InferenceService, gpu: GPU, catalog: Catalog) -> ServingPlan:
    arch = svc.model.architecture()
    w_bytes = arch.params * BYTES[svc.precision]
    kv_tok = arch.kv_bytes_per_token(BYTES[svc.kv_precision or svc.precision])
    kv_seq = kv_tok * (svc.prompt_tokens + svc.output_tokens)
    kv_avg = kv_tok * (svc.prompt_tokens + svc.output_tokens / 2)
    usable = gpu.hbm_bytes * USABLE_FRACTION - FRAMEWORK_BYTES
    tps = (
        [svc.tp]
        if svc.tp
        else [t for t in (1, 2, 4, 8, 16, 32, 64, 72) if t <= gpu.nvlink_domain and arch.heads % t == 0 or t == 1]
    )
    options: list[ServingPlan] = []
    misses: list[ServingPlan] = []
    for tp in tps:
        room = usable * tp - w_bytes
        max_b = min(svc.max_batch, int(room // kv_seq)) if room > 0 else 0
        ttft = 2 * arch.active_params * svc.prompt_tokens / (tp * gpu.peak(svc.precision) * PREFILL_MFU)
        bound = _decode_step(svc, gpu, tp, 1, w_bytes, kv_avg, arch.active_params)
        batch = max_b
        if svc.tpot_ms is not None:
            while (
                batch > 1 and _decode_step(svc, gpu, tp, batch, w_bytes, kv_avg, arch.active_params) * 1e3 > svc.tpot_ms
            ):
                batch = batch * 3 // 4 if batch > 8 else batch - 1
        tpot = _decode_step(svc, gpu, tp, max(batch, 1), w_bytes, kv_avg, arch.active_params)
        per_request = svc.output_tokens * tpot / max(batch, 1) + ttft / max(batch, 1)
        replicas = math.ceil(svc.requests_per_s * per_request) if batch else 0
        plan = ServingPlan(
            svc.name,
            gpu.name,
            tp,
            batch,
            replicas,
            replicas * tp,
            w_bytes / 1e9,
            batch * kv_seq / 1e9,
            0.0,
            ttft * 1e3,
            tpot * 1e3,
            bound * 1e3,
            max(batch, 1) / tpot,
            True,
        )
        problem = None
        if max_b < 1:
            problem = f"memory: {w_bytes / 1e9:.0f} GB of weights leave no room for one sequence's KV cache on TP{tp}"
        elif svc.tpot_ms is not None and bound * 1e3 > svc.tpot_ms:
            problem = (
                f"memory bandwidth: TPOT target {svc.tpot_ms:g} ms is below the bound "
                f"{bound * 1e3:.1f} ms at batch 1 on TP{tp}"
            )
        elif svc.ttft_ms is not None and ttft * 1e3 > svc.ttft_ms:
            problem = f"prefill compute: TTFT {ttft * 1e3:.0f} ms exceeds the {svc.ttft_ms:g} ms target on TP{tp}"
        if problem:
            misses.append(replace(plan, feasible=False, binding=problem))
        else:
            concurrency = svc.requests_per_s * (ttft + svc.output_tokens * tpot)
            options.append(replace(plan, kv_gb_total=concurrency * kv_seq / 1e9))
    if options:
        return min(options, key=lambda p: (p.gpus, p.tpot_ms))
    nearest = min(misses, key=lambda p: p.tpot_bound_ms)
    return replace(nearest, alternative=_alternative(svc, nearest, catalog))


def _alternative(svc: InferenceService, miss: ServingPlan, catalog: Catalog) -> str:
    """The nearest change that makes the service feasible: a looser target, or a GPU that meets it."""
    if miss.binding and miss.binding.startswith("memory bandwidth"):
        text = f"relax tpot_ms to ≥ {math.ceil(miss.tpot_bound_ms * 1.05)} ms"
    elif miss.binding and miss.binding.startswith("prefill"):
        text = f"relax ttft_ms to ≥ {math.ceil(miss.ttft_ms * 1.05)} ms or use shorter prompts"
    else:
        text = "use a GPU with more memory, a larger NVLink domain, or fp8 weights"
    for name, other in sorted(catalog.gpus.items(), key=lambda kv: -kv[1].hbm_tbps):
        if name == svc.gpu:
            continue
        trial = size_service(svc.model_copy(update={"gpu": name}), other, _NoAlternatives(catalog))
        if trial.feasible:
            return f"{text}, or move to {name} (TP{trial.tp}, {trial.gpus} GPUs)"
    return text


class _NoAlternatives(Catalog):
    """A catalog view that stops the alternative search from recursing."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__({}, catalog.files)
