"""Ctrl-C (or a preemption, which is the same SIGINT) in the middle of a training epoch: the train stage checkpoints
the step it reached, and the resumed run carries on from that step instead of redoing the epoch.

Real engines: a local Ray, Ray Train DDP on 2 CPU workers, SQLite and the file artifact store. The interrupt is
pressed from the run's own observer, the moment the live view would show batch N of epoch 2.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from aidc.pipeline.runner import RunObserver
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

pytestmark = pytest.mark.slow

# small batches: an epoch has hundreds of steps, so the interrupt lands well inside one
PIPELINE = """pipeline: digits-stop
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits"}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: cnn, epochs: 3, workers: 2, batch_size: 8, early_stopping: null}
"""


class CtrlCAt(RunObserver):
    """Interrupts the run when the train stage reports batch ``step`` (or a later one) of ``epoch``."""

    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step
        self.pressed_at: int | None = None

    def stage_event(self, event: dict[str, Any]) -> None:
        if (
            self.pressed_at is None
            and event["type"] == "progress"
            and event["task"] == "batches"
            and event.get("epoch") == self.epoch
            and self.step <= event["completed"] < event["total"]
        ):
            self.pressed_at = int(event["completed"])
            raise KeyboardInterrupt


def test_an_interrupted_epoch_is_checkpointed_at_its_step_and_the_resumed_run_continues_from_there(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE)
    platform = Platform(Settings(home=home, ray_num_cpus=2))
    try:
        ctrl_c = CtrlCAt(epoch=2, step=20)
        with pytest.raises(KeyboardInterrupt):
            platform.runs.run_pipeline(local_access(), spec, observer=ctrl_c)
        assert ctrl_c.pressed_at is not None
        run = platform.metadata.list_runs()[0]
        assert run.status == "failed" and run.error["code"] == "interrupted"
        checkpoints = [a.name for a in platform.metadata.artifacts(run_id=run.id, kind="checkpoint")]
        assert checkpoints[0] == "epoch-001.pt" and "epoch-002.pt" not in checkpoints
        at = re.fullmatch(r"epoch-002-step-(\d+)\.pt", checkpoints[-1])
        assert at, checkpoints
        step = int(at[1])
        assert step >= ctrl_c.pressed_at  # where the live view was when Ctrl-C was pressed, or a little later
        log = (home / "runs" / run.id / "train.log").read_text()
        assert f"stopped on request: checkpointed epoch 2 at step {step} of " in log
        assert [m.step for m in platform.metadata.metrics(run.id) if m.name == "val_accuracy"] == [1]

        resumed = platform.runs.run_pipeline(local_access(), None, resume=run.id)
        assert resumed.status == "succeeded"
        log = (home / "runs" / run.id / "train.log").read_text()
        assert f"resuming from epoch-002-step-{step:05d}.pt" in log
        assert f"resumed at epoch 2 step {step} of " in log and "resumed after epoch" not in log
        assert resumed.outputs["train"]["summary"]["epochs_run"] == 3
        # every epoch's metrics once, the interrupted one included
        assert sorted(m.step for m in platform.metadata.metrics(run.id) if m.name == "train_loss") == [1, 2, 3]
        last = [a for a in platform.metadata.artifacts(run_id=run.id, kind="checkpoint") if a.name == "epoch-003.pt"]
        state = torch.load(io.BytesIO(platform.artifacts.get_bytes(last[0].digest)), weights_only=False)
        assert [h["epoch"] for h in state["history"]] == [1, 2, 3] and "partial" not in state
        assert 0 < state["history"][1]["train_accuracy"] <= 1
    finally:
        platform.close()


def test_a_stage_that_cannot_checkpoint_in_time_is_stopped_and_resumes_from_its_last_epoch(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE.replace("epochs: 3", "epochs: 2"))
    platform = Platform(Settings(home=home, ray_num_cpus=2, stop_checkpoint_s=0.01))  # far less than a step agreement
    try:
        with pytest.raises(KeyboardInterrupt):
            platform.runs.run_pipeline(local_access(), spec, observer=CtrlCAt(epoch=2, step=20))
        run = platform.metadata.list_runs()[0]
        assert run.error["code"] == "interrupted"
        log = (home / "runs" / run.id / "train.log").read_text()
        assert "the stage did not stop within 0.01 s; stopped it" in log
        # Stopping the stage's task does not stop its Ray Train workers on the spot: they may still have seen the
        # flag and saved the step they reached (a later, better place to resume). Either way the resumed run
        # continues from the latest checkpoint recorded.
        checkpoints = [a.name for a in platform.metadata.artifacts(run_id=run.id, kind="checkpoint")]
        assert checkpoints[0] == "epoch-001.pt" and "epoch-002.pt" not in checkpoints
        at = re.fullmatch(r"epoch-002-step-(\d+)\.pt", checkpoints[-1])
        assert len(checkpoints) == 1 or at, checkpoints

        assert platform.runs.run_pipeline(local_access(), None, resume=run.id).status == "succeeded"
        log = (home / "runs" / run.id / "train.log").read_text()
        assert (f"resumed at epoch 2 step {int(at[1])} of " if at else "resumed after epoch 1") in log
        assert sorted(m.step for m in platform.metadata.metrics(run.id) if m.name == "train_loss") == [1, 2]
    finally:
        platform.close()


def test_a_run_stopped_after_its_last_epoch_was_checkpointed_resumes_to_success(tmp_path: Path) -> None:
    """Killed after training's last checkpoint but before the stage returned: the resumed run has nothing left to
    train and goes on from that checkpoint, instead of failing with "training finished without a checkpoint"."""
    home = tmp_path / "home"
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE.replace("epochs: 3", "epochs: 1").replace("batch_size: 8", "batch_size: 64"))
    platform = Platform(Settings(home=home, ray_num_cpus=2))
    try:
        run = platform.runs.run_pipeline(local_access(), spec)
        assert run.status == "succeeded"
        md = platform.metadata
        train = next(s for s in md.list_stages(run.run_id) if s.name == "train")
        md.finish_stage(train.id, "failed", error={"code": "interrupted", "message": "killed"})  # as a kill leaves it
        md.finish_run(run.run_id, "failed", error={"code": "interrupted", "message": "killed"})

        resumed = platform.runs.run_pipeline(local_access(), None, resume=run.run_id)
        assert resumed.status == "succeeded"
        log = (home / "runs" / run.run_id / "train.log").read_text()
        assert "resuming from epoch-001.pt" in log
        assert "training had already ended at epoch 1: nothing left to train" in log
        summary = resumed.outputs["train"]["summary"]
        assert summary["epochs_run"] == 1 and summary["best_epoch"] == 1
    finally:
        platform.close()
