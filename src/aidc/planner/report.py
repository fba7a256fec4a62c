"""Render a plan: a JSON-ready dict, titled row sections (for Rich tables), markdown, and self-contained HTML."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aidc.planner.inference import ServingPlan
    from aidc.planner.plan import JobPlan, Plan
    from aidc.planner.training import TrainingPlan

Section = tuple[str, list[tuple[str, str]]]


def _gb(x: float) -> str:
    return f"{x / 1e9:.1f} GB"


def _num(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:.3g}" if abs(x) >= 1e6 or abs(x) < 1e-2 else f"{x:,.2f}".rstrip("0").rstrip(".")


def plan_dict(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "workload": plan.workload.name,
        "feasible": plan.feasible,
        "verdict": plan.verdict,
        "problems": [{"what": w, "binding": b, "alternative": a} for w, b, a in plan.problems],
        "training": [],
        "inference": [s.as_dict() for s in plan.services],
    }
    for j in plan.jobs:
        t = j.training
        best = t.choice.best
        out["training"].append(
            {
                "name": t.name,
                "gpu": t.gpu.name,
                "gpus": t.gpus,
                "feasible": t.feasible,
                "binding": t.binding,
                "alternative": t.alternative,
                "params": t.arch.params,
                "active_params": t.arch.active_params,
                "architecture_assumed": t.arch.assumed,
                "global_batch": t.global_batch,
                "compute": {
                    "flops_6nd": t.flops_6nd,
                    "model_flops": t.model_flops,
                    "mfu": t.mfu,
                    "mfu_source": t.mfu_source,
                    "iterations": t.iterations,
                    "iteration_s": t.iteration_s,
                    "train_hours": t.train_hours,
                    "wall_days": t.wall_days,
                    "gpu_hours": t.gpu_hours,
                    "band": None if t.band is None else t.band.as_dict(),
                    "stages": [st.as_dict() for st in t.stages or []],
                },
                "layout": None
                if best is None
                else {"label": best.layout.label(), **best.layout.__dict__, "why": t.choice.why()},
                "memory_per_gpu": None if best is None else best.memory.as_dict(),
                "iteration": None if best is None else best.time.as_dict(),
                "storage": t.resilience.as_dict(),
                "fabric": j.fabric.as_dict(),
                "facility": j.facility.as_dict(),
                "energy": j.energy.as_dict(),
            }
        )
    if plan.facility is not None and plan.fabric is not None:
        out["facility"] = plan.facility.as_dict()
        out["fabric"] = plan.fabric.as_dict()
    return out


def job_sections(j: JobPlan) -> list[Section]:
    t, best = j.training, j.training.choice.best
    head = f"{t.name} — {t.gpus} × {t.gpu.name}"
    shape = "assumed from params" if t.arch.assumed else "given"
    compute = [
        ("parameters (active)", f"{_num(t.arch.params)} ({_num(t.arch.active_params)})"),
        ("architecture", f"{t.arch.layers} layers × {t.arch.hidden} hidden ({shape})"),
        ("training FLOPs (6ND)", _num(t.flops_6nd)),
        ("model FLOPs (with attention)", _num(t.model_flops)),
        ("MFU", f"{t.mfu:.1%} ({t.mfu_source})"),
        ("iteration", f"{t.iteration_s:.2f} s × {_num(t.iterations)}"),
        ("goodput", f"{t.resilience.goodput:.1%}"),
        ("wall-clock", f"{t.wall_days:.1f} days" + _spread(t, t.wall_days, ".1f")),
        ("GPU-hours", _num(t.gpu_hours) + _spread(t, t.gpu_hours, ".3g")),
    ]
    for st in t.stages or []:
        compute.append(
            (
                f"stage: {st.name}",
                f"{_num(st.tokens)} tokens at {st.seq_len:,}-token sequences × {st.global_batch}: "
                f"{st.layout or 'no layout fits'}, {st.iteration_s:.2f} s × {_num(st.iterations)} = {st.hours:,.1f} h",
            )
        )
    if t.band is not None:
        compute.append(("band from unstated", "; ".join(t.band.assumptions)))
    sections: list[Section] = [(f"{head}: compute", compute)]
    if best is not None:
        m, it = best.memory, best.time
        sections.append(
            (
                f"{head}: layout and memory per GPU",
                [
                    ("layout", best.layout.label()),
                    ("why", t.choice.why()),
                    ("weights", _gb(m.weights)),
                    ("gradients", _gb(m.gradients)),
                    ("optimizer", _gb(m.optimizer)),
                    ("activations", _gb(m.activations)),
                    ("logits", _gb(m.logits)),
                    ("total / usable", f"{_gb(m.total)} / {_gb(m.usable)}"),
                ],
            )
        )
        sections.append(
            (
                f"{head}: iteration time",
                [(k, f"{v:.3f} s") for k, v in _breakdown(it.as_dict())] + [("micro-batches", str(it.micro_batches))],
            )
        )
    r, f, e = t.resilience, j.fabric, j.facility
    sections.append(
        (
            f"{head}: fabric and storage",
            [
                ("fat tree", f"{f.tiers} tier(s), radix {f.radix}, {f.oversubscription:g}:1"),
                ("switches", f"{f.leaves} leaf / {f.spines} spine / {f.cores} core"),
                ("dataset", f"{r.dataset_tb:.1f} TB"),
                ("checkpoint", f"{r.checkpoint_tb:.2f} TB"),
                ("checkpoint stall", f"{r.stall_s:.0f} s ({r.stall_source})"),
                ("checkpoint write needed", f"{r.write_gbps:.0f} GB/s"),
                ("job MTBF", f"{r.job_mtbf_h:.1f} h ({r.mtbf_source})"),
                ("checkpoint interval (Young/Daly)", f"{r.checkpoint_interval_h * 60:.0f} min"),
                ("expected interruptions", f"{r.interruptions:.0f}" + _causes(r.causes)),
            ],
        )
    )
    sections.append(
        (
            f"{head}: facility, energy, money",
            [
                ("nodes / racks", f"{e.nodes} / {e.racks} ({e.nodes_per_rack} per rack, {e.rack_kw:.1f} kW)"),
                ("IT / facility kW", f"{e.it_kw:,.0f} / {e.facility_kw:,.0f}"),
                ("UPS / cooling kW", f"{e.ups_kw:,.0f} / {e.cooling_kw:,.0f}"),
                ("energy", f"{j.energy.mwh:,.0f} MWh"),
                ("energy cost", f"${j.energy.energy_usd:,.0f}"),
                ("compute cost", "—" if j.energy.compute_usd is None else f"${j.energy.compute_usd:,.0f}"),
                ("emissions", f"{j.energy.tco2e:,.0f} tCO2e"),
            ],
        )
    )
    return sections


def _causes(causes: tuple[tuple[str, float], ...]) -> str:
    """' (faulty GPU 12, GPU HBM3 memory 6, …)': the three commonest causes, where the rates are per component."""
    if len(causes) <= 1:
        return ""
    return " (" + ", ".join(f"{name} {n:.0f}" for name, n in causes[:3]) + ", …)"


def _spread(t: TrainingPlan, value: float, fmt: str) -> str:
    """' (low–high)' from the plan's uncertainty band, or nothing where the user stated the MFU."""
    if t.band is None:
        return ""
    low, high = t.band.around(value)
    return f" ({low:{fmt}}–{high:{fmt}})"


