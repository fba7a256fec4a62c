"""Console page server time with a busy store: p50/p95 per page, printed, against the 50 ms p95 goal.

    .venv/bin/python benchmarks/console.py [--runs 1000] [--nodes 100] [--requests 30]

A fresh SQLite store under a temporary AIDC_HOME gets ``--runs`` pipeline runs (two stages, 12 epochs of curves
each), a model version per ten runs, a deployment per model (the last one running), an admin, and a facility of
about ``--nodes`` servers (examples/facilities/dgx-h100-tier3.yaml with more DGX per rack) whose every node has the
last 15 minutes of telemetry at 10 s (CPU, memory, power, inlet, energy). Each page is then asked ``--requests`` times
in process (Starlette's test client: the server's whole work — session check, services, rendering — without a
network hop), as the admin. Server time is what a browser waits for beyond the network; the CPU column is the
process's CPU time per request (the test client's share included), which a busy shared machine inflates far less
than wall time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from aidc.api import create_app
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings
from aidc.store.metadata.records import Sample

GOAL_MS = 50.0
SPEC = Path(__file__).parents[1] / "examples" / "facilities" / "dgx-h100-tier3.yaml"


def facility_of(nodes: int, folder: Path) -> Path:
    """The DGX example with as many DGX per rack as make about ``nodes`` servers in all."""
    spec = yaml.safe_load(SPEC.read_text())
    groups = spec["nodes"]
    dgx = next(g for g in groups if g["name"] == "dgx")
    others = sum(g["count"] * len(g.get("racks", [1])) for g in groups if g is not dgx)
    dgx["count"] = max(1, round((nodes - others) / len(dgx["racks"])))
    path = folder / "facility.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def seed_telemetry(platform: Platform, names: list[str], minutes: int = 15, every_s: float = 10.0) -> int:
    now = time.time()
    rows = []
    for i, node in enumerate(names):
        for k in range(int(minutes * 60 / every_s)):
            at = now - k * every_s
            load = 0.3 + 0.5 * ((i + k) % 7) / 7
            rows += [
                Sample(node, "node_cpu_utilisation_ratio", load, at, source="psutil"),
                Sample(node, "node_memory_used_bytes", 2**38 * load, at, source="psutil"),
                Sample(node, "node_memory_total_bytes", 2**41, at, source="psutil"),
                Sample(node, "node_power_watts", 6000 + 4000 * load, at, measured=False, source="model"),
                Sample(node, "node_inlet_temperature_celsius", 22 + 3 * load, at, source="redfish"),
                Sample(node, "node_energy_joules_total", 1e6 * k, at, source="model"),
            ]
    return platform.metadata.add_samples(rows)


def seed(platform: Platform, runs: int) -> tuple[str, str]:
    md, local = platform.metadata, local_access()
    platform.security.create_principal(local, "root")
    platform.security.grant(local, "root", "admin", "*")
    token = platform.security.create_token(local, name="root", principal="root")["token"]
    first = ""
    for i in range(runs):
        run = md.create_run(f"20261205-{i:06d}-bench", "digits", {}, None)
        first = first or run.id
        for name in ("data", "train"):
            stage = md.start_stage(run.id, name, name, cache_key=None, log_path=None)
            md.finish_stage(stage.id, "succeeded", outputs={})
        md.add_metrics(run.id, "train", [(m, e, 1.0 / (e + 1)) for e in range(12) for m in ("train_loss", "val_loss")])
        md.finish_run(run.id, "succeeded")
        if i % 10 == 0:
            mv = md.register_model_version(
                "digits-cnn",
                onnx_digest=None,
                checkpoint_digest=None,
                run_id=run.id,
                dataset_version_id=None,
                metrics={"accuracy": 0.97},
            )
            last = i + 10 >= runs
            md.add_deployment(f"digits-{i}", mv.id, "http://127.0.0.1:9", None, status="running" if last else "stopped")
    return str(token), first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--requests", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = facility_of(args.nodes, Path(tmp))
        platform = Platform(Settings(home=Path(tmp) / "home", facility=str(spec)))
        t0 = time.perf_counter()
        token, run_id = seed(platform, args.runs)
        names = [n["name"] for n in platform.nodes.inventory()]
        samples = seed_telemetry(platform, names)
        print(f"seeded {args.runs} runs, {len(names)} nodes ({samples} readings) in {time.perf_counter() - t0:.1f} s")
        last = (args.runs - 1) // 10 * 10
        pages = [
            "/console/",
            "/console/runs",
            f"/console/runs/{run_id}",
            f"/console/runs/{run_id}/live",
            "/console/models",
            "/console/deployments",
            f"/console/deployments/digits-{last}?project=default",
            "/console/jobs",
            "/console/audit",
            "/console/facility",
            "/console/nodes",
            "/console/energy",
            "/console/alerts",
            "/console/planner",
        ]
        with TestClient(create_app(platform)) as http:
            try:  # as `aidc server` does once it is built (the seeding's objects are frozen here too)
                from aidc.api.app import settle_heap
            except ImportError:  # a version before it (to compare versions)
                print("this version of aidc leaves its start-up heap to the garbage collector")
            else:
                settle_heap()
                print(f"{gc.get_freeze_count()} objects kept out of the garbage collector's reach (settle_heap)")
            http.post("/console/login", data={"token": token})
            print(f"{'page':48} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms':>8}  p95 ÷ goal ({GOAL_MS:g} ms)")
            for page in pages:
                warm = http.get(page)  # warm: templates compiled, connections open
                if warm.status_code != 200:  # a page this version of aidc does not have (to compare versions)
                    print(f"{page:48} HTTP {warm.status_code}: not measured")
                    continue
                times = []
                cpu = time.process_time()
                for _ in range(args.requests):
                    start = time.perf_counter()
                    answer = http.get(page)
                    times.append((time.perf_counter() - start) * 1000)
                    assert answer.status_code == 200, (page, answer.status_code)
                cpu_ms = (time.process_time() - cpu) / args.requests * 1000  # the process's, client included
                p95 = statistics.quantiles(times, n=20)[-1]
                print(f"{page:48} {statistics.median(times):8.1f} {p95:8.1f} {cpu_ms:8.1f}  {p95 / GOAL_MS:.2f}")
        platform.close()


if __name__ == "__main__":
    main()
