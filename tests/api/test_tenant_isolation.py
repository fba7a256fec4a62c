"""Two tenants on one control plane: nothing one project does changes, numbers or reveals the other's records.

Project alpha and project beta each have a researcher; each registers a model named ``digits-cnn`` (as their jobs'
register stages do, in the run's project). The API is driven as each of them, and as an admin of every project.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aidc.api import create_app
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

API = "/api/v1"


@dataclass
class Tenants:
    platform: Platform
    client: TestClient
    tokens: dict[str, str]

    def get(self, who: str, path: str, **kwargs: object) -> tuple[int, dict]:  # type: ignore[type-arg]
        r = self.client.get(API + path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kwargs)  # type: ignore[arg-type]
        return r.status_code, r.json()

    def post(self, who: str, path: str, body: dict, **kwargs: object) -> tuple[int, object]:  # type: ignore[type-arg]
        r = self.client.post(API + path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kwargs)  # type: ignore[arg-type]
        return r.status_code, r.json()


def register(platform: Platform, project: str, name: str = "digits-cnn") -> str:
    md = platform.metadata
    run = md.create_run(f"run-{project}-{len(md.list_runs(limit=1000))}", "digits", {}, None, project=project)
    md.finish_run(run.id, "succeeded")
    mv = md.register_model_version(
        name,
        onnx_digest=None,
        checkpoint_digest=None,
        run_id=run.id,
        dataset_version_id=None,
        metrics={},
        project=project,
    )
    return mv.ref


@pytest.fixture
def tenants(tmp_path: Path) -> Iterator[Tenants]:
    platform = Platform(Settings(home=tmp_path / "home"))
    security, local = platform.security, local_access()
    tokens = {}
    for project in ("alpha", "beta"):
        security.create_project(local, project)
        security.create_principal(local, f"res-{project}")
        security.grant(local, f"res-{project}", "researcher", project)
        tokens[project] = security.create_token(local, name=project, principal=f"res-{project}")["token"]
    security.create_principal(local, "root")
    security.grant(local, "root", "admin", "*")
    tokens["admin"] = security.create_token(local, name="root", principal="root")["token"]
    with TestClient(create_app(platform)) as client:
        yield Tenants(platform, client, tokens)
    platform.close()


def test_the_same_model_name_in_two_projects_is_two_models(tenants: Tenants) -> None:
    assert register(tenants.platform, "alpha") == "digits-cnn:1"
    assert register(tenants.platform, "alpha") == "digits-cnn:2"
    assert register(tenants.platform, "beta") == "digits-cnn:1"  # beta's numbers are its own: nothing revealed
    status, shown = tenants.get("beta", "/models/digits-cnn")
    assert status == 200 and (shown["model"]["version"], shown["model"]["project"]) == (1, "beta")
    status, shown = tenants.get("alpha", "/models/digits-cnn")
    assert status == 200 and (shown["model"]["version"], shown["model"]["project"]) == (2, "alpha")


def test_promoting_in_one_project_leaves_the_others_production_alone(tenants: Tenants) -> None:
    register(tenants.platform, "alpha")
    register(tenants.platform, "beta")
    assert tenants.post("alpha", "/models/digits-cnn:1/promote", {"stage": "production"})[0] == 200
    status, changed = tenants.post("beta", "/models/digits-cnn:1/promote", {"stage": "production"})
    assert status == 200 and [(c["project"], c["stage"]) for c in changed] == [("beta", "production")]  # type: ignore[union-attr]
    alpha = tenants.platform.metadata.get_model_version("digits-cnn", 1, project="alpha")
    assert alpha.stage == "production"  # not archived by beta's promotion


def test_a_name_in_several_projects_is_named_with_its_project(tenants: Tenants) -> None:
    register(tenants.platform, "alpha")
    register(tenants.platform, "beta")
    status, body = tenants.get("admin", "/models/digits-cnn")
    assert status == 409 and "alpha, beta" in body["error"]["message"] and "--project" in body["error"]["hint"]
    status, shown = tenants.get("admin", "/models/digits-cnn", params={"project": "beta"})
    assert status == 200 and shown["model"]["project"] == "beta"


def deployment(platform: Platform, project: str, name: str = "digits-cnn") -> int:
    """A deployment record of ``project`` serving its model ``name`` (a single endpoint, not answering: what is judged
    here is which record a name reaches, not traffic)."""
    mv = platform.metadata.get_model_version(name, None, project=project)
    return platform.metadata.add_deployment(name, mv.id, "http://127.0.0.1:9", None, project=project).id


def test_the_same_deployment_name_in_two_projects_is_two_deployments(tenants: Tenants) -> None:
    register(tenants.platform, "alpha")
    register(tenants.platform, "beta")
    ids = {p: deployment(tenants.platform, p) for p in ("alpha", "beta")}
    for project in ("alpha", "beta"):
        status, shown = tenants.get(project, "/deployments/digits-cnn")
        assert status == 200 and (shown["id"], shown["project"]) == (ids[project], project)
    status, body = tenants.get("admin", "/deployments/digits-cnn")
    assert status == 409 and "alpha, beta" in body["error"]["message"] and "--project" in body["error"]["hint"]
    status, shown = tenants.get("admin", "/deployments/digits-cnn", params={"project": "beta"})
    assert status == 200 and shown["id"] == ids["beta"]
    # beta's deployment deleted (by an admin naming the project): alpha's, of the same name, keeps running
    headers = {"Authorization": f"Bearer {tenants.tokens['admin']}"}
    deleted = tenants.client.delete(f"{API}/deployments/digits-cnn", params={"project": "beta"}, headers=headers)
    assert deleted.status_code == 200
    assert tenants.platform.metadata.get_deployment(ids["beta"]).status == "stopped"
    assert tenants.platform.metadata.get_deployment(ids["alpha"]).status == "running"
    assert tenants.get("beta", "/deployments/digits-cnn")[0] == 404
    # and naming alpha's project does not reach it for beta: the answer of a missing one
    hidden = tenants.get("beta", "/deployments/digits-cnn", params={"project": "alpha"})
    missing = tenants.get("beta", "/deployments/nothing-like-it")
    assert hidden[0] == missing[0] == 404 and hidden[1]["error"]["hint"] == missing[1]["error"]["hint"]


def test_another_projects_records_are_not_found_in_the_very_words_of_missing_ones(tenants: Tenants) -> None:
    register(tenants.platform, "beta")
    run_of_beta = tenants.platform.metadata.list_runs()[0].id
    hidden = tenants.get("alpha", f"/runs/{run_of_beta}")
    missing = tenants.get("alpha", "/runs/run-nobody-0")
    assert hidden[0] == missing[0] == 404
    assert hidden[1]["error"]["message"].replace(run_of_beta, "X") == missing[1]["error"]["message"].replace(
        "run-nobody-0", "X"
    )
    assert hidden[1]["error"]["hint"] == missing[1]["error"]["hint"]
    hidden = tenants.get("alpha", "/models/digits-cnn", params={"project": "beta"})
    missing = tenants.get("alpha", "/models/nothing-like-it")
    assert hidden[0] == missing[0] == 404
    assert hidden[1]["error"]["hint"] == missing[1]["error"]["hint"]


def test_an_id_prefix_matches_only_the_callers_runs(tenants: Tenants) -> None:
    md = tenants.platform.metadata
    for run_id, project in (("20260101-000000-aaaa", "alpha"), ("20260101-000000-bbbb", "beta")):
        md.create_run(run_id, "digits", {}, None, project=project)
    # Two runs start with this prefix, but alpha sees one: it resolves, and reveals nothing of beta's.
    status, shown = tenants.get("alpha", "/runs/20260101-000000")
    assert status == 200 and shown["run"]["id"] == "20260101-000000-aaaa"
    status, _ = tenants.get("alpha", "/runs/20260101-000000-b")
    assert status == 404