def _breakdown(it: dict[str, float]) -> list[tuple[str, float]]:
    keys = ["compute", "tp_comm", "ep_comm", "cp_comm", "pp_comm", "dp_comm", "bubble", "optimizer", "total"]
    return [(k, it[k]) for k in keys]


def _ms_band(value: float, band: tuple[float, float]) -> str:
    """'12.3 ms (10.1–15.0)', the band's top 'overloaded' where a pessimistic assumption would saturate the pool."""
    if not math.isfinite(value):
        return "unbounded (the replicas cannot keep up)"
    low, high = band
    top = f"{value * high:.1f}" if math.isfinite(high) else "overloaded"
    return f"{value:.1f} ms ({value * low:.1f}–{top})"


def _prefill(s: ServingPlan) -> str:
    if s.prefill == "disaggregated":
        return f"disaggregated (KV transfer {s.kv_transfer_ms:.1f} ms)"
    if s.prefill == "chunked":
        return f"chunked, {s.chunk_tokens} prompt tokens per step"
    return "inline (a prompt stalls the decodes)"


def service_rows(s: ServingPlan) -> list[tuple[str, str]]:
    pct = f"P{s.percentile:g}"
    shard = f"TP{s.tp}" if s.ep == 1 else f"EP{s.ep} (attention data-parallel)"
    replicas = f"{s.replicas} × {shard}"
    if s.prefill == "disaggregated":
        replicas += f" decode + {s.prefill_replicas} × {shard} prefill"
    rows = [
        ("replicas", f"{replicas} = {s.gpus} GPUs"),
        ("prefill", _prefill(s)),
        ("batch in flight per replica", f"{s.batch} (slots {s.utilization:.0%} busy)"),
        ("weights", f"{s.weights_gb:.1f} GB"),
        ("KV per replica / total", f"{s.kv_gb_per_replica:.1f} / {s.kv_gb_total:.1f} GB"),
        (f"TTFT {pct} (prefill alone)", f"{_ms_band(s.ttft_ms, s.ttft_band)} ({s.ttft_service_ms:.0f} ms)"),
        (f"TPOT {pct} / mean (per request)", f"{_ms_band(s.tpot_ms, s.tpot_band)} / {s.tpot_mean_ms:.1f} ms"),
        (f"inter-token gap {pct} (one step)", f"{s.itl_ms:.1f} ms"),
        ("TPOT bound at batch 1", f"{s.tpot_bound_ms:.1f} ms"),
        ("tokens/s per replica", f"{s.tokens_per_s_per_replica:,.0f}"),
    ]
    if s.experts_read:
        rows.append(("routed experts read per layer and step", f"{s.experts_read:.1f}"))
    if s.assumptions:
        rows.append(("band from unstated", "; ".join(s.assumptions)))
    rows.append(("latency targets", "met" if s.feasible else "NOT met"))
    return rows


