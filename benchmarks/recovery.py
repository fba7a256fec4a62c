"""How long the train stage takes to recover from a worker process dying, against the floor of any recovery.

Issue 16's goal: kill → first resumed step ≤ 1.5 × the floor, the floor being what any restart must pay on this
host: a fresh Python process + `import torch` + reading the checkpoint it resumes from (measured in the same
run, on the same checkpoint bytes, from a file on local disk).

Each repeat runs the digits data stage and a train stage (cnn, 2 workers, 4 epochs, early stopping off) through
`Platform(...).runs.run_pipeline` on a Ray the benchmark holds (as `aidc server` holds its own), SIGKILLs rank
1's worker process (its pid from the stage log) the moment epoch 1's checkpoint is reported, and stamps:

- kill → first resumed step: from the kill to the first "batches" progress event of the resumed group (the first
  after the stage's "worker failure" log line) reaching the run's observer (the runner polls its events every
  0.25 s, so this may read up to 0.25 s late);
- recovery_seconds: the stage's own metric, from the driver seeing the failure to the resumed first step;
- the floor: `python -c "import torch; torch.load(CKPT)"` wall time, CKPT = the checkpoint the run resumed from;
- checkpointing's share (goal ≤ 3.5%): the loop's `checkpoint_seconds` (rank 0 saving and storing an epoch's
  checkpoint, which the whole group waits on) over `epoch_seconds` + `checkpoint_seconds`, summed over epochs.

Run: .venv/bin/python benchmarks/recovery.py [--repeats 3] [--epochs 4]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aidc.pipeline.runner import RunObserver
from aidc.security.roles import local_access

PIPELINE = """pipeline: recovery-benchmark
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits"}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: cnn, epochs: %d, workers: 2, batch_size: 64, early_stopping: null, max_failures: 1}
"""
FLOOR = "import sys, torch; torch.load(sys.argv[1], map_location='cpu', weights_only=False)"


class KillRank1(RunObserver):
    def __init__(self) -> None:
        self.pids: list[int] = []
        self.killed_at: float | None = None
        self.resumed_at: float | None = None
        self.failure_seen = False

    def stage_event(self, event: dict[str, Any]) -> None:
        now = time.perf_counter()
        if event["type"] == "log" and (found := re.search(r"worker\(s\) on .* \(pids ([\d, ]+)[;)]", event["message"])):
            self.pids = [int(p) for p in found[1].split(", ")]
        elif event["type"] == "progress" and event["task"] == "epochs" and event["completed"] == 1:
            if self.killed_at is None:
                os.kill(self.pids[1], signal.SIGKILL)
                self.killed_at = time.perf_counter()
        elif event["type"] == "log" and event["message"].startswith("worker failure") and self.killed_at is not None:
            self.failure_seen = True  # steps reported from here on are the resumed group's (earlier ones may lag)
        elif event["type"] == "progress" and event["task"] == "batches" and self.failure_seen:
            if self.resumed_at is None:
                self.resumed_at = now


def floor_seconds(checkpoint: Path, repeats: int = 3) -> float:
    """A fresh process importing torch and reading the checkpoint: the median wall time of ``repeats``."""
    walls = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", FLOOR, str(checkpoint)], check=True)
        walls.append(time.perf_counter() - began)
    return statistics.median(walls)


def one(home: Path, epochs: int) -> dict[str, Any]:
    from aidc.platform import Platform
    from aidc.settings import Settings

    spec = home.parent / f"{home.name}.yaml"
    spec.write_text(PIPELINE % epochs)
    platform = Platform(Settings(home=home, metadata_url="", artifact_url="", ray_address="", ray_num_cpus=2))
    observer = KillRank1()
    try:
        result = platform.runs.run_pipeline(local_access(), spec, observer=observer)
        if result.status != "succeeded" or observer.killed_at is None or observer.resumed_at is None:
            raise SystemExit(f"run {result.run_id}: {result.status}, kill/resume not seen")
        kept = platform.metadata.metrics(result.run_id, stage="train")
        metrics = {m.name: m.value for m in kept}
        # checkpointing's share of training: rank 0 saving and storing each epoch's checkpoint (the group waits
        # on it) over the epochs' training time, per epoch recorded (the last record of an epoch: the resumed one)
        saved = {m.step: m.value for m in kept if m.name == "checkpoint_seconds"}
        trained = {m.step: m.value for m in kept if m.name == "epoch_seconds"}
        epochs = sorted(set(saved) & set(trained))
        first = [a for a in platform.metadata.artifacts(run_id=result.run_id, kind="checkpoint")][0]
        ckpt = home / "resumed-from.pt"
        ckpt.write_bytes(platform.artifacts.get_bytes(first.digest))
        log = (home / "runs" / result.run_id / "train.log").read_text()
        relaunch = [ln for ln in log.splitlines() if " launch " in ln][-1]
        return {
            "kill_to_step": observer.resumed_at - observer.killed_at,
            "recovery_seconds": metrics["recovery_seconds"],
            "floor": floor_seconds(ckpt),
            "checkpoint_bytes": ckpt.stat().st_size,
            "relaunch": relaunch.split(" ", 1)[1],
            "checkpoint_share": sum(saved[e] for e in epochs) / sum(trained[e] + saved[e] for e in epochs),
            "checkpoint_seconds": statistics.median(saved[e] for e in epochs),
        }
    finally:
        platform.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()

    from aidc.cluster.compute import ray_cluster

    tmp = Path(tempfile.mkdtemp(prefix="aidc-recovery-"))
    print(f"host: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    try:
        with ray_cluster("", num_cpus=2):
            for i in range(1, args.repeats + 1):
                row = one(tmp / f"home-{i}", args.epochs)
                rows.append(row)
                print(
                    f"repeat {i}: kill → first resumed step {row['kill_to_step']:.2f} s "
                    f"(stage's recovery_seconds {row['recovery_seconds']:.2f} s) | floor {row['floor']:.2f} s "
                    f"(fresh process + import torch + {row['checkpoint_bytes'] / 1e6:.1f} MB checkpoint) | "
                    f"ratio {row['kill_to_step'] / row['floor']:.2f} (goal ≤ 1.5) | checkpointing "
                    f"{row['checkpoint_share']:.1%} of training time ({row['checkpoint_seconds'] * 1000:.0f} ms an "
                    f"epoch; goal ≤ 3.5%)\n    resumed group's {row['relaunch']}",
                    flush=True,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = [r["kill_to_step"] / r["floor"] for r in rows]
    print(
        f"ratios kill → first resumed step ÷ floor: {', '.join(f'{x:.2f}' for x in ratios)} | median "
        f"{statistics.median(ratios):.2f} (goal ≤ 1.5) | checkpointing's share of training time: "
        f"{', '.join(format(r['checkpoint_share'], '.1%') for r in rows)} (goal ≤ 3.5%) | load average now "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
