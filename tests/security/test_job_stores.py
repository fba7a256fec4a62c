"""The server's side of a job's stores (services/job_stores.py), call by call: with its own credential a job of alpha
reaches alpha's records and what it stored itself, and every way into beta's — a run id, an id prefix, a stage id,
a dataset version in a registration or lineage edge, an artifact digest — answers as if the record did not exist.
The live tenant test (test_job_tenancy.py) drives the same checks through a real job's process."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.api.conftest import JOB_SPEC

from aidc.errors import InvalidInput, NotFound, PermissionDenied
from aidc.jobs.scheduler import SCHEDULER
from aidc.platform import Platform
from aidc.security.roles import Access, local_access
from aidc.settings import Settings


@dataclass
class Tenants:
    platform: Platform
    job: str  # alpha's running job, submitted by ada
    access: Access  # the job's credential, as the API authenticates it
    alpha_run: str
    beta_run: str
    beta_stage: int
    beta_dataset: int
    beta_digest: str


tokens: dict[str, str] = {}  # job id → its credential (the secret), for the tests that call the API with it


@pytest.fixture()
def tenants(tmp_path: Path) -> Iterator[Tenants]:
    platform = Platform(Settings(home=tmp_path / "home"))
    security, local, md = platform.security, local_access(), platform.metadata
    for project in ("alpha", "beta"):
        security.create_project(local, project)
    security.create_principal(local, "ada")
    security.grant(local, "ada", "researcher", "alpha")
    ada = Access(principal="ada", kind="user", bindings=frozenset({("researcher", "alpha")}))
    job, _ = platform.jobs.submit(ada, spec_text=JOB_SPEC, path_name="d.yaml", project="alpha", idempotency_key="a")
    md.transition_job(job["id"], ("queued",), "running")
    token = security.create_job_credential(SCHEDULER, job["id"], "ada", "alpha")
    access = security.authenticate(token, "test")
    tokens[job["id"]] = token
    md.create_run("run-beta-1", "p", {}, None, project="beta")
    beta_stage = md.start_stage("run-beta-1", "data", "data", cache_key="k", log_path=None).id
    ref = platform.artifacts.put_bytes(b"beta's data")
    dv = md.register_dataset_version(
        "patients", ref.digest, schema={}, stats={}, class_balance={}, fingerprint="f", run_id=None, project="beta"
    )
    stores = platform.job_stores
    alpha_run = stores.call(access, job["id"], "create_run", {"run_id": "run-alpha-1", "pipeline": "p", "spec": {}})
    yield Tenants(platform, job["id"], access, alpha_run["id"], "run-beta-1", beta_stage, dv.id, ref.digest)
    platform.close()


def call(t: Tenants, op: str, **args: object) -> object:
    return t.platform.job_stores.call(t.access, t.job, op, dict(args))


def test_the_jobs_run_is_made_in_its_project_and_tied_to_the_job(tenants: Tenants) -> None:
    t = tenants
    run = t.platform.metadata.get_run(t.alpha_run)
    assert run.project == "alpha" and t.platform.metadata.get_job(t.job).run_id == t.alpha_run
    again = call(t, "create_run", run_id="run-alpha-2", pipeline="p", spec={}, project="beta")  # asks for beta
    assert t.platform.metadata.get_run(again["id"]).project == "alpha"  # type: ignore[index]


def test_beta_records_answer_as_missing_ones_do(tenants: Tenants) -> None:
    t = tenants
    with pytest.raises(NotFound) as beta:
        call(t, "get_run", run_id=t.beta_run)
    with pytest.raises(NotFound) as missing:
        call(t, "get_run", run_id="run-nobody-has")
    assert beta.value.hint == missing.value.hint
    assert beta.value.message.replace(t.beta_run, "ID") == missing.value.message.replace("run-nobody-has", "ID")
    with pytest.raises(NotFound):
        call(t, "get_run", run_id=t.alpha_run[:6])  # a prefix is not an id here
    with pytest.raises(NotFound):
        call(t, "finish_stage", run_id=t.alpha_run, stage_run_id=t.beta_stage, status="failed")
    with pytest.raises(NotFound):
        call(t, "get_dataset_version", id=t.beta_dataset)
    with pytest.raises(NotFound):
        call(t, "add_lineage", src=["dataset_version", str(t.beta_dataset)], dst=["run", t.alpha_run], relation="x")
    with pytest.raises(NotFound):
        call(t, "add_metrics", run_id=t.beta_run, stage="data", points=[["loss", 1, 0.5]])
    assert t.platform.metadata.metrics(t.beta_run) == []


def test_beta_artifacts_cannot_be_read_recorded_or_registered(tenants: Tenants, tmp_path: Path) -> None:
    t = tenants
    stores = t.platform.job_stores
    with pytest.raises(NotFound):
        stores.artifact_file(t.access, t.job, t.beta_digest, tmp_path / "stolen")
    assert not (tmp_path / "stolen").exists()
    assert call(t, "artifact_exists", digest=t.beta_digest) is False
    with pytest.raises(NotFound):  # recording beta's digest as its own would make it readable next time
        call(t, "add_artifact", digest=t.beta_digest, size=1, kind="data", name="x", uri="u", run_id=t.alpha_run)
    with pytest.raises(NotFound):
        call(t, "register_dataset_version", dataset="mine", artifact_digest=t.beta_digest, schema={}, stats={},
             class_balance={}, fingerprint="f", run_id=t.alpha_run)  # fmt: skip
    with pytest.raises(NotFound):
        call(t, "register_model_version", name="m", onnx_digest=None, checkpoint_digest=None, run_id=t.alpha_run,
             dataset_version_id=t.beta_dataset, metrics={})  # fmt: skip


def test_what_the_job_stores_it_reads_back_and_registers_in_its_project(tenants: Tenants, tmp_path: Path) -> None:
    t = tenants
    stores = t.platform.job_stores
    ref = stores.put_artifact(t.access, t.job, io.BytesIO(b"alpha's checkpoint"))
    assert stores.artifact_file(t.access, t.job, ref["digest"], tmp_path / "back").read_bytes() == b"alpha's checkpoint"
    assert t.platform.artifacts.get_bytes(ref["digest"]) == b"alpha's checkpoint"  # the server's store, encrypted
    mv = call(t, "register_model_version", name="m", onnx_digest=None, checkpoint_digest=ref["digest"],
              run_id=t.alpha_run, dataset_version_id=None, metrics={})  # fmt: skip
    assert mv["project"] == "alpha"  # type: ignore[index]
    stores.forget(t.job)  # the job ended: what it stored is readable only where its project recorded it
    assert stores.artifact_file(t.access, t.job, ref["digest"], tmp_path / "again").is_file()


def test_the_job_records_only_how_it_ended_and_its_credential_stops_with_it(tenants: Tenants) -> None:
    t = tenants
    with pytest.raises(InvalidInput):
        call(t, "finish_job", state="queued")
    done = call(t, "finish_job", state="succeeded", run_id=t.alpha_run)
    assert done["state"] == "succeeded"  # type: ignore[index]
    with pytest.raises(PermissionDenied):  # finished: the credential no longer works, even before it is revoked
        call(t, "get_job")


def test_another_jobs_credential_finds_no_stores_here(tenants: Tenants) -> None:
    t = tenants
    other, _ = t.platform.jobs.submit(
        local_access(), spec_text=JOB_SPEC, path_name="d.yaml", project="alpha", idempotency_key="other"
    )
    token = t.platform.security.create_job_credential(SCHEDULER, other["id"], "ada", "alpha")
    with pytest.raises(NotFound):
        t.platform.job_stores.call(t.platform.security.authenticate(token, "test"), t.job, "get_job", {})


def test_a_jobs_credential_reaches_its_stores_only_not_its_submitters_other_rights(tenants: Tenants) -> None:
    from fastapi.testclient import TestClient

    from aidc.api import create_app

    t = tenants
    client = TestClient(create_app(t.platform))
    job_token = {"Authorization": f"Bearer {tokens[t.job]}"}
    assert client.post(f"/api/v1/jobs/{t.job}/store/get_job", json={}, headers=job_token).status_code == 200
    refused = client.get("/api/v1/jobs", headers=job_token)  # within its scope (jobs:read), yet not its stores
    assert refused.status_code == 403 and "own job's stores only" in refused.json()["error"]["message"]
    own = t.platform.security.create_token(local_access(), name="mine", principal="ada", scopes=["jobs:read"])
    assert client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {own['token']}"}).status_code == 200


def test_a_job_counts_once_against_a_node_so_it_cannot_cordon_one_alone(tenants: Tenants) -> None:
    t = tenants
    for _ in range(5):  # a job's code may report failures at will
        call(t, "node_failed", node="ray-node-x", reason="worker died", run_id=t.alpha_run)
    failures = t.platform.metadata.node_failures()
    assert [(f.node, f.run_id) for f in failures] == [("ray-node-x", t.alpha_run)]
    assert "ray-node-x" not in t.platform.metadata.cordoned_nodes()
    with pytest.raises(NotFound):  # and only for its own run
        call(t, "node_failed", node="ray-node-y", reason="worker died", run_id=t.beta_run)


def test_placement_learns_the_cordoned_nodes_and_nothing_else_of_the_holds(tenants: Tenants) -> None:
    t = tenants
    md = t.platform.metadata
    md.set_node_state("gpu-001", cordoned=True, reason="bad fan", by="ops", host="h1")
    md.set_node_state("gpu-002", cordoned=False, reason="", by="ops", host="h2")
    assert [s["node"] for s in call(t, "node_states")] == ["gpu-001"]  # type: ignore[attr-defined]
