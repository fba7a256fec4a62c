"""The server's read cache, as callers see it, on SQLite and PostgreSQL: a repeated read is answered from memory
(``X-Cache: hit``), a write by anyone — another process on the same database, or a request to this server — shows
in the next reads, one project's answer is never another's, and every denied read is still audited."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import fresh_postgres
from tests.pace import HANG_S

from aidc.api import create_app
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings


@dataclass
class Server:
    client: TestClient
    platform: Platform
    url: str
    home: Path
    tokens: dict[str, str]  # "alpha", "beta" (a researcher on that project), "admin"

    def get(self, path: str, who: str = "alpha") -> Any:
        return self.client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {self.tokens[who]}"})


def _serve(home: Path, url: str, **settings: Any) -> Iterator[Server]:
    platform = Platform(Settings(home=home, metadata_url=url, **settings))
    security, local = platform.security, local_access()
    tokens = {}
    for project in ("alpha", "beta"):
        security.create_project(local, project)
        run = platform.metadata.create_run(f"run-{project}", "digits", {}, None)
        security.assign_project(local, "run", run.id, project)
        security.create_principal(local, f"rita-{project}")
        security.grant(local, f"rita-{project}", "researcher", project)
        tokens[project] = security.create_token(local, name=project, principal=f"rita-{project}")["token"]
    security.create_principal(local, "root")
    security.grant(local, "root", "admin", "*")
    tokens["admin"] = security.create_token(local, name="root", principal="root")["token"]
    with TestClient(create_app(platform)) as client:
        yield Server(client, platform, url, home, tokens)
    security.store.close()
    platform.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'aidc.db'}" if request.param == "sqlite" else stack.enter_context(fresh_postgres())
        )
        # (tokens kept 5 minutes: what a change made elsewhere does here is the change feed's doing, not expiry's)
        yield from _serve(tmp_path / "home", url, auth_cache_seconds=300)


def _kept(server: Server, path: str, who: str = "alpha", timeout: float = 120.0) -> Any:
    """Ask until the answer is a kept one (on PostgreSQL the feed starts listening a moment after the app)."""
    deadline = time.monotonic() + timeout
    while True:
        response = server.get(path, who)
        if response.headers.get("X-Cache") == "hit" or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


def _run_ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {run["id"] for run in response.json()}


def _eventually(check: Any, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_repeated_read_is_kept_and_the_same(server: Server) -> None:
    first = _kept(server, "/runs")
    assert first.headers["X-Cache"] == "hit"
    again = server.get("/runs")
    assert again.headers["X-Cache"] == "hit" and again.content == first.content
    assert _run_ids(again) == {"run-alpha"}


def test_another_process_write_shows_in_the_next_reads(server: Server) -> None:
    """A job process writes straight to the store; the server's next answers carry it (SQLite: at once;
    PostgreSQL: once its notification arrives, a moment after the commit)."""
    _kept(server, "/runs")
    _kept(server, "/runs/run-alpha")
    job = Platform(Settings(home=server.home, metadata_url=server.url))
    try:
        run = job.metadata.create_run("run-alpha-2", "digits", {}, None)
        job.security.store.assign_project("run", run.id, "alpha")
        job.metadata.add_metrics("run-alpha", "train", [("loss", 1, 0.25)])
    finally:
        job.security.store.close()
        job.close()
    if server.url.startswith("sqlite"):
        assert _run_ids(server.get("/runs")) == {"run-alpha", "run-alpha-2"}
        assert server.get("/runs/run-alpha").json()["metrics"]
    else:
        assert _eventually(lambda: _run_ids(server.get("/runs")) == {"run-alpha", "run-alpha-2"})
        assert _eventually(lambda: bool(server.get("/runs/run-alpha").json()["metrics"]))


def test_a_write_through_this_server_is_read_back_at_once(server: Server) -> None:
    md = server.platform.metadata
    mv = md.register_model_version(
        "digits",
        onnx_digest=None,
        checkpoint_digest=None,
        run_id="run-alpha",
        dataset_version_id=None,
        metrics={},
        project="alpha",
    )

    def stage_of_it(answer: list[dict[str, object]]) -> object:
        return next(m["stage"] for m in answer if m["id"] == mv.id)

    assert stage_of_it(_kept(server, "/models").json()) == "none"
    promoted = server.client.post(
        f"/api/v1/models/{mv.ref}/promote",
        json={"stage": "production"},
        headers={"Authorization": f"Bearer {server.tokens['alpha']}"},
    )
    assert promoted.status_code == 200, promoted.text
    assert stage_of_it(server.get("/models").json()) == "production"  # no waiting, on either database


def test_callers_of_other_projects_never_get_each_others_answer(server: Server) -> None:
    assert _run_ids(_kept(server, "/runs", "alpha")) == {"run-alpha"}
    beta = server.get("/runs", "beta")
    assert _run_ids(beta) == {"run-beta"}
    assert _run_ids(_kept(server, "/runs", "beta")) == {"run-beta"}
    assert _run_ids(server.get("/runs", "admin")) == {"run-alpha", "run-beta"}
    _kept(server, "/runs/run-alpha", "alpha")
    assert server.get("/runs/run-alpha", "beta").status_code == 404


def test_every_denied_read_is_audited(server: Server) -> None:
    """A read of another project's run is never answered from memory: each one is refused and audited."""
    _kept(server, "/runs/run-alpha", "alpha")
    for _ in range(3):
        assert server.get("/runs/run-beta", "alpha").status_code == 404
    denied = [
        e
        for e in server.platform.security.audit_list(actor="rita-alpha")
        if e.result == "denied" and e.target == "run run-beta"
    ]
    assert len(denied) == 3


