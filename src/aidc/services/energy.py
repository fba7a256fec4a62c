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
from aidc.errors import AidcError, InvalidInput
from aidc.monitoring.energy import NONE, Energy, Site, integrate_slices, job_share
from aidc.monitoring.sources import FACILITY_POWER, POWER
from aidc.security.roles import Access
from aidc.services.guard import Guard
from aidc.settings import Settings
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import Job, ModelVersion

if TYPE_CHECKING:
    from aidc.facility.model import Facility

METRICS_JOBS = 1000  # the newest jobs whose energy /metrics exposes

JSON = dict[str, Any]
DAY_S = 86400.0
FLEET_KEEP_S = 10.0  # how long a period's fleet energy is handed out again (the collector's default interval)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


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
        self._fleet: dict[float, tuple[float, float, dict[str, Energy], JSON | None]] = {}
        self._exposed: dict[str, tuple[Site, JSON]] = {}  # /metrics figures of jobs no new reading can change

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
        return integrate_slices(samples, start, end, hold_s=self._hold_s())

    def _by_node(self, metric: str, start: float, end: float) -> dict[str, Energy]:
        hold = self._hold_s()
        series: dict[str, list[Any]] = {}
        for s in self.store.query_samples(metric=metric, since=start - hold, until=end + hold):
            series.setdefault(s.node, []).append(s)
        return {node: integrate_slices(points, start, end, hold_s=hold) for node, points in sorted(series.items())}

    def measured_pue(self, start: float, end: float) -> JSON | None:
        """PUE over [start, end) from the facility meters' readings (``facility_power_watts``, one series per
        meter): their energy over the span they cover, divided by every node's IT energy over that same span.
        None where no meter reading covers any of it (the design PUE applies)."""
        hold = self._hold_s()
        readings = self.store.query_samples(metric=FACILITY_POWER, since=start - hold, until=end + hold)
        if not readings:
            return None
        first, last = min(r.at for r in readings), max(r.at for r in readings)
        a, b = max(start, first - hold), min(end, last + hold)
        if b <= a:
            return None
        facility = sum(self._by_node(FACILITY_POWER, a, b).values(), NONE)
        it = sum(self._by_node(POWER, a, b).values(), NONE)
        if it.joules <= 0 or facility.joules <= 0:
            return None
        pue = facility.joules / it.joules
        return {
            "pue": pue,
            "meters": sorted({r.node for r in readings}),
            "since": _iso(a),
            "until": _iso(b),
            "coverage": round((b - a) / (end - start), 3) if end > start else 1.0,
            "facility_kwh": float(f"{facility.kwh:.6g}"),
            "it_kwh": float(f"{it.kwh:.6g}"),
            "note": None
            if pue >= 1.0
            else "the meter reads less than the IT load: check that it measures the whole facility's intake",
        }

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

    def run_energy(self, run: JSON, *, predict: bool = True) -> JSON:
        """kWh and gCO2e of a run: through the job that ran it, else (a run outside the queue, `aidc run`) this
        host's whole draw over the run's time; with ``predict``, the planner's prediction of its training beside
        the measured figure (``prediction``; its ``why`` where the planner cannot predict the work)."""
        jobs = self.store.list_jobs(run_id=run["id"], limit=1)
        if jobs:
            job = jobs[0]
            start, end = _ts(job.started_at), _ts(job.finished_at) or time.time()
            node = self._node(job.worker.split(":", 1)[0] if job.worker else None)
            cpus, gpus = self._node_size(node, start) if start is not None else (None, None)
            share = job_share(job.total_cpus, job.total_gpus, cpus, gpus)
            basis = f"job {job.id}'s share of {node}"
        else:
            start, end = _ts(run.get("created_at")), _ts(run.get("finished_at")) or time.time()
            node, share = self._node(None), 1.0
            cpus = self._node_size(node, start)[0] if start is not None else None
            basis = f"{node}'s whole draw over the run (it ran outside the queue)"
        energy = self.node_energy(node, start, end).scaled(share) if start is not None else NONE
        meter = self.measured_pue(start, end) if start is not None else None
        site = self._site()

        def account(e: Energy) -> JSON:
            return site.account(e, pue=meter["pue"] if meter else None)

        prediction = self._prediction(run, node, cpus, share, account) if predict else None
        if energy.covered_s == 0:
            return {
                "kwh": None,
                "gco2e": None,
                "measured": None,
                "basis": basis,
                "why": "no power readings cover the run: run it under `aidc server` (its collector samples every "
                "node), with a facility spec (AIDC_FACILITY) for modelled power where no sensor reads it",
            } | ({"prediction": prediction} if predict else {})
        figures = account(energy)
        return {
            "kwh": figures["facility_kwh"],
            "it_kwh": figures["it_kwh"],
            "gco2e": figures["gco2e"],
            "measured": energy.measured,
            "pue": figures["pue"],
            "pue_source": figures["pue_source"],
            "grid_g_per_kwh": figures["grid_g_per_kwh"],
            "grid_source": figures["grid_source"],
            "coverage": round(energy.covered_s / energy.window_s, 3) if energy.window_s else None,
            "basis": basis,
        } | ({"prediction": prediction} if predict else {})

    def _prediction(
        self, run: JSON, node: str, cpus: float | None, share: float, account: Callable[[Energy], JSON]
    ) -> JSON:
        """The planner's prediction of the run's training beside the same stage measured (services.predicted)."""
        from aidc.monitoring.collector import power_model_for
        from aidc.services.predicted import predict_training

        here = self._node(None)
        if node != here:
            return {
                "predicted_kwh": None,
                "why": f"the run trained on {node}; the planner's host model is probed on this host ({here})",
            }
        try:
            return predict_training(
                self.store,
                run,
                power_model=power_model_for(self._facility(), node),
                node_cpus=cpus,
                share=share,
                measure=lambda a, b: self.node_energy(node, a, b).scaled(share),
                account=account,
            )
        except AidcError as exc:  # a dataset version or stage pruned since: no prediction, the figure stands
            return {"predicted_kwh": None, "why": f"the run's records are incomplete: {exc.message}"}

    def model_energy(self, model: ModelVersion, lineage: list[JSON]) -> JSON:
        """kWh and gCO2e of what made a model version: the run that registered it and every run upstream in its
        lineage — a compressed child's parent's training, a fine-tuned model's base — each run counted once.

        ``lineage``: the version's upstream edges (MetadataStore.iter_all_lineage, as JSON). A total is None (with
        ``why``) when some run has no power readings; ``runs`` still lists what is known."""
        ids = [model.run_id] if model.run_id else []
        ids += sorted({e["src_id"] for e in lineage if e["src_kind"] == "run"} - set(ids))
        runs: list[JSON] = []
        for run_id in ids:
            try:
                run = self.store.get_run(run_id)
            except AidcError:  # a run pruned from the store: its energy is not known any more
                runs.append({"run": run_id, "kwh": None, "gco2e": None, "why": "the run is no longer in the store"})
                continue
            e = self.run_energy(run.to_json(), predict=False)
            role = "registered it" if run_id == model.run_id else "upstream in its lineage"
            runs.append({"run": run_id, "pipeline": run.pipeline, "role": role} | e)
        known = [r for r in runs if r.get("kwh") is not None]
        if not runs:
            return {"kwh": None, "gco2e": None, "runs": [], "why": "no run made it (registered by hand)"}
        total_g = [r["gco2e"] for r in known]
        complete = len(known) == len(runs)
        return {
            "kwh": round(sum(r["kwh"] for r in known), 6) if complete else None,
            "it_kwh": round(sum(r["it_kwh"] for r in known), 6) if complete else None,
            "gco2e": round(sum(total_g), 3) if complete and None not in total_g else None,
            "measured": all(r["measured"] for r in known) if complete else None,
            "runs": runs,
            **({} if complete else {"why": "some runs that made it have no energy figure: see each run's `why`"}),
        }

    def report(self, access: Access, *, period_days: float = 30.0, project: str | None = None) -> JSON:
        """The data center's energy over the last ``period_days``: IT and facility kWh, carbon, ISO/IEC 30134 KPIs,
        per node and per project (the projects the caller may read jobs of)."""
        self.guard.require_somewhere(access, "nodes:read", "energy.read", "energy report")
        if not 0 < period_days <= 3660:
            raise InvalidInput("period must be more than 0 and at most 3660 days", where="--period")
        until, by_node, meter = self._fleet_energy(period_days)
        since = until - period_days * DAY_S
        it = sum(by_node.values(), NONE)
        site = self._site()
        totals = site.account(it, pue=meter["pue"] if meter else None)
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
            figures = site.account(e, pue=meter["pue"] if meter else None)
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
            "meter": meter,
            "kpis": site.kpis(totals["it_kwh"], totals["facility_kwh"], totals["gco2e"]),
            "nodes": [
                {"node": n, "it_kwh": round(e.kwh, 6), "measured": e.measured} for n, e in sorted(by_node.items())
            ],
            "projects": sorted(projects.values(), key=lambda p: p["project"]),
        }

    def _fleet_energy(self, period_days: float) -> tuple[float, dict[str, Energy], JSON | None]:
        """Every node's IT energy and the metered PUE over the period up to now — the same for every caller, so
        worked out at most once per FLEET_KEEP_S (a month's readings of every node are read and integrated)."""
        kept = self._fleet.get(period_days)
        if kept is not None and time.monotonic() - kept[0] < FLEET_KEEP_S:
            return kept[1], kept[2], kept[3]
        until = time.time()
        since = until - period_days * DAY_S
        by_node, meter = self._by_node(POWER, since, until), self.measured_pue(since, until)
        self._fleet = {period_days: (time.monotonic(), until, by_node, meter)}  # one period kept: the one asked last
        return until, by_node, meter

    # -- /metrics
    def _exposed_energy(self, job: Job, site: Site) -> JSON:
        """A job's IT energy and its carbon as `aidc runs show` accounts it: through the PUE the facility meters
        measured over the job's span where they did, else the design PUE. Kept once the job ended longer ago than
        a reading may arrive late (and for as long as the site model is the same)."""
        kept = self._exposed.get(job.id)
        if kept is not None and kept[0] is site:
            return kept[1]
        e, _ = self.job_energy(job)
        start, end = _ts(job.started_at), _ts(job.finished_at)
        meter = self.measured_pue(start, end or time.time()) if start is not None else None
        figures = {
            "run": job.run_id,
            "job": job.id,
            "project": job.project,
            "joules": e.joules,
            "measured": e.measured,
            "gco2e": site.account(e, pue=meter["pue"] if meter else None)["gco2e"],
        }
        if end is not None and end < time.time() - self._hold_s():
            self._exposed[job.id] = (site, figures)
        return figures

    def exposition(self, access: Access) -> bytes:
        """The Prometheus exposition of nodes, GPUs, jobs, queue, deployments and each run's energy."""
        from aidc.monitoring.metrics import exposition

        self.guard.require_somewhere(access, "nodes:read", "metrics.read", "metrics")

        def snapshot() -> JSON:
            jobs = self.store.list_jobs(limit=100000)
            site = self._site()
            shown = [job for job in jobs[:METRICS_JOBS] if job.run_id is not None and job.started_at is not None]
            energy = [self._exposed_energy(job, site) for job in shown]
            self._exposed = {job.id: self._exposed[job.id] for job in shown if job.id in self._exposed}
            return {
                "samples": self.store.latest_samples(within_s=3 * self.settings.telemetry_interval_s + 5),
                "nodes": self._inventory(),
                "jobs": jobs,
                "deployments": [d.to_json() for d in self.store.list_deployments() if d.status != "stopped"],
                "energy": energy,
            }

        return exposition(snapshot)
