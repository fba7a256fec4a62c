"""One audit entry per state-changing action, generated from the app's own routes like the authorization matrix.

Every route that changes something (POST, PUT, PATCH, DELETE) has a case here, or the first test names it. Each
case sends one request as a user would and asserts what an auditor reads afterwards: exactly one new entry, with
the caller as actor, the action, the record it acted on, its project, and whether it worked. The chain still
verifies at the end. The deployment verbs act on a deployment with no replicas behind it (no Ray here), so they end
``failed`` with a conflict: the attempt is what must be on record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import JOB_SPEC, record_jobs, record_projects

from aidc.api.app import create_app, routes_of
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

API = "/api/v1"
CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class World:
    platform: Platform
    client: TestClient
    tokens: dict[str, str]  # caller → token: "ada" (admin of alpha), "root" (admin on every project)
    records: dict[str, dict[str, str]]  # project → kind → id
    made: dict[str, Any]  # what a case's setup made for it to act on


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    platform = Platform(Settings(home=tmp_path_factory.mktemp("audited")))
    security, local = platform.security, local_access()
    records = record_jobs(platform, record_projects(platform))
    tokens = {}
    for name, project in (("ada", "alpha"), ("root", "*")):
        security.create_principal(local, name)
        security.grant(local, name, "admin", project)
        tokens[name] = security.create_token(local, name=name, principal=name)["token"]
    security.create_principal(local, "target")  # what the admin routes act on
    with TestClient(create_app(platform)) as client:
        yield World(platform, client, tokens, records, {})
    platform.close()


@dataclass
class Case:
    """One request and the one entry it must leave: ``target`` and ``url`` may read the world (and the answer)."""

    caller: str
    url: Callable[[World], str]
    action: str
    target: Callable[[World, Any], str]
    project: str | None
    result: str = "ok"
    body: dict[str, Any] | None = None
    setup: Callable[[World], Any] | None = (
        None  # what the request acts on, made just before it (cases run in any order)
    )
    token: Callable[[World], str] | None = None  # the caller's token, where it is not world.tokens[caller]


def _token_of(caller: str) -> Callable[[World], None]:
    def make(world: World) -> None:
        local = local_access()
        world.made["token"] = world.platform.security.create_token(local, name="doomed", principal=caller)["id"]

    return make


def _deployment(world: World) -> None:
    md, alpha = world.platform.metadata, world.records["alpha"]
    dep = md.add_deployment("doomed", int(alpha["model_version"]), "http://127.0.0.1:9", None)
    world.platform.security.assign_project(local_access(), "deployment", str(dep.id), "alpha")


def _job(world: World) -> None:
    job, _ = world.platform.jobs.submit(
        local_access(), spec_text=JOB_SPEC, path_name="data.yaml", project="alpha", idempotency_key="to-cancel"
    )
    world.made["job"] = job["id"]


def _running_job(world: World) -> None:
    """A running job of ada's in alpha, and the credential its process would hold (what the scheduler mints)."""
    from aidc.jobs.scheduler import SCHEDULER

    answer = world.client.post(
        f"{API}/jobs",
        json={"pipeline": JOB_SPEC, "project": "alpha"},
        headers={"Authorization": f"Bearer {world.tokens['ada']}"},
    )
    job_id = answer.json()["id"]
    world.platform.metadata.transition_job(job_id, ("queued",), "running")
    world.made["job"] = job_id
    world.made["job_token"] = world.platform.security.create_job_credential(SCHEDULER, job_id, "ada", "alpha")


def _viewer_role(world: World) -> None:
    world.platform.security.grant(local_access(), "target", "viewer", "alpha")


