"""The metadata store's change feed, on SQLite and PostgreSQL: its token stays while nobody writes and moves when
anyone does — another process's store on the same database, or this process — and it vouches for nothing while
it cannot see changes. The API's read cache hands out kept answers on the strength of it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tests.pace import HANG_S

from aidc.security.sql import SqlSecurityStore
from aidc.store.metadata.changes import RECORD_TABLES, SECURITY_TABLES, WATCHED, ChangeFeed
from aidc.store.metadata.sql import SqlMetadataStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'aidc.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture()
def stores(url: str) -> Iterator[tuple[SqlMetadataStore, SqlMetadataStore, ChangeFeed]]:
    """(this process's store, another writer's store on the same database, this store's feed, listening)."""
    mine, theirs = SqlMetadataStore(url), SqlMetadataStore(url)
    feed = mine.change_feed()
    assert _eventually(lambda: feed.token(WATCHED) is not None), "the feed never started watching"
    yield mine, theirs, feed
    feed.close()
    mine.close()
    theirs.close()


def _eventually(check: Any, timeout: float = 60.0) -> bool:
    """PostgreSQL's notifications arrive after the writer's commit: a moment later, not at once. (The bound only
    fails a feed that never sees the change; a busy machine just takes longer.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return bool(check())


SENTINEL_TABLE = "pipeline_runs"
_sentinels = iter(range(1_000_000))


def _settled(feed: ChangeFeed, writer: SqlMetadataStore) -> None:
    """Wait until the feed has seen every commit made before this call, by anyone: a writer the feed does not count
    by itself (another process's, in effect) creates a run, and its notification comes after theirs (PostgreSQL
    delivers notifications in commit order). After it, "nothing moved" is evidence, not a guess about how long a
    notification takes."""
    before = feed.token([SENTINEL_TABLE])
    writer.create_run(f"r-sentinel-{next(_sentinels)}", "p", {}, None)
    assert _eventually(lambda: feed.token([SENTINEL_TABLE]) != before), "the feed never saw the sentinel write"


def _all_but_sentinel(tables: tuple[str, ...]) -> list[str]:
    return [t for t in tables if t != SENTINEL_TABLE]


def test_token_stays_while_nobody_writes(stores: tuple[SqlMetadataStore, SqlMetadataStore, ChangeFeed]) -> None:
    mine, theirs, feed = stores
    before = feed.token(WATCHED)
    mine.list_runs_json()  # reads change nothing
    assert feed.token(WATCHED) == before  # (this process's commits move the token as they happen)
    watched = _all_but_sentinel(WATCHED)
    before = feed.token(watched)
    _settled(feed, theirs)  # (and no notification of them is on its way)
    assert feed.token(watched) == before


# A second aidc process on the same database (a job's process, another server) writing a run.
OTHER_PROCESS = """
import sys
from aidc.store.metadata.sql import SqlMetadataStore

store = SqlMetadataStore(sys.argv[1])
store.create_run("r-elsewhere", "p", {}, None)
store.close()
"""


def test_another_processs_commit_moves_the_token(
    stores: tuple[SqlMetadataStore, SqlMetadataStore, ChangeFeed], url: str
) -> None:
    mine, _, feed = stores
    before = feed.token(["pipeline_runs"])
    subprocess.run([sys.executable, "-c", OTHER_PROCESS, url], check=True, timeout=HANG_S)
    assert _eventually(lambda: feed.token(["pipeline_runs"]) != before)
    assert mine.get_run("r-elsewhere").pipeline == "p"


def test_every_watched_table_is_seen(stores: tuple[SqlMetadataStore, SqlMetadataStore, ChangeFeed]) -> None:
    """A write to each watched table moves the token for that table (on PostgreSQL: each has its trigger)."""
    _, theirs, feed = stores
    run = theirs.create_run("r-tables", "p", {}, None)
    theirs.add_artifact("sha256:" + "a" * 64, 1, "dataset", "d", "file:///x", run_id=run.id)
    writes = {
        "pipeline_runs": lambda: theirs.finish_run(run.id, "succeeded"),
        "stage_runs": lambda: theirs.start_stage(run.id, "train", "train", cache_key=None, log_path=None),
        "metrics": lambda: theirs.add_metrics(run.id, "train", [("loss", 1, 0.5)]),
        "artifacts": lambda: theirs.add_artifact("sha256:" + "b" * 64, 1, "model", "m", "file:///y", run_id=run.id),
        "model_versions": lambda: theirs.register_model_version(
            "m", onnx_digest=None, checkpoint_digest=None, run_id=run.id, dataset_version_id=None, metrics={}
        ),
        "datasets": lambda: theirs.register_dataset_version(
            "d", "sha256:" + "a" * 64, schema={}, stats={}, class_balance={}, fingerprint="f", run_id=run.id
        ),
        "dataset_versions": lambda: theirs.register_dataset_version(
            "d", "sha256:" + "a" * 64, schema={}, stats={}, class_balance={}, fingerprint="g", run_id=run.id
        ),
    }
    assert set(writes) == set(RECORD_TABLES)
    for table, write in writes.items():
        before = feed.token([table])
        write()
        assert _eventually(lambda: feed.token([table]) != before), f"a write to {table} went unseen"


def test_security_changes_that_alter_a_token_are_seen_and_its_last_use_is_not(
    stores: tuple[SqlMetadataStore, SqlMetadataStore, ChangeFeed],
) -> None:
    """What the server's memory of verified tokens goes by: revocation, disabling and role changes move the token
    for the security tables; the once-a-minute record of a token's last use, and audit entries, do not."""
    _, theirs, feed = stores
    security = SqlSecurityStore(theirs.url)
    try:
        security.create_principal("rita", "user")
        security.add_token("tok1", "rita", "t", "hash", ["*"], None)
        changes = {
            "grant": lambda: security.grant("rita", "viewer", "*"),
            "revoke a role": lambda: security.revoke("rita", "viewer", "*"),
            "revoke the token": lambda: security.revoke_token("tok1", datetime.now(UTC)),
            "disable": lambda: security.set_disabled("rita", True),
        }
        for what, change in changes.items():
            before = feed.token(SECURITY_TABLES)
            change()
            assert _eventually(lambda: feed.token(SECURITY_TABLES) != before), f"{what} went unseen"
        records = _all_but_sentinel(RECORD_TABLES)
        before, before_records = feed.token(SECURITY_TABLES), feed.token(records)
        security.touch_token("tok1", datetime.now(UTC))
        security.append_audit(
            at=datetime.now(UTC),
            actor="rita",
            action="x",
            target="y",
            project=None,
            source="test",
            result="ok",
            details={},
        )
        _settled(feed, theirs)  # a notification of either, had there been one, came before the sentinel's
        assert (feed.token(SECURITY_TABLES), feed.token(records)) == (before, before_records)
    finally:
        security.close()


def test_own_commit_moves_the_token_at_once(stores: tuple[SqlMetadataStore, SqlMetadataStore, ChangeFeed]) -> None:
    """A client that wrote through this server reads its write back: no waiting for a notification."""
    mine, _, feed = stores
    before = feed.token(["model_versions"])
    mine.create_run("r-here", "p", {}, None)
    mine.register_model_version(
        "here", onnx_digest=None, checkpoint_digest=None, run_id="r-here", dataset_version_id=None, metrics={}
    )
    assert feed.token(["model_versions"]) != before


@pytest.mark.postgres
def test_own_commits_count_before_any_notification(postgres_url: str) -> None:
    """PostgreSQL only: this process's commits move the token as they happen, not when their notification comes
    back — seen here with SQL text no trigger fires for (which tables it wrote is unknown: all of them count). Its
    reads, which commit too (the ORM's sessions), and its writes to unwatched tables move nothing."""
    store = SqlMetadataStore(postgres_url)
    security = SqlSecurityStore(postgres_url)
    elsewhere = SqlMetadataStore(postgres_url)  # another process's writes, in effect: this feed does not count them
    feed = store.change_feed()
    feed.watch(security.engine)
    watched = _all_but_sentinel(WATCHED)
    try:
        assert _eventually(lambda: feed.token(WATCHED) is not None)
        store.create_run("r-read", "p", {}, None)
        _settled(feed, elsewhere)  # the create's own notification is in
        before = feed.token(watched)
        store.get_run("r-read")
        security.append_audit(
            at=datetime.now(UTC),
            actor="rita",
            action="x",
            target="y",
            project=None,
            source="test",
            result="ok",
            details={},
        )
        security.get_token("nope")
        assert feed.token(watched) == before  # (this process's commits move the token as they happen)
        _settled(feed, elsewhere)  # (and no notification of them is on its way)
        assert feed.token(watched) == before
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM project_quotas WHERE project = 'nobody'"))
        assert feed.token(watched) != before
    finally:
        feed.close()
        elsewhere.close()
        security.close()
        store.close()


@pytest.mark.postgres
def test_no_token_while_the_listener_is_cut_off(postgres_url: str) -> None:
    """PostgreSQL only: a change made while the feed's connection is down would be missed, so there is no token
    until it is back, and then a new one."""
    store = SqlMetadataStore(postgres_url)
    feed = store.change_feed()
    try:
        assert _eventually(lambda: feed.token(WATCHED) is not None)
        before = feed.token(WATCHED)
        with store.engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
            )
        assert _eventually(lambda: feed.token(WATCHED) is None)
        assert _eventually(lambda: feed.token(WATCHED) is not None)
        assert feed.token(WATCHED) != before
    finally:
        feed.close()
        store.close()
