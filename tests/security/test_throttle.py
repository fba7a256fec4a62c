"""The wrong-secret throttle refuses a key after its limit, never for long, and never remembers without bound."""

from __future__ import annotations

from aidc.security.rejections import RejectionSampler
from aidc.security.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_refused_after_its_limit_and_for_a_bounded_while() -> None:
    clock = Clock()
    throttle = Throttle(limit=10, burst=10, drain_s=6.0, clock=clock)
    for _ in range(10):
        assert throttle.retry_after("k") == 0
        throttle.failed("k")
    assert throttle.retry_after("k") > 0
    for _ in range(10_000):  # an attacker who keeps failing…
        throttle.failed("k")
    assert throttle.retry_after("k") <= 11 * 6.0  # …holds the key for at most a minute past the last failure
    clock.now += 11 * 6.0
    assert throttle.retry_after("k") == 0
    assert throttle.retry_after("other") == 0  # other keys were never touched


def test_ten_a_minute_sustained_is_never_refused() -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(600):
        assert throttle.retry_after("slow") == 0
        throttle.failed("slow")
        clock.now += 6.0


def test_a_spray_of_sources_is_forgotten_not_remembered_without_bound() -> None:
    throttle = Throttle(max_keys=100, clock=Clock())
    for i in range(10_000):
        throttle.failed(f"192.0.2.{i}")
    assert len(throttle._buckets) <= 100


def test_refusals_are_sampled_per_window_and_summed() -> None:
    clock = Clock()
    sampler = RejectionSampler(sample=5, per_action=2, window_s=60, clock=clock)
    written = [sampler.admit("203.0.113.1", "GET /api/v1/runs")[0] for _ in range(1000)]
    assert written[:2] == [True, True] and not any(written[2:])
    clock.now += 61
    write, summary = sampler.admit("203.0.113.1", "GET /api/v1/runs")
    assert write and summary is not None
    assert summary["not_written"] == 998 and summary["top_sources"] == {"203.0.113.1": 998}
