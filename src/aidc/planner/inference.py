"""Inference sizing: replicas and GPUs for a request rate under continuous batching, to latency targets at a
percentile (P99 by default), with chunked, inline or disaggregated prefill and MoE expert parallelism.

Per replica (``tp`` GPUs, or ``ep`` GPUs for an expert-parallel MoE replica):

- **batch**: the most sequences in flight: the KV cache each needs at its full length (prompt + answer; the engine
  admits a sequence only when it can finish without eviction) in what the weights leave of HBM, capped by
  ``max_batch``, and lowered until the step time meets the TPOT target at the percentile;
- **step time** (serving_step.py): weights read once per step, KV reads per sequence, GEMMs when compute-bound,
  tensor-parallel all-reduces, MoE experts actually touched;
- **prefill**: chunked — each step carries up to ``chunk_tokens`` prompt tokens beside the decodes, so a prompt
  takes ⌈prompt/chunk⌉ slower steps and every decode step is slowed by its share; inline — a prompt runs in a step
  of its own, stalling every decode for the whole prefill (what P99 TPOT sees once prefills come more often than
  one step in a hundred); disaggregated — prefill replicas of their own, the KV cache sent to a decode replica over
  the NIC, decode steps free of prefill;
- **queueing** (queueing.py): arrivals are Poisson; a request waits for a free sequence slot (c = replicas × batch
  servers, holding time = its whole life) and for a prefill rank (every attention rank of every replica, or of the
  prefill pool when disaggregated, behind a load-aware router: one M/G/c); the replicas are the fewest for which
  the wait at the percentile plus the prefill meets the TTFT target, not just the mean load (Little's law), which
  a request rate near capacity would break;
- **TPOT** is per request, (latency − TTFT)/(tokens − 1) as vLLM's benchmark computes it, at the percentile across
  requests; the gap of one step at the percentile (``itl_ms``) is reported beside it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import GPU, Catalog
from aidc.planner.memory import FRAMEWORK_BYTES, USABLE_FRACTION
from aidc.planner.queueing import wait_percentile
from aidc.planner.serving_step import (
    BYTES,
    DEFAULT_ENGINE,
    Engine,
    Shard,
    experts_touched,
    kv_split,
    prefill_time,
    step_time,
    weight_bytes_per_gpu,
)
from aidc.planner.workload import InferenceService

DEFAULT_CHUNK = 2048  # prompt tokens per step under chunked prefill when the search is not asked for (inf)
# chunk sizes tried when the workload leaves chunk_tokens out: a small chunk keeps decodes fast but prefills slowly
# (TTFT, prefill queueing), a large one the reverse; the plan takes the one needing the fewest GPUs
CHUNKS = (256, 512, 1024, 2048, 4096, 8192)
MAX_BATCH_PER_RANK = (
    256  # sequences in flight per attention rank when max_batch is not given (vLLM's default max_num_seqs, inf)
)
# coefficient of variation² of a request's service time (answer lengths vary): 1 as for exponential lengths; the
# band spans 0 (all answers one length) to 2
SERVICE_CV2 = 1.0

# Each unstated serving assumption with the values the band re-prices at (Engine field or "service_cv2": low, high)
ASSUMPTIONS: dict[str, tuple[str, float, float]] = {
    "mbu": ("achieved HBM bandwidth in decode (0.6–0.85 of the datasheet)", 0.6, 0.85),
    "matmul_efficiency": ("GEMM efficiency of the serving stack (×0.8–1.1)", 0.8, 1.1),
    "allreduce_step_s": ("small all-reduce latency per ring step (3–20 µs)", 3e-6, 20e-6),
    "step_overhead_s": ("scheduler/launch time per step (0.2–3 ms)", 0.2e-3, 3e-3),
    "service_cv2": ("spread of answer lengths (c_s² 0–2)", 0.0, 2.0),
    "ep_overlap": ("MoE all-to-all hidden by micro-batching (0–60%)", 0.0, 0.6),
}


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
    ttft_ms: float  # at the percentile, queueing included
    tpot_ms: float  # a request's TPOT, (latency − TTFT)/(tokens − 1), at the percentile across requests
    tpot_bound_ms: float  # TPOT at batch 1: below this no batching helps
    tokens_per_s_per_replica: float
    feasible: bool
    binding: str | None = None
    alternative: str | None = None
    ep: int = 1
    prefill: str = "chunked"
    percentile: float = 99.0
    ttft_service_ms: float = 0.0  # prefill alone, no queue
    tpot_mean_ms: float = 0.0
    prefill_replicas: int = 0  # disaggregated: the prefill pool (its GPUs are in `gpus`)
    kv_transfer_ms: float = 0.0
    experts_read: float = 0.0  # MoE: distinct routed experts a decode step reads per layer
    utilization: float = 0.0  # busy share of the sequence slots
    itl_ms: float = 0.0  # one step's gap between tokens at the percentile across steps
    chunk_tokens: int = 0  # chunked prefill: prompt tokens per attention rank and step (given or searched)
    tpot_band: tuple[float, float] = (1.0, 1.0)
    ttft_band: tuple[float, float] = (1.0, 1.0)
    assumptions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: a time the replicas cannot bound (an overloaded queue) is null, not Infinity."""

        def finite(value: object) -> object:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, tuple):
                return [finite(v) for v in value]
            return value

        return {k: finite(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Operating:
    """One replica at a batch: the step times and what a request sees, before queueing."""

    batch: int
    tpot_mean: float
    tpot_p: float  # a request's TPOT (its answer's mean step) at the percentile across requests
    ttft_service: float  # prefill (chunks or its own step), no waiting
    prefill_server: float  # seconds of the replica's prefill capacity one request takes
    kv_transfer: float = 0.0
    itl_p: float = 0.0  # one step's gap at the percentile across steps (a stall shows here first)


class Service:
    """The physics of one service on one GPU model and shard, at any batch."""

    def __init__(
        self,
        svc: InferenceService,
        gpu: GPU,
        shard: Shard,
        engine: Engine = DEFAULT_ENGINE,
        chunk: int | None = None,
    ) -> None:
        self.svc, self.gpu, self.shard, self.engine = svc, gpu, shard, engine
        self.arch: Architecture = svc.model.architecture()
        self.kv_tok = self.arch.kv_bytes_per_token(BYTES[svc.kv_precision or svc.precision])
        self.chunk = chunk or svc.chunk_tokens or DEFAULT_CHUNK
        self.max_batch = svc.max_batch or MAX_BATCH_PER_RANK * shard.ep
        k, a = svc.speculative_tokens, svc.acceptance
        self.verify = 1 + k  # tokens each decode step runs per sequence
        self.emitted = 1 + sum(a**i for i in range(1, k + 1))  # tokens it keeps on average
        self.context = svc.prompt_tokens + svc.output_tokens / 2  # mean cached length while decoding

    def slots(self) -> int:
        """Sequences the KV cache holds per replica (each at its full length), within max_batch."""
        weights = weight_bytes_per_gpu(self.arch, self.shard, BYTES[self.svc.precision])
        room = self.gpu.hbm_bytes * USABLE_FRACTION - FRAMEWORK_BYTES - weights
        per_seq = (self.svc.prompt_tokens + self.svc.output_tokens) * self.kv_tok / kv_split(self.arch, self.shard)
        per_gpu = int(room // per_seq) if room > 0 else 0
        return min(self.max_batch, per_gpu * self.shard.ep)

    def _step(self, decode: float, prefill: float = 0.0) -> float:
        s = self.svc
        return step_time(
            self.arch,
            self.gpu,
            self.shard,
            s.precision,
            self.kv_tok,
            decode,
            self.context,
            prefill,
            s.prompt_tokens,
            self.verify,
            self.engine,
        ).total

    def prefill_alone(self) -> float:
        """One step in which every attention rank prefills one whole prompt (TP: the replica is one rank)."""
        isl = self.svc.prompt_tokens
        return prefill_time(self.arch, self.gpu, self.shard, self.svc.precision, isl * self.shard.ep, isl, self.engine)

    def _request_tpot(self, decode: float, stall: float, share: float) -> float:
        """A request's TPOT at the percentile: its answer's steps, ``share`` of them slowed by ``stall`` seconds.

        TPOT is per request, (latency − TTFT)/(tokens − 1) as vLLM's benchmark computes it, so a stall in one step
        in a hundred moves it by a hundredth; the number of slowed steps among a request's n is binomial, taken at
        the percentile by its normal approximation.
        """
        n = max(1.0, self.svc.output_tokens / self.emitted)
        z = NormalDist().inv_cdf(self.svc.percentile / 100.0)
        slowed = min(n, n * share + z * math.sqrt(n * share * (1.0 - share)))
        return (n * decode + slowed * stall) / n / self.emitted

    def at(self, batch: int) -> Operating:
        """What a request sees with ``batch`` sequences in flight (the replica full).

        A prompt is prefilled by one attention rank (the TP group, or one GPU of an EP replica, whose ranks step
        together); ``prefill_server`` is the time of a rank's prefill capacity one prompt takes.
        """
        s, tail, ranks = self.svc, 1.0 - self.svc.percentile / 100.0, self.shard.ep
        isl, osl = s.prompt_tokens, s.output_tokens
        prompt_rate = batch * self.emitted / osl  # prompts started per step in the replica, in steady state
        decode = self._step(batch)
        if s.prefill == "chunked":
            chunk = min(self.chunk, isl)
            share = min(self.chunk, prompt_rate / ranks * isl)  # prompt tokens per rank in an average step
            mean_step = self._step(batch, share * ranks)
            full_step = self._step(batch, chunk * ranks)
            steps_with_chunk = min(1.0, prompt_rate * isl / chunk)  # any rank's chunk slows the lockstep
            tpot_p = max(mean_step / self.emitted, self._request_tpot(decode, full_step - decode, steps_with_chunk))
            itl = full_step if steps_with_chunk > tail else decode
            ttft = math.ceil(isl / self.chunk) * full_step
            server = isl / self.chunk * self._step(batch, self.chunk * ranks)  # prompts share a full budget
            return Operating(batch, mean_step / self.emitted, tpot_p, ttft, server, 0.0, itl)
        prefill = self.prefill_alone()
        if s.prefill == "inline":
            stalls = min(1.0, prompt_rate / ranks)  # prompts run a rank at a time, ranks side by side
            mean_step = decode + stalls * prefill
            tpot_p = max(mean_step / self.emitted, self._request_tpot(decode, prefill, stalls))
            itl = decode + prefill if prompt_rate > tail else decode
            return Operating(batch, mean_step / self.emitted, tpot_p, prefill + decode, prefill, 0.0, itl)
        # disaggregated: the prompt's KV cache crosses the NIC from the rank that prefilled it (a TP group's GPUs
        # each send their share)
        transfer = isl * self.kv_tok / (self.shard.tp * self.gpu.nic_bytes_per_s * self.engine.network)
        tpot = decode / self.emitted
        return Operating(batch, tpot, tpot, prefill + transfer, prefill, transfer, decode)

    def best_batch(self, cap: int, tpot_target_s: float | None) -> int:
        """The largest batch ≤ cap whose TPOT at the percentile meets the target (step time grows with batch)."""
        if tpot_target_s is None or cap < 1:
            return cap
        if self.at(cap).tpot_p <= tpot_target_s:
            return cap
        lo, hi = 0, cap  # at(lo) meets it (or lo = 0), at(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.at(mid).tpot_p <= tpot_target_s:
                lo = mid
            else:
                hi = mid
        return lo


@dataclass(frozen=True)
class Pool:
    replicas: int
    prefill_replicas: int
    ttft_p: float
    utilization: float


def _smallest(ok: Callable[[int], bool], start: int, limit: int) -> int | None:
    """The smallest n in [start, limit] with ok(n), ok monotone (false then true): doubling, then bisection."""
    if ok(start):
        return start
    step = 1
    while not ok(start + step):
        if start + step >= limit:
            return None
        step = min(step * 2, limit - start)
    lo, hi = start + step // 2, start + step  # ok(hi); not ok(lo) (or lo is start)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def size_pool(service: Service, op: Operating, cv2: float = SERVICE_CV2) -> Pool:
    """The fewest replicas (and prefill replicas when disaggregated) whose TTFT at the percentile meets the target.

    Waits fall as replicas are added, so each count is found by doubling and bisection. Disaggregated, the slack
    the prefill leaves under the target is split: prefill replicas for half of it first, decode replicas for what
    the prefill wait leaves, then prefill replicas trimmed to what the decode wait leaves.
    """
    s = service.svc
    lam, pct = s.requests_per_s, s.percentile
    hold = op.ttft_service + s.output_tokens * op.tpot_mean  # a slot is held for the request's whole life
    replicas = max(1, math.ceil(lam * hold / op.batch * 1.0001))
    ranks = service.shard.ep  # prefill servers per replica: its attention ranks
    target = None if s.ttft_ms is None else s.ttft_ms / 1e3
    limit = 100 * replicas + 1000

    def slot_wait(r: int) -> float:
        return wait_percentile(r * op.batch, lam, hold, pct, cv2)

    def pool(r: int, rp: int, prefill_wait: float) -> Pool:
        return Pool(r, rp, slot_wait(r) + prefill_wait + op.ttft_service, lam * hold / (r * op.batch))

    if s.prefill != "disaggregated":

        def colocated_wait(r: int) -> float:
            # a load-aware router sends each prompt to the rank with the least prefill outstanding, so the ranks of
            # all replicas queue as one M/G/c (random routing would queue each alone and need far more replicas)
            return wait_percentile(r * ranks, lam, op.prefill_server, pct, cv2)

        def fits(r: int) -> bool:
            ttft = slot_wait(r) + colocated_wait(r) + op.ttft_service
            return math.isfinite(ttft) if target is None else ttft <= target

        found = _smallest(fits, replicas, limit) if target is None or op.ttft_service < target else None
        r = found or replicas
        return pool(r, 0, colocated_wait(r)) if found else Pool(r, 0, math.inf, lam * hold / (r * op.batch))

    def prefill_wait(rp: int) -> float:
        return wait_percentile(rp * ranks, lam, op.prefill_server, pct, cv2)

    prefill_replicas = max(1, math.ceil(lam * op.prefill_server / ranks * 1.0001))
    plimit = 100 * prefill_replicas + 1000
    if target is None:
        return pool(replicas, prefill_replicas, prefill_wait(prefill_replicas))
    slack = target - op.ttft_service
    if slack <= 0:
        return Pool(replicas, prefill_replicas, math.inf, lam * hold / (replicas * op.batch))
    first = _smallest(lambda n: prefill_wait(n) <= slack / 2, prefill_replicas, plimit)
    if first is None:
        return Pool(replicas, prefill_replicas, math.inf, lam * hold / (replicas * op.batch))
    r = _smallest(lambda n: slot_wait(n) <= slack - prefill_wait(first), replicas, limit) or replicas
    rp = _smallest(lambda n: prefill_wait(n) <= slack - slot_wait(r), prefill_replicas, first) or first
    return pool(r, rp, prefill_wait(rp))


def _shards(svc: InferenceService, gpu: GPU, arch: Architecture) -> list[Shard]:
    if svc.ep:
        return [Shard(1, svc.ep)]
    if svc.tp:
        return [Shard(svc.tp)]
    return [Shard(t) for t in (1, 2, 4, 8, 16, 32, 64, 72) if t == 1 or t <= gpu.nvlink_domain and arch.heads % t == 0]


def _plan_shard(
    svc: InferenceService, gpu: GPU, shard: Shard, engine: Engine, cv2: float, chunk: int | None = None
) -> ServingPlan:
    service = Service(svc, gpu, shard, engine, chunk)
    arch = service.arch
    cap = service.slots()
    tpot_target = None if svc.tpot_ms is None else svc.tpot_ms / 1e3
    batch = service.best_batch(cap, tpot_target)
    bound = service.at(1).tpot_p
    decode_bound = service._step(1) / service.emitted  # no prompt work in the step: what HBM allows
    op = service.at(max(batch, 1))
    pool = size_pool(service, op, cv2) if batch >= 1 else Pool(0, 0, math.inf, 0.0)
    per_seq = (svc.prompt_tokens + svc.output_tokens) * service.kv_tok
    hold = op.ttft_service + svc.output_tokens * op.tpot_mean
    weights = arch.params * BYTES[svc.precision]
    plan = ServingPlan(
        svc.name,
        gpu.name,
        shard.tp,
        batch,
        pool.replicas,
        (pool.replicas + pool.prefill_replicas) * shard.gpus,
        weights / 1e9,
        batch * per_seq / 1e9,
        svc.requests_per_s * hold * per_seq / 1e9,
        pool.ttft_p * 1e3,
        op.tpot_p * 1e3,
        bound * 1e3,
        max(batch, 1) / op.tpot_mean,
        True,
        ep=shard.ep,
        prefill=svc.prefill,
        percentile=svc.percentile,
        ttft_service_ms=op.ttft_service * 1e3,
        tpot_mean_ms=op.tpot_mean * 1e3,
        prefill_replicas=pool.prefill_replicas,
        kv_transfer_ms=op.kv_transfer * 1e3,
        experts_read=experts_touched(arch.experts, arch.top_k, max(batch, 1) * service.verify) if arch.is_moe else 0.0,
        utilization=pool.utilization,
        itl_ms=op.itl_p * 1e3,
        chunk_tokens=service.chunk if svc.prefill == "chunked" else 0,
    )
    pct = f"P{svc.percentile:g}"
    where = f"TP{shard.tp}" if shard.ep == 1 else f"EP{shard.ep}"
    problem = None
    if cap < 1:
        problem = (
            f"memory: {weight_bytes_per_gpu(arch, shard, BYTES[svc.precision]) / 1e9:.0f} GB of weights per GPU leave "
            f"no room for one sequence's KV cache on {where}"
        )
    elif tpot_target is not None and decode_bound > tpot_target:
        problem = (
            f"memory bandwidth: {pct} TPOT target {svc.tpot_ms:g} ms is below the bound {decode_bound * 1e3:.1f} ms "
            f"at batch 1 on {where}"
        )
    elif tpot_target is not None and bound > tpot_target:
        problem = (
            f"prefill interference: {pct} TPOT is {bound * 1e3:.1f} ms even at batch 1 on {where}, above the "
            f"{svc.tpot_ms:g} ms target: the steps that also carry "
            f"{'a prompt chunk' if svc.prefill == 'chunked' else 'a whole prefill'} slow every answer"
        )
    elif svc.ttft_ms is not None and op.ttft_service * 1e3 > svc.ttft_ms:
        problem = (
            f"prefill compute: TTFT {op.ttft_service * 1e3:.0f} ms before any queueing exceeds the {svc.ttft_ms:g} ms "
            f"target on {where}"
        )
    elif svc.ttft_ms is not None and pool.ttft_p * 1e3 > svc.ttft_ms:
        problem = f"queueing: {pct} TTFT {pool.ttft_p * 1e3:.0f} ms exceeds the {svc.ttft_ms:g} ms target on {where}"
    if problem:
        return replace(plan, feasible=False, binding=problem)
    low, high, texts = _bands(svc, gpu, shard, engine, batch, plan, service.chunk)
    return replace(plan, tpot_band=low, ttft_band=high, assumptions=texts)


def _bands(
    svc: InferenceService, gpu: GPU, shard: Shard, engine: Engine, batch: int, plan: ServingPlan, chunk: int
) -> tuple[tuple[float, float], tuple[float, float], tuple[str, ...]]:
    """Re-price the chosen batch and replicas with each unstated assumption at its low and high value."""
    tpots, ttfts = [plan.tpot_ms], [plan.ttft_ms]
    relevant = {
        name: spec
        for name, spec in ASSUMPTIONS.items()
        if not (name == "ep_overlap" and shard.ep == 1 or name == "allreduce_step_s" and shard.tp == 1)
    }
    for name, (_, low, high) in relevant.items():
        for value in (low, high):
            trial_gpu, trial_engine, cv2 = gpu, engine, SERVICE_CV2
            if name == "matmul_efficiency":
                trial_engine = dataclasses.replace(engine, matmul_efficiency=min(1.0, engine.matmul_efficiency * value))
            elif name == "service_cv2":
                cv2 = value
            else:
                trial_engine = dataclasses.replace(engine, **{name: value})
            service = Service(svc, trial_gpu, shard, trial_engine, chunk)
            op = service.at(batch)
            tpots.append(op.tpot_p * 1e3)
            hold = op.ttft_service + svc.output_tokens * op.tpot_mean
            lam, pct = svc.requests_per_s, svc.percentile
            slot = wait_percentile(plan.replicas * batch, lam, hold, pct, cv2)
            if svc.prefill == "disaggregated":
                pre = wait_percentile(plan.prefill_replicas * shard.ep, lam, op.prefill_server, pct, cv2)
            else:
                pre = wait_percentile(max(1, plan.replicas * shard.ep), lam, op.prefill_server, pct, cv2)
            ttfts.append((slot + pre + op.ttft_service) * 1e3)
    return (
        _spread(tpots, plan.tpot_ms),
        _spread(ttfts, plan.ttft_ms),
        tuple(text for text, _, _ in relevant.values()),
    )


def _spread(values: list[float], central: float) -> tuple[float, float]:
    return (min(values) / central, max(values) / central) if central > 0 else (1.0, 1.0)


def size_service(svc: InferenceService, gpu: GPU, catalog: Catalog, engine: Engine = DEFAULT_ENGINE) -> ServingPlan:
    arch = svc.model.architecture()
    options: list[ServingPlan] = []
    misses: list[ServingPlan] = []
    searched = svc.prefill == "chunked" and svc.chunk_tokens is None
    for shard in _shards(svc, gpu, arch):
        for chunk in CHUNKS if searched else (None,):
            plan = _plan_shard(svc, gpu, shard, engine, SERVICE_CV2, chunk)
            (options if plan.feasible else misses).append(plan)
    if options:
        return min(options, key=lambda p: (p.gpus, p.tpot_ms))
    nearest = min(misses, key=lambda p: p.tpot_bound_ms)
    return replace(nearest, alternative=_alternative(svc, nearest, catalog))


def _alternative(svc: InferenceService, miss: ServingPlan, catalog: Catalog) -> str:
    """The nearest change that makes the service feasible: a looser target, or a GPU that meets it."""
    if miss.binding and miss.binding.startswith("memory bandwidth"):
        text = f"relax tpot_ms to ≥ {math.ceil(miss.tpot_bound_ms * 1.05)} ms"
    elif miss.binding and miss.binding.startswith("prefill interference"):
        text = "use smaller chunk_tokens or prefill: disaggregated"
        if svc.prefill == "chunked" and (svc.chunk_tokens or DEFAULT_CHUNK) > 256:
            return text  # a property of the prefill mode, not of the GPU: no other GPU is looked for
    elif miss.binding and miss.binding.startswith("prefill"):
        text = f"relax ttft_ms to ≥ {math.ceil(miss.ttft_service_ms * 1.05)} ms, use shorter prompts or more TP"
    elif miss.binding and miss.binding.startswith("queueing"):
        text = f"relax ttft_ms to ≥ {math.ceil(miss.ttft_ms * 1.05)} ms or disaggregate prefill"
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


def saturated_throughput(
    svc: InferenceService,
    gpu: GPU,
    shard: Shard,
    kv_fraction: float = 0.9,
    max_tokens: int = 8192,
    engine: Engine = DEFAULT_ENGINE,
) -> float:
    """Output tokens/s of one replica fed requests with no delay between them (an offline throughput benchmark).

    Steady state: d sequences decode per step and d·prompt/output prompt tokens are prefilled beside them, within
    the engine's token budget per step (``max_tokens``) and its KV cache (``kv_fraction`` of the memory the weights
    leave, every sequence reserved at full length); throughput = d / step time.
    """
    service = Service(svc, gpu, shard, engine)
    arch = service.arch
    free = gpu.hbm_bytes - FRAMEWORK_BYTES - weight_bytes_per_gpu(arch, shard, BYTES[svc.precision])
    per_seq = (svc.prompt_tokens + svc.output_tokens) * service.kv_tok / kv_split(arch, shard)
    slots = min(service.max_batch, int(free * kv_fraction // per_seq) * shard.ep)
    isl, osl = svc.prompt_tokens, svc.output_tokens
    decode = min(slots, max_tokens * osl / (isl + osl))
    if decode <= 0:
        return 0.0
    return decode / service._step(decode, decode * isl / osl)
