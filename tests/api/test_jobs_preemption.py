"""Preemption with a real training job: a low-priority job training on Ray Train is checkpointed-then-stopped
for a higher-priority one — at the step its epoch had reached — re-queued, and resumes its own run from there.

One real training run (an MLP on the digits, one worker holding the whole 2-CPU cluster), so it is slow.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import pytest
from tests.api.conftest import JOB_SPEC, start_server, stop
from tests.api.test_jobs_live import SERVER_ENV, api, wait_for

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
    with: {model: mlp, epochs: 12, workers: 1, batch_size: 256, early_stopping: null}
"""


def test_a_preempted_training_job_resumes_its_run_from_its_last_checkpoint(tmp_path: Path) -> None:
    home, token = tmp_path / "home", secrets.token_urlsafe(32)
    proc, server = start_server(home, token, env=SERVER_ENV)
    try:
        with api(server) as client:
            low = client.post(
                "/jobs", json={"pipeline": TRAINING, "path_name": "long.yaml", "cpus": 2, "priority": 0}
            ).json()
            running = wait_for(client, low["id"], ("running",), timeout=120)
            deadline = time.monotonic() + 300
            while True:  # until its first epoch checkpoint is recorded
                run_id = client.get(f"/jobs/{low['id']}").json()["run_id"]
                if run_id and any(a["kind"] == "checkpoint" for a in client.get(f"/runs/{run_id}").json()["artifacts"]):
                    break
                assert time.monotonic() < deadline, client.get(f"/jobs/{low['id']}/logs").text
                time.sleep(0.5)
            high = client.post(
                "/jobs", json={"pipeline": JOB_SPEC, "path_name": "data.yaml", "cpus": 2, "priority": 10}
            ).json()
            wait_for(client, low["id"], ("preempted",), timeout=60)
            assert client.get(f"/jobs/{low['id']}").json()["reason"] == f"preempted by higher-priority job {high['id']}"
            assert wait_for(client, high["id"], ("succeeded", "failed"), timeout=240)["state"] == "succeeded"
            done = wait_for(client, low["id"], ("succeeded", "failed"), timeout=600)
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
