"""LocalClient: the Client verbs on this machine's store, through the services, as ``local:<os user>`` — opening the
store is admin power."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aidc.client.base import JSON
from aidc.security.roles import Access, local_access
from aidc.security.service import Security
from aidc.services import Services

# The canary policy's fields among `aidc deploy`'s options (DeployRequest's fields).
POLICY_FIELDS = ("min_requests", "max_error_rate_increase", "max_latency_ratio", "promote_after")


class LocalClient:
    def __init__(self, services: Services, access: Access | None = None) -> None:
        self.services = services
        self.access = access or local_access()
        self.where = f"local store {services.settings.metadata_url.split('@')[-1]}"

    def close(self) -> None:
        self.services.close()

    @property
    def _security(self) -> Security:
        """Opened on first use: `aidc doctor` must report a store it cannot open, not fail opening it."""
        return self.services.security

    # -- identity, tokens, users, projects
    def whoami(self) -> JSON:
        return self.access.to_json()

    def list_tokens(self, user: str | None = None) -> list[JSON]:
        return [t.to_json() for t in self._security.list_tokens(user)]

    def create_token(
        self, name: str, *, user: str | None = None, scopes: list[str] | None = None, expires_days: int | None = None
    ) -> JSON:
        made: JSON = self._security.create_token(
            self.access, name=name, principal=user, scopes=scopes, expires_days=expires_days
        )
        return made

    def revoke_token(self, token_id: str, *, user: str | None = None) -> JSON:
        return dict(self._security.revoke_token(self.access, token_id, owner=user).to_json())

    def list_principals(self) -> list[JSON]:
        return [p.to_json() for p in self._security.list_principals()]

    def create_principal(self, name: str, kind: str = "user") -> JSON:
        return dict(self._security.create_principal(self.access, name, kind).to_json())

    def set_disabled(self, name: str, disabled: bool) -> JSON:
        return dict(self._security.set_disabled(self.access, name, disabled).to_json())

    def grant(self, name: str, role: str, project: str) -> JSON:
        return dict(self._security.grant(self.access, name, role, project).to_json())

    def revoke_role(self, name: str, role: str, project: str) -> JSON:
        return dict(self._security.revoke_role(self.access, name, role, project).to_json())

    def list_projects(self) -> list[JSON]:
        return [p.to_json() for p in self._security.list_projects(self.access)]

    def create_project(self, name: str, description: str = "") -> JSON:
        return dict(self._security.create_project(self.access, name, description).to_json())

    def assign(self, project: str, kind: str, id_: str) -> JSON:
        return dict(self._security.assign_project(self.access, kind, id_, project))

    # -- audit
    def audit_list(self, **filters: Any) -> list[JSON]:
        return [e.to_json() for e in self._security.audit_list(**filters)]

    def audit_verify(self) -> JSON:
        return dict(self._security.audit_verify().to_json())

    def audit_export(self) -> Iterator[JSON]:
        return (e.to_json() for e in self._security.audit_export())

    def audit_prune(self) -> JSON | None:
        entry = self._security.prune_audit(self.access)
        return entry.to_json() if entry else None

    # -- runs, models, datasets
    def list_runs(self, *, pipeline: str | None = None, status: str | None = None, limit: int = 50) -> list[JSON]:
        return self.services.runs.list_runs(self.access, pipeline=pipeline, status=status, limit=limit)

    def run_details(self, run_id: str) -> JSON:
        return self.services.runs.run_details(self.access, run_id)

    def run_report(self, run_id: str, dest: Path | None = None) -> Path:
        return self.services.runs.run_report(self.access, run_id, dest)

    def list_models(self, name: str | None = None) -> list[JSON]:
        return self.services.records.list_models(self.access, name)

    def show_model(self, ref: str, *, project: str | None = None) -> JSON:
        return self.services.records.show_model(self.access, ref, project=project)

    def promote_model(self, ref: str, stage: str, *, project: str | None = None) -> list[JSON]:
        return self.services.records.promote_model(self.access, ref, stage, project=project)

    def list_datasets(self, name: str | None = None) -> list[JSON]:
        return self.services.records.list_datasets(self.access, name)

    # -- deployments
    def list_deployments(self, *, include_stopped: bool = False) -> list[JSON]:
        return self.services.deployments.list(self.access, include_stopped=include_stopped)

    def show_deployment(self, name: str, *, project: str | None = None) -> JSON:
        return self.services.deployments.show(self.access, name, project=project)

    def deploy(self, ref: str, **options: Any) -> JSON:
        """Options as `aidc deploy` (DeployRequest's fields)."""
        from aidc.serving.canary import CanaryPolicy

        policy = CanaryPolicy(**{k: options.pop(k) for k in POLICY_FIELDS if k in options})
        return self.services.deployments.deploy(self.access, ref, policy=policy, **options)

    def change_deployment(self, verb: str, name: str, *args: Any, project: str | None = None) -> JSON:
        """``verb``: scale (args: replicas), promote, rollback or delete."""
        return self.services.deployments.change(self.access, verb, name, *args, project=project)

    def predict(self, name: str, input_path: Path, *, version: str | None = None, project: str | None = None) -> JSON:
        return self.services.deployments.predict(self.access, name, input_path, version=version, project=project)

    def generate(
        self,
        name: str,
        prompt: str,
        *,
        parameters: JSON | None = None,
        version: str | None = None,
        project: str | None = None,
    ) -> JSON:
        return self.services.deployments.generate(
            self.access, name, prompt, parameters=parameters, version=version, project=project
        )

    def doctor(self) -> list[JSON]:
        from aidc.diagnostics import run_checks

        return run_checks(self.services)

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
        job, _ = self.services.jobs.submit(
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
        return self.services.jobs.list_jobs(self.access, project=project, state=state, limit=limit)

    def show_job(self, job_id: str) -> JSON:
        return self.services.jobs.show(self.access, job_id)

    def cancel_job(self, job_id: str) -> JSON:
        return self.services.jobs.cancel(self.access, job_id)

    def job_logs(self, job_id: str, *, follow: bool = False) -> Iterator[str]:
        return self.services.jobs.log_lines(self.access, job_id, follow=follow)

    def list_quotas(self) -> list[JSON]:
        return self.services.jobs.quotas(self.access)

    def set_quota(self, project: str, **limits: float | int | None) -> JSON:
        return self.services.jobs.set_quota(self.access, project, **limits)

    # -- nodes, energy
    def list_nodes(self, *, trend_minutes: int = 0) -> list[JSON]:
        return self.services.nodes.list(self.access, trend_minutes=trend_minutes)

    def show_node(self, name: str) -> JSON:
        return self.services.nodes.show(self.access, name)

    def change_node(self, verb: str, name: str, reason: str = "") -> JSON:
        return self.services.nodes.change(self.access, verb, name, reason)

    def energy_report(self, *, period_days: float = 30.0, project: str | None = None) -> JSON:
        return self.services.energy.report(self.access, period_days=period_days, project=project)

    # -- alerts
    def list_alerts(self, *, state: str | None = None, limit: int = 100) -> list[JSON]:
        return self.services.alerts.list(self.access, state=state, limit=limit)

    def show_alert(self, alert_id: str) -> JSON:
        return self.services.alerts.show(self.access, alert_id)

    def ack_alert(self, alert_id: str) -> JSON:
        return self.services.alerts.ack(self.access, alert_id)

    def list_silences(self, *, include_ended: bool = False) -> list[JSON]:
        return self.services.alerts.silences(self.access, active=not include_ended)

    def silence_alerts(self, matchers: dict[str, str], *, duration_s: float, comment: str = "") -> JSON:
        return self.services.alerts.silence(self.access, matchers, duration_s=duration_s, comment=comment)

    def unsilence(self, silence_id: str) -> JSON:
        return self.services.alerts.unsilence(self.access, silence_id)

    def export_alert_rules(self) -> str:
        return self.services.alerts.prometheus_rules(self.access)

    # -- master keys of artifact encryption (the key file is this host's)
    def key_status(self) -> JSON:
        return self.services.keys.status()

    def rotate_keys(self, *, new_key: str | None = None, keep_old: bool = False) -> JSON:
        return self.services.keys.rotate(self.access, new_key=new_key, keep_old=keep_old)
