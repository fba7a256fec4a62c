"""Console page server time with a busy store: p50/p95 per page, printed, against the 50 ms p95 goal.

    .venv/bin/python benchmarks/console.py [--runs 1000] [--requests 30]

A fresh SQLite store under a temporary AIDC_HOME gets ``--runs`` pipeline runs (two stages, 12 epochs of curves
each), a model version per ten runs, a deployment per model and an admin; each page is then asked ``--requests``
times in process (Starlette's test client: the server's whole work — session check, services, rendering — without
a network hop), as the admin. Server time is what a browser waits for beyond the network.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from aidc.api import create_app
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

GOAL_MS = 50.0


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
            md.add_deployment(f"digits-{i}", mv.id, "http://127.0.0.1:9", None, status="stopped")
    return str(token), first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        platform = Platform(Settings(home=Path(tmp) / "home"))
        t0 = time.perf_counter()
        token, run_id = seed(platform, args.runs)
        print(f"seeded {args.runs} runs in {time.perf_counter() - t0:.1f} s")
        pages = [
            "/console/",
            "/console/runs",
            f"/console/runs/{run_id}",
            "/console/models",
            "/console/deployments",
            "/console/jobs",
            "/console/audit",
        ]
        with TestClient(create_app(platform)) as http:
            http.post("/console/login", data={"token": token})
            print(f"{'page':36} {'p50 ms':>8} {'p95 ms':>8}  p95 ÷ goal ({GOAL_MS:g} ms)")
            for page in pages:
                http.get(page)  # warm: templates compiled, connections open
                times = []
                for _ in range(args.requests):
                    start = time.perf_counter()
                    answer = http.get(page)
                    times.append((time.perf_counter() - start) * 1000)
                    assert answer.status_code == 200, (page, answer.status_code)
                p95 = statistics.quantiles(times, n=20)[-1]
                print(f"{page:36} {statistics.median(times):8.1f} {p95:8.1f}  {p95 / GOAL_MS:.2f}")
        platform.close()


if __name__ == "__main__":
    main()
