"""The verbs users call — runs, records, deployments, jobs, keys — each over explicit dependencies and one guard.

Each service takes what it depends on in its constructor (stores, compute, security, settings) and every verb takes
the caller's ``Access`` first: the guard (services/guard.py) limits it to its projects and writes the audit entry.
The composition root (aidc.platform) builds them; the clients, the API and the CLI call them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aidc.security.oidc import OidcVerifier
    from aidc.security.service import Security
    from aidc.services.alerts import AlertService
    from aidc.services.deployments import DeploymentService
    from aidc.services.energy import EnergyService
    from aidc.services.job_stores import JobStores
    from aidc.services.jobs import Jobs
    from aidc.services.keys import Keys
    from aidc.services.nodes import Nodes
    from aidc.services.records import Records
    from aidc.services.runs import Runs
    from aidc.settings import Settings
    from aidc.store.artifacts import ArtifactStore
    from aidc.store.metadata import MetadataStore


class Services(Protocol):
    """What the clients and the API are given: every service, opened on first use."""

    @property
    def settings(self) -> Settings: ...
    @property
    def metadata(self) -> MetadataStore: ...
    @property
    def artifacts(self) -> ArtifactStore: ...
    @property
    def security(self) -> Security: ...
    @property
    def oidc(self) -> OidcVerifier | None: ...
    @property
    def runs(self) -> Runs: ...
    @property
    def records(self) -> Records: ...
    @property
    def deployments(self) -> DeploymentService: ...
    @property
    def jobs(self) -> Jobs: ...
    @property
    def job_stores(self) -> JobStores: ...
    @property
    def keys(self) -> Keys: ...
    @property
    def nodes(self) -> Nodes: ...
    @property
    def energy(self) -> EnergyService: ...
    @property
    def alerts(self) -> AlertService: ...
    def close(self) -> None: ...


__all__ = ["Services"]