def test_with_the_cache_off_every_read_is_fresh(tmp_path: Path) -> None:
    for server in _serve(tmp_path / "home", f"sqlite:///{tmp_path / 'aidc.db'}", read_cache_mb=0):
        for _ in range(3):
            response = server.get("/runs")
            assert _run_ids(response) == {"run-alpha"} and "X-Cache" not in response.headers


def test_a_token_revoked_elsewhere_is_refused_at_the_next_request(server: Server) -> None:
    """`aidc tokens revoke` run on the store (not through this server) takes effect here at once — on PostgreSQL,
    once its notification arrives — though the server keeps verified tokens for 5 minutes."""
    from aidc.security.tokens import token_id_of

    assert server.get("/whoami").status_code == 200
    assert server.get("/whoami").status_code == 200  # (kept)
    # the command itself, in a process of its own on the same store
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIDC_")}
    env |= {"AIDC_HOME": str(server.home), "AIDC_METADATA_URL": server.url}
    token_id = token_id_of(server.tokens["alpha"])
    revoked = subprocess.run(
        [str(Path(sys.executable).with_name("aidc")), "tokens", "revoke", token_id, "--user", "rita-alpha"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert revoked.returncode == 0 and f"revoked token {token_id} of rita-alpha" in revoked.stdout, revoked.stderr
    if server.url.startswith("sqlite"):
        assert server.get("/whoami").status_code == 401
    else:
        assert _eventually(lambda: server.get("/whoami").status_code == 401)
    assert server.get("/whoami", "beta").status_code == 200  # the others' tokens still work


def test_memory_is_bounded_and_concurrent_misses_read_once(tmp_path: Path) -> None:
    """The least recently used answers go once the kept ones hold the budget; requests that miss the same answer
    together wait for one read of it instead of each reading the store."""
    import asyncio

    from aidc.api.read_cache import ENTRY_BYTES, ReadCache
    from aidc.store.metadata.sql import SqlMetadataStore

    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'aidc.db'}")
    cache = ReadCache(store.change_feed(), max_bytes=3 * (1000 + ENTRY_BYTES))
    reads: list[str] = []

    def reader(name: str, delay: float = 0.0) -> Any:
        async def read() -> bytes:
            reads.append(name)
            await asyncio.sleep(delay)
            return name.encode() * (1000 // len(name))

        return read

    async def scenario() -> None:
        for name in ("aaaa", "bbbb", "cccc", "aaaa", "dddd", "aaaa", "bbbb"):
            await cache.answer(name, ["pipeline_runs"], reader(name))
        assert cache.kept_bytes <= cache.max_bytes
        together = await asyncio.gather(
            *(cache.answer("eeee", ["pipeline_runs"], reader("eeee", 0.05)) for _ in range(8))
        )
        assert {body for body, _ in together} == {b"eeee" * 250}

    try:
        asyncio.run(scenario())
    finally:
        cache.feed.close()  # type: ignore[union-attr]
        store.close()
    # a, b, c read; a kept; d pushes b out (a was used since); a kept; b read again; e read once for eight callers
    assert reads == ["aaaa", "bbbb", "cccc", "dddd", "bbbb", "eeee"]
