"""The serving cluster's state file names its head by pid, and Linux reuses pids: a head that exited (a reboot, an
OOM kill) leaves a pid that may now be any process's. Stopping the serving cluster must never signal it.

Real processes: a live `sleep` stands for the unrelated process that got the pid."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from aidc.errors import BackendUnavailable
from aidc.serving.cluster import ServingCluster


def test_a_pid_now_owned_by_another_process_is_neither_the_cluster_nor_stopped(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        cluster = ServingCluster(tmp_path)
        cluster.state_file.parent.mkdir(parents=True)
        cluster.state_file.write_text(
            json.dumps(
                {
                    "address": "127.0.0.1:1",
                    "pid": bystander.pid,
                    "token": "t",
                    "keep": True,
                    "temp_dir": str(tmp_path / "ray"),
                    "log": "",
                }
            )
        )
        assert not cluster.kept
        with pytest.raises(BackendUnavailable, match="not running"):
            cluster.address(start=False)
        assert cluster.stop(timeout=1) is False
        assert bystander.poll() is None  # untouched: no SIGTERM, no SIGKILL to its group
        assert not cluster.state_file.exists()  # the stale record is gone
    finally:
        bystander.kill()
        bystander.wait()


def test_the_head_it_started_is_still_recognised_and_stopped(tmp_path: Path) -> None:
    from aidc.serving.endpoint import process_alive

    cluster = ServingCluster(tmp_path, num_cpus=1)
    cluster.address(keep=True)
    head = json.loads(cluster.state_file.read_text())["pid"]
    assert cluster.kept
    assert cluster.stop() is True
    assert not process_alive(head)
