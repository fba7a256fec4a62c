"""Preemption with a real training job: a low-priority job training on Ray Train is checkpointed-then-stopped
for a higher-priority one — at the step its epoch had reached — re-queued, and resumes its own run from there.

One real training run (an MLP on the digits, one worker holding the whole 2-CPU cluster), so it is slow.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from tests.api.conftest import JOB_SPEC, start_server, stop
from tests.api.test_jobs_live import SERVER_ENV, api, wait_for
from tests.pace import paused, train_workers, wait_until

pytestmark = pytest.mark.slow

TRAINING = """pipeline: digits-long
stages:
  - name: data
    uses: data
    with:
      source: sklearn:digits
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, epochs: 30, workers: 1, batch_size: 16, early_stopping: null}
"""


def test_a_preempted_training_job_resumes_its_run_from_its_last_checkpoint(tmp_path: Path) -> None:
    home, token = tmp_path / "home", secrets.token_urlsafe(32)
    proc, server = start_server(home, token, env=SERVER_ENV)
    try:
        with api(server) as client:
            low = client.post(
                "/jobs", json={"pipeline": TRAINING, "path_name": "long.yaml", "cpus": 2, "priority": 0}
            ).json()
            running = wait_for(client, low["id"], ("running",))

            def first_checkpoint() -> str | None:  # the run's id, once its first epoch checkpoint is recorded
                run_id = client.get(f"/jobs/{low['id']}").json()["run_id"]
                artifacts = client.get(f"/runs/{run_id}").json()["artifacts"] if run_id else []
                return run_id if any(a["kind"] == "checkpoint" for a in artifacts) else None

            run_id = wait_until(first_checkpoint, "the low-priority job's first checkpoint", every=0.5)
            # The test sets the pace: the low job's training is paused until its process has been asked to stop,
            # so it cannot finish its epochs first, however busy the machine is.
            workers = train_workers(proc.pid)
            assert workers, client.get(f"/jobs/{low['id']}/logs").text
            with paused(workers):
                high = client.post(
                    "/jobs", json={"pipeline": JOB_SPEC, "path_name": "data.yaml", "cpus": 2, "priority": 10}
                ).json()
                wait_for(client, low["id"], ("preempted",))
                wait_until(
                    lambda: "[train] interrupted: asking the stage" in client.get(f"/jobs/{low['id']}/logs").text,
                    "the preempted job asking its stage to stop",
                    every=0.5,
                )
            assert client.get(f"/jobs/{low['id']}").json()["reason"] == f"preempted by higher-priority job {high['id']}"
            assert wait_for(client, high["id"], ("succeeded", "failed"))["state"] == "succeeded"
            done = wait_for(client, low["id"], ("succeeded", "failed"))
            assert done["state"] == "succeeded" and done["attempts"] == 2 and done["run_id"] == run_id, done
            log = client.get(f"/jobs/{low['id']}/logs").text
            assert f"resuming run {run_id}" in log and "[train] resuming from epoch-" in log
            # the preempted job saved where it was, and its second attempt went on from exactly there
            mid_epoch = re.search(r"\[train\] stopped on request: checkpointed epoch (\d+) at step (\d+) of", log)
            if mid_epoch:
                assert f"[train] resumed at epoch {mid_epoch[1]} step {mid_epoch[2]} of" in log
            else:  # the stop landed as an epoch ended: that epoch's own checkpoint
                epoch = re.search(r"\[train\] stopped on request after epoch (\d+)", log)
                assert epoch, log
                assert f"[train] resumed after epoch {epoch[1]}" in log
            assert running["attempts"] == 1
            actions = [e["action"] for e in client.get("/audit", params={"action": "job.preempt"}).json()]
            assert actions == ["job.preempt"]
    finally:
        stop(proc)
