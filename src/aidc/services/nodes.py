"""Nodes: the inventory (Ray's nodes reconciled with the facility spec) with live telemetry, and the operators'
verbs on a node — cordon (no new jobs or replicas), drain (cordon, and its jobs checkpoint and requeue through the
preemption path), uncordon. Viewers see; operators act; every change is audited.

The cordon state is one store method (``MetadataStore.set_node_state`` / ``cordoned_nodes``) and these verbs.
The same cordon is also the system's: a node where training failed ``node_failure_limit`` times within
``node_failure_window_s`` (each failure kept in the store, ``record_failure``) is cordoned as ``system:recovery``,
audited, and the NodeCordonedAfterFailures alert says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aidc.cluster.inventory import ComputeNode, discover, reconcile
from aidc.errors import InvalidInput
from aidc.security.roles import Access
from aidc.services.guard import Guard, not_found
from aidc.settings import Settings
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import Sample, parse_labels

if TYPE_CHECKING:
    from aidc.facility.model import Facility

JSON = dict[str, Any]
RECOVERY = Access(principal="system:recovery", kind="local", source="aidc recovery")  # who cordons a failing node
# The latest reading of each metric, under the name a person reads it by in `aidc nodes list|show`.
SHOWN = {
    "node_cpu_utilisation_ratio": "cpu_utilisation",
    "node_memory_used_bytes": "memory_used_bytes",
    "node_memory_total_bytes": "memory_total_bytes",
    "node_power_watts": "power_watts",
    "node_inlet_temperature_celsius": "inlet_celsius",
    "node_energy_joules_total": "energy_joules",
}

TRENDS = ("node_cpu_utilisation_ratio", "node_power_watts")  # what a node's sparklines draw
MAX_TREND_MINUTES = 24 * 60  # raw readings are kept a day
Trends = dict[str, dict[str, list[float]]]  # node → its metric's name in SHOWN → per-minute means, oldest first
TREND_KEEP_S = 10.0  # how long worked-out trends are handed out again (the collector's default interval)


def worker_host(worker: str | None) -> str | None:
    """The host of a job's process, from its worker string ``host:pid:start-time``."""
    return worker.split(":", 1)[0] if worker else None


def telemetry_of(samples: list[Sample]) -> JSON:
    """A node's latest readings as `aidc nodes` shows them; power says whether it was measured or modelled."""
    out: JSON = {}
    gpus: dict[str, JSON] = {}
    for s in samples:
        if s.metric in SHOWN:
            out[SHOWN[s.metric]] = s.value
            if s.metric == "node_power_watts":
                out["power_measured"] = s.measured
                out["power_source"] = s.source
        elif s.metric.startswith("gpu_"):
            gpu = parse_labels(s.labels).get("gpu", "?")
            gpus.setdefault(gpu, {"gpu": gpu})[s.metric.removeprefix("gpu_")] = s.value
        if s.at > out.get("_at", 0.0):
            out["_at"] = s.at
    if gpus:
        out["gpus"] = [gpus[k] for k in sorted(gpus)]
    at = out.pop("_at", None)
    if at is not None:
        out["age_s"] = round(max(0.0, time.time() - at), 1)
    return out


