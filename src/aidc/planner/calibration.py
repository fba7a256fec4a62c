"""Predict a published run with the planner, and refit the model's few constants without the runs held out."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aidc.planner.catalog import GPU, Catalog
from aidc.planner.iteration import DEFAULT_EFFICIENCY, Efficiency, iteration_time
from aidc.planner.layout import search
from aidc.planner.memory import Layout
from aidc.planner.published import GPU_HOURS, PublishedRun
from aidc.planner.workload import Parallelism

# The constants a refit may move, with their bounds: kernel and collective efficiencies, not per-run knobs.
# Fused attention's rate is not among them: it is a kernel's measured speed (Efficiency.flash_attention), and
# the runs cannot identify it — attention is a few percent of their time except in one 131K-context run, which a
# refit then bends the constant to (or, holding that paper out, away from: +91% before it was fixed). Nor are
# unfused attention's passes over the score matrix, counted from its kernels (iteration.unfused_score_passes).
CONSTANTS: dict[str, tuple[float, float]] = {
    "matmul_efficiency": (0.3, 1.0),
    "gemm_knee": (0.0, 2048.0),
    "elementwise_passes": (0.0, 150.0),
    "nvlink": (0.3, 1.0),
    "network": (0.3, 1.0),
    "overlap_contention": (0.0, 1.0),
}

FACTOR_BOUNDS = (0.5, 1.5)  # a software stack's GEMM efficiency relative to the base
# No factor per GPU generation: a generation enters through its own measured figures (the catalog's MAMF by
# precision, HBM, NVLink and NIC), so a generation no run was fitted on needs nothing fitted for it
REFERENCES = ("stack:Megatron-LM",)
PRIOR_WEIGHT = 0.01


@dataclass(frozen=True)
class Prediction:
    run: PublishedRun
    layout: Layout
    iteration_s: float
    model_flops: float  # per iteration, as the planner counts them

    @property
    def flops_per_token(self) -> float:
        return self.model_flops / (self.run.global_batch * self.run.arch.seq_len)

    @property
    def value(self) -> float:
        """The prediction in the run's own metric."""
        if self.run.metric == GPU_HOURS:
            tokens = self.run.global_batch * self.run.arch.seq_len
            return self.iteration_s * self.run.gpus / 3600 * 1e12 / tokens
        return self.iteration_s

    @property
    def error(self) -> float:
        """Signed relative error against the published figure."""
        return (self.value - self.run.published) / self.run.published


def _fixed(run: PublishedRun) -> Parallelism:
    given = {f.name: getattr(run.layout, f.name) for f in dataclasses.fields(Layout) if f.name not in run.free}
    if "dp" in run.free:
        given.pop("dp", None)
    return Parallelism(**{k: v for k, v in given.items() if k in Parallelism.model_fields})


def _factor(values: dict[str, float], kind: str, name: str) -> float:
    """A stack's kernel-efficiency factor; one the fit never saw (held out) gets the geometric mean of those it
    did, i.e. no information either way."""
    key = f"{kind}:{name}"
    if key in values:
        return values[key]
    seen = [v for k, v in values.items() if k.startswith(f"{kind}:")]
    return math.exp(statistics.fmean(math.log(v) for v in seen)) if seen else 1.0


def factor_names(runs: Sequence[PublishedRun], catalog: Catalog) -> list[str]:
    """The per-software-stack GEMM-efficiency factors ``runs`` can inform."""
    # the base matmul_efficiency is Megatron-LM's (the stack it was first fitted to); where the reference is among
    # the runs it stays 1 so the base stays identified
    del catalog  # generations are not fitted (see REFERENCES)
    stacks = dict.fromkeys(f"stack:{r.stack}" for r in runs)
    return [n for n in stacks if n not in REFERENCES]


def _efficiency(values: dict[str, float], run: PublishedRun | None = None) -> Efficiency:
    names = {f.name for f in dataclasses.fields(Efficiency)}
    eff = dataclasses.replace(DEFAULT_EFFICIENCY, **{k: v for k, v in values.items() if k in names})
    if values and run is not None:
        scaled = eff.matmul_efficiency * _factor(values, "stack", run.stack)
        eff = dataclasses.replace(eff, matmul_efficiency=min(1.0, scaled))
    return eff


