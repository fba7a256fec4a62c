"""Platform: the composition root — settings → metadata store, artifact store and compute, and the verbs on them.

The CLI (and later the API) call one Platform method per command and render what it returns.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidc.errors import InvalidInput
from aidc.settings import Settings

if TYPE_CHECKING:
    from aidc.pipeline.runner import RunObserver, RunResult
    from aidc.security.roles import Access
    from aidc.store.artifacts import ArtifactStore
    from aidc.store.metadata import MetadataStore
    from aidc.store.metadata.records import DatasetVersion, LineageEdge, ModelVersion, PipelineRun


class Platform:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    @cached_property
    def metadata(self) -> MetadataStore:
        from aidc.store.metadata import open_metadata_store

        self.settings.make_home()
        return open_metadata_store(self.settings.metadata_url)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from aidc.security.keys import artifact_codec
        from aidc.store.artifacts import open_artifact_store

        # The codec encrypts per settings.encryption and reads encrypted artifacts (docs/control-plane.md).
        return open_artifact_store(
            self.settings.artifact_url,
            s3_endpoint_url=self.settings.s3_endpoint_url or None,
            codec=artifact_codec(self.settings),
        )

    def close(self) -> None:
        if "metadata" in self.__dict__:
            self.metadata.close()

    # -- runs
    def run_pipeline(
        self,
        path: str | Path | None,
        *,
        resume: str | None = None,
        force: bool = False,
        serve: bool = False,
        observer: RunObserver | None = None,
    ) -> RunResult:
        """Run (or resume) a pipeline to its end; raises StageFailed/GateFailed when a stage fails."""
        from aidc.errors import AidcError
        from aidc.pipeline.runner import PipelineRunner

        target = f"run {resume}" if resume else f"pipeline {path}"
        access = self.local_access()
        try:
            result = PipelineRunner(self, observer=observer).run(path, resume=resume, force=force, serve=serve)
        except AidcError as exc:  # a run is a state change: audited whether it succeeds or not
            self.security.record(
                access,
                "runs.run",
                target,
                result="failed",
                error=exc.code,
                run_id=getattr(exc, "run_id", None),
                stage=getattr(exc, "stage", None),
            )
            raise
        models = [
            o["model"]["ref"]
            for o in result.outputs.values()
            if isinstance(o.get("model"), dict) and "ref" in o["model"]
        ]
        self.security.record(
            access,
            "runs.run",
            target,
            run_id=result.run_id,
            status=result.status,
            models=models,
            serving=[d["url"] for d in result.serving],
        )
        return result

    def list_runs(
        self, *, pipeline: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[PipelineRun]:
        return self.metadata.list_runs(pipeline=pipeline, status=status, limit=limit)

    def run_details(self, run_id: str) -> dict[str, Any]:
        """A run with its stages, metrics and artifacts, JSON-ready (`aidc runs show`); a unique prefix of the id works."""
        return self.metadata.run_details_json(run_id)

    def write_run_report(self, run_id: str, dest: Path | None = None) -> Path:
        """Render the run's self-contained HTML report (default: $AIDC_HOME/runs/RUN/report.html)."""
        from aidc.report.run_report import write_run_report

        run_id = self.metadata.get_run(run_id).id
        dest = dest or self.settings.home / "runs" / run_id / "report.html"
        path = write_run_report(self.metadata, run_id, dest)
        self.metadata.set_run_report(run_id, str(path))
        return path

    # -- models and datasets
    def list_models(self, name: str | None = None) -> list[ModelVersion]:
        return self.metadata.list_model_versions(name)

    def get_model(self, ref: str) -> ModelVersion:
        """``NAME`` (latest version) or ``NAME:VERSION``."""
        name, _, version = ref.partition(":")
        if version and not version.isdigit():
            raise InvalidInput(
                f"model reference {ref!r} has a non-numeric version",
                hint="write NAME or NAME:VERSION, e.g. digits-cnn:3",
            )
        return self.metadata.get_model_version(name, int(version) if version else None)

    def model_lineage(self, model: ModelVersion) -> list[LineageEdge]:
        return list(self.metadata.iter_all_lineage("model_version", str(model.id)))

    def list_datasets(self, name: str | None = None) -> list[DatasetVersion]:
        return self.metadata.list_dataset_versions(name)

    # -- diagnostics
    def doctor(self) -> list[dict[str, Any]]:
        """What a newcomer runs first: Python, torch, Ray, GPU, stores, disk — each check ok/warn/fail."""
        from aidc.diagnostics import run_checks

        return run_checks(self)

    # -- deployments
    if TYPE_CHECKING:
        from aidc.serving.deployments import Deployments

    @cached_property
    def serving(self) -> Deployments:
        from aidc.serving.deployments import Deployments

        return Deployments(self.metadata, self.artifacts, self.settings)

    def deploy(
        self, ref: str, *, access: Access | None = None, project: str | None = None, **options: Any
    ) -> dict[str, Any]:
        """Serve model ``NAME[:VERSION]`` (or canary it into its deployment); options as Deployments.deploy.
        ``access``: who asks (audited; default this CLI on the store), ``project``: where the audit files it."""
        plain = {k: v for k, v in options.items() if isinstance(v, (str, int, float, type(None)))}
        with self.security.audited(
            access or self.local_access(), "deployments.deploy", ref, project=project, **plain
        ) as details:
            deployed = self.serving.deploy(self.get_model(ref), project=project, **options)
            details.update(deployment=deployed["name"], url=deployed["url"])
        return deployed

    def list_deployments(self, *, include_stopped: bool = False) -> list[dict[str, Any]]:
        return self.serving.list(include_stopped=include_stopped)

    def deployment_details(self, name: str) -> dict[str, Any]:
        return self.serving.show(name)

    def scale_deployment(
        self, name: str, replicas: int, *, access: Access | None = None, project: str | None = None
    ) -> dict[str, Any]:
        with self.security.audited(
            access or self.local_access(), "deployments.scale", name, project=project, replicas=replicas
        ):
            return self.serving.scale(name, replicas)

    def promote_deployment(
        self, name: str, *, access: Access | None = None, project: str | None = None
    ) -> dict[str, Any]:
        with self.security.audited(access or self.local_access(), "deployments.promote", name, project=project):
            return self.serving.promote(name)

    def rollback_deployment(
        self, name: str, *, access: Access | None = None, project: str | None = None
    ) -> dict[str, Any]:
        with self.security.audited(access or self.local_access(), "deployments.rollback", name, project=project):
            return self.serving.rollback(name)

    def delete_deployment(
        self, name: str, *, access: Access | None = None, project: str | None = None
    ) -> dict[str, Any]:
        with self.security.audited(access or self.local_access(), "deployments.delete", name, project=project):
            return self.serving.delete(name)

    def predict(self, name: str, input_path: str | Path, *, version: str | None = None) -> dict[str, Any]:
        return self.serving.predict(name, Path(input_path), version=version)

    # -- security
    if TYPE_CHECKING:
        from aidc.security.scope import ProjectScope
        from aidc.security.service import Security

    @cached_property
    def security(self) -> Security:
        """Identities, tokens, projects and the audit chain, in the metadata store's database."""
        from aidc.security.service import Security
        from aidc.security.sql import SqlSecurityStore

        self.settings.make_home()
        return Security(
            SqlSecurityStore(self.settings.metadata_url),
            token_ttl_days=self.settings.token_ttl_days,
            retention_days=self.settings.audit_retention_days,
            auth_cache_s=self.settings.auth_cache_seconds,
            audit_sink=self.settings.audit_sink,
            audit_key=self.settings.audit_hmac_key.get_secret_value(),
        )

    def scoped(self, access: Access) -> ProjectScope:
        """The read verbs above as ``access`` sees them: only its projects' runs, datasets, models, deployments."""
        from aidc.security.scope import ProjectScope

        return ProjectScope(self, access)

    def local_access(self) -> Access:
        """The CLI acting on this store directly (no server): audited as ``local:<os user>`` from ``cli@<host>``."""
        import getpass
        import socket

        from aidc.security.roles import Access

        return Access.local(getpass.getuser(), f"cli@{socket.gethostname()}")

    # -- jobs
    if TYPE_CHECKING:
        from aidc.jobs.service import Jobs

    @cached_property
    def jobs(self) -> Jobs:
        """The server's job queue: submit, list, cancel, logs, quotas (the scheduler runs in `aidc server`)."""
        from aidc.jobs.service import Jobs

        return Jobs(self)
