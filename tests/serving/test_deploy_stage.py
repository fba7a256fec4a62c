"""The pipeline's deploy stage as a client of deployments: create, update through a checked canary, undo — on real Ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aidc.security.roles import local_access
from aidc.serving.deploy import DeployConfig, RunDeployments
from aidc.serving.endpoint import EndpointClient

pytestmark = pytest.mark.slow


def test_serve_runs_create_then_update_through_a_canary_and_a_failed_run_rolls_back(
    platform, register, onnx_path: Path, batch: np.ndarray, reference
) -> None:
    config = DeployConfig(timeout=600)
    v1, v2 = register("stage-model", onnx_path), register("stage-model", onnx_path)

    first = RunDeployments(platform.serving, platform.metadata, platform.security, local_access(), "run-1", serve=True)
    d = first.deploy(v1.ref, "stage-model", config)
    assert first.checked("stage-model")["stable"] == v1.ref
    assert first.settle(keep=True) == [{"name": "stage-model", "url": d["url"], "deployment_id": d["id"]}]

    second = RunDeployments(platform.serving, platform.metadata, platform.security, local_access(), "run-2", serve=True)
    updated = second.deploy(v2.ref, "stage-model", config)
    assert updated["url"] == d["url"] and updated["canary"] == v2.ref  # the new version goes in as a canary
    with EndpointClient(d["url"]) as client:  # the stage checks it on its own, by pinned version
        got = client.infer("stage-model", batch, version=str(v2.version))
    np.testing.assert_allclose(got, reference(batch)["logits"], rtol=1e-6)
    promoted = second.checked("stage-model")
    assert (promoted["stable"], promoted["canary"], promoted["previous"]) == (v2.ref, None, v1.ref)
    second.settle(keep=True)

    third = RunDeployments(
        platform.serving, platform.metadata, platform.security, local_access(), "run-3", serve=True
    )  # the same version again: nothing to roll out
    assert third.deploy(v2.ref, "stage-model", config)["id"] == d["id"]
    assert third.settle(keep=False) == []
    assert (
        platform.deployments.show(local_access(), "stage-model")["stable"] == v2.ref
    )  # a reused deployment is left alone

    failed = RunDeployments(
        platform.serving, platform.metadata, platform.security, local_access(), "run-4", serve=True
    )  # a run that fails after updating rolls back
    failed.deploy(v1.ref, "stage-model", config)
    failed.settle(keep=False)
    after = platform.deployments.show(local_access(), "stage-model")
    assert (after["stable"], after["canary"]) == (v2.ref, None)
    audited = [e.action for e in platform.security.audit_list() if (e.details or {}).get("run_id") == "run-4"]
    assert audited.count("deployments.deploy") == 1 and audited.count("deployments.rollback") == 1
    platform.deployments.change(local_access(), "delete", "stage-model")


def test_a_reused_deployment_that_no_longer_answers_is_brought_back(
    platform, register, onnx_path: Path, batch: np.ndarray, reference
) -> None:
    """What a restarted serving Ray leaves behind: the record says the version is served, nothing answers. A run
    that deploys the same version brings it back instead of handing its check a dead URL."""
    config = DeployConfig(timeout=600)
    v1 = register("revive-model", onnx_path)
    first = RunDeployments(platform.serving, platform.metadata, platform.security, local_access(), "run-r1", serve=True)
    first.deploy(v1.ref, "revive-model", config)
    first.checked("revive-model")
    first.settle(keep=True)
    serving = platform.serving
    record = platform.metadata.find_deployment("revive-model")
    with serving.cluster.connect(serving.namespace):
        serving._stop_actors(record)  # (its controller and replicas gone, as with the Ray that held them)
    assert platform.deployments.show(local_access(), "revive-model")["live"] is False

    again = RunDeployments(platform.serving, platform.metadata, platform.security, local_access(), "run-r2", serve=True)
    d = again.deploy(v1.ref, "revive-model", config)
    assert d["id"] == record.id and d["live"] and d["stable"] == v1.ref
    with EndpointClient(d["url"]) as client:
        np.testing.assert_allclose(client.infer("revive-model", batch), reference(batch)["logits"], rtol=1e-6)
    assert "restarted" in [e["kind"] for e in platform.deployments.show(local_access(), "revive-model")["events"]]
    again.settle(keep=True)
    platform.serving.delete("revive-model")


def test_a_runs_deploy_stage_leaves_another_projects_deployment_of_the_same_name_alone(
    platform, register, onnx_path: Path
) -> None:
    """Deployment names are per project. Project beta has a deployment called like this run's model (a single
    endpoint an older run left, which a run in beta's own project would replace): a run in project default makes its
    own deployment of that name, and beta's record is untouched."""
    v1 = register("shared-model", onnx_path)
    theirs = platform.metadata.add_deployment("shared-model", v1.id, "http://127.0.0.1:9", None, project="beta")
    run = RunDeployments(platform.serving, platform.metadata, platform.security, local_access(), "run-s1", serve=True)
    ours = run.deploy(v1.ref, "shared-model", DeployConfig(timeout=600))
    run.settle(keep=False)
    assert ours["id"] != theirs.id
    after = platform.metadata.get_deployment(theirs.id)
    assert (after.status, after.project, after.stopped_at) == ("running", "beta", None)
    assert platform.metadata.find_deployment("shared-model", project="beta").id == theirs.id
