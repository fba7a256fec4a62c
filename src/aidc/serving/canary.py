"""Canaries: judge a new version against the stable one by error rate and latency, and promote or roll it back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from aidc.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from aidc.store.metadata import MetadataStore
    from aidc.store.metadata.records import Deployment, ModelVersion


@dataclass(frozen=True)
class CanaryPolicy:
    """When a canary is judged, and what it must not do worse than the stable version.

    Errors are every non-2xx answer: a request both versions reject counts against both, so only what the
    canary breaks on its own moves the comparison. Latency is compared at p95 with an absolute slack, so
    sub-millisecond jitter on an idle host never rolls a healthy canary back.
    """

    min_requests: int = 50  # canary requests seen before any verdict
    max_error_rate_increase: float = 0.02  # canary error rate may exceed stable's by this much (absolute)
    max_latency_ratio: float = 2.0  # canary p95 may be this many times stable's p95 ...
    latency_slack_ms: float = 5.0  # ... plus this
    promote_after: int | None = None  # canary requests after which a healthy canary is promoted; None: by hand

    def __post_init__(self) -> None:
        if (
            self.min_requests < 1
            or self.max_error_rate_increase < 0
            or self.max_latency_ratio < 1
            or self.latency_slack_ms < 0
            or (self.promote_after is not None and self.promote_after < 1)
        ):
            raise InvalidInput(
                "canary policy: min_requests ≥ 1, max_error_rate_increase ≥ 0, "
                "max_latency_ratio ≥ 1, latency_slack_ms ≥ 0 and promote_after ≥ 1"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CanaryPolicy:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


@dataclass(frozen=True)
class VersionStats:
    """What the router saw of one version since it last entered the routes."""

    requests: int = 0
    errors: int = 0
    p95_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> VersionStats:
        data = data or {}
        return cls(int(data.get("requests", 0)), int(data.get("errors", 0)), data.get("p95_ms"))


@dataclass(frozen=True)
class Verdict:
    action: str  # wait | promote | rollback
    reason: str


def judge(policy: CanaryPolicy, stable: VersionStats, canary: VersionStats) -> Verdict:
    """The verdict on a canary from what the router saw of both versions."""
    if canary.requests < policy.min_requests:
        return Verdict(
            "wait", f"canary has answered {canary.requests} of the {policy.min_requests} requests needed for a verdict"
        )
    allowed = stable.error_rate + policy.max_error_rate_increase
    if canary.error_rate > allowed:
        return Verdict(
            "rollback",
            f"canary error rate {canary.error_rate:.1%} over {canary.requests} requests "
            f"vs stable {stable.error_rate:.1%} (allowed up to {allowed:.1%})",
        )
    if canary.p95_ms is not None and stable.p95_ms is not None:
        limit = stable.p95_ms * policy.max_latency_ratio + policy.latency_slack_ms
        if canary.p95_ms > limit:
            return Verdict(
                "rollback",
                f"canary p95 latency {canary.p95_ms:.1f} ms vs stable "
                f"{stable.p95_ms:.1f} ms (allowed up to {limit:.1f} ms)",
            )
    if policy.promote_after is not None and canary.requests >= policy.promote_after:
        return Verdict("promote", f"canary stayed within its thresholds for {canary.requests} requests")
    return Verdict("wait", "canary is within its thresholds")


# ------------------------------------------------------------------------------ state transitions
# One transaction each (the record and its event), shared by the CLI and the controller's automatic verdicts.


def canary_replicas(deployment: Deployment) -> int:
    """Replicas the canary version runs: its share of the stable count, at least one."""
    if deployment.canary_model_version_id is None:
        return 0
    return max(1, round(deployment.replicas * deployment.canary_percent / 100))


def start_canary(
    store: MetadataStore, deployment: Deployment, version: ModelVersion, percent: float, policy: CanaryPolicy
) -> Deployment:
    if not 0 < percent < 100:
        raise InvalidInput(f"canary percent must be between 0 and 100 (exclusive), got {percent:g}")
    if deployment.canary_model_version_id is not None:
        raise Conflict(
            f"deployment {deployment.name!r} already has a canary",
            hint=f"promote it or roll it back first: `aidc deployments promote {deployment.name}`",
        )
    if version.id == deployment.model_version_id:
        raise Conflict(f"deployment {deployment.name!r} already serves {version.ref}")
    with store.transaction():
        updated = store.update_deployment(
            deployment.id, canary_model_version_id=version.id, canary_percent=percent, canary_policy=policy.to_dict()
        )
        store.add_deployment_event(
            deployment.id,
            "canary_started",
            f"{version.ref} takes {percent:g}% of traffic",
            {"model_version_id": version.id, "percent": percent, "policy": policy.to_dict()},
        )
    return updated


def promote(
    store: MetadataStore, deployment: Deployment, reason: str, details: dict[str, Any] | None = None
) -> Deployment:
    """The canary becomes the stable version (on every replica); the old stable is what rollback returns to."""
    if deployment.canary_model_version_id is None:
        raise Conflict(
            f"deployment {deployment.name!r} has no canary to promote",
            hint=f"start one with `aidc deploy MODEL:VERSION --name {deployment.name} --canary PCT`",
        )
    ref = store.get_model_version_by_id(deployment.canary_model_version_id).ref
    with store.transaction():
        updated = store.update_deployment(
            deployment.id,
            model_version_id=deployment.canary_model_version_id,
            previous_model_version_id=deployment.model_version_id,
            canary_model_version_id=None,
            canary_percent=0.0,
        )
        store.add_deployment_event(deployment.id, "promoted", f"{ref} is stable ({reason})", details)
    return updated


def roll_back(
    store: MetadataStore, deployment: Deployment, reason: str, details: dict[str, Any] | None = None
) -> Deployment:
    """Drop the canary; without one, return to the version served before the last promotion."""

    def ref(mv_id: int) -> str:
        return store.get_model_version_by_id(mv_id).ref

    with store.transaction():
        if deployment.canary_model_version_id is not None:
            what = f"canary {ref(deployment.canary_model_version_id)} dropped"
            updated = store.update_deployment(deployment.id, canary_model_version_id=None, canary_percent=0.0)
        elif deployment.previous_model_version_id is not None:
            what = f"{ref(deployment.previous_model_version_id)} is stable again"
            updated = store.update_deployment(
                deployment.id,
                model_version_id=deployment.previous_model_version_id,
                previous_model_version_id=deployment.model_version_id,
            )
        else:
            raise Conflict(f"deployment {deployment.name!r} has no canary and no earlier version to roll back to")
        store.add_deployment_event(deployment.id, "rolled_back", f"{what} ({reason})", details)
    return updated
