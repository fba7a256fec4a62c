"""The capacity plan for a whole workload: training jobs, inference services, fabric, facility, energy, verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidc.errors import InvalidSpec, SpecProblem
from aidc.planner.catalog import Catalog
from aidc.planner.fabric import FatTree, fat_tree
from aidc.planner.inference import ServingPlan, size_service
from aidc.planner.power import EnergyCost, FacilitySize, energy_cost, size_facility
from aidc.planner.training import TrainingPlan, plan_training
from aidc.planner.workload import Workload, load_workload
from aidc.specfile import SpecSource


@dataclass
class JobPlan:
    training: TrainingPlan
    fabric: FatTree
    facility: FacilitySize
    energy: EnergyCost


@dataclass
class Plan:
    workload: Workload
    jobs: list[JobPlan] = field(default_factory=list)
    services: list[ServingPlan] = field(default_factory=list)
    facility: FacilitySize | None = None
    fabric: FatTree | None = None

    @property
    def feasible(self) -> bool:
        return all(j.training.feasible for j in self.jobs) and all(s.feasible for s in self.services)

    @property
    def problems(self) -> list[tuple[str, str, str | None]]:
        """(what, binding constraint, nearest feasible alternative) for everything that cannot be met."""
        out = [
            (j.training.name, j.training.binding or "", j.training.alternative)
            for j in self.jobs
            if not j.training.feasible
        ]
        out += [(s.name, s.binding or "", s.alternative) for s in self.services if not s.feasible]
        return out

    @property
    def verdict(self) -> str:
        if self.feasible:
            return "FEASIBLE: every job and service fits"
        return "INFEASIBLE: " + "; ".join(f"{name}: {binding}" for name, binding, _ in self.problems)

    def to_dict(self) -> dict[str, Any]:
        from aidc.planner.report import plan_dict

        return plan_dict(self)


def plan_workload(workload: Workload, catalog: Catalog) -> Plan:
    """Size every job and service, then the facility that carries all of them at once."""
    fc = workload.facility
    plan = Plan(workload)
    for job in workload.training:
        tp = plan_training(job, catalog, fc)
        nic = fc.nic_gbps or tp.gpu.nic_gbps
        tree = fat_tree(tp.gpus, fc.switch_radix, fc.oversubscription, nic)
        size = size_facility(tp.gpu, tp.gpus, tree.switches, fc.pue, fc.rack_kw_limit, fc.redundancy)
        energy = energy_cost(
            size.facility_kw,
            tp.wall_days * 24,
            fc.average_load,
            fc.electricity_usd_per_kwh,
            fc.carbon_kg_per_kwh,
            tp.gpu_hours,
            fc.gpu_hour_usd,
        )
        plan.jobs.append(JobPlan(tp, tree, size, energy))
    for svc in workload.inference:
        plan.services.append(size_service(svc, catalog.gpu(svc.gpu), catalog))
    plan.facility, plan.fabric = _whole_facility(plan, catalog)
    return plan


def _whole_facility(plan: Plan, catalog: Catalog) -> tuple[FacilitySize | None, FatTree | None]:
    """The hall sized for the largest GPU population (jobs and services on the most common GPU model)."""
    counts: dict[str, int] = {}
    for j in plan.jobs:
        counts[j.training.gpu.name] = counts.get(j.training.gpu.name, 0) + j.training.gpus
    for s in plan.services:
        counts[s.gpu] = counts.get(s.gpu, 0) + s.gpus
    counts = {k: v for k, v in counts.items() if v > 0}
    if not counts:
        return None, None
    name = max(counts, key=lambda k: counts[k])
    gpu, fc = catalog.gpu(name), plan.workload.facility
    tree = fat_tree(counts[name], fc.switch_radix, fc.oversubscription, fc.nic_gbps or gpu.nic_gbps)
    return size_facility(gpu, counts[name], tree.switches, fc.pue, fc.rack_kw_limit, fc.redundancy), tree


def plan_file(path: str | Path, extra_catalogs: Sequence[str | Path] = ()) -> Plan:
    """Load a workload file and plan it (catalog: packaged, then AIDC_CATALOG files, then the workload's own)."""
    workload, source = load_workload(path)
    catalog = Catalog.load([*extra_catalogs, *workload.catalog])
    check_hardware(workload, source, catalog)
    return plan_workload(workload, catalog)


def check_hardware(workload: Workload, source: SpecSource, catalog: Catalog) -> None:
    """GPU names the catalog knows, and tensor-parallel degrees inside one NVLink domain, located in the file.

    A TP group wider than the NVLink domain would all-reduce every layer's activations over the NIC, an order of
    magnitude slower; no published stack runs it (Megatron-LM's first rule), so it is refused rather than priced.
    """
    problems: list[SpecProblem] = []
    entries: list[tuple[str, int, str, int | None]] = [
        ("training", i, job.gpu, job.parallelism.tp if job.parallelism else None)
        for i, job in enumerate(workload.training)
    ]
    entries += [("inference", i, svc.gpu, svc.tp) for i, svc in enumerate(workload.inference)]
    for section, i, name, tp in entries:
        try:
            gpu = catalog.gpu(name)
        except InvalidSpec as exc:
            problems.append(source.problem((section, i, "gpu"), exc.message, exc.hint))
            continue
        if tp is not None and tp > gpu.nvlink_domain:
            at = (section, i, "parallelism", "tp") if section == "training" else (section, i, "tp")
            problems.append(
                source.problem(
                    at,
                    f"tp {tp} is wider than the {gpu.name}'s NVLink domain ({gpu.nvlink_domain} GPUs): every layer's "
                    "tensor-parallel all-reduce would cross the network",
                    f"use tp ≤ {gpu.nvlink_domain} and spread the rest with pipeline or data parallelism, or pick a "
                    "GPU with a larger NVLink domain (GB200-NVL72)",
                )
            )
    if problems:
        raise InvalidSpec.from_problems(problems)