def predict(
    run: PublishedRun, catalog: Catalog, values: dict[str, float] | None = None, layout: Layout | None = None
) -> Prediction:
    """The planner's figure for ``run``: its layout as published, with the fields the source leaves out
    searched (fastest that fits in memory).  ``layout`` skips the search (refits reuse a searched layout)."""
    values = values or {}
    gpu, eff = run_gpu(run, catalog), _efficiency(values, run)
    # the run's own cluster where its source names one (BLOOM's Omni-Path, GPT-NeoX's four HCAs per node), else
    # the catalog GPU's reference node
    nic = run.cluster.nic_bytes_per_gpu if run.cluster is not None else None
    if layout is None:
        if run.free:
            choice = search(run.arch, gpu, run.gpus, run.global_batch, run.precision, _fixed(run), nic, eff=eff)
            if choice.best is None:
                raise ValueError(f"{run.name}: no layout fits in memory")
            layout = choice.best.layout
        else:
            layout = run.layout
    it = iteration_time(run.arch, layout, gpu, run.global_batch, run.precision, nic, eff=eff)
    return Prediction(run, layout, it.total, it.model_flops)


def run_gpu(run: PublishedRun, catalog: Catalog) -> GPU:
    """The catalog GPU, in nodes of the size the run's cluster had where its source gives one."""
    gpu = catalog.gpu(run.gpu)
    if run.cluster is None or run.cluster.gpus_per_node == gpu.node.gpus:
        return gpu
    return gpu.model_copy(update={"node": gpu.node.model_copy(update={"gpus": run.cluster.gpus_per_node})})


def refit(
    runs: Sequence[PublishedRun],
    catalog: Catalog,
    names: Sequence[str] = tuple(CONSTANTS),
    layouts: dict[str, Layout] | None = None,
    rounds: int = 6,
) -> dict[str, float]:
    """Constants ``names`` fitted to ``runs`` only: least mean robust_loss of the log errors (smooth, so one-
    dimensional searches converge; squared near zero and linear beyond ±10 %, so a run the model cannot price
    cannot drag the fit — the maximum or a plain mean of squares would let it), by golden-section
    search on one constant at a time, a few rounds, starting from the middle of each range — never from the
    shipped values, which have seen every run.  ``layouts`` (by run name) fixes searched layouts during the fit."""
    layouts = layouts or {}
    names = [*names, *factor_names(runs, catalog)]
    values = {n: 1.0 if ":" in n else (bounds(n)[0] + bounds(n)[1]) / 2 for n in names}
    seen = {f"stack:{r.stack}" for r in runs}
    values.update({ref: 1.0 for ref in REFERENCES if ref in seen})  # held at 1, not fitted

    def objective(trial: dict[str, float]) -> float:
        errors = [robust_loss(math.log1p(predict(r, catalog, trial, layouts.get(r.name)).error)) for r in runs]
        # a weak prior that generations and stacks differ little: where two factors are confounded in the runs
        # (every Hopper run but one paper's comes from one stack) the data cannot split them, and the prior does
        prior = sum(math.log(v) ** 2 for k, v in trial.items() if ":" in k)
        return statistics.fmean(errors) + PRIOR_WEIGHT * prior

    def along(name: str) -> Callable[[float], float]:
        return lambda x: objective({**values, name: x})

    for _ in range(rounds):
        for name in names:
            values[name] = _golden(along(name), *bounds(name))
    return values


ROBUST_SCALE = 0.1  # log error where the loss turns from squared to linear (about ±10 %)


def robust_loss(log_error: float, scale: float = ROBUST_SCALE) -> float:
    """Pseudo-Huber loss of a log error: squared below ``scale``, linear beyond it. Some published runs carry what
    the model does not price (fine-grained MoE's small expert GEMMs, whole-run hours with their downtime, clusters
    that are not DGX nodes); under a squared loss those few set the shared constants for every other run."""
    return 2 * scale**2 * (math.sqrt(1 + (log_error / scale) ** 2) - 1)


def bounds(name: str) -> tuple[float, float]:
    return CONSTANTS.get(name, FACTOR_BOUNDS)


def _golden(f: Callable[[float], float], lo: float, hi: float, tol: float = 1e-4) -> float:
    ratio = (5**0.5 - 1) / 2
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol * max(1.0, abs(hi - lo)):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2


def held_out(
    runs: Sequence[PublishedRun],
    catalog: Catalog,
    group: Callable[[PublishedRun], str],
    names: Sequence[str] = tuple(CONSTANTS),
    layouts: dict[str, Layout] | None = None,
) -> dict[str, Prediction]:
    """Each run predicted by constants refit without its group (leave-one-group-out); its layout searched anew
    with those constants where the source leaves it open."""
    out: dict[str, Prediction] = {}
    for key in dict.fromkeys(group(r) for r in runs):
        train = [r for r in runs if group(r) != key]
        values = refit(train, catalog, names, layouts)
        for r in runs:
            if group(r) == key:
                out[r.name] = predict(r, catalog, values)
    return out
