"""Platform: the composition root — settings → metadata store, artifact store, security and the services over them.

It only wires: every service gets its dependencies in its constructor, and nothing below the entry points (the CLI,
the API, a job's process) sees a Platform. Stores open on first use, so `aidc doctor` can report a store it cannot
open and `import aidc` stays cheap.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from aidc.settings import Settings

if TYPE_CHECKING:
    from aidc.facility.model import Facility
    from aidc.security.oidc import OidcVerifier
    from aidc.security.service import Security
    from aidc.services.alerts import AlertService
    from aidc.services.deployments import DeploymentService
    from aidc.services.energy import EnergyService
    from aidc.services.guard import Guard
    from aidc.services.job_stores import JobStores
    from aidc.services.jobs import Jobs
    from aidc.services.keys import Keys
    from aidc.services.nodes import Nodes
    from aidc.services.records import Records
    from aidc.services.runs import Runs
    from aidc.serving.deployments import Deployments
    from aidc.store.artifacts import ArtifactStore
    from aidc.store.metadata import MetadataStore


class Platform:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    # -- stores
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

    # -- security
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

    @cached_property
    def oidc(self) -> OidcVerifier | None:
        """The OIDC verifier when one is configured; kept for the platform's life (its JWKS cache lives in it)."""
        from aidc.security.oidc import verifier

        return verifier(self.settings)

    @cached_property
    def guard(self) -> Guard:
        from aidc.services.guard import Guard

        return Guard(self.security)

    # -- services
    @cached_property
    def serving(self) -> Deployments:
        """The serving cluster's deployments (Ray starts when one is made or changed)."""
        from aidc.serving.deployments import Deployments

        return Deployments(self.metadata, self.artifacts, self.settings)

    @cached_property
    def runs(self) -> Runs:
        from aidc.services.runs import Runs

        return Runs(
            self.metadata,
            self.artifacts,
            self.guard,
            self.settings,
            serving=lambda: self.serving,
            energy=lambda: self.energy,
            collector=self._local_collector,
            nodes=lambda: self.nodes,
        )

    @cached_property
    def records(self) -> Records:
        from aidc.services.records import Records

        return Records(self.metadata, self.guard, energy=lambda: self.energy)

    @cached_property
    def deployments(self) -> DeploymentService:
        from aidc.services.deployments import DeploymentService

        return DeploymentService(self.metadata, self.records, self.guard, serving=lambda: self.serving)

    @cached_property
    def jobs(self) -> Jobs:
        """The server's job queue: submit, list, cancel, logs, quotas (the scheduler runs in `aidc server`)."""
        from aidc.services.jobs import Jobs

        return Jobs(self.metadata, self.guard, self.settings.home)

    @cached_property
    def job_stores(self) -> JobStores:
        """What a job's process reads and writes, through the API with its own credential, in its project only."""
        from aidc.services.job_stores import JobStores

        return JobStores(
            self.metadata,
            self.artifacts,
            self.security,
            self.runs.data_roots,
            node_failed=lambda node, reason, run_id: self.nodes.record_failure(node, reason, run_id=run_id),
        )

    @cached_property
    def keys(self) -> Keys:
        from aidc.services.keys import Keys

        return Keys(self.settings, self.artifacts, self.guard)

    @cached_property
    def facility(self) -> Facility | None:
        """The facility spec the server runs (AIDC_FACILITY / --facility), checked like `aidc check` reads it."""
        if not self.settings.facility:
            return None
        from aidc.facility.loader import load_facility

        return load_facility(self.settings.facility)

    def _local_collector(self) -> Any:
        from aidc.monitoring.collector import local_collector

        return local_collector(self.metadata, self.settings, self.facility)

    @cached_property
    def nodes(self) -> Nodes:
        """The node inventory reconciled with the spec, live telemetry, cordon and drain."""
        from aidc.services.nodes import Nodes

        return Nodes(self.metadata, self.guard, lambda: self.facility, self.settings)

    @cached_property
    def energy(self) -> EnergyService:
        """Energy and carbon per job, run and project; ISO/IEC 30134 KPIs over a period."""
        from aidc.services.energy import EnergyService

        return EnergyService(
            self.metadata, self.guard, lambda: self.facility, self.settings, inventory=lambda: self.nodes.inventory()
        )

    @cached_property
    def alerts(self) -> AlertService:
        """The data center's alerts and silences, and the rules as a Prometheus rule file."""
        from aidc.services.alerts import AlertService

        return AlertService(self.metadata, self.guard, lambda: self.facility, self.settings)

    def close(self) -> None:
        if "metadata" in self.__dict__:
            self.metadata.close()