class Nodes:
    def __init__(
        self,
        store: MetadataStore,
        guard: Guard,
        facility: Callable[[], Facility | None],
        settings: Settings,
        *,
        cluster: Callable[[], list[ComputeNode]] = discover,
    ) -> None:
        """``facility``: the spec the server runs (loaded on first use); ``cluster``: the compute nodes now."""
        self.store, self.guard, self.settings = store, guard, settings
        self._facility, self._cluster = facility, cluster
        self.wake: Any = None  # the server's scheduler sets this: a drain starts a pass at once
        self._trends: tuple[tuple[int, int], Trends] | None = None

    # -- read
    def inventory(self) -> list[JSON]:
        """Every node, with its hold and latest telemetry (no access check: the server's own parts use it)."""
        nodes = reconcile(self._cluster(), self._facility(), self.settings.node_names)
        states = {s.node: s for s in self.store.node_states()}
        latest: dict[str, list[Sample]] = {}
        for s in self.store.latest_samples(within_s=3 * self.settings.telemetry_interval_s + 5):
            latest.setdefault(s.node, []).append(s)
        for node in nodes:
            state = states.get(node["name"])
            node["cordoned"] = bool(state and state.cordoned)
            node["drained"] = bool(state and state.drained)
            node["hold_reason"] = state.reason if state and state.cordoned else None
            node["telemetry"] = telemetry_of(latest.get(node["name"], []))
        return nodes

    def list(self, access: Access, *, trend_minutes: int = 0) -> list[JSON]:
        """Every node; with ``trend_minutes``, each with ``trend``: its CPU utilisation and power as per-minute
        means over that many minutes, oldest first (the console's sparklines)."""
        self.guard.require_somewhere(access, "nodes:read", "nodes.read", "nodes")
        if not 0 <= trend_minutes <= MAX_TREND_MINUTES:
            raise InvalidInput(
                f"trend_minutes must be 0 to {MAX_TREND_MINUTES}", hint="a longer look: `aidc energy` or Prometheus"
            )
        nodes = self.inventory()
        if trend_minutes:
            trends = self._trends_of(trend_minutes)
            for node in nodes:
                node["trend"] = trends.get(node["name"], {})
        return nodes

    def _trends_of(self, minutes: int) -> Trends:
        """Each node's per-minute means, worked out again at most every TREND_KEEP_S (a sparkline a few seconds
        old is as good; the database's grouping of 100 nodes' readings costs ~20 ms each time)."""
        slot = (minutes, int(time.time() // TREND_KEEP_S))
        kept = self._trends
        if kept is not None and kept[0] == slot:
            return kept[1]
        since = (time.time() // 60 - minutes + 1) * 60
        trends: Trends = {}
        for name, metric, _, mean in self.store.sample_trends(TRENDS, since=since, bucket_s=60):
            trends.setdefault(name, {}).setdefault(SHOWN[metric], []).append(mean)
        self._trends = (slot, trends)
        return trends

    def show(self, access: Access, name: str) -> JSON:
        self.guard.require_somewhere(access, "nodes:read", "nodes.read", f"node {name}")
        node = self._find(name)
        jobs = [
            {"id": j.id, "project": j.project, "state": j.state, "cpus": j.total_cpus, "gpus": j.total_gpus}
            for j in self.store.list_jobs(states=("running",), limit=10000)
            if worker_host(j.worker) in (node["host"], node["name"])
        ]
        allowed = access.projects("jobs:read")
        since = datetime.now(UTC) - timedelta(seconds=self.settings.node_failure_window_s)
        failures = [
            {"at": f.at.isoformat(), "reason": f.reason, "run_id": f.run_id}
            for f in self.store.node_failures(node=node["name"], since=since)
        ]
        return node | {
            "jobs": [j for j in jobs if allowed is None or j["project"] in allowed],
            "failures": failures[-10:],  # training's failures on it within the cordon's window, the latest last
            "failures_in_window": len(failures),
        }

    def _find(self, name: str) -> JSON:
        for node in self.inventory():
            if name in (node["name"], node["host"], node["ray_node_id"]):
                return node
        raise not_found("node", name)

    # -- the system's hold: a node that keeps failing
    def record_failure(self, ray_node_id: str, reason: str, *, run_id: str | None = None) -> JSON:
        """Keep a failure training saw on the Ray node ``ray_node_id``; cordon the node (as ``system:recovery``,
        audited) once it has failed ``node_failure_limit`` times within ``node_failure_window_s``. No access check:
        the runner reports what happened, it asks for nothing. Returns the node's name, its failures in the window
        and whether this failure cordoned it."""
        node = next((n for n in self.inventory() if n["ray_node_id"] == ray_node_id), None)
        name = node["name"] if node is not None else ray_node_id
        host = (node or {}).get("host") or ""
        self.store.add_node_failure(name, reason, host=host, run_id=run_id)
        limit, window = self.settings.node_failure_limit, self.settings.node_failure_window_s
        since = datetime.now(UTC) - timedelta(seconds=window)
        count = len(self.store.node_failures(node=name, since=since))
        held = name in self.store.cordoned_nodes()
        cordon = bool(limit) and count >= limit and not held
        if cordon:
            why = f"cordoned automatically: {count} failures within {window:g} s (the last: {reason})"
            with self.guard.audited(RECOVERY, "node.cordon", f"node:{name}", reason=why, failures=count, run_id=run_id):
                self.store.set_node_state(name, cordoned=True, reason=why, by=RECOVERY.principal, host=host)
        return {"node": name, "failures": count, "window_s": window, "cordoned": cordon or held, "now": cordon}

    # -- an operator's hold
    def cordon(self, access: Access, name: str, reason: str = "") -> JSON:
        """No new jobs or replicas on the node; what runs there goes on."""
        return self._hold(access, "cordon", name, reason)

    def uncordon(self, access: Access, name: str) -> JSON:
        return self._hold(access, "uncordon", name, "")

    def drain(self, access: Access, name: str, reason: str = "") -> JSON:
        """Cordon the node, and ask each job running there to checkpoint and requeue (the preemption path: the
        scheduler stops its process, which checkpoints; the job resumes from that checkpoint elsewhere)."""
        return self._hold(access, "drain", name, reason)

    def change(self, access: Access, verb: str, name: str, reason: str = "") -> JSON:
        """``verb``: cordon, drain or uncordon (the one verb the clients and the API call)."""
        if verb not in ("cordon", "drain", "uncordon"):
            raise InvalidInput(f"unknown node verb {verb!r}", hint="one of cordon, drain, uncordon")
        return self._hold(access, verb, name, reason)

    def _hold(self, access: Access, verb: str, name: str, reason: str) -> JSON:
        self.guard.require_somewhere(access, "nodes:manage", f"node.{verb}", f"node {name}")
        node = self._find(name)
        name = node["name"]
        with self.guard.audited(access, f"node.{verb}", f"node:{name}", reason=reason or None) as details:
            state = self.store.set_node_state(
                name,
                cordoned=verb != "uncordon",
                drained=verb == "drain",
                reason=reason,
                by=access.principal,
                host=node["host"] or "",
            )
            moved = []
            if verb == "drain":
                for job in self.store.list_jobs(states=("running",), limit=10000):
                    if worker_host(job.worker) not in (node["host"], name):
                        continue
                    why = f"node {name} drained by {access.principal}: it resumes from its checkpoint elsewhere"
                    if self.store.transition_job(job.id, ("running",), "preempted", reason=why):
                        moved.append(job.id)
                details["jobs"] = moved
        if moved and self.wake is not None:
            self.wake()
        return state.to_json() | {"jobs_requeued": moved}
