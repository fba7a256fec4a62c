"""RemoteClient: the Client verbs over the server's REST API with a bearer token; errors come back as the same
AidcErrors the server raised."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aidc.client.base import JSON
from aidc.errors import AidcError, BackendUnavailable, InvalidInput
from aidc.settings import Settings

API = "/api/v1"


def _error_classes(cls: type[AidcError] = AidcError) -> dict[str, type[AidcError]]:
    found = {cls.code: cls}
    for sub in cls.__subclasses__():
        found |= _error_classes(sub)
    return found


class RemoteClient:
    """The same verbs over the server's REST API, with a bearer token; errors come back as the same AidcErrors."""

    def __init__(
        self, server: str, token: str, *, timeout: float = 30.0, ca_file: str = "", home: Path | None = None
    ) -> None:
        import httpx

        self.home = home or Settings().home  # where downloaded run reports go
        self.where = server.rstrip("/")
        # HTTPS is verified against the system CAs, or against ca_file (AIDC_CA_FILE) for a private CA.
        if ca_file and not Path(ca_file).is_file():
            raise InvalidInput(
                f"no CA file at {ca_file}",
                where="AIDC_CA_FILE",
                hint="point AIDC_CA_FILE at the PEM certificate of the CA that signed the server's",
            )
        self._http = httpx.Client(
            base_url=self.where + API,
            timeout=timeout,
            verify=ssl.create_default_context(cafile=ca_file) if ca_file else True,
            headers={"Authorization": f"Bearer {token}"},
        )

    def _call(self, method: str, *segments: str, raw: bool = False, **kwargs: Any) -> Any:
        """``segments`` make the path under /api/v1, each URL-quoted (names and ids come from the command line);
        the answer's JSON, or with ``raw`` its text."""
        import httpx

        try:
            response = self._http.request(method, "/" + "/".join(quote(s, safe="") for s in segments), **kwargs)
        except httpx.HTTPError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise BackendUnavailable(
                    f"the certificate of {self.where} is not trusted: {exc}",
                    hint="set AIDC_CA_FILE to the PEM of the CA that signed it",
                ) from None
            raise BackendUnavailable(
                f"cannot reach the aidc server at {self.where}: {type(exc).__name__}",
                hint="is `aidc server` running there? check the URL (`aidc login`)",
            ) from None
        if response.status_code >= 400:
            raise self._error(response)
        return response.text if raw else response.json()

    def _object(self, method: str, *segments: str, **kwargs: Any) -> JSON:
        answer: JSON = self._call(method, *segments, **kwargs)
        return answer

    def _objects(self, method: str, *segments: str, **kwargs: Any) -> list[JSON]:
        answer: list[JSON] = self._call(method, *segments, **kwargs)
        return answer

    def _error(self, response: Any) -> AidcError:
        try:
            body = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            return BackendUnavailable(
                f"{self.where} answered HTTP {response.status_code}, not an aidc error",
                hint="is that URL an aidc server?",
            )
        cls = _error_classes().get(body.get("code"), AidcError)
        error = cls.__new__(cls)
        AidcError.__init__(error, body.get("message", ""), hint=body.get("hint"), where=body.get("where"))
        return error

    def whoami(self) -> JSON:
        return self._object("GET", "whoami")

    def list_tokens(self, user: str | None = None) -> list[JSON]:
        return self._objects("GET", "principals", user, "tokens") if user else self._objects("GET", "tokens")

    def create_token(
        self, name: str, *, user: str | None = None, scopes: list[str] | None = None, expires_days: int | None = None
    ) -> JSON:
        body = {"name": name, "scopes": scopes or ["*"], "expires_days": expires_days}
        return (
            self._object("POST", "principals", user, "tokens", json=body)
            if user
            else self._object("POST", "tokens", json=body)
        )

    def revoke_token(self, token_id: str, *, user: str | None = None) -> JSON:
        return (
            self._object("DELETE", "principals", user, "tokens", token_id)
            if user
            else self._object("DELETE", "tokens", token_id)
        )

    def list_principals(self) -> list[JSON]:
        return self._objects("GET", "principals")

    def create_principal(self, name: str, kind: str = "user") -> JSON:
        return self._object("POST", "principals", json={"name": name, "kind": kind})

    def set_disabled(self, name: str, disabled: bool) -> JSON:
        return self._object("PATCH", "principals", name, json={"disabled": disabled})

    def grant(self, name: str, role: str, project: str) -> JSON:
        return self._object("POST", "principals", name, "roles", json={"role": role, "project": project})

    def revoke_role(self, name: str, role: str, project: str) -> JSON:
        return self._object("DELETE", "principals", name, "roles", role, params={"project": project})

    def list_projects(self) -> list[JSON]:
        return self._objects("GET", "projects")

    def create_project(self, name: str, description: str = "") -> JSON:
        return self._object("POST", "projects", json={"name": name, "description": description})

    def assign(self, project: str, kind: str, id_: str) -> JSON:
        return self._object("POST", "projects", project, "records", json={"kind": kind, "id": id_})

    def audit_list(self, **filters: Any) -> list[JSON]:
        params = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in filters.items() if v is not None}
        return self._objects("GET", "audit", params=params)

    def audit_verify(self) -> JSON:
        return self._object("GET", "audit", "verify")

    def audit_export(self) -> Iterator[JSON]:
        import httpx

        try:
            with self._http.stream("GET", "/audit/export") as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"cannot reach the aidc server at {self.where}: {type(exc).__name__}") from None

    def audit_prune(self) -> JSON | None:
        raise InvalidInput(
            "the server prunes its audit log itself, daily",
            hint="to prune now, run `aidc audit prune` on the server's host without a login",
        )

    # -- records: runs, models, datasets, deployments, predict, doctor
    def close(self) -> None:
        self._http.close()

    def list_runs(self, *, pipeline: str | None = None, status: str | None = None, limit: int = 50) -> list[JSON]:
        params = {k: v for k, v in {"pipeline": pipeline, "status": status, "limit": limit}.items() if v is not None}
        return self._objects("GET", "runs", params=params)

    def run_details(self, run_id: str) -> JSON:
        return self._object("GET", "runs", run_id)

    def run_report(self, run_id: str, dest: Path | None = None) -> Path:
        """The server renders the report; it is saved here, at ``dest`` or under this machine's AIDC_HOME."""
        full = self.run_details(run_id)["run"]["id"]  # a prefix resolved, so the file is named by the full id
        html = self._call("GET", "runs", full, "report", raw=True)
        dest = dest or self.home / "runs" / full / "report.html"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(html, encoding="utf-8")
        return dest.resolve()

    def list_models(self, name: str | None = None) -> list[JSON]:
        return self._objects("GET", "models", params={"name": name} if name else None)

    def show_model(self, ref: str, *, project: str | None = None) -> JSON:
        return self._object("GET", "models", ref, params={"project": project} if project else None)

    def promote_model(self, ref: str, stage: str, *, project: str | None = None) -> list[JSON]:
        params = {"project": project} if project else None
        return self._objects("POST", "models", ref, "promote", json={"stage": stage}, params=params)

    def list_datasets(self, name: str | None = None) -> list[JSON]:
        return self._objects("GET", "datasets", params={"name": name} if name else None)

    def list_deployments(self, *, include_stopped: bool = False) -> list[JSON]:
        return self._objects(
            "GET",
            "deployments",
            params={"include_stopped": "true"} if include_stopped else None,
        )

    def show_deployment(self, name: str, *, project: str | None = None) -> JSON:
        return self._object("GET", "deployments", name, params={"project": project} if project else None)

    def deploy(self, ref: str, **options: Any) -> JSON:
        timeout = float(options.get("timeout") or 180.0)
        # the server answers once the replicas are ready: wait as long as it may, plus a margin
        return self._object(
            "POST",
            "deployments",
            json={"model": ref, **options},
            timeout=timeout + 60,
        )

    def change_deployment(self, verb: str, name: str, *args: Any, project: str | None = None) -> JSON:
        params = {"project": project} if project else None
        if verb == "delete":
            return self._object("DELETE", "deployments", name, params=params)
        body = {"replicas": args[0]} if verb == "scale" else None
        return self._object("POST", "deployments", name, verb, json=body, params=params, timeout=300.0)

    def predict(self, name: str, input_path: Path, *, version: str | None = None, project: str | None = None) -> JSON:
        """The server says where the deployment answers; the inputs go there directly, not through the server."""
        from aidc.services.deployments import predict_at

        return predict_at(self.show_deployment(name, project=project), input_path, version)

    def generate(
        self,
        name: str,
        prompt: str,
        *,
        parameters: JSON | None = None,
        version: str | None = None,
        project: str | None = None,
    ) -> JSON:
        """The server says where the deployment answers; the prompt goes there directly."""
        from aidc.services.deployments import generate_at

        return generate_at(self.show_deployment(name, project=project), prompt, parameters, version)

    def doctor(self) -> list[JSON]:
        """The server (reachable, its version against ours) and who the token says you are."""
        from aidc import __version__
        from aidc.diagnostics import check

        try:
            health = self._call("GET", "health")
        except AidcError as exc:
            return [check("server", "fail", exc.message, exc.hint)]
        same = health.get("version") == __version__
        checks = [
            check("server", "ok", f"aidc {health.get('version')} at {self.where}"),
            check(
                "version",
                "ok" if same else "warn",
                f"this client is aidc {__version__}",
                None if same else "install the server's aidc version here, or expect fields to differ",
            ),
        ]
        try:
            me = self.whoami()
        except AidcError as exc:
            return [*checks, check("identity", "fail", exc.message, exc.hint)]
        roles = ", ".join(f"{r['role']}@{r['project']}" for r in me["roles"]) or "no roles"
        return [
            *checks,
            check(
                "identity",
                "ok",
                f"{me['principal']} ({roles}); token {me['token_id']}, scopes {', '.join(me['scopes'])}",
                None if me["roles"] else "ask an admin for a role: `aidc users grant`",
            ),
        ]

    # -- jobs
    SUBMIT_TRIES = 3

    def submit_job(
        self,
        spec_text: str,
        *,
        path_name: str,
        project: str,
        priority: int = 0,
        cpus: float | None = None,
        gpus: float | None = None,
        workers: int | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Submit, retrying a lost connection with the same idempotency key: the server makes the job once."""
        import time
        import uuid

        key = idempotency_key or str(uuid.uuid4())
        body = {
            "pipeline": spec_text,
            "path_name": path_name,
            "project": project,
            "priority": priority,
            "cpus": cpus,
            "gpus": gpus,
            "workers": workers,
        }
        for attempt in range(self.SUBMIT_TRIES):
            try:
                return self._object("POST", "jobs", json=body, headers={"Idempotency-Key": key})
            except BackendUnavailable:
                if attempt + 1 == self.SUBMIT_TRIES:
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def list_jobs(self, *, project: str | None = None, state: str | None = None, limit: int = 100) -> list[JSON]:
        params = {k: v for k, v in {"project": project, "state": state, "limit": limit}.items() if v is not None}
        return self._objects("GET", "jobs", params=params)

    def show_job(self, job_id: str) -> JSON:
        return self._object("GET", "jobs", job_id)

    def cancel_job(self, job_id: str) -> JSON:
        return self._object("POST", "jobs", job_id, "cancel")

    def job_logs(self, job_id: str, *, follow: bool = False) -> Iterator[str]:
        import httpx

        path = "/jobs/" + quote(job_id, safe="") + "/logs"
        try:
            # no read timeout while following: a quiet job may print nothing for minutes
            with self._http.stream(
                "GET",
                path,
                params={"follow": str(follow).lower()},
                timeout=httpx.Timeout(30.0, read=None if follow else 30.0),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                yield from response.iter_text()
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"cannot reach the aidc server at {self.where}: {type(exc).__name__}") from None

    def list_quotas(self) -> list[JSON]:
        return self._objects("GET", "quotas")

    def set_quota(self, project: str, **limits: float | int | None) -> JSON:
        return self._object("PUT", "quotas", project, json=limits)

    # -- master keys (the server's key file and artifact store)
    def list_nodes(self, *, trend_minutes: int = 0) -> list[JSON]:
        return self._objects("GET", "nodes", params={"trend_minutes": trend_minutes} if trend_minutes else None)

    def show_node(self, name: str) -> JSON:
        return self._object("GET", "nodes", name)

    def change_node(self, verb: str, name: str, reason: str = "") -> JSON:
        if verb not in ("cordon", "drain", "uncordon"):
            raise InvalidInput(f"unknown node verb {verb!r}", hint="one of cordon, drain, uncordon")
        return self._object("POST", "nodes", name, verb, json={"reason": reason})

    def energy_report(self, *, period_days: float = 30.0, project: str | None = None) -> JSON:
        params: dict[str, Any] = {"period_days": period_days}
        if project is not None:
            params["project"] = project
        return self._object("GET", "energy", params=params)

    # -- alerts
    def list_alerts(self, *, state: str | None = None, limit: int = 100) -> list[JSON]:
        params: dict[str, Any] = {"limit": limit}
        if state is not None:
            params["state"] = state
        return self._objects("GET", "alerts", params=params)

    def show_alert(self, alert_id: str) -> JSON:
        return self._object("GET", "alerts", alert_id)

    def ack_alert(self, alert_id: str) -> JSON:
        return self._object("POST", "alerts", alert_id, "ack")

    def list_silences(self, *, include_ended: bool = False) -> list[JSON]:
        return self._objects("GET", "silences", params={"include_ended": include_ended})

    def silence_alerts(self, matchers: dict[str, str], *, duration_s: float, comment: str = "") -> JSON:
        body = {"matchers": matchers, "duration_s": duration_s, "comment": comment}
        return self._object("POST", "silences", json=body)

    def unsilence(self, silence_id: str) -> JSON:
        return self._object("DELETE", "silences", silence_id)

    def export_alert_rules(self) -> str:
        text: str = self._call("GET", "alert-rules", "prometheus", raw=True)
        return text

    def key_status(self) -> JSON:
        return self._object("GET", "keys", timeout=self._patient())

    def rotate_keys(self, *, new_key: str | None = None, keep_old: bool = False) -> JSON:
        """A key of ours travels in the request body, over the connection the token already trusts."""
        body = {"new_key": new_key, "keep_old": keep_old}
        return self._object("POST", "keys", "rotate", json=body, timeout=self._patient())

    @staticmethod
    def _patient() -> Any:
        """Connect as usual, then wait as long as the answer takes: the server reads (status) or re-wraps
        (rotate) every key record of the store before it answers."""
        import httpx

        return httpx.Timeout(30.0, read=None)
