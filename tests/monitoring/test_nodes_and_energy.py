"""Inventory, node holds and energy as a user sees them through the client: this host in its rack of the lab
spec with live (modelled) power, cordon and drain acting on the scheduler, and a run's kWh and gCO2e."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from tests.api.conftest import JOB_SPEC

from aidc.client.local import LocalClient
from aidc.cluster.inventory import ComputeNode, reconcile
from aidc.errors import PermissionDenied
from aidc.facility.loader import load_facility
from aidc.jobs.queue import Resources
from aidc.jobs.scheduler import Scheduler
from aidc.monitoring.collector import local_collector
from aidc.platform import Platform
from aidc.security.roles import Access
from aidc.settings import Settings
from aidc.store.metadata.records import Sample

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
HOST = socket.gethostname()


def node(host: str, **labels: str) -> ComputeNode:
    return ComputeNode(host, f"id-{host}", "10.0.0.1", True, 64.0, 4.0, "L40S", 512 * 2**30, labels)


def test_ray_nodes_are_matched_to_the_spec_by_hostname_dns_label_label_or_map() -> None:
    lab = load_facility(LAB)
    found = reconcile(
        [node("gpu-001.lab.example"), node("box-7", **{"aidc.node": "gpu-002"}), node("stray")], lab, {"x": "y"}
    )
    by_name = {n["name"]: n for n in found}
    assert set(by_name) == {"gpu-001", "gpu-002", "switch-001", "stray"}
    g1 = by_name["gpu-001"]
    assert (g1["status"], g1["rack"], g1["hall"], g1["feeds"], g1["role"]) == (
        "up",
        "lab-rack",
        "room-214",
        ["A"],
        "compute",
    )
    assert g1["spec"]["max_kw"] == 2.8 and g1["gpus"] == 4.0 and g1["host"] == "gpu-001.lab.example"
    assert by_name["gpu-002"]["host"] == "box-7"  # by its Ray label
    assert (by_name["stray"]["in_spec"], by_name["stray"]["rack"]) == (False, None)  # in Ray, not in the spec
    assert by_name["switch-001"]["status"] == "unmonitored"
    # a server of the spec Ray lacks is listed as absent; a configured host → name map names a node too
    missing = {n["name"]: n for n in reconcile([node("lab-box")], lab, {"lab-box": "gpu-002"})}
    assert missing["gpu-001"]["status"] == "absent" and not missing["gpu-001"]["in_cluster"]
    assert missing["gpu-002"]["status"] == "up"


def spec_with(tmp_path: Path, **site: object) -> Path:
    doc = yaml.safe_load(LAB.read_text())
    doc["site"] |= site
    doc["energy"] = {"design_pue": 1.4}
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture()
def platform(tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        home=tmp_path / "home",
        facility=str(spec_with(tmp_path, grid_carbon_g_per_kwh=400)),
        node_names={HOST: "gpu-001"},  # this host is the lab's first server
    )
    p = Platform(settings)
    yield p
    p.close()


def test_this_host_shows_in_its_rack_with_live_cpu_memory_and_modelled_power(platform: Platform) -> None:
    collector = local_collector(platform.metadata, platform.settings, platform.facility)
    collector.collect_once()
    time.sleep(0.05)  # psutil's CPU share needs an interval between two readings
    collector.collect_once()
    nodes = {n["name"]: n for n in LocalClient(platform).list_nodes()}
    me = nodes["gpu-001"]
    assert (me["status"], me["rack"], me["host"]) == ("up", "lab-rack", HOST)
    t = me["telemetry"]
    assert 0.0 <= t["cpu_utilisation"] <= 1.0 and t["memory_total_bytes"] > 0
    # no BMC or RAPL here: power is modelled from CPU use between the spec's idle (1.6 kW) and max (2.8 kW)
    assert 1600.0 <= t["power_watts"] <= 2800.0 and t["power_measured"] is False
    assert nodes["gpu-002"]["status"] == "absent"


@dataclass
class OneNode:
    """A one-node cluster that honours cordons (the scheduler's Ray view is tested in tests/jobs/test_cordon_ray.py)."""

    name: str
    cpus: float = 4.0
    held: set[str] = field(default_factory=set)
    address: str = ""

    def cordon(self, names: set[str]) -> None:
        self.held = set(names)

    def capacity(self) -> Resources:
        return Resources(0.0, 0.0) if self.name in self.held else Resources(self.cpus, 0.0)

    def available(self) -> Resources:
        return self.capacity()

    def place_gang(self, bundles: list[dict[str, float]], timeout_s: float) -> bool:
        return self.name not in self.held and sum(b["CPU"] for b in bundles) <= self.cpus


@dataclass
class Processes:
    """Job processes on this host that live until the test ends them (stand-ins: a real job takes a minute)."""

    live: dict[str, str] = field(default_factory=dict)
    started: list[tuple[str, bool]] = field(default_factory=list)
    signals: list[tuple[str, str]] = field(default_factory=list)

    def start(self, job_id: str, *, resume: bool) -> str:
        worker = f"{HOST}:{len(self.started) + 100}:0"
        self.live[worker] = job_id
        self.started.append((job_id, resume))
        return worker

    def alive(self, worker: str) -> bool:
        return worker in self.live

    def stop(self, worker: str, *, force: bool = False) -> None:
        if worker in self.live:
            self.signals.append((self.live[worker], "kill" if force else "stop"))

    def exit(self, job_id: str) -> None:
        self.live = {w: j for w, j in self.live.items() if j != job_id}


def test_cordon_keeps_new_jobs_off_and_drain_requeues_running_ones_to_resume(platform: Platform) -> None:
    client = LocalClient(platform)
    processes = Processes()
    scheduler = Scheduler(
        platform.metadata,
        platform.security,
        OneNode("gpu-001"),
        processes,
        stop_checkpoint_s=0,  # type: ignore[arg-type]
    )
    first = client.submit_job(JOB_SPEC, path_name="p.yaml", project="default", cpus=1, workers=1)["id"]
    scheduler.tick()
    assert client.show_job(first)["state"] == "running"
    platform.metadata.transition_job(first, ("running",), None, run_id="run-1")  # as the job's process does

    client.change_node("cordon", "gpu-001", "PSU swap")
    second = client.submit_job(JOB_SPEC, path_name="p.yaml", project="default", cpus=1, workers=1)["id"]
    scheduler.tick()
    assert client.show_job(second)["state"] == "queued"  # a cordoned node takes no new job
    assert client.show_job(first)["state"] == "running"  # what runs there goes on
    assert client.list_nodes()[0]["cordoned"] and client.show_node("gpu-001")["hold_reason"] == "PSU swap"

    drained = client.change_node("drain", "gpu-001", "maintenance")
    assert drained["jobs_requeued"] == [first] and drained["drained"]
    assert "drained" in client.show_job(first)["reason"]
    scheduler.tick()
    assert processes.signals == [(first, "stop")]  # asked to checkpoint and stop, as preemption does
    processes.exit(first)
    scheduler.tick()
    assert client.show_job(first)["state"] == "preempted"  # no room while the only node is held

    client.change_node("uncordon", "gpu-001")
    scheduler.tick()
    assert client.show_job(first)["state"] == "running" and (first, True) in processes.started  # resumed
    actions = [e["action"] for e in client.audit_list() if e["action"].startswith("node.")]
    assert {"node.cordon", "node.drain", "node.uncordon"} <= set(actions)


def test_a_viewer_sees_nodes_but_may_not_cordon_them(platform: Platform) -> None:
    viewer = LocalClient(platform, Access("val", "user", frozenset({("viewer", "default")})))
    assert [n["name"] for n in viewer.list_nodes()][:1] == ["gpu-001"]
    with pytest.raises(PermissionDenied, match="nodes:manage"):
        viewer.change_node("cordon", "gpu-001")
    assert platform.metadata.cordoned_nodes() == set()


def test_a_runs_energy_is_its_share_of_the_node_through_pue_and_grid_carbon(platform: Platform) -> None:
    store = platform.metadata
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    end = start + timedelta(hours=1)
    t0 = start.timestamp()
    # the node drew 2000 W for the hour (measured by its BMC); it has 8 CPUs, the job held 2
    store.add_samples([Sample("gpu-001", "node_power_watts", 2000.0, t0 + i * 60, source="redfish") for i in range(61)])
    store.add_samples([Sample("gpu-001", "node_cpu_count", 8.0, t0)])
    store.create_run("run-e", "digits", {}, None)
    job, _ = store.submit_job(
        {
            "id": "job-e",
            "project": "default",
            "submitter": "t",
            "idempotency_key": "e",
            "pipeline": "digits",
            "path_name": "p.yaml",
            "spec_text": JOB_SPEC,
            "priority": 0,
            "workers": 2,
            "cpus": 1.0,
            "gpus": 0.0,
        }
    )
    store.transition_job("job-e", ("queued",), "running", run_id="run-e", started_at=start, worker=f"{HOST}:1:0")
    store.transition_job("job-e", ("running",), "succeeded", finished_at=end)
    energy = LocalClient(platform).run_details("run-e")["energy"]
    # 2 kW × 1 h × 2/8 of the node = 0.5 kWh IT; × PUE 1.4 = 0.7 kWh; × 400 g/kWh = 280 g
    assert energy["it_kwh"] == pytest.approx(0.5) and energy["kwh"] == pytest.approx(0.7)
    assert energy["gco2e"] == pytest.approx(280.0) and energy["measured"] is True and energy["pue"] == 1.4
    report = LocalClient(platform).energy_report(period_days=1)
    # the node's hour, plus each end reading held for 3 sampling intervals (30 s) where readings stop
    assert report["it_kwh"] == pytest.approx(2.0 + 2 * 2000 * 30 / 3.6e6, abs=1e-5)
    assert report["kpis"]["PUE"] == pytest.approx(1.4)
    assert report["kpis"]["CUE"] == pytest.approx(0.4 * 1.4)  # kgCO2e per IT kWh = CEF × PUE
    assert [(p["project"], p["jobs"], round(p["kwh"], 3)) for p in report["projects"]] == [("default", 1, 0.7)]
    html = Path(LocalClient(platform).run_report("run-e")).read_text()
    assert "Energy and carbon" in html and "280.0" in html


def test_a_run_without_power_readings_says_why_it_has_no_energy(platform: Platform) -> None:
    platform.metadata.create_run("run-x", "digits", {}, None)
    energy = LocalClient(platform).run_details("run-x")["energy"]
    assert energy["kwh"] is None and "no power readings" in energy["why"]


def test_a_run_outside_the_queue_samples_this_host_and_reports_its_kwh_and_gco2e(
    platform: Platform, tmp_path: Path
) -> None:
    from aidc.security.roles import local_access

    spec = tmp_path / "pipeline.yaml"
    spec.write_text('pipeline: digits-data\nstages:\n  - {name: data, uses: data, with: {source: "sklearn:digits"}}\n')
    run = platform.runs.run_pipeline(local_access(), spec)
    energy = LocalClient(platform).run_details(run.run_id)["energy"]
    # no server sampled this host, so the run did, for its own time: modelled power (no sensor here)
    assert energy["kwh"] > 0 and energy["gco2e"] == pytest.approx(energy["kwh"] * 400, rel=1e-3)
    assert energy["measured"] is False and "outside the queue" in energy["basis"]