def sections(plan: Plan) -> list[Section]:
    out: list[Section] = []
    for j in plan.jobs:
        out += job_sections(j)
    for s in plan.services:
        out.append((f"{s.name} — inference on {s.gpu}", service_rows(s)))
    if plan.facility is not None:
        f = plan.facility
        out.append(
            (
                "facility for the whole workload",
                [
                    ("GPUs / nodes / racks", f"{f.gpus} / {f.nodes} / {f.racks}"),
                    ("IT kW", f"{f.it_kw:,.0f}"),
                    ("facility kW (PUE)", f"{f.facility_kw:,.0f}"),
                    ("UPS kW", f"{f.ups_kw:,.0f}"),
                    ("cooling kW", f"{f.cooling_kw:,.0f}"),
                    ("liquid cooling", "yes" if f.liquid_cooling else "no"),
                ],
            )
        )
    return out


def markdown(plan: Plan) -> str:
    lines = [f"# Capacity plan: {plan.workload.name}", "", f"**{plan.verdict}**", ""]
    for what, binding, alt in plan.problems:
        lines.append(f"- **{what}** — binding constraint: {binding}. Nearest feasible: {alt or '—'}.")
    for title, rows in sections(plan):
        lines += ["", f"## {title}", "", "| item | value |", "| --- | --- |"]
        lines += [f"| {k} | {v.replace('|', '/')} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def _bar_svg(title: str, parts: list[tuple[str, float]], unit: str) -> str:
    """A horizontal stacked bar with a legend: inline SVG, no scripts, no network."""
    colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"]
    total = sum(v for _, v in parts) or 1.0
    x, rects, legend = 0.0, [], []
    for i, (name, value) in enumerate(parts):
        w = 600 * value / total
        c = colors[i % len(colors)]
        rects.append(
            f'<rect x="{x:.1f}" y="24" width="{w:.1f}" height="28" fill="{c}"><title>{html.escape(name)}: '
            f"{value:.3g} {unit}</title></rect>"
        )
        legend.append(
            f'<rect x="{(i % 4) * 150}" y="{64 + (i // 4) * 18}" width="10" height="10" fill="{c}"/>'
            f'<text x="{(i % 4) * 150 + 14}" y="{73 + (i // 4) * 18}" font-size="11">'
            f"{html.escape(name)} {value:.3g} {unit}</text>"
        )
        x += w
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="620" height="110" role="img">'
        f'<text x="0" y="14" font-size="13" font-weight="bold">{html.escape(title)} — {total:.3g} {unit}</text>'
        + "".join(rects)
        + "".join(legend)
        + "</svg>"
    )


def html_report(plan: Plan) -> str:
    body = [
        f"<h1>Capacity plan: {html.escape(plan.workload.name)}</h1>",
        f'<p class="{"ok" if plan.feasible else "bad"}"><b>{html.escape(plan.verdict)}</b></p>',
    ]
    for what, binding, alt in plan.problems:
        body.append(
            f"<p>{html.escape(what)}: binding constraint <b>{html.escape(binding)}</b>; nearest feasible: "
            f"{html.escape(alt or '—')}</p>"
        )
    for j in plan.jobs:
        best = j.training.choice.best
        if best is not None:
            it = [(k, v) for k, v in _breakdown(best.time.as_dict()) if k != "total" and v > 0]
            body.append(_bar_svg(f"{j.training.name}: time per iteration", it, "s"))
            mem = best.memory.as_dict()
            parts = [(k, mem[k] / 1e9) for k in ("weights", "gradients", "optimizer", "activations", "logits")]
            parts.append(("free", max(0.0, (best.memory.usable - best.memory.total) / 1e9)))
            body.append(_bar_svg(f"{j.training.name}: memory per GPU", parts, "GB"))
    for title, rows in sections(plan):
        body.append(
            f"<h2>{html.escape(title)}</h2><table>"
            + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
            + "</table>"
        )
    style = (
        "body{font-family:sans-serif;max-width:900px;margin:2em auto}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}.ok{color:#2a7}.bad{color:#c33}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Plan {html.escape(plan.workload.name)}"
        f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