def _alert(world: World) -> None:
    """A firing alert of the data center's (no project), as the evaluator stores one."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    world.platform.metadata.save_alerts(
        [
            {
                "id": "audited1", "fingerprint": "audited1", "rule": "NodeHeartbeatLost", "origin": "platform",
                "severity": "critical", "state": "firing", "labels": {"alertname": "NodeHeartbeatLost"},
                "project": None, "summary": "", "runbook": "", "value": 1.0, "started_at": now, "fired_at": now,
            }
        ]
    )  # fmt: skip


def _silence(world: World) -> None:
    made = world.platform.alerts.silence(local_access(), {"rack": "r9"}, duration_s=60.0)
    world.made["silence"] = made["id"]


def _node(world: World) -> str:
    return str(world.platform.nodes.inventory()[0]["name"])  # (this host: the embedded default's one node)


def _alpha(kind: str) -> Callable[[World], str]:
    return lambda world: world.records["alpha"][kind]


CASES: dict[tuple[str, str], Case] = {
    ("POST", f"{API}/tokens"): Case(
        "ada", lambda w: f"{API}/tokens", "token.create", lambda w, out: f"token:{out['id']}", None,
        body={"name": "mine", "expires_days": 1},
    ),
    ("DELETE", f"{API}/tokens/{{token_id}}"): Case(
        "ada", lambda w: f"{API}/tokens/{w.made['token']}", "token.revoke", lambda w, out: f"token:{w.made['token']}",
        None, setup=_token_of("ada"),
    ),
    ("POST", f"{API}/models/{{ref}}/promote"): Case(
        "ada", lambda w: f"{API}/models/{_alpha('model_ref')(w)}/promote", "models.promote",
        lambda w, out: f"model {_alpha('model_ref')(w)}", "alpha", body={"stage": "production"},
    ),
    ("POST", f"{API}/deployments"): Case(
        "ada", lambda w: f"{API}/deployments", "deployments.deploy", lambda w, out: _alpha("model_ref")(w), "alpha",
        result="failed", body={"model": "model-alpha:1"},  # (the model has no ONNX file)
    ),
    ("POST", f"{API}/deployments/{{name}}/scale"): Case(
        "ada", lambda w: f"{API}/deployments/dep-alpha/scale", "deployments.scale", lambda w, out: "dep-alpha",
        "alpha", result="failed", body={"replicas": 2},
    ),
    ("POST", f"{API}/deployments/{{name}}/promote"): Case(
        "ada", lambda w: f"{API}/deployments/dep-alpha/promote", "deployments.promote", lambda w, out: "dep-alpha",
        "alpha", result="failed",
    ),
    ("POST", f"{API}/deployments/{{name}}/rollback"): Case(
        "ada", lambda w: f"{API}/deployments/dep-alpha/rollback", "deployments.rollback", lambda w, out: "dep-alpha",
        "alpha", result="failed",
    ),
    ("DELETE", f"{API}/deployments/{{name}}"): Case(
        "ada", lambda w: f"{API}/deployments/doomed", "deployments.delete", lambda w, out: "doomed", "alpha",
        setup=_deployment,
    ),
    ("POST", f"{API}/jobs"): Case(
        "ada", lambda w: f"{API}/jobs", "job.submit", lambda w, out: f"job:{out['id']}", "alpha",
        body={"pipeline": JOB_SPEC, "project": "alpha", "idempotency_key": "audited"},
    ),
    ("POST", f"{API}/jobs/{{job_id}}/cancel"): Case(
        "ada", lambda w: f"{API}/jobs/{w.made['job']}/cancel", "job.cancel", lambda w, out: f"job:{w.made['job']}",
        "alpha", setup=_job,
    ),
    ("POST", f"{API}/jobs/{{job_id}}/store/{{op}}"): Case(
        "ada", lambda w: f"{API}/jobs/{w.made['job']}/store/finish_job", "job.fail",
        lambda w, out: f"job:{w.made['job']}", "alpha", body={"state": "failed", "last_error": {"code": "oom"}},
        setup=_running_job, token=lambda w: w.made["job_token"],
    ),
    ("PUT", f"{API}/jobs/{{job_id}}/artifacts"): Case(
        "ada", lambda w: f"{API}/jobs/{w.made['job']}/artifacts", "artifact.put",
        lambda w, out: f"artifact:{out['digest']}", "alpha", body={"a checkpoint": "of the job's"},
        setup=_running_job, token=lambda w: w.made["job_token"],
    ),
    ("PUT", f"{API}/quotas/{{project}}"): Case(
        "root", lambda w: f"{API}/quotas/alpha", "quota.set", lambda w, out: "project:alpha", "alpha",
        body={"max_jobs": 5},
    ),
    ("POST", f"{API}/projects"): Case(
        "root", lambda w: f"{API}/projects", "project.create", lambda w, out: "project:gamma", "gamma",
        body={"name": "gamma"},
    ),
    ("POST", f"{API}/projects/{{name}}/records"): Case(
        "root", lambda w: f"{API}/projects/beta/records", "project.assign",
        lambda w, out: f"run:{_alpha('run')(w)}", "beta", body={"kind": "run", "id": "run-alpha"},
    ),
    ("POST", f"{API}/principals"): Case(
        "root", lambda w: f"{API}/principals", "principal.create", lambda w, out: "principal:bob", None,
        body={"name": "bob"},
    ),
    ("PATCH", f"{API}/principals/{{name}}"): Case(
        "root", lambda w: f"{API}/principals/dora", "principal.disable", lambda w, out: "principal:dora", None,
        body={"disabled": True}, setup=lambda w: w.platform.security.create_principal(local_access(), "dora"),
    ),
    ("POST", f"{API}/principals/{{name}}/roles"): Case(
        "root", lambda w: f"{API}/principals/target/roles", "role.grant", lambda w, out: "principal:target", "alpha",
        body={"role": "operator", "project": "alpha"},
    ),
    ("DELETE", f"{API}/principals/{{name}}/roles/{{role}}"): Case(
        "root", lambda w: f"{API}/principals/target/roles/viewer?project=alpha", "role.revoke",
        lambda w, out: "principal:target", "alpha", setup=_viewer_role,
    ),
    ("POST", f"{API}/principals/{{name}}/tokens"): Case(
        "root", lambda w: f"{API}/principals/target/tokens", "token.create", lambda w, out: f"token:{out['id']}",
        None, body={"name": "for-target", "expires_days": 1},
    ),
    ("DELETE", f"{API}/principals/{{name}}/tokens/{{token_id}}"): Case(
        "root", lambda w: f"{API}/principals/target/tokens/{w.made['token']}", "token.revoke",
        lambda w, out: f"token:{w.made['token']}", None, setup=_token_of("target"),
    ),
    ("POST", f"{API}/nodes/{{name}}/{{verb}}"): Case(
        "root", lambda w: f"{API}/nodes/{_node(w)}/cordon", "node.cordon", lambda w, out: f"node:{_node(w)}", None,
        body={"reason": "PSU swap"},
    ),
    ("POST", f"{API}/alerts/{{alert_id}}/ack"): Case(
        "root", lambda w: f"{API}/alerts/audited1/ack", "alerts.ack", lambda w, out: "alert audited1", None,
        setup=_alert,
    ),
    ("POST", f"{API}/silences"): Case(
        "root", lambda w: f"{API}/silences", "alerts.silence", lambda w, out: f"silence {out['id']}", None,
        body={"matchers": {"rack": "r12"}, "duration_s": 3600},
    ),
    ("DELETE", f"{API}/silences/{{silence_id}}"): Case(
        "root", lambda w: f"{API}/silences/{w.made['silence']}", "alerts.unsilence",
        lambda w, out: f"silence {w.made['silence']}", None, setup=_silence,
    ),
    ("POST", f"{API}/keys/rotate"): Case(
        "root", lambda w: f"{API}/keys/rotate", "keys.rotate",
        lambda w, out: f"artifact-store:{w.platform.artifacts.url}", None, body={"keep_old": False},
    ),
}  # fmt: skip


def test_every_state_changing_route_has_an_audit_case(world: World) -> None:
    changing = {(m, p) for m, p in routes_of(world.client.app) if m in CHANGING}
    assert sorted(changing - set(CASES)) == [], "add an audit case for these routes to this test"
    assert sorted(set(CASES) - changing) == [], "these cases name routes the app does not have"


@pytest.mark.parametrize("route", list(CASES), ids=[f"{m} {p}" for m, p in CASES])
def test_the_action_leaves_exactly_one_entry_saying_who_did_what_to_which_record_where(
    world: World, route: tuple[str, str]
) -> None:
    case = CASES[route]
    security = world.platform.security
    if case.setup is not None:
        case.setup(world)
    before = security.audit_verify().head_seq or 0
    token = case.token(world) if case.token is not None else world.tokens[case.caller]
    response = world.client.request(
        route[0], case.url(world), json=case.body, headers={"Authorization": f"Bearer {token}"}
    )
    assert (response.status_code < 400) == (case.result == "ok"), response.text
    out = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
    new = [e for e in security.audit_list(limit=100000) if e.seq > before]
    assert [(e.actor, e.action, e.target, e.project, e.result) for e in new] == [
        (case.caller, case.action, case.target(world, out), case.project, case.result)
    ]
    assert security.audit_verify().ok


def test_a_scoped_token_refused_a_wider_one_leaves_a_denied_entry(world: World) -> None:
    security = world.platform.security
    narrow = security.create_token(local_access(), name="narrow", principal="ada", scopes=["runs:read"])["token"]
    before = security.audit_verify().head_seq or 0
    response = world.client.post(
        f"{API}/tokens", json={"name": "wider", "scopes": ["*"]}, headers={"Authorization": f"Bearer {narrow}"}
    )
    assert response.status_code == 403
    new = [e for e in security.audit_list(limit=100000) if e.seq > before]
    assert [(e.actor, e.action, e.result) for e in new] == [("ada", "token.create", "denied")]


def test_a_token_refused_to_a_disabled_user_leaves_a_failed_entry(world: World) -> None:
    security = world.platform.security
    security.create_principal(local_access(), "gone")
    security.set_disabled(local_access(), "gone", True)
    before = security.audit_verify().head_seq or 0
    response = world.client.post(
        f"{API}/principals/gone/tokens", json={"name": "t"}, headers={"Authorization": f"Bearer {world.tokens['root']}"}
    )
    assert response.status_code == 409
    new = [e for e in security.audit_list(limit=100000) if e.seq > before]
    assert [(e.actor, e.action, e.target, e.result) for e in new] == [
        ("root", "token.create", "principal:gone", "failed")
    ]
