"""A training worker that dies, or a group that stops making progress, is restarted by itself from the latest
checkpoint: the run succeeds, and its history (stage metrics, the stage log) shows each failure and resume.

Real engines: a local Ray of 2 CPUs, 2 pooled training workers (gloo), SQLite and the file artifact store. The
fault is real: SIGKILL (a worker process dying) or SIGSTOP (a worker hung) to the worker's pid, as the stage
log names it, sent from the run's own observer once epoch 1 is checkpointed.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from aidc.pipeline.runner import RunObserver
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

pytestmark = pytest.mark.slow

PIPELINE = """pipeline: digits-recovery
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits"}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, epochs: 3, workers: 2, batch_size: 16, early_stopping: null, max_failures: 2, %s}
"""


class FaultAfterEpoch(RunObserver):
    """Sends ``sig`` to rank 1's worker process once epoch ``epoch`` is reported (and so checkpointed)."""

    def __init__(self, sig: int, epoch: int = 1) -> None:
        self.sig, self.epoch = sig, epoch
        self.pids: list[int] = []
        self.sent_to: int | None = None

    def stage_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "log" and (found := re.search(r"worker\(s\) on .* \(pids ([\d, ]+)[;)]", event["message"])):
            self.pids = [int(p) for p in found[1].split(", ")]
        if (
            self.sent_to is None
            and event["type"] == "progress"
            and event["task"] == "epochs"
            and event["completed"] == self.epoch
        ):
            self.sent_to = self.pids[1]
            os.kill(self.sent_to, self.sig)


def _run(tmp_path: Path, fault: FaultAfterEpoch, extra: str) -> tuple[Platform, Any, str]:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE % extra)
    platform = Platform(Settings(home=tmp_path / "home", ray_num_cpus=2))
    result = platform.runs.run_pipeline(local_access(), spec, observer=fault)
    log = (tmp_path / "home" / "runs" / result.run_id / "train.log").read_text()
    return platform, result, log


def _metrics(platform: Platform, run_id: str, name: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in platform.metadata.metrics(run_id, stage="train") if m.name == name)


def test_a_worker_that_dies_is_replaced_and_training_resumes_from_its_latest_checkpoint(tmp_path: Path) -> None:
    fault = FaultAfterEpoch(signal.SIGKILL)
    platform, result, log = _run(tmp_path, fault, "stall_seconds: 600")
    try:
        assert fault.sent_to is not None
        assert result.status == "succeeded", log
        summary = result.outputs["train"]["summary"]
        assert summary["worker_failures"] == 1 and summary["epochs_run"] == 3
        assert f"worker 1 (pid {fault.sent_to}) died" in log
        assert "worker failure 1 of at most 2" in log and "resuming from its checkpoint after epoch" in log
        # the history: one failure, when epoch 1 or later was the latest checkpoint, and how long the recovery took
        [(step, epoch)] = _metrics(platform, result.run_id, "worker_failures")
        assert step == 1 and epoch >= 1
        assert [s for s, _ in _metrics(platform, result.run_id, "recovery_seconds")] == [1]
        # nothing checkpointed was lost or redone: each epoch's metrics once
        assert [s for s, _ in _metrics(platform, result.run_id, "val_accuracy")] == [1, 2, 3]
        # the resumed group is a new one: the dead pid is not among its workers
        assert fault.sent_to not in fault.pids
    finally:
        platform.close()


def test_a_stalled_group_is_stopped_and_resumed(tmp_path: Path) -> None:
    fault = FaultAfterEpoch(signal.SIGSTOP)  # rank 1 hangs; rank 0 waits on it in the next all-reduce
    platform, result, log = _run(tmp_path, fault, "stall_seconds: 6")
    try:
        assert fault.sent_to is not None
        assert result.status == "succeeded", log
        assert re.search(r"worker failure 1 of at most 2: stalled: no progress for \d+ s \(stall_seconds 6\)", log)
        assert result.outputs["train"]["summary"]["worker_failures"] >= 1
        assert [s for s, _ in _metrics(platform, result.run_id, "val_accuracy")] == [1, 2, 3]
        with pytest.raises(ProcessLookupError):  # the hung worker was stopped, not left behind
            os.kill(fault.sent_to, 0)
    finally:
        platform.close()
