"""Published training runs the planner is checked against, each with its source (tests and benchmarks use them).

Every figure here is as its paper or report prints it; what a source does not give (a GPU count, a pipeline
schedule, a micro-batch) is named in the run's ``free`` fields and searched by the planner the way ``aidc plan``
would for a user, never filled in from the published result.  One module per kind of source: the Megatron-LM
team's papers, the model makers' reports, NVIDIA's performance tables.
"""

from __future__ import annotations

from aidc.planner.published.megatron_papers import MEGATRON_RUNS, SCALE_RUNS
from aidc.planner.published.model_reports import ADDED_RUNS, FIRST_RUNS
from aidc.planner.published.perf_tables import TABLE_RUNS
from aidc.planner.published.run import GPU_HOURS, ITERATION, Cluster, PublishedRun
from aidc.planner.published.shapes import qwen3_moe
from aidc.planner.published.sources import BRIDGE_2511, NEMO_2407

# MEGATRON_RUNS: the 18 runs of Narayanan 2021 and Korthikanti 2022, the planner's first calibration set.
# OTHER_RUNS: the other 20 runs of the first validation set; NEW_RUNS: the 25 added in 2026-12.
OTHER_RUNS: list[PublishedRun] = SCALE_RUNS + FIRST_RUNS
NEW_RUNS: list[PublishedRun] = TABLE_RUNS + ADDED_RUNS
RUNS: list[PublishedRun] = MEGATRON_RUNS + OTHER_RUNS + NEW_RUNS

__all__ = [
    "BRIDGE_2511",
    "GPU_HOURS",
    "ITERATION",
    "MEGATRON_RUNS",
    "NEMO_2407",
    "NEW_RUNS",
    "OTHER_RUNS",
    "RUNS",
    "Cluster",
    "PublishedRun",
    "qwen3_moe",
]
