"""Planner vs published training runs: in-sample, leave-one-run-out, -paper-out and -GPU-generation-out errors.

Run: PYTHONPATH=src .venv/bin/python benchmarks/planner_accuracy.py [--quick]

The validation set is aidc.planner.published.RUNS (every run with its source).  The model's few constants
(aidc.planner.calibration.CONSTANTS, plus one GEMM-efficiency factor per software stack; a GPU generation is
priced from its catalog figures, its measured MAMF among them, and has no factor) are refit for each column:

- shipped: the constants the planner ships with (fitted to the Megatron-LM runs only, before this set grew);
- in-sample: refit on every run and scored on the same runs (what a fit can do, not what it predicts);
- leave-one-run-out / -paper-out / -generation-out: refit without the run, the paper (all its runs) or every run
  on that GPU generation, then predict what was left out.  A factor the refit never saw (the held-out paper's
  stack when no other paper used it) is the geometric mean of those it did see.

No held-out column ever fits to a case it reports.  --quick skips leave-one-run-out (the slowest column).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable

from aidc.planner.calibration import Prediction, held_out, predict, refit
from aidc.planner.catalog import Catalog
from aidc.planner.published import MEGATRON_RUNS, NEW_RUNS, RUNS, PublishedRun


def _stat(predictions: dict[str, Prediction]) -> str:
    errors = [abs(p.error) for p in predictions.values()]
    return f"{statistics.median(errors):6.1%} / {max(errors):6.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip leave-one-run-out")
    args = parser.parse_args()
    catalog = Catalog.load()
    started = time.perf_counter()
    gens = {r.name: catalog.gpu(r.gpu).generation for r in RUNS}
    papers = dict.fromkeys(r.paper for r in RUNS)
    stacks = dict.fromkeys(r.stack for r in RUNS)
    print(
        f"{len(RUNS)} published runs from {len(papers)} papers/reports, {len(stacks)} software stacks, "
        f"{len(set(gens.values()))} GPU generations ({', '.join(sorted(set(gens.values())))}); "
        f"{sum(r.arch.is_moe for r in RUNS)} MoE; training only (no inference run yet)"
    )
    for label, key in (
        ("paper/report", lambda r: r.paper),
        ("stack", lambda r: r.stack),
        ("generation", lambda r: gens[r.name]),
        ("GPU", lambda r: r.gpu),
        ("model", lambda r: "MoE" if r.arch.is_moe else "dense"),
        ("precision", lambda r: r.precision),
    ):
        print(f"  by {label}: " + "; ".join(f"{k} {n}" for k, n in Counter(key(r) for r in RUNS).most_common()))
    # searched layouts are chosen once with the shipped constants and held while fitting (a held-out prediction
    # searches its own layout again with the refit constants)
    layouts = {r.name: predict(r, catalog).layout for r in RUNS}
    columns: dict[str, dict[str, Prediction]] = {"shipped": {r.name: predict(r, catalog) for r in RUNS}}
    fitted = refit(RUNS, catalog, layouts=layouts)
    columns["in-sample"] = {r.name: predict(r, catalog, fitted) for r in RUNS}
    groups: dict[str, Callable[[PublishedRun], str]] = {
        "leave-one-paper-out": lambda r: r.paper,
        "leave-one-generation-out": lambda r: gens[r.name],
    }
    if not args.quick:
        groups = {"leave-one-run-out": lambda r: r.name, **groups}
    for label, group in groups.items():
        columns[label] = held_out(RUNS, catalog, group, layouts=layouts)

    names = list(columns)
    print(f"\n{'run':58s} {'published':>10s} " + " ".join(f"{n[:22]:>22s}" for n in names))
    for r in RUNS:
        cells = " ".join(f"{columns[n][r.name].error:>+22.1%}" for n in names)
        print(f"{r.name[:58]:58s} {r.published:10.4g} {cells}")
    print(f"\n{'median / max |error|':58s} {'':10s} " + " ".join(f"{_stat(columns[n]):>22s}" for n in names))
    fitted_before = {r.name for r in MEGATRON_RUNS}
    new = {r.name for r in NEW_RUNS}
    subsets: tuple[tuple[str, Callable[[PublishedRun], bool]], ...] = (
        (f"  the {len(fitted_before)} runs the shipped constants were fitted to", lambda r: r.name in fitted_before),
        (
            f"  the {len(RUNS) - len(fitted_before)} others (held out for the shipped constants)",
            lambda r: r.name not in fitted_before,
        ),
        (f"  the {len(new)} new runs (NVIDIA tables, Nemotron-4, BLOOM, NeoX)", lambda r: r.name in new),
        (
            f"  the {len(RUNS) - len(new)} runs of the earlier set (before the NVIDIA tables)",
            lambda r: r.name not in new,
        ),
        ("  MoE runs", lambda r: r.arch.is_moe),
        ("  Blackwell runs", lambda r: gens[r.name] == "Blackwell"),
    )
    for label, sel in subsets:
        subset = {n: {k: v for k, v in columns[n].items() if sel(v.run)} for n in names}
        print(f"{label:58s} {'':10s} " + " ".join(f"{_stat(subset[n]):>22s}" for n in names))
    print("\nconstants refit on all runs: " + ", ".join(f"{k}={v:.3g}" for k, v in fitted.items()))
    worst = max(names[2:] or names, key=lambda n: statistics.median(abs(p.error) for p in columns[n].values()))
    misses = sorted(
        ((abs(p.error), k, p.error) for k, p in columns[worst].items() if abs(p.error) > 0.10), reverse=True
    )
    print(f"over 10% in {worst}: " + ("; ".join(f"{k} {e:+.0%}" for _, k, e in misses) or "none"))
    log_err = [abs(math.log1p(p.error)) for p in columns["in-sample"].values()]
    print(f"(in-sample mean |log error| {statistics.fmean(log_err):.3f}; {time.perf_counter() - started:.0f} s)")


# --- what the published figures allow: pairs no common factor can fit within 10% ---

# Runs of one team, stack and GPU whose models differ only where the planner can see it (Llama 2 took LLaMA's shapes
# to 4,096 tokens of context, with GQA at 34B and 70B): whatever constants a fit picks, they scale both runs alike,
# so the pair's published cost ratio against the model's own ratio bounds the better of the two errors.
PAIRS = (
    ("LLaMA 7B on 1024 A100", "Llama 2 7B on 1024 A100"),
    ("LLaMA 13B on 1024 A100", "Llama 2 13B on 1024 A100"),
    ("LLaMA 33B on 2048 A100", "Llama 2 34B on 2048 A100"),
    ("LLaMA 65B on 2048 A100", "Llama 2 70B on 2048 A100"),
)


def consistency_floor() -> None:
    """For each pair, the smallest max |error| a shared factor can give both: with q = published ratio / predicted
    ratio, the best factor splits q evenly and leaves (q - 1) / (q + 1) on each side."""
    catalog = Catalog.load()
    by_name = {r.name: r for r in RUNS}
    print(f"\n{'pair (published cost per token, later / earlier)':58s} {'published':>9s} {'FLOPs':>7s} "
          f"{'planner':>7s} {'floor':>6s}")  # fmt: skip
    for a_prefix, b_prefix in PAIRS:
        a, b = (next(by_name[n] for n in by_name if n.startswith(x)) for x in (a_prefix, b_prefix))
        pa, pb = predict(a, catalog), predict(b, catalog)
        flops = pb.flops_per_token / pa.flops_per_token
        published, planner = b.published / a.published, pb.value / pa.value
        q = max(published / planner, planner / published)
        print(
            f"{b_prefix + ' / ' + a_prefix:58s} {published:9.3f} {flops:7.3f} {planner:7.3f} {(q - 1) / (q + 1):6.1%}"
        )


# --- inference (plan-infer): published serving measurements, every case held out (nothing is fitted to them) ---


def inference_accuracy() -> None:
    """The serving model against aidc.planner.published_inference.CASES, with the subsets by stack and kind."""
    from aidc.planner.published_inference import CASES
    from aidc.planner.published_inference import predict as predict_serving

    catalog = Catalog.load()
    preds = [predict_serving(c, catalog) for c in CASES]
    print(
        f"\ninference: {len(CASES)} published serving figures, {len({c.source for c in CASES})} sources, "
        f"{len({c.stack for c in CASES})} stacks, GPUs {', '.join(sorted({c.gpu for c in CASES}))}; all held out"
    )
    units = {"throughput": "tok/s", "tpot": "s/token", "prefill": "s"}
    print(f"{'case':74s} {'published':>10s} {'predicted':>10s} {'error':>7s}")
    for p in preds:
        c = p.case
        print(f"{c.name[:74]:74s} {c.published:10.4g} {p.predicted:10.4g} {p.error:>+7.1%}  {units[c.kind]}")

    def stat(sel: list[float]) -> str:
        return f"{statistics.median(sel):.1%} / {max(sel):.1%} (n={len(sel)})" if sel else "—"

    print(f"{'median / max |error|, all':74s} {stat([abs(p.error) for p in preds])}")
    for stack in dict.fromkeys(c.stack for c in CASES):
        print(f"{'  ' + stack:74s} {stat([abs(p.error) for p in preds if p.case.stack == stack])}")
    for kind in units:
        print(f"{'  kind ' + kind:74s} {stat([abs(p.error) for p in preds if p.case.kind == kind])}")


if __name__ == "__main__":
    main()
    consistency_floor()
    inference_accuracy()
