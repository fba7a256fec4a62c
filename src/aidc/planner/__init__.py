"""planner: workload → capacity plan (compute, memory, parallelism, fabric, storage, power, energy, time, cost)."""

from __future__ import annotations

from aidc.planner.catalog import GPU, Catalog
from aidc.planner.plan import Plan, plan_file, plan_workload
from aidc.planner.workload import Workload, load_workload

__all__ = ["GPU", "Catalog", "Plan", "Workload", "load_workload", "plan_file", "plan_workload"]
