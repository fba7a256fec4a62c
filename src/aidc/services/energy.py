"""Energy and carbon: per job (its share of each node's power over its time), per run and per project, and the
data center's ISO/IEC 30134 KPIs over a period — from the stored power readings, the facility spec's PUE and
grid intensity. Every figure says whether it rests on measured power or on modelled power."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aidc.cluster.inventory import name_for_host
from aidc.errors import InvalidInput
from aidc.monitoring.energy import NONE, Energy, Site, integrate, job_share
from aidc.monitoring.sources import POWER
from aidc.security.roles import Access
from aidc.services.guard import Guard
from aidc.settings import Settings
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import Job

if TYPE_CHECKING:
    from aidc.facility.model import Facility

METRICS_JOBS = 1000  # the newest jobs whose energy /metrics exposes

JSON = dict[str, Any]
DAY_S = 86400.0


def _ts(value: datetime | str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()


class EnergyService:
    def __init__(
        self,
        store: MetadataStore,
        guard: Guard,
        facility: Callable[[], Facility | None],
        settings: Settings,
        *,
        inventory: Callable[[], list[JSON]] = list,
    ) -> None:
        """``inventory``: the nodes as `aidc nodes list` has them (for /metrics)."""
        self.store, self.guard, self.settings = store, guard, settings
        self._facility, self._inventory = facility, inventory
        self._sites: tuple[Facility | None, Site] | None = None

    def _site(self) -> Site:
        """The site's PUE, carbon and price model, derived once per facility (a derivation runs the spec's failure
        analysis: tens of ms the energy page and /metrics would spend on every request)."""
        facility = self._facility()
        known = self._sites
        if known is None or known[0] is not facility:
            known = self._sites = (facility, Site.of(facility))
        return known[1]

    def _node(self, host: str | None) -> str:
        return name_for_host(host or socket.gethostname(), self.settings.node_names, self._facility())

    def _hold_s(self) -> float:
        return 3 * self.settings.telemetry_interval_s

    def node_energy(self, node: str, start: float, end: float) -> Energy:
        samples = self.store.query_samples(
            metric=POWER, node=node, since=start - self._hold_s(), until=end + self._hold_s()
        )
        return integrate(samples, start, end, hold_s=self._hold_s())

    def _node_size(self, node: str, at: float) -> tuple[float | None, float | None]:
        """(CPUs, GPUs) of a node: as psutil counted it near ``at``, else as the spec says."""
        cpus = self.store.query_samples(metric="node_cpu_count", node=node, since=at - 3600, until=at + 3600, limit=1)
        spec = self._facility()
        group = next((i.group for i in spec.node_instances() if i.name == node), None) if spec else None
        return (cpus[0].value if cpus else (group.cpu_cores if group else None)), (group.gpus if group else None)

    def job_energy(self, job: Job, *, now: float | None = None) -> tuple[Energy, str]:
        """The job's share of its node's energy over its time there; (energy, node)."""
        start = _ts(job.started_at)
        if start is None:
            return NONE, ""
        end = _ts(job.finished_at) or (now or time.time())
        node = self._node(job.worker.split(":", 1)[0] if job.worker else None)
        cpus, gpus = self._node_size(node, start)
        share = job_share(job.total_cpus, job.total_gpus, cpus, gpus)
        return self.node_energy(node, start, end).scaled(share), node

    def run_energy(self, run: JSON) -> JSON:
        """kWh and gCO2e of a run: through the job that ran it, else (a run outside the queue, `aidc run`) this
        host's whole draw over the run's time."""
        jobs = self.store.list_jobs(run_id=run["id"], limit=1)
        if jobs:
            energy, node = self.job_energy(jobs[0])
            basis = f"job {jobs[0].id}'s share of {node}"
        else:
            start, end = _ts(run.get("created_at")), _ts(run.get("finished_at")) or time.time()
            node = self._node(None)
            energy = self.node_energy(node, start, end) if start is not None else NONE
            basis = f"{node}'s whole draw over the run (it ran outside the queue)"
        if energy.covered_s == 0:
            return {
                "kwh": None,
                "gco2e": None,
                "measured": None,
                "basis": basis,
                "why": "no power readings cover the run: run it under `aidc server` (its collector samples every "
                "node), with a facility spec (AIDC_FACILITY) for modelled power where no sensor reads it",
            }
        figures = self._site().account(energy)
        return {
            "kwh": figures["facility_kwh"],
            "it_kwh": figures["it_kwh"],
            "gco2e": figures["gco2e"],
            "measured": energy.measured,
            "pue": figures["pue"],
            "coverage": round(energy.covered_s / energy.window_s, 3) if energy.window_s else None,
            "basis": basis,
        }

    def report(self, access: Access, *, period_days: float = 30.0, project: str | None = None) -> JSON:
        """The data center's energy over the last ``period_days``: IT and facility kWh, carbon, ISO/IEC 30134 KPIs,
        per node and per project (the projects the caller may read jobs of)."""
        self.guard.require_somewhere(access, "nodes:read", "energy.read", "energy report")
        if not 0 < period_days <= 3660:
            raise InvalidInput("period must be more than 0 and at most 3660 days", where="--period")
        until = time.time()
        since = until - period_days * DAY_S
        by_node: dict[str, Energy] = {}
        samples = self.store.query_samples(metric=POWER, since=since - self._hold_s(), until=until)
        series: dict[str, list[Any]] = {}
        for s in samples:
            series.setdefault(s.node, []).append(s)
        for node, points in sorted(series.items()):
            by_node[node] = integrate(points, since, until, hold_s=self._hold_s())
        it = sum(by_node.values(), NONE)
        site = self._site()
        meter = self.store.query_samples(metric="facility_power_watts", since=since, until=until)
        facility_kwh = integrate(meter, since, until, hold_s=self._hold_s()).kwh if meter else None
        totals = site.account(it, facility_kwh=facility_kwh)
        allowed = access.projects("jobs:read")
        projects: dict[str, JSON] = {}
        for job in self.store.list_jobs(since=None, limit=100000):
            if project is not None and job.project != project:
                continue
            if allowed is not None and job.project not in allowed:
                continue
            start, end = _ts(job.started_at), _ts(job.finished_at) or until
            if start is None or end < since:
                continue
            energy, _ = self.job_energy(job, now=until)
            p = projects.setdefault(job.project, {"project": job.project, "jobs": 0, "_e": NONE})
            p["jobs"] += 1
            p["_e"] = p["_e"] + energy
        for p in projects.values():
            e: Energy = p.pop("_e")
            figures = site.account(e)
            p |= {
                "kwh": figures["facility_kwh"],
                "it_kwh": figures["it_kwh"],
                "gco2e": figures["gco2e"],
                "measured": e.measured,
            }
        return {
            "period_days": period_days,
            "since": datetime.fromtimestamp(since, UTC).isoformat().replace("+00:00", "Z"),
            "until": datetime.fromtimestamp(until, UTC).isoformat().replace("+00:00", "Z"),
            **totals,
            "kpis": site.kpis(totals["it_kwh"], totals["facility_kwh"], totals["gco2e"]),
            "nodes": [
                {"node": n, "it_kwh": round(e.kwh, 6), "measured": e.measured} for n, e in sorted(by_node.items())
            ],
            "projects": sorted(projects.values(), key=lambda p: p["project"]),
        }

    # -- /metrics
    def exposition(self, access: Access) -> bytes:
        """The Prometheus exposition of nodes, GPUs, jobs, queue, deployments and each run's energy."""
        from aidc.monitoring.metrics import exposition

        self.guard.require_somewhere(access, "nodes:read", "metrics.read", "metrics")

        def snapshot() -> JSON:
            jobs = self.store.list_jobs(limit=100000)
            site = self._site()
            energy = []
            for job in jobs[:METRICS_JOBS]:
                if job.run_id is None or job.started_at is None:
                    continue
                e, _ = self.job_energy(job)
                energy.append(
                    {
                        "run": job.run_id,
                        "job": job.id,
                        "project": job.project,
                        "joules": e.joules,
                        "measured": e.measured,
                        "gco2e": site.account(e)["gco2e"],
                    }
                )
            return {
                "samples": self.store.latest_samples(within_s=3 * self.settings.telemetry_interval_s + 5),
                "nodes": self._inventory(),
                "jobs": jobs,
                "deployments": [d.to_json() for d in self.store.list_deployments() if d.status != "stopped"],
                "energy": energy,
            }

        return exposition(snapshot)
