"""Deployments on a real Ray cluster: deploy, predict, scale, an automatic canary rollback, delete — real processes."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from aidc.errors import Conflict, InvalidInput, NotFound
from aidc.security.roles import local_access
from aidc.serving.canary import CanaryPolicy
from aidc.serving.protocol import encode_infer_request

pytestmark = pytest.mark.slow


def gone(pid: int, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def infer(url: str, name: str, batch: np.ndarray) -> httpx.Response:
    body, headers = encode_infer_request({"input": batch})
    return httpx.post(f"{url}/v2/models/{name}/infer", content=body, headers=headers, timeout=120)


def test_deploy_predict_scale_and_delete(
    platform, register, onnx_path: Path, batch: np.ndarray, reference, tmp_path: Path
) -> None:
    version = register("digits", onnx_path)
    d = platform.deployments.deploy(local_access(), version.ref)
    assert (d["status"], d["stable"], d["ready"], d["live"]) == ("running", version.ref, 1, True)
    [replica] = d["replica_list"]
    assert replica["status"] == "ready" and replica["pid"] and replica["url"] != d["url"]

    np.save(tmp_path / "x.npy", batch)
    answer = platform.deployments.predict(local_access(), "digits", tmp_path / "x.npy")
    assert answer["model_version"] == str(version.version)
    np.testing.assert_allclose(answer["outputs"]["probs"], reference(batch)["probs"], rtol=1e-6)
    (tmp_path / "x.json").write_text(json.dumps(batch.tolist()))
    np.testing.assert_allclose(
        platform.deployments.predict(local_access(), "digits", tmp_path / "x.json")["outputs"]["logits"],
        reference(batch)["logits"],
        rtol=1e-6,
    )

    d = platform.deployments.change(local_access(), "scale", "digits", 2)
    assert d["ready"] == 2 and len({r["pid"] for r in d["replica_list"]}) == 2
    for _ in range(40):
        assert infer(d["url"], "digits", batch).status_code == 200
    for r in d["replica_list"]:  # the router spreads requests over both replicas
        served = httpx.get(f"{r['url']}/metrics").text
        assert 'aidc_serving_requests_total{model="digits",version="1"}' in served
    merged = httpx.get(f"{d['url']}/metrics").text  # one scrape target for the whole deployment
    assert 'aidc_deployment_requests_total{deployment="digits",version="1"}' in merged
    assert merged.count('aidc_serving_queue_depth{model="digits"') == 2

    pids = {r["pid"] for r in d["replica_list"]}
    d = platform.deployments.change(local_access(), "scale", "digits", 1)
    [kept] = d["replica_list"]
    assert all(gone(pid) for pid in pids - {kept["pid"]})
    assert [e["kind"] for e in platform.deployments.show(local_access(), "digits")["events"]] == [
        "created",
        "scaled",
        "scaled",
    ]

    with pytest.raises(Conflict, match="already serves digits:1"):
        platform.deployments.deploy(local_access(), version.ref)
    with pytest.raises(InvalidInput, match="at least one replica"):
        platform.deployments.change(local_access(), "scale", "digits", 0)

    router_pid = platform.metadata.find_deployment("digits").pid
    assert platform.deployments.change(local_access(), "delete", "digits")["status"] == "stopped"
    assert gone(router_pid) and gone(kept["pid"])
    assert platform.deployments.list(local_access()) == []
    with pytest.raises(NotFound):
        platform.deployments.show(local_access(), "digits")


def test_a_canary_that_breaks_requests_is_rolled_back_automatically(
    platform, register, onnx_path: Path, incompatible_onnx_path: Path, batch: np.ndarray
) -> None:
    stable = register("shapes", onnx_path)
    broken = register("shapes", incompatible_onnx_path)
    with pytest.raises(InvalidInput, match="no deployment 'shapes' for a canary"):
        platform.deployments.deploy(local_access(), broken.ref, canary=20)
    platform.deployments.deploy(local_access(), stable.ref)
    d = platform.deployments.deploy(local_access(), broken.ref, canary=50, policy=CanaryPolicy(min_requests=10))
    assert (d["stable"], d["canary"], d["canary_percent"]) == (stable.ref, broken.ref, 50.0)

    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + 300  # (only a hang reaches it; a busy machine is just slower)
    while len(httpx.get(f"{d['url']}/-/routes").json()["versions"]) > 1:  # until the router drops the canary
        assert time.monotonic() < deadline, f"canary not rolled back; answers so far {statuses}"
        statuses[infer(d["url"], "shapes", batch).status_code] += 1
    assert statuses[400] >= 1 and set(statuses) <= {200, 400}

    details = platform.deployments.show(local_access(), "shapes")
    [rollback] = [e for e in details["events"] if e["kind"] == "rolled_back"]
    assert rollback["message"].startswith(f"canary {broken.ref} dropped (automatically: canary error rate")
    assert rollback["details"]["canary"]["errors"] >= 1
    for _ in range(20):  # from now on only the stable version answers
        response = infer(d["url"], "shapes", batch)
        assert response.status_code == 200 and response.json()["model_version"] == str(stable.version)
    platform.deployments.change(local_access(), "delete", "shapes")


def test_a_killed_controller_comes_back_on_the_same_url(platform, register, onnx_path: Path, batch: np.ndarray) -> None:
    version = register("phoenix", onnx_path)
    d = platform.deployments.deploy(local_access(), version.ref)
    router = psutil.Process(platform.metadata.find_deployment("phoenix").pid)
    controller = router.ppid()
    os.kill(controller, signal.SIGKILL)  # the controller's actor process; its router dies with it
    assert gone(router.pid)
    deadline = time.monotonic() + 300  # (only a hang reaches it; a busy machine is just slower)
    while True:  # Ray restarts the actor; it starts a router on the port users know and adopts the replica
        try:
            if infer(d["url"], "phoenix", batch).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the deployment did not come back"
        time.sleep(0.2)
    after = platform.deployments.show(local_access(), "phoenix")
    assert after["url"] == d["url"]
    assert [r["pid"] for r in after["replica_list"]] == [r["pid"] for r in d["replica_list"]]
    platform.deployments.change(local_access(), "delete", "phoenix")
