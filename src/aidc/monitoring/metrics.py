"""The server's /metrics: nodes, GPUs, jobs, queue, deployments and energy in Prometheus exposition format.

Built per scrape from the store (a custom collector on a registry of its own), so every server process over one
store answers the same and nothing is counted twice. Names follow Prometheus conventions: base units in the
name (``_bytes``, ``_watts``, ``_celsius``, ``_joules_total``, ``_ratio``), ``aidc_`` prefix for our own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aidc.store.metadata.records import Sample, parse_labels

# stored metric → (exposed name, help, kind); the store keeps counters' running totals as their samples
NODE_METRICS = {
    "node_cpu_utilisation_ratio": ("aidc_node_cpu_utilisation_ratio", "CPU busy share of the node, 0..1", "gauge"),
    "node_memory_used_bytes": ("aidc_node_memory_used_bytes", "memory in use", "gauge"),
    "node_memory_total_bytes": ("aidc_node_memory_total_bytes", "memory installed", "gauge"),
    "node_disk_used_bytes": ("aidc_node_disk_used_bytes", "disk space in use", "gauge"),
    "node_network_receive_bytes_total": ("aidc_node_network_receive_bytes", "bytes received", "counter"),
    "node_network_transmit_bytes_total": ("aidc_node_network_transmit_bytes", "bytes sent", "counter"),
    "node_power_watts": ("aidc_node_power_watts", "node power draw (measured=false: modelled)", "gauge"),
    "node_energy_joules_total": (
        "aidc_node_energy_joules",
        "energy the node drew since its collector started",
        "counter",
    ),
    "node_inlet_temperature_celsius": (
        "aidc_node_inlet_temperature_celsius",
        "BMC inlet (intake) temperature",
        "gauge",
    ),
    "node_psu_output_watts": ("aidc_node_psu_output_watts", "power supply output", "gauge"),
    "node_fan_speed_rpm": ("aidc_node_fan_speed_rpm", "fan speed", "gauge"),
    "node_rapl_power_watts": ("aidc_node_rapl_power_watts", "CPU package/DRAM power from RAPL", "gauge"),
    "facility_power_watts": ("aidc_facility_power_watts", "a facility meter's reading (node: the meter)", "gauge"),
    "gpu_utilisation_ratio": ("aidc_gpu_utilisation_ratio", "GPU busy share, 0..1", "gauge"),
    "gpu_memory_used_bytes": ("aidc_gpu_memory_used_bytes", "GPU memory in use", "gauge"),
    "gpu_power_watts": ("aidc_gpu_power_watts", "GPU board power", "gauge"),
    "gpu_temperature_celsius": ("aidc_gpu_temperature_celsius", "GPU temperature", "gauge"),
    "gpu_ecc_uncorrected_errors_total": ("aidc_gpu_ecc_uncorrected_errors", "uncorrected ECC errors", "counter"),
    "gpu_xid_errors_total": ("aidc_gpu_xid_errors", "XID critical errors the driver reported (NVML events)", "counter"),
    "gpu_xid_last": ("aidc_gpu_xid_last", "the last XID code reported, 0 if none since the collector started", "gauge"),
}


class PlatformMetrics(Collector):
    """Reads the store on each scrape. ``snapshot()`` gives what to expose:
    ``{"samples": [...], "nodes": [...], "jobs": [...], "deployments": [...], "energy": [...]}``."""

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        yield from node_families(snap["samples"], snap["nodes"])
        yield from job_families(snap["jobs"])
        deployments = GaugeMetricFamily(
            "aidc_deployment_replicas", "replicas wanted per deployment", labels=["deployment", "status"]
        )
        for d in snap["deployments"]:
            deployments.add_metric([d["name"], d["status"]], float(d.get("replicas") or 0))
        yield deployments
        energy = CounterMetricFamily(
            "aidc_run_energy_joules",
            "IT energy of a run (its job's share of its nodes)",
            labels=["run", "job", "project", "measured"],
        )
        carbon = GaugeMetricFamily(
            "aidc_run_carbon_grams",
            "gCO2e of a run through the PUE and grid intensity",
            labels=["run", "job", "project"],
        )
        for e in snap["energy"]:
            energy.add_metric([e["run"], e["job"], e["project"], str(e["measured"]).lower()], e["joules"])
            if e.get("gco2e") is not None:
                carbon.add_metric([e["run"], e["job"], e["project"]], e["gco2e"])
        yield energy
        yield carbon


def node_families(samples: Iterable[Sample], nodes: list[dict[str, Any]]) -> Iterator[Metric]:
    families: dict[tuple[str, tuple[str, ...]], Any] = {}
    for s in samples:
        known = NODE_METRICS.get(s.metric)
        if known is None:
            continue
        name, help_, kind = known
        extra = parse_labels(s.labels)
        keys = ["node", *sorted(extra)]
        if s.metric in ("node_power_watts", "node_energy_joules_total"):
            keys.append("measured")
            extra["measured"] = str(s.measured).lower()
        key = (name, tuple(keys))
        if key not in families:
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            families[key] = cls(name, help_, labels=keys)
        families[key].add_metric([s.node, *(extra[k] for k in keys[1:])], s.value)
    yield from families.values()
    up = GaugeMetricFamily("aidc_node_up", "1 while the cluster has the node alive", labels=["node", "rack", "status"])
    cordoned = GaugeMetricFamily(
        "aidc_node_cordoned", "1 while an operator holds the node (cordon or drain)", labels=["node"]
    )
    for n in nodes:
        up.add_metric([n["name"], n.get("rack") or "", n["status"]], 1.0 if n["status"] == "up" else 0.0)
        cordoned.add_metric([n["name"]], 1.0 if n.get("cordoned") else 0.0)
    yield up
    yield cordoned


def job_families(jobs: list[Any]) -> Iterator[Metric]:
    by_state: dict[tuple[str, str], int] = {}
    cpus: dict[str, float] = {}
    gpus: dict[str, float] = {}
    for j in jobs:
        by_state[(j.project, j.state)] = by_state.get((j.project, j.state), 0) + 1
        if j.state == "running":
            cpus[j.project] = cpus.get(j.project, 0.0) + j.total_cpus
            gpus[j.project] = gpus.get(j.project, 0.0) + j.total_gpus
    jobs_family = GaugeMetricFamily("aidc_jobs", "jobs by project and state", labels=["project", "state"])
    for (project, state), n in sorted(by_state.items()):
        jobs_family.add_metric([project, state], float(n))
    yield jobs_family
    queue = GaugeMetricFamily("aidc_queue_length", "jobs waiting (queued or preempted) by project", labels=["project"])
    for project in sorted({p for p, _ in by_state}):
        queue.add_metric(
            [project], float(sum(n for (p, s), n in by_state.items() if p == project and s in ("queued", "preempted")))
        )
    yield queue
    held = GaugeMetricFamily("aidc_jobs_cpus", "CPUs held by running jobs", labels=["project"])
    for project, v in sorted(cpus.items()):
        held.add_metric([project], v)
    yield held
    held_g = GaugeMetricFamily("aidc_jobs_gpus", "GPUs held by running jobs", labels=["project"])
    for project, v in sorted(gpus.items()):
        held_g.add_metric([project], v)
    yield held_g


def exposition(snapshot: Any) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformMetrics(snapshot))
    return generate_latest(registry)
