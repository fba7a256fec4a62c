"""The planner page's work: a workload typed into a form, planned exactly as `aidc plan` plans a file."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from aidc.errors import InvalidInput

# What the form starts with: the planner's own example of a training job under a deadline.
EXAMPLE = """\
# Llama-3-70B-shaped model, 15T tokens, finished within 60 days on H100s: how many GPUs, racks, MW?
name: llama-70b-by-deadline
facility: {pue: 1.25, electricity_usd_per_kwh: 0.07, carbon_kg_per_kwh: 0.35, rack_kw_limit: 42, redundancy: "2N",
           tier: III, switch_radix: 64}
training:
  - name: llama-70b
    model: {layers: 80, hidden: 8192, heads: 64, kv_heads: 8, ffn_hidden: 28672, vocab: 128256, seq_len: 8192,
            glu: true}
    tokens: 15.0e12
    deadline_days: 60
    max_gpus: 16384
    gpu: H100
    global_batch_tokens: 16.0e6
"""
MAX_CHARS = 64_000


def plan_text(text: str, catalogs: list[str]) -> dict[str, Any]:
    """The plan of workload ``text`` (YAML) against the packaged catalog and the server's ``catalogs``: its sections
    as (title, rows), its verdict and, when infeasible, what binds. A workload typed here may not name catalog files
    of its own: those would be files on the server."""
    from aidc.planner.catalog import Catalog
    from aidc.planner.plan import check_hardware, plan_workload
    from aidc.planner.report import sections
    from aidc.planner.workload import load_workload

    if len(text) > MAX_CHARS:
        raise InvalidInput(f"the workload is longer than {MAX_CHARS:,} characters", hint="plan it with `aidc plan`")
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "workload.yaml"
        path.write_text(text, encoding="utf-8")
        workload, source = load_workload(path)
    if workload.catalog:
        raise InvalidInput(
            "a workload planned in the console cannot name catalog files (they would be read on the server)",
            where="catalog",
            hint="remove `catalog:`, or plan it on your machine with `aidc plan`",
        )
    catalog = Catalog.load(tuple(catalogs))
    check_hardware(workload, source, catalog)
    plan = plan_workload(workload, catalog)
    return {"sections": sections(plan), "verdict": plan.verdict, "feasible": plan.feasible, "problems": plan.problems}
