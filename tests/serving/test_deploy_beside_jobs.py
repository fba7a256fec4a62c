"""A process that already drives the job cluster (the server, after its first job) can still deploy (issue 13)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from aidc.security.roles import local_access


def test_deploy_after_this_process_has_run_a_job(platform, register, onnx_path: Path, batch: np.ndarray) -> None:
    from aidc.cluster.compute import ray_cluster
    from aidc.serving.protocol import encode_infer_request

    version = register("beside-jobs", onnx_path)
    # What `aidc server`'s scheduler does on the first job: this process becomes the job cluster's driver.
    with ray_cluster("", num_cpus=1):
        d = platform.deployments.deploy(
            local_access(), version.ref
        )  # was: 503 "this process is already connected to a Ray cluster"
        assert (d["status"], d["ready"]) == ("running", 1)
        body, headers = encode_infer_request({"input": batch})
        answer = httpx.post(f"{d['url']}/v2/models/beside-jobs/infer", content=body, headers=headers, timeout=30)
        assert answer.status_code == 200
        assert platform.deployments.change(local_access(), "delete", "beside-jobs")["status"] == "stopped"
    assert platform.deployments.list(local_access()) == []
