"""Canary verdicts: what makes a canary roll back, wait or get promoted."""

from __future__ import annotations

import pytest

from aidc.errors import InvalidInput
from aidc.serving.canary import CanaryPolicy, VersionStats, judge

POLICY = CanaryPolicy(min_requests=50)
HEALTHY = VersionStats(requests=500, errors=0, p95_ms=4.0)


def test_no_verdict_before_enough_canary_requests() -> None:
    verdict = judge(POLICY, HEALTHY, VersionStats(requests=49, errors=49, p95_ms=900.0))
    assert verdict.action == "wait" and "49 of the 50" in verdict.reason


def test_a_canary_erring_more_than_stable_is_rolled_back() -> None:
    verdict = judge(POLICY, VersionStats(500, 5, 4.0), VersionStats(100, 10, 4.0))  # 1% vs 10%
    assert verdict.action == "rollback"
    assert verdict.reason == "canary error rate 10.0% over 100 requests vs stable 1.0% (allowed up to 3.0%)"


def test_errors_both_versions_share_do_not_count_against_the_canary() -> None:
    # clients sending bad requests get 400 from either version; only what the canary adds matters
    assert judge(POLICY, VersionStats(500, 100, 4.0), VersionStats(100, 21, 4.0)).action == "wait"


def test_a_slow_canary_is_rolled_back_but_jitter_is_not() -> None:
    assert judge(POLICY, HEALTHY, VersionStats(100, 0, 13.5)).action == "rollback"  # > 4 × 2 + 5 ms
    assert judge(POLICY, HEALTHY, VersionStats(100, 0, 12.5)).action == "wait"
    fast = VersionStats(500, 0, 0.3)
    assert judge(POLICY, fast, VersionStats(100, 0, 2.0)).action == "wait"  # 6× slower, but by 1.7 ms


def test_a_healthy_canary_is_promoted_only_when_asked_to() -> None:
    canary = VersionStats(1000, 0, 4.0)
    assert judge(POLICY, HEALTHY, canary).action == "wait"
    verdict = judge(CanaryPolicy(min_requests=50, promote_after=1000), HEALTHY, canary)
    assert verdict.action == "promote" and "1000 requests" in verdict.reason


def test_policy_round_trips_and_rejects_nonsense() -> None:
    policy = CanaryPolicy(min_requests=20, promote_after=200)
    assert CanaryPolicy.from_dict(policy.to_dict() | {"unknown": 1}) == policy
    assert CanaryPolicy.from_dict(None) == CanaryPolicy()
    with pytest.raises(InvalidInput):
        CanaryPolicy(max_latency_ratio=0.5)
