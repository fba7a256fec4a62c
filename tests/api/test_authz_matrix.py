"""The authorization matrix, generated from the app's own routes: every route × every role × own/other project.

Callers are each role bound to project alpha, an admin bound on every project, and no token at all. What each
may do comes from the policy (route → permission) and the role table; what a user would notice is asserted:
401 without a token, 403 without the permission, a record of another project is 404 and never listed.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import APIRouter
from tests.api.conftest import JOB_SPEC

from aidc.api import app as app_module
from aidc.api.app import create_app, routes_of
from aidc.security.policy import POLICY, unpoliced
from aidc.security.roles import AUTHENTICATED, GLOBAL_PERMISSIONS, PUBLIC, ROLES, local_access

API = "/api/v1"
HOST = socket.gethostname()
CALLERS = [f"{role}@alpha" for role in ROLES] + ["admin@*", None]  # None: no token
TARGETS = ("alpha", "beta")  # own project, other project (for the callers bound to alpha)


@dataclass
class Sample:
    """One concrete request for a route, aimed at a record of ``project``."""

    url: str
    body: dict[str, Any] | None = None
    scope: str = "none"  # "item": a record of the project; "list": lists records of every project; "none"
    ok: int = 200  # what "item" answers in the caller's own project (past the project check, in the route's logic)
    ok_says: str = ""  # ... and what its error message says, where ``ok`` alone cannot tell


def _samples(records: dict[str, dict[str, str]], project: str, n: int) -> dict[tuple[str, str], Sample]:
    r = records[project]
    return {
        ("GET", "/openapi.json"): Sample("/openapi.json"),
        ("GET", "/docs"): Sample("/docs"),
        ("GET", "/docs/oauth2-redirect"): Sample("/docs/oauth2-redirect"),
        ("GET", "/redoc"): Sample("/redoc"),
        ("GET", f"{API}/health"): Sample(f"{API}/health"),
        ("GET", f"{API}/whoami"): Sample(f"{API}/whoami"),
        ("GET", f"{API}/tokens"): Sample(f"{API}/tokens"),
        ("POST", f"{API}/tokens"): Sample(f"{API}/tokens", {"name": "matrix", "expires_days": 1}),
        ("DELETE", f"{API}/tokens/{{token_id}}"): Sample(f"{API}/tokens/00000000"),
        ("GET", f"{API}/projects"): Sample(f"{API}/projects"),
        ("GET", f"{API}/runs"): Sample(f"{API}/runs", scope="list"),
        ("GET", f"{API}/runs/{{run_id}}"): Sample(f"{API}/runs/{r['run']}", scope="item"),
        ("GET", f"{API}/models"): Sample(f"{API}/models", scope="list"),
        ("GET", f"{API}/models/{{ref}}"): Sample(f"{API}/models/{r['model_ref']}", scope="item"),
        ("POST", f"{API}/models/{{ref}}/promote"): Sample(
            f"{API}/models/{r['model_ref']}/promote", {"stage": "staging"}, scope="item"
        ),
        ("GET", f"{API}/datasets"): Sample(f"{API}/datasets", scope="list"),
        ("GET", f"{API}/runs/{{run_id}}/report"): Sample(f"{API}/runs/{r['run']}/report", scope="item"),
        ("GET", f"{API}/deployments"): Sample(f"{API}/deployments", scope="list"),
        ("GET", f"{API}/deployments/{{name}}"): Sample(f"{API}/deployments/{r['deployment_name']}", scope="item"),
        # the fixture's models have no ONNX file and its deployments no replicas: what proves the caller got past
        # the project check is the error only the deployment logic gives (no ONNX file; unmanaged: 409)
        ("POST", f"{API}/deployments"): Sample(
            f"{API}/deployments", {"model": r["model_ref"]}, scope="item", ok=404, ok_says="has no ONNX file"
        ),
        ("POST", f"{API}/deployments/{{name}}/scale"): Sample(
            f"{API}/deployments/{r['deployment_name']}/scale", {"replicas": 2}, scope="item", ok=409
        ),
        ("POST", f"{API}/deployments/{{name}}/promote"): Sample(
            f"{API}/deployments/{r['deployment_name']}/promote", scope="item", ok=409
        ),
        ("POST", f"{API}/deployments/{{name}}/rollback"): Sample(
            f"{API}/deployments/{r['deployment_name']}/rollback", scope="item", ok=409
        ),
        ("DELETE", f"{API}/deployments/{{name}}"): Sample(f"{API}/deployments/gone-{n}", scope="item"),  # see SETUP
        ("POST", f"{API}/projects"): Sample(f"{API}/projects", {"name": f"p{n}"}),
        ("POST", f"{API}/projects/{{name}}/records"): Sample(
            f"{API}/projects/{project}/records", {"kind": "run", "id": r["run"]}
        ),
        ("GET", f"{API}/principals"): Sample(f"{API}/principals"),
        ("POST", f"{API}/principals"): Sample(f"{API}/principals", {"name": f"u{n}"}),
        ("PATCH", f"{API}/principals/{{name}}"): Sample(f"{API}/principals/target", {"disabled": False}),
        ("POST", f"{API}/principals/{{name}}/roles"): Sample(
            f"{API}/principals/target/roles", {"role": "viewer", "project": project}
        ),
        ("DELETE", f"{API}/principals/{{name}}/roles/{{role}}"): Sample(
            f"{API}/principals/target/roles/viewer?project={project}"
        ),
        ("GET", f"{API}/principals/{{name}}/tokens"): Sample(f"{API}/principals/target/tokens"),
        ("POST", f"{API}/principals/{{name}}/tokens"): Sample(
            f"{API}/principals/target/tokens", {"name": "m", "expires_days": 1}
        ),
        ("DELETE", f"{API}/principals/{{name}}/tokens/{{token_id}}"): Sample(
            f"{API}/principals/target/tokens/00000000"
        ),
        ("GET", f"{API}/audit"): Sample(f"{API}/audit?limit=5"),
        ("GET", f"{API}/audit/verify"): Sample(f"{API}/audit/verify"),
        ("GET", f"{API}/audit/export"): Sample(f"{API}/audit/export"),
        ("POST", f"{API}/jobs"): Sample(
            f"{API}/jobs", {"pipeline": JOB_SPEC, "project": project, "idempotency_key": f"matrix-{n}"}
        ),
        ("GET", f"{API}/jobs"): Sample(f"{API}/jobs", scope="list"),
        ("GET", f"{API}/jobs/{{job_id}}"): Sample(f"{API}/jobs/{r['job']}", scope="item"),
        ("POST", f"{API}/jobs/{{job_id}}/cancel"): Sample(f"{API}/jobs/{r['job']}/cancel", scope="item"),
        ("GET", f"{API}/jobs/{{job_id}}/logs"): Sample(f"{API}/jobs/{r['job']}/logs", scope="item"),
        # a job's own stores: its credential only; any other token finds nothing there, in either project
        ("POST", f"{API}/jobs/{{job_id}}/store/{{op}}"): Sample(
            f"{API}/jobs/{r['job']}/store/get_job", {}, scope="item", ok=404
        ),
        ("PUT", f"{API}/jobs/{{job_id}}/artifacts"): Sample(f"{API}/jobs/{r['job']}/artifacts", scope="item", ok=404),
        ("GET", f"{API}/jobs/{{job_id}}/artifacts/{{digest}}"): Sample(
            f"{API}/jobs/{r['job']}/artifacts/sha256:{'0' * 64}", scope="item", ok=404
        ),
        ("GET", f"{API}/jobs/{{job_id}}/files"): Sample(
            f"{API}/jobs/{r['job']}/files?path=x.npz", scope="item", ok=404
        ),
        ("GET", f"{API}/quotas"): Sample(f"{API}/quotas", scope="list"),
        ("PUT", f"{API}/quotas/{{project}}"): Sample(f"{API}/quotas/{project}", {"max_jobs": 5}),
        # the data center's nodes (this host alone, in the embedded default) belong to no project
        ("GET", f"{API}/nodes"): Sample(f"{API}/nodes"),
        ("GET", f"{API}/nodes/{{name}}"): Sample(f"{API}/nodes/{HOST}"),
        ("POST", f"{API}/nodes/{{name}}/{{verb}}"): Sample(f"{API}/nodes/{HOST}/uncordon", {"reason": "matrix"}),
        ("GET", f"{API}/energy"): Sample(f"{API}/energy?period_days=1"),
        ("GET", "/metrics"): Sample("/metrics"),
        # the data center's alerts (none recorded here: show and ack answer 404 to whoever may ask)
        ("GET", f"{API}/alerts"): Sample(f"{API}/alerts"),
        ("GET", f"{API}/alerts/{{alert_id}}"): Sample(f"{API}/alerts/no-such-alert"),
        ("POST", f"{API}/alerts/{{alert_id}}/ack"): Sample(f"{API}/alerts/no-such-alert/ack"),
        ("GET", f"{API}/silences"): Sample(f"{API}/silences"),
        ("POST", f"{API}/silences"): Sample(f"{API}/silences", {"matchers": {"rack": f"r{n}"}, "duration_s": 60}),
        ("DELETE", f"{API}/silences/{{silence_id}}"): Sample(f"{API}/silences/no-such-silence"),
        ("GET", f"{API}/alert-rules/prometheus"): Sample(f"{API}/alert-rules/prometheus"),
        ("GET", f"{API}/keys"): Sample(f"{API}/keys"),
        ("POST", f"{API}/keys/rotate"): Sample(f"{API}/keys/rotate", {"keep_old": False}),
    }


def _doomed_deployment(world: Any, project: str, n: int) -> None:
    """A deployment of its own for each DELETE cell: deleting stops it, and the next cell would find none."""
    md = world.platform.metadata
    dep = md.add_deployment(f"gone-{n}", int(world.records[project]["model_version"]), "http://127.0.0.1:9", None)
    world.platform.security.assign_project(local_access(), "deployment", str(dep.id), project)


# Records a cell's request consumes, made just before it: (method, path) → fn(world, project, n).
SETUP: dict[tuple[str, str], Callable[[Any, str, int], None]] = {
    ("DELETE", f"{API}/deployments/{{name}}"): _doomed_deployment,
}


def holds(caller: str, permission: str) -> bool:
    """What the role table grants ``caller`` somewhere (global permissions only on a binding on every project)."""
    role, project = caller.split("@")
    if permission == AUTHENTICATED:
        return True
    return permission in ROLES[role] and (permission not in GLOBAL_PERMISSIONS or project == "*")


def test_every_route_has_a_policy_and_every_policy_a_route(world: Any) -> None:
    routes = routes_of(world.client.app)
    assert unpoliced(routes) == []
    assert sorted(set(POLICY) - set(routes)) == [], "POLICY names routes the app does not have"


def test_a_route_without_a_policy_stops_the_app(monkeypatch: pytest.MonkeyPatch, world: Any) -> None:
    extra = APIRouter()
    extra.add_api_route(f"{API}/forgotten", lambda: {"open": True}, methods=["GET"])
    monkeypatch.setattr(app_module, "audit", type("M", (), {"router": extra}))
    with pytest.raises(RuntimeError, match="forgotten"):
        create_app(world.platform)


def test_a_route_added_after_startup_is_denied_to_everyone(world: Any) -> None:
    app = create_app(world.platform)
    app.add_api_route(f"{API}/late", lambda: {"open": True}, methods=["GET"])
    from fastapi.testclient import TestClient

    client = TestClient(app)
    assert client.get(f"{API}/late", headers=world.headers("admin@*")).status_code == 403
    assert client.get(f"{API}/late").status_code == 401


def _matrix(world: Any) -> list[tuple[str, str, str | None, str]]:
    return [
        (method, path, caller, target)
        for (method, path), caller, target in itertools.product(sorted(routes_of(world.client.app)), CALLERS, TARGETS)
    ]


# Package scope, like `world`: the cells are requested once per world. Scoped to this module, a runner that hands
# pytest the test ids interleaved with other modules' (mutmut passes a set) tears this fixture down and requests every
# cell again on the same world, whose projects then include those the first pass's POST /projects cells created.
@pytest.fixture(scope="package")
def outcomes(world: Any) -> dict[tuple[str, str, str | None, str], tuple[int, Any, Sample]]:
    """Every cell of the matrix, requested once (state-changing samples are harmless and repeatable)."""
    results = {}
    for n, (method, path, caller, target) in enumerate(_matrix(world)):
        samples = _samples(world.records, target, n)
        assert (method, path) in samples, f"add a sample request for {method} {path} to this test"
        sample = samples[(method, path)]
        if (method, path) in SETUP:
            SETUP[(method, path)](world, target, n)
        response = world.client.request(method, sample.url, json=sample.body, headers=world.headers(caller))
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        results[(method, path, caller, target)] = (response.status_code, body, sample)
    return results


def _check(cell: tuple[str, str, str | None, str], outcome: tuple[int, Any, Sample]) -> str | None:
    """Why a cell is wrong, or None."""
    method, path, caller, target = cell
    status, body, sample = outcome
    permission = POLICY[(method, path)]
    if permission == PUBLIC:
        return None if status == 200 else f"public route answered {status}"
    if caller is None:
        return None if status == 401 else f"no token, yet {status}"
    if not holds(caller, permission):
        return None if status == 403 else f"lacks {permission}, yet {status}"
    if status in (401, 403) or status >= 500:
        return f"holds {permission}, yet {status}: {body}"
    own = caller.endswith("@*") or target == "alpha"
    if sample.scope == "item":
        expected = sample.ok if own else 404
        if status != expected:
            return f"record in {target}: expected {expected}, got {status}"
        said = body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
        if own and sample.ok_says not in said:
            return f"record in {target}: expected an error saying {sample.ok_says!r}, got {said!r}"
        if not own and sample.ok_says and sample.ok_says in said:
            return f"record in {target}: another project's record reached the route's logic: {said!r}"
        return None
    if sample.scope == "list":
        projects = {item["project"] for item in body}
        allowed = {"alpha", "beta", "default"} if caller.endswith("@*") else {"alpha"}
        if not projects <= allowed:
            return f"listed records of {sorted(projects - allowed)}"
        return None if "alpha" in projects else "did not list its own project's record"
    return None


def test_authorization_matrix(world: Any, outcomes: dict[Any, Any]) -> None:
    wrong = [
        f"{m} {p} as {c or 'anonymous'} on {t}: {why}"
        for (m, p, c, t), o in outcomes.items()
        if (why := _check((m, p, c, t), o))
    ]
    assert not wrong, "\n".join(wrong)
    assert len(outcomes) == len(routes_of(world.client.app)) * len(CALLERS) * len(TARGETS)


# What a user would notice, written out by hand so a change to the role table cannot pass silently.
SPOT_CHECKS: list[tuple[str, str, str, str, Callable[[int], bool]]] = [
    ("viewer@alpha", "POST", "/api/v1/models/{ref}/promote", "alpha", lambda s: s == 403),
    ("researcher@alpha", "POST", "/api/v1/models/{ref}/promote", "alpha", lambda s: s == 200),
    ("researcher@alpha", "POST", "/api/v1/models/{ref}/promote", "beta", lambda s: s == 404),
    ("researcher@alpha", "GET", "/api/v1/runs/{run_id}", "beta", lambda s: s == 404),
    ("operator@alpha", "GET", "/api/v1/datasets", "alpha", lambda s: s == 403),
    ("operator@alpha", "GET", "/api/v1/deployments", "alpha", lambda s: s == 200),
    ("admin@alpha", "GET", "/api/v1/principals", "alpha", lambda s: s == 403),  # project admin ≠ platform admin
    ("admin@alpha", "GET", "/api/v1/audit", "alpha", lambda s: s == 403),
    ("admin@*", "GET", "/api/v1/audit", "alpha", lambda s: s == 200),
    ("admin@*", "GET", "/api/v1/runs/{run_id}", "beta", lambda s: s == 200),
    ("viewer@alpha", "POST", "/api/v1/tokens", "alpha", lambda s: s == 201),
    ("viewer@alpha", "POST", "/api/v1/principals", "alpha", lambda s: s == 403),
    ("operator@alpha", "DELETE", "/api/v1/deployments/{name}", "alpha", lambda s: s == 200),
    ("operator@alpha", "DELETE", "/api/v1/deployments/{name}", "beta", lambda s: s == 404),
    ("researcher@alpha", "DELETE", "/api/v1/deployments/{name}", "alpha", lambda s: s == 403),
    ("viewer@alpha", "POST", "/api/v1/deployments/{name}/scale", "alpha", lambda s: s == 403),
    ("researcher@alpha", "GET", "/api/v1/runs/{run_id}/report", "beta", lambda s: s == 404),
    # jobs: submit and cancel in one's own projects only; nobody sees another project's jobs or logs
    ("researcher@alpha", "POST", "/api/v1/jobs", "alpha", lambda s: s == 201),
    ("researcher@alpha", "POST", "/api/v1/jobs", "beta", lambda s: s == 404),
    ("viewer@alpha", "POST", "/api/v1/jobs", "alpha", lambda s: s == 403),
    ("operator@alpha", "POST", "/api/v1/jobs", "alpha", lambda s: s == 403),
    ("viewer@alpha", "POST", "/api/v1/jobs/{job_id}/cancel", "alpha", lambda s: s == 403),
    ("operator@alpha", "POST", "/api/v1/jobs/{job_id}/cancel", "alpha", lambda s: s == 200),
    ("operator@alpha", "POST", "/api/v1/jobs/{job_id}/cancel", "beta", lambda s: s == 404),
    ("researcher@alpha", "GET", "/api/v1/jobs/{job_id}/logs", "beta", lambda s: s == 404),
    ("viewer@alpha", "GET", "/api/v1/jobs/{job_id}", "beta", lambda s: s == 404),
    ("admin@*", "POST", "/api/v1/jobs/{job_id}/cancel", "beta", lambda s: s == 200),
    ("admin@alpha", "PUT", "/api/v1/quotas/{project}", "alpha", lambda s: s == 403),
    ("admin@*", "PUT", "/api/v1/quotas/{project}", "beta", lambda s: s == 200),
    # master keys: only an admin on every project; a project's admin is not the data center's
    ("admin@alpha", "GET", "/api/v1/keys", "alpha", lambda s: s == 403),
    ("admin@alpha", "POST", "/api/v1/keys/rotate", "alpha", lambda s: s == 403),
    ("operator@alpha", "POST", "/api/v1/keys/rotate", "alpha", lambda s: s == 403),
    ("admin@*", "GET", "/api/v1/keys", "alpha", lambda s: s == 200),
    ("admin@*", "POST", "/api/v1/keys/rotate", "alpha", lambda s: s == 200),
    # alerts: every role sees them; silencing what the whole data center is told takes an operator on every project
    ("viewer@alpha", "GET", "/api/v1/alerts", "alpha", lambda s: s == 200),
    ("viewer@alpha", "POST", "/api/v1/silences", "alpha", lambda s: s == 403),
    ("operator@alpha", "POST", "/api/v1/silences", "alpha", lambda s: s == 403),
    ("admin@*", "POST", "/api/v1/silences", "alpha", lambda s: s == 200),
    ("viewer@alpha", "POST", "/api/v1/alerts/{alert_id}/ack", "alpha", lambda s: s == 403),
]


@pytest.mark.parametrize(
    ("caller", "method", "path", "target", "ok"), SPOT_CHECKS, ids=[f"{c} {m} {p} {t}" for c, m, p, t, _ in SPOT_CHECKS]
)
def test_spot_checks(
    outcomes: dict[Any, Any], caller: str, method: str, path: str, target: str, ok: Callable[[int], bool]
) -> None:
    status, body, _ = outcomes[(method, path, caller, target)]
    assert ok(status), (status, body)


def test_denied_requests_are_audited_with_who_what_where(world: Any, outcomes: dict[Any, Any]) -> None:
    denied = world.platform.security.audit_list(result="denied", limit=10000)
    actions = {(e.actor, e.action) for e in denied}
    assert ("anonymous", "GET /api/v1/runs") in actions
    assert ("viewer-alpha", "POST /api/v1/models/{ref}/promote") in actions
    assert ("researcher-alpha", "runs.read") in actions  # another project's run: 404 to the caller, denied here
    assert all(e.source == "testclient" for e in denied)
    assert world.platform.security.audit_verify().ok
