"""The server's own records as readings the rules judge like any metric: a job that failed, how long the oldest
queued job of each project has waited, how long a running job has gone without progress (its log silent), a node
the system cordoned because training kept failing on it (value: its failures in the last hour), and each
deployment's p99 latency and error ratio as its router measures them (``GET /-/stats``).

Each is a Sample made at evaluation time (``node`` "control-plane", or the node a reading is about), labelled by project and job, so job rules are
written, grouped, routed and silenced exactly as the hardware rules are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import Sample, label_text

log = logging.getLogger("aidc.alerts")
NODE = "control-plane"
REQUEST_RATE = "aidc_deployment_requests_per_second"
FAILED_WITHIN_S = 900.0  # a failed job is reported while its failure is this recent (the JobFailed rule's window)


def job_signals(store: MetadataStore, log_of: Callable[[str], Path] | None = None) -> Callable[[float], list[Sample]]:
    """A signal for the alert runner. ``log_of``: a job id → its log file (progress = the log's last write)."""

    def read(now: float) -> list[Sample]:
        out: list[Sample] = []
        since = datetime.fromtimestamp(now - FAILED_WITHIN_S, UTC)
        for job in store.list_jobs(states=("failed",), since=since, limit=1000):
            if job.finished_at is not None and job.finished_at >= since:
                labels = label_text({"project": job.project, "job": job.id})
                out.append(Sample(NODE, "aidc_job_failed", 1.0, now, labels, source="jobs"))
        waits: dict[str, float] = {}
        for job in store.list_jobs(states=("queued",), limit=10_000):
            waits[job.project] = max(waits.get(job.project, 0.0), now - job.created_at.timestamp())
        for project, wait in waits.items():
            out.append(
                Sample(NODE, "aidc_queue_wait_seconds", wait, now, label_text({"project": project}), source="jobs")
            )
        recent = datetime.fromtimestamp(now - 3600.0, UTC)
        for state in store.node_states():  # a node the system cordoned because it kept failing
            if state.cordoned and state.changed_by == "system:recovery":
                failures = len(store.node_failures(node=state.node, since=recent))
                value = float(max(1, failures))
                out.append(Sample(state.node, "aidc_node_cordoned_after_failures", value, now, source="recovery"))
        if log_of is not None:
            for job in store.list_jobs(states=("running",), limit=10_000):
                try:
                    last = os.stat(log_of(job.id)).st_mtime
                except OSError:
                    last = (job.started_at or job.updated_at).timestamp()
                labels = label_text({"project": job.project, "job": job.id})
                out.append(
                    Sample(NODE, "aidc_job_progress_age_seconds", max(0.0, now - last), now, labels, source="jobs")
                )
        return out

    return read


def serving_signals(
    deployments: Callable[[], Iterable[tuple[str, str, str]]],
    *,
    timeout_s: float = 2.0,
    keep: Callable[[list[Sample]], Any] | None = None,
) -> Callable[[float], list[Sample]]:
    """A signal for the alert runner: ``deployments()`` gives (name, project, router URL) of the running ones. The
    error ratio and the request rate are over the requests since the previous round (the router counts from when a
    version entered its routes); p99 is over the router's recent latencies. ``keep``: where each round's readings
    are also written (the store's add_samples: the deployment's traffic history the console charts)."""
    import httpx

    seen: dict[tuple[str, str], tuple[int, int, float | None]] = {}

    def read(now: float) -> list[Sample]:
        out: list[Sample] = []
        for name, project, url in deployments():
            try:
                versions = httpx.get(f"{url.rstrip('/')}/-/stats", timeout=timeout_s).json()["versions"]
            except (httpx.HTTPError, ValueError, KeyError):
                continue  # a router away: NodeHeartbeatLost's kin for serving is the deployment's own health check
            for version, stats in versions.items():
                labels = label_text({"deployment": name, "project": project, "version": str(version)})
                if stats.get("p99_ms") is not None:
                    p99 = float(stats["p99_ms"]) / 1000.0
                    out.append(Sample(NODE, "aidc_deployment_latency_p99_seconds", p99, now, labels, source="router"))
                requests, errors = int(stats.get("requests", 0)), int(stats.get("errors", 0))
                before = seen.get((name, str(version)), (0, 0, None))
                if requests < before[0]:
                    before = (0, 0, before[2])  # the version left the routes and came back: the router counts afresh
                seen[(name, str(version))] = (requests, errors, now)
                if before[2] is not None and now > before[2]:  # (a first look has no span to be a rate over)
                    rate = (requests - before[0]) / (now - before[2])
                    out.append(Sample(NODE, REQUEST_RATE, rate, now, labels, source="router"))
                if requests > before[0]:
                    ratio = (errors - before[1]) / (requests - before[0])
                    out.append(Sample(NODE, "aidc_deployment_error_ratio", ratio, now, labels, source="router"))
        if keep is not None and out:
            try:
                keep(out)
            except Exception:  # the store away for a moment: the rules are still judged on this round's readings
                log.warning("could not keep the serving readings of this round", exc_info=True)
        return out

    return read
