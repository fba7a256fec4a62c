"""The RBAC policy: every HTTP route → the permission it needs. The API enforces it in one dependency, and
refuses to start with a route that is missing here (a test walks the app's routes against this table)."""

from __future__ import annotations

from aidc.security.roles import AUTHENTICATED, PUBLIC

API = "/api/v1"

POLICY: dict[tuple[str, str], str] = {
    # documentation and liveness
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", f"{API}/health"): PUBLIC,
    # the caller itself
    ("GET", f"{API}/whoami"): AUTHENTICATED,
    ("GET", f"{API}/tokens"): AUTHENTICATED,
    ("POST", f"{API}/tokens"): AUTHENTICATED,
    ("DELETE", f"{API}/tokens/{{token_id}}"): AUTHENTICATED,
    ("GET", f"{API}/projects"): AUTHENTICATED,
    # project records (each record is further limited to the caller's projects)
    ("GET", f"{API}/runs"): "runs:read",
    ("GET", f"{API}/runs/{{run_id}}"): "runs:read",
    ("GET", f"{API}/models"): "models:read",
    ("GET", f"{API}/models/{{ref}}"): "models:read",
    ("POST", f"{API}/models/{{ref}}/promote"): "models:promote",
    ("GET", f"{API}/datasets"): "datasets:read",
    ("GET", f"{API}/runs/{{run_id}}/report"): "runs:read",
    ("GET", f"{API}/deployments"): "deployments:read",
    ("GET", f"{API}/deployments/{{name}}"): "deployments:read",
    ("POST", f"{API}/deployments"): "deployments:manage",
    ("POST", f"{API}/deployments/{{name}}/scale"): "deployments:manage",
    ("POST", f"{API}/deployments/{{name}}/promote"): "deployments:manage",
    ("POST", f"{API}/deployments/{{name}}/rollback"): "deployments:manage",
    ("DELETE", f"{API}/deployments/{{name}}"): "deployments:manage",
    # jobs: the server's queue (each job is further limited to the caller's projects)
    ("POST", f"{API}/jobs"): "jobs:submit",
    ("GET", f"{API}/jobs"): "jobs:read",
    ("GET", f"{API}/jobs/{{job_id}}"): "jobs:read",
    ("POST", f"{API}/jobs/{{job_id}}/cancel"): "jobs:cancel",
    ("GET", f"{API}/jobs/{{job_id}}/logs"): "jobs:read",
    ("GET", f"{API}/quotas"): "jobs:read",
    ("PUT", f"{API}/quotas/{{project}}"): "quotas:admin",
    # a job's own stores: only the job's credential (job:<id>, scope jobs:read) passes the route's own check
    ("POST", f"{API}/jobs/{{job_id}}/store/{{op}}"): "jobs:read",
    ("PUT", f"{API}/jobs/{{job_id}}/artifacts"): "jobs:read",
    ("GET", f"{API}/jobs/{{job_id}}/artifacts/{{digest}}"): "jobs:read",
    ("GET", f"{API}/jobs/{{job_id}}/files"): "jobs:read",
    # the data center: nodes, energy, metrics (not a project's: nodes:read in any project shows them all)
    ("GET", f"{API}/nodes"): "nodes:read",
    ("GET", f"{API}/nodes/{{name}}"): "nodes:read",
    ("POST", f"{API}/nodes/{{name}}/{{verb}}"): "nodes:manage",
    ("GET", f"{API}/energy"): "nodes:read",
    ("GET", "/metrics"): "nodes:read",
    # alerts: the data center's and the caller's projects'; operators acknowledge and silence
    ("GET", f"{API}/alerts"): "alerts:read",
    ("GET", f"{API}/alerts/{{alert_id}}"): "alerts:read",
    ("POST", f"{API}/alerts/{{alert_id}}/ack"): "alerts:manage",
    ("GET", f"{API}/silences"): "alerts:read",
    ("POST", f"{API}/silences"): "alerts:manage",
    ("DELETE", f"{API}/silences/{{silence_id}}"): "alerts:manage",
    ("GET", f"{API}/alert-rules/prometheus"): "alerts:read",
    # administration
    ("POST", f"{API}/projects"): "projects:admin",
    ("POST", f"{API}/projects/{{name}}/records"): "projects:admin",
    ("GET", f"{API}/principals"): "principals:admin",
    ("POST", f"{API}/principals"): "principals:admin",
    ("PATCH", f"{API}/principals/{{name}}"): "principals:admin",
    ("POST", f"{API}/principals/{{name}}/roles"): "principals:admin",
    ("DELETE", f"{API}/principals/{{name}}/roles/{{role}}"): "principals:admin",
    ("GET", f"{API}/principals/{{name}}/tokens"): "principals:admin",
    ("POST", f"{API}/principals/{{name}}/tokens"): "principals:admin",
    ("DELETE", f"{API}/principals/{{name}}/tokens/{{token_id}}"): "principals:admin",
    ("GET", f"{API}/audit"): "audit:read",
    ("GET", f"{API}/audit/verify"): "audit:read",
    ("GET", f"{API}/audit/export"): "audit:read",
    ("GET", f"{API}/keys"): "keys:admin",
    ("POST", f"{API}/keys/rotate"): "keys:admin",
}

# What a job's credential (a token named job:<id>, security/service.py) may call: its own stores, nothing else of its
# submitter's rights.
JOB_ROUTES = frozenset(
    {
        ("POST", f"{API}/jobs/{{job_id}}/store/{{op}}"),
        ("PUT", f"{API}/jobs/{{job_id}}/artifacts"),
        ("GET", f"{API}/jobs/{{job_id}}/artifacts/{{digest}}"),
        ("GET", f"{API}/jobs/{{job_id}}/files"),
    }
)
# Bodies the route itself streams, once it has checked the caller is the job (a checkpoint outgrows
# AIDC_MAX_BODY_MB): the front door does not cap them.
UNCAPPED = frozenset({("PUT", f"{API}/jobs/{{job_id}}/artifacts")})


def required_permission(method: str, path: str) -> str | None:
    """The permission route ``method path`` (its template, e.g. /api/v1/runs/{run_id}) needs; None: no policy."""
    return POLICY.get((method.upper(), path))


def unpoliced(routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (method, path) pairs that have no entry in POLICY."""
    return [route for route in routes if route not in POLICY]
