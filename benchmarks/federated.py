"""A federated round's overhead against the same local epochs run centrally: FedAvg over K digits clients (Ray actors,
pairwise masks off/on) vs one process training the same model for the same epochs on all their rows together.
Printed side by side as a ratio (goal: ≤ 1.3×).

    PYTHONPATH=src .venv/bin/python benchmarks/federated.py [--clients 5] [--rounds 6] [--local-epochs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument(
        "--rounds", type=int, default=6, help="rounds timed (the first one, actors warming up, is left out)"
    )
    ap.add_argument("--local-epochs", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs the local Ray gets")
    args = ap.parse_args()

    from aidc.cluster.compute import ray_cluster
    from aidc.data.stage import DataStage
    from aidc.federated.stage import FederatedStage, _central
    from aidc.pipeline.stage import StageContext
    from aidc.store.artifacts import open_artifact_store

    root = Path(tempfile.mkdtemp(prefix="aidc-bench-fed-"))
    (root / "runs").mkdir()
    ctx = StageContext(
        "bench", "federated", open_artifact_store((root / "a").as_uri()), None, str(root / "runs/log"), str(root)
    )
    data = DataStage().run(ctx, DataStage.Config.model_validate({"augment": {"copies": 0}}), {})["splits"]
    arch = {"model": "cnn", "input_shape": [1, 8, 8], "classes": 10, "width": None, "dropout": 0.1}
    settings = {"seed": 0, "lr": 0.05, "rounds": args.rounds, "local_epochs": args.local_epochs, "batch_size": 32}
    began = time.perf_counter()
    _central(ctx, data, arch, settings)
    central_round = (time.perf_counter() - began) / args.rounds
    results = {}
    with ray_cluster("", num_cpus=args.cpus):
        for secure in (False, True):
            config = FederatedStage.Config.model_validate(
                {
                    "clients": args.clients,
                    "rounds": args.rounds + 1,
                    "local_epochs": args.local_epochs,
                    "secure_aggregation": secure,
                    "centralised": False,
                }
            )
            summary = FederatedStage().run(ctx, config, {"data": data})["summary"]
            results[secure] = (statistics.median(r["seconds"] for r in summary["rounds"][1:]), summary["accuracy"])
    print(
        f"{args.clients} clients, {args.local_epochs} local epochs per round, Ray on {args.cpus} CPUs; "
        f"central: one process (1 torch thread), the same epochs over all the rows"
    )
    print(f"{'':<28}{'s / round':>10}{'÷ central':>11}{'final acc':>11}")
    print(f"{'central, same epochs':<28}{central_round:>10.3f}{1.0:>11.2f}{'':>11}")
    for secure, (seconds, accuracy) in results.items():
        name = "federated + secure agg." if secure else "federated (FedAvg)"
        print(f"{name:<28}{seconds:>10.3f}{seconds / central_round:>11.2f}{accuracy:>11.4f}")


if __name__ == "__main__":
    main()
