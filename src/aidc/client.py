"""Client: the verbs the CLI calls, on this machine's store (LocalClient) or through a server (RemoteClient).

Every command that reads or changes platform state (runs, models, datasets, deployments, deploy, predict,
doctor, jobs, quotas, logs, and the security verbs: tokens, users, projects, audit, keys) calls one verb here; both
clients return the same JSON-ready data, so a command prints the same output either way. ``open_client`` picks
the server from AIDC_SERVER/AIDC_TOKEN or what ``aidc login`` saved, else the local store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aidc.errors import AidcError, BackendUnavailable, InvalidInput, Unauthenticated
from aidc.settings import Settings

API = "/api/v1"
CREDENTIALS = "credentials.json"
JSON = dict[str, Any]


# -- what `aidc login` saves: the server URL and a token, readable by this OS user only
def credentials_path(home: Path) -> Path:
    return home / CREDENTIALS


def save_credentials(home: Path, server: str, token: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = credentials_path(home)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT: set it
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"server": server, "token": token}, f)
    return path


def load_credentials(home: Path) -> dict[str, str] | None:
    path = credentials_path(home)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {"server": str(data["server"]), "token": str(data["token"])}
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"{path} is not what `aidc login` writes", hint="run `aidc login URL` again") from None


def forget_credentials(home: Path) -> bool:
    path = credentials_path(home)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def open_client(settings: Settings | None = None) -> LocalClient | RemoteClient:
    settings = settings or Settings()
    server, token = settings.server, settings.token.get_secret_value()
    saved = load_credentials(settings.home)
    if not server and saved:
        server, token = saved["server"], token or saved["token"]
    if not server:
        from aidc.platform import Platform

        return LocalClient(Platform(settings))
    if not token:
        raise Unauthenticated(f"no API token for {server}", hint="run `aidc login URL`, or set AIDC_TOKEN")
    return RemoteClient(server, token, ca_file=settings.ca_file, home=settings.home)


def server_of(settings: Settings | None = None) -> str | None:
    """The server the commands would go through (AIDC_SERVER, else what `aidc login` saved), or None: local."""
    settings = settings or Settings()
    saved = None if settings.server else load_credentials(settings.home)
    return settings.server or (saved["server"] if saved else None)


def _error_classes(cls: type[AidcError] = AidcError) -> dict[str, type[AidcError]]:
    found = {cls.code: cls}
    for sub in cls.__subclasses__():
        found |= _error_classes(sub)
    return found


class LocalClient:
    """The verbs on this machine's metadata store, as ``local:<os user>``: opening the store is admin power."""

    def __init__(self, platform: Any) -> None:
        self.platform = platform
        self.access = platform.local_access()
        self.where = f"local store {platform.settings.metadata_url.split('@')[-1]}"

    @property
    def security(self) -> Any:
        """Opened on first use: `aidc doctor` must report a store it cannot open, not fail opening it."""
        return self.platform.security

    def whoami(self) -> JSON:
        return self.access.to_json()

    def list_tokens(self, user: str | None = None) -> list[JSON]:
        return [t.to_json() for t in self.security.list_tokens(user)]

    def create_token(
        self, name: str, *, user: str | None = None, scopes: list[str] | None = None, expires_days: int | None = None
    ) -> JSON:
        return self.security.create_token(
            self.access, name=name, principal=user, scopes=scopes, expires_days=expires_days
        )

    def revoke_token(self, token_id: str, *, user: str | None = None) -> JSON:
        return self.security.revoke_token(self.access, token_id, owner=user).to_json()

    def list_principals(self) -> list[JSON]:
        return [p.to_json() for p in self.security.list_principals()]

    def create_principal(self, name: str, kind: str = "user") -> JSON:
        return self.security.create_principal(self.access, name, kind).to_json()

    def set_disabled(self, name: str, disabled: bool) -> JSON:
        return self.security.set_disabled(self.access, name, disabled).to_json()

    def grant(self, name: str, role: str, project: str) -> JSON:
        return self.security.grant(self.access, name, role, project).to_json()

    def revoke_role(self, name: str, role: str, project: str) -> JSON:
        return self.security.revoke_role(self.access, name, role, project).to_json()

    def list_projects(self) -> list[JSON]:
        return [p.to_json() for p in self.security.list_projects(self.access)]

    def create_project(self, name: str, description: str = "") -> JSON:
        return self.security.create_project(self.access, name, description).to_json()

    def assign(self, project: str, kind: str, id_: str) -> JSON:
        return self.security.assign_project(self.access, kind, id_, project)

    def audit_list(self, **filters: Any) -> list[JSON]:
        return [e.to_json() for e in self.security.audit_list(**filters)]

    def audit_verify(self) -> JSON:
        return self.security.audit_verify().to_json()

    def audit_export(self) -> Iterator[JSON]:
        return (e.to_json() for e in self.security.audit_export())

    def audit_prune(self) -> JSON | None:
        entry = self.security.prune_audit(self.access)
        return entry.to_json() if entry else None

    # -- records: runs, models, datasets, deployments, predict, doctor (the same scoped verbs the API routes call)
    def close(self) -> None:
        self.platform.close()

    @property
    def _scope(self) -> Any:
        return self.platform.scoped(self.access)

    def list_runs(self, *, pipeline: str | None = None, status: str | None = None, limit: int = 50) -> list[JSON]:
        return self._scope.list_runs(pipeline=pipeline, status=status, limit=limit)  # type: ignore[no-any-return]

    def run_details(self, run_id: str) -> JSON:
        return self._scope.run_details(run_id)  # type: ignore[no-any-return]

    def run_report(self, run_id: str, dest: Path | None = None) -> Path:
        return self._scope.run_report(run_id, dest)  # type: ignore[no-any-return]

    def list_models(self, name: str | None = None) -> list[JSON]:
        return self._scope.list_models(name)  # type: ignore[no-any-return]

    def show_model(self, ref: str) -> JSON:
        return self._scope.model(ref)  # type: ignore[no-any-return]

    def promote_model(self, ref: str, stage: str) -> list[JSON]:
        return self._scope.promote_model(ref, stage)  # type: ignore[no-any-return]

    def list_datasets(self, name: str | None = None) -> list[JSON]:
        return self._scope.list_datasets(name)  # type: ignore[no-any-return]

    def list_deployments(self, *, include_stopped: bool = False) -> list[JSON]:
        return self._scope.list_deployments(include_stopped=include_stopped)  # type: ignore[no-any-return]

    def show_deployment(self, name: str) -> JSON:
        return self._scope.deployment(name)  # type: ignore[no-any-return]

    def deploy(self, ref: str, **options: Any) -> JSON:
        """Options as `aidc deploy` (DeployRequest's fields)."""
        from aidc.serving.canary import CanaryPolicy

        policy = CanaryPolicy(**{k: options.pop(k) for k in _POLICY_FIELDS if k in options})
        return self._scope.deploy(ref, policy=policy, **options)  # type: ignore[no-any-return]

    def change_deployment(self, verb: str, name: str, *args: Any) -> JSON:
        """``verb``: scale (args: replicas), promote, rollback or delete."""
        return self._scope.change_deployment(verb, name, *args)  # type: ignore[no-any-return]

    def predict(self, name: str, input_path: Path, *, version: str | None = None) -> JSON:
        return predict_at(self._scope.deployment(name), input_path, version)

    def doctor(self) -> list[JSON]:
        return self.platform.doctor()  # type: ignore[no-any-return]

    # -- jobs (the server's queue; on the local store a job waits for a server on this store to run it)
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
        job, _ = self.platform.jobs.submit(
            self.access,
            spec_text=spec_text,
            path_name=path_name,
            project=project,
            priority=priority,
            cpus=cpus,
            gpus=gpus,
            workers=workers,
            idempotency_key=idempotency_key,
        )
        return job

    def list_jobs(self, *, project: str | None = None, state: str | None = None, limit: int = 100) -> list[JSON]:
        return self.platform.jobs.list(self.access, project=project, state=state, limit=limit)

    def show_job(self, job_id: str) -> JSON:
        return self.platform.jobs.show(self.access, job_id)

    def cancel_job(self, job_id: str) -> JSON:
        return self.platform.jobs.cancel(self.access, job_id)

    def job_logs(self, job_id: str, *, follow: bool = False) -> Iterator[str]:
        return self.platform.jobs.log_lines(self.access, job_id, follow=follow)

    def list_quotas(self) -> list[JSON]:
        return self.platform.jobs.quotas(self.access)

    def set_quota(self, project: str, **limits: float | int | None) -> JSON:
        return self.platform.jobs.set_quota(self.access, project, **limits)

    # -- master keys of artifact encryption (the key file is this host's)
    def key_status(self) -> JSON:
        from aidc.security.keys import key_status

        return key_status(self.platform)

    def rotate_keys(self, *, new_key: str | None = None, keep_old: bool = False) -> JSON:
        from aidc.security.keys import rotate

        return rotate(self.platform, self.access, new_key=new_key, keep_old=keep_old)


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
            verify=ca_file or True,
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
        return self._call("GET", "whoami")

    def list_tokens(self, user: str | None = None) -> list[JSON]:
        return self._call("GET", "principals", user, "tokens") if user else self._call("GET", "tokens")

    def create_token(
        self, name: str, *, user: str | None = None, scopes: list[str] | None = None, expires_days: int | None = None
    ) -> JSON:
        body = {"name": name, "scopes": scopes or ["*"], "expires_days": expires_days}
        return (
            self._call("POST", "principals", user, "tokens", json=body)
            if user
            else self._call("POST", "tokens", json=body)
        )

    def revoke_token(self, token_id: str, *, user: str | None = None) -> JSON:
        return (
            self._call("DELETE", "principals", user, "tokens", token_id)
            if user
            else self._call("DELETE", "tokens", token_id)
        )

    def list_principals(self) -> list[JSON]:
        return self._call("GET", "principals")

    def create_principal(self, name: str, kind: str = "user") -> JSON:
        return self._call("POST", "principals", json={"name": name, "kind": kind})

    def set_disabled(self, name: str, disabled: bool) -> JSON:
        return self._call("PATCH", "principals", name, json={"disabled": disabled})

    def grant(self, name: str, role: str, project: str) -> JSON:
        return self._call("POST", "principals", name, "roles", json={"role": role, "project": project})

    def revoke_role(self, name: str, role: str, project: str) -> JSON:
        return self._call("DELETE", "principals", name, "roles", role, params={"project": project})

    def list_projects(self) -> list[JSON]:
        return self._call("GET", "projects")

    def create_project(self, name: str, description: str = "") -> JSON:
        return self._call("POST", "projects", json={"name": name, "description": description})

    def assign(self, project: str, kind: str, id_: str) -> JSON:
        return self._call("POST", "projects", project, "records", json={"kind": kind, "id": id_})

    def audit_list(self, **filters: Any) -> list[JSON]:
        params = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in filters.items() if v is not None}
        return self._call("GET", "audit", params=params)

    def audit_verify(self) -> JSON:
        return self._call("GET", "audit", "verify")

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
        return self._call("GET", "runs", params=params)  # type: ignore[no-any-return]

    def run_details(self, run_id: str) -> JSON:
        return self._call("GET", "runs", run_id)  # type: ignore[no-any-return]

    def run_report(self, run_id: str, dest: Path | None = None) -> Path:
        """The server renders the report; it is saved here, at ``dest`` or under this machine's AIDC_HOME."""
        full = self.run_details(run_id)["run"]["id"]  # a prefix resolved, so the file is named by the full id
        html = self._call("GET", "runs", full, "report", raw=True)
        dest = dest or self.home / "runs" / full / "report.html"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(html, encoding="utf-8")
        return dest.resolve()

    def list_models(self, name: str | None = None) -> list[JSON]:
        return self._call("GET", "models", params={"name": name} if name else None)  # type: ignore[no-any-return]

    def show_model(self, ref: str) -> JSON:
        return self._call("GET", "models", ref)  # type: ignore[no-any-return]

    def promote_model(self, ref: str, stage: str) -> list[JSON]:
        return self._call("POST", "models", ref, "promote", json={"stage": stage})  # type: ignore[no-any-return]

    def list_datasets(self, name: str | None = None) -> list[JSON]:
        return self._call("GET", "datasets", params={"name": name} if name else None)  # type: ignore[no-any-return]

    def list_deployments(self, *, include_stopped: bool = False) -> list[JSON]:
        return self._call(
            "GET",
            "deployments",  # type: ignore[no-any-return]
            params={"include_stopped": "true"} if include_stopped else None,
        )

    def show_deployment(self, name: str) -> JSON:
        return self._call("GET", "deployments", name)  # type: ignore[no-any-return]

    def deploy(self, ref: str, **options: Any) -> JSON:
        timeout = float(options.get("timeout") or 180.0)
        # the server answers once the replicas are ready: wait as long as it may, plus a margin
        return self._call(
            "POST",
            "deployments",
            json={"model": ref, **options},  # type: ignore[no-any-return]
            timeout=timeout + 60,
        )

    def change_deployment(self, verb: str, name: str, *args: Any) -> JSON:
        if verb == "delete":
            return self._call("DELETE", "deployments", name)  # type: ignore[no-any-return]
        body = {"replicas": args[0]} if verb == "scale" else None
        return self._call("POST", "deployments", name, verb, json=body, timeout=300.0)  # type: ignore[no-any-return]

    def predict(self, name: str, input_path: Path, *, version: str | None = None) -> JSON:
        """The server says where the deployment answers; the inputs go there directly, not through the server."""
        return predict_at(self.show_deployment(name), input_path, version)

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
                return self._call("POST", "jobs", json=body, headers={"Idempotency-Key": key})  # type: ignore[no-any-return]
            except BackendUnavailable:
                if attempt + 1 == self.SUBMIT_TRIES:
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def list_jobs(self, *, project: str | None = None, state: str | None = None, limit: int = 100) -> list[JSON]:
        params = {k: v for k, v in {"project": project, "state": state, "limit": limit}.items() if v is not None}
        return self._call("GET", "jobs", params=params)  # type: ignore[no-any-return]

    def show_job(self, job_id: str) -> JSON:
        return self._call("GET", "jobs", job_id)  # type: ignore[no-any-return]

    def cancel_job(self, job_id: str) -> JSON:
        return self._call("POST", "jobs", job_id, "cancel")  # type: ignore[no-any-return]

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
        return self._call("GET", "quotas")  # type: ignore[no-any-return]

    def set_quota(self, project: str, **limits: float | int | None) -> JSON:
        return self._call("PUT", "quotas", project, json=limits)  # type: ignore[no-any-return]

    # -- master keys (the server's key file and artifact store)
    def key_status(self) -> JSON:
        return self._call("GET", "keys", timeout=self._patient())  # type: ignore[no-any-return]

    def rotate_keys(self, *, new_key: str | None = None, keep_old: bool = False) -> JSON:
        """A key of ours travels in the request body, over the connection the token already trusts."""
        body = {"new_key": new_key, "keep_old": keep_old}
        return self._call("POST", "keys", "rotate", json=body, timeout=self._patient())  # type: ignore[no-any-return]

    @staticmethod
    def _patient() -> Any:
        """Connect as usual, then wait as long as the answer takes: the server reads (status) or re-wraps
        (rotate) every key record of the store before it answers."""
        import httpx

        return httpx.Timeout(30.0, read=None)


_POLICY_FIELDS = ("min_requests", "max_error_rate_increase", "max_latency_ratio", "promote_after")


def predict_at(deployment: JSON, input_path: Path, version: str | None) -> JSON:
    """Send the inputs in ``input_path`` (.npy, .npz or .json) to a deployment's URL; every output comes back."""
    from aidc.serving.deployments import load_inputs
    from aidc.serving.endpoint import EndpointClient

    with EndpointClient(deployment["url"]) as client:
        metadata = client.metadata(deployment["name"], version)
        inputs = load_inputs(input_path, metadata)
        answered, outputs = client.infer_all(deployment["name"], inputs, version=version)
    return {"deployment": deployment["name"], "model_version": answered, "outputs": outputs}
