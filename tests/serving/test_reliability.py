"""Reliability under load, with real processes: 32 clients through canary, promote and rollback; a replica killed mid-load."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.pace import wait_until

from aidc.security.roles import local_access
from aidc.serving.protocol import encode_infer_request

pytestmark = pytest.mark.slow

CLIENTS = 32


@dataclass
class Answer:
    started: float
    ended: float
    status: int  # 0: no HTTP answer at all (connection reset, timeout)
    version: str | None
    detail: str = ""


@dataclass
class Load:
    """CLIENTS closed-loop clients posting one infer request after another until stopped."""

    url: str
    model: str
    batch: np.ndarray
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    async def _client(self, http: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = await http.post(f"/v2/models/{self.model}/infer", content=body, headers=headers)
                version = response.json().get("model_version") if response.status_code == 200 else None
                self.answers.append(
                    Answer(
                        started,
                        time.monotonic(),
                        response.status_code,
                        version,
                        response.text[:200] if response.status_code != 200 else "",
                    )
                )
            except httpx.HTTPError as exc:
                self.answers.append(Answer(started, time.monotonic(), 0, None, repr(exc)))

    async def _main(self) -> None:
        body, headers = encode_infer_request({"input": self.batch})
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=self.url, timeout=60, limits=limits) as http:
            await asyncio.gather(*(self._client(http, body, headers) for _ in range(CLIENTS)))

    def between(self, start: float, end: float = float("inf")) -> list[Answer]:
        return [a for a in list(self.answers) if a.started >= start and a.ended <= end]

    def answered_since(self, start: float, n: int = CLIENTS, versions: set[str] | None = None) -> None:
        """Wait until ``n`` requests sent after ``start`` have their answers (and, given ``versions``, until each
        of them has answered one): a window is judged by what was answered in it, not by how long it lasted."""

        def enough() -> bool:
            since = self.between(start)
            return len(since) >= n and (versions is None or versions <= {a.version for a in since})

        wait_until(enough, f"{n} answers{f' from versions {sorted(versions)}' if versions else ''} under load")


@pytest.fixture(scope="module")
def deployment(platform, register, onnx_path: Path) -> Iterator[dict]:
    version = register("steady", onnx_path)
    yield platform.deployments.deploy(local_access(), version.ref, replicas=2)
    platform.deployments.change(local_access(), "delete", "steady")


def test_32_clients_through_canary_promote_and_rollback_see_no_5xx(
    platform, register, deployment: dict, onnx_path: Path, batch: np.ndarray
) -> None:
    v1 = deployment["stable"]
    v2 = register("steady", onnx_path)  # the same weights, registered again: a new version to roll out
    steps: dict[str, float] = {}
    started = time.monotonic()
    with Load(deployment["url"], "steady", batch) as load:
        load.answered_since(started)
        platform.deployments.deploy(local_access(), v2.ref, canary=50)
        steps["canary"] = time.monotonic()
        load.answered_since(steps["canary"], versions={"1", "2"})
        steps["promote"] = time.monotonic()
        assert platform.deployments.change(local_access(), "promote", "steady")["stable"] == v2.ref
        steps["promoted"] = time.monotonic()
        load.answered_since(steps["promoted"])
        steps["rollback"] = time.monotonic()
        d = platform.deployments.change(local_access(), "rollback", "steady")
        assert (d["stable"], d["previous"]) == (v1, v2.ref)
        steps["rolled_back"] = time.monotonic()
        load.answered_since(steps["rolled_back"])
        # and the load goes on after the rollback for eight answers a client (a count, not a clock: on a busy machine
        # they come more slowly, never fewer)
        load.answered_since(steps["rolled_back"], n=8 * CLIENTS)
    answers = load.answers
    assert len(answers) > CLIENTS
    failed = [a for a in answers if a.status == 0 or a.status >= 500]
    assert failed == [], f"{len(failed)} of {len(answers)} requests failed, first: {failed[:3]}"
    assert Counter(a.status for a in answers) == {200: len(answers)}
    # Each change had moved the traffic by the time the command returned.
    assert {a.version for a in load.between(steps["canary"], steps["promote"])} == {"1", "2"}
    assert {a.version for a in load.between(steps["promoted"], steps["rollback"])} == {"2"}
    assert {a.version for a in load.between(steps["rolled_back"])} == {"1"}


def test_a_replica_killed_mid_load_fails_only_its_requests_and_is_replaced(
    platform, deployment: dict, batch: np.ndarray
) -> None:
    before = platform.deployments.show(local_access(), "steady")["replica_list"]
    victim = before[0]
    replaced: list[dict] = []

    def replacement() -> bool:
        replicas = platform.deployments.show(local_access(), "steady")["replica_list"]
        replaced[:] = [r for r in replicas if r["slot"] == victim["slot"] and r["version"] == victim["version"]]
        return bool(replaced) and replaced[0]["status"] == "ready" and replaced[0]["pid"] != victim["pid"]

    with Load(deployment["url"], "steady", batch) as load:
        load.answered_since(0.0)  # the load is flowing through both replicas
        killed_at = time.monotonic()
        os.kill(victim["pid"], signal.SIGKILL)
        wait_until(replacement, "the killed replica's replacement", every=0.25)
        replaced_at = time.monotonic()
        load.answered_since(replaced_at)
    failed = [a for a in load.answers if a.status == 0 or a.status >= 500]
    # Only requests the dead replica held can fail: they started before the kill, and there are at most
    # as many as there are clients. Everything sent after it went to the other replica.
    assert len(failed) <= CLIENTS
    assert all(a.started <= killed_at for a in failed), failed
    assert all(a.status in (0, 502) for a in failed), failed
    assert any(a.status == 200 for a in load.between(killed_at, replaced_at))  # the rest continued
    assert all(a.status == 200 for a in load.between(replaced_at))
    [restarted] = replaced
    assert restarted["restarts"] == 1 and "exited" in restarted["message"]
    events = platform.deployments.show(local_access(), "steady")["events"]
    assert [e for e in events if e["kind"] == "replica_restarted"]
