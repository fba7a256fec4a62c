"""SecurityStore contract: SQLite and PostgreSQL must behave the same for identities, tokens, the audit chain."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aidc.errors import Conflict, InvalidInput, NotFound
from aidc.security.audit import GENESIS, PRUNE, verify_chain
from aidc.security.base import SecurityStore
from aidc.security.sql import SqlSecurityStore
from aidc.store.metadata import open_metadata_store

SECURITY_TABLES = "audit_entries, api_tokens, role_bindings, principals, projects"


def _entry(
    store: SecurityStore,
    actor: str = "alice",
    action: str = "token.create",
    at: datetime | None = None,
    result: str = "ok",
) -> object:
    return store.append_audit(
        at=at or datetime.now(UTC),
        actor=actor,
        action=action,
        target="token:1",
        project=None,
        source="10.0.0.1",
        result=result,
        details={"n": 1, "nested": {"b": [1, 2]}},
    )


class SecurityStoreContract:
    @pytest.fixture()
    def store(self) -> SecurityStore:
        raise NotImplementedError

    def test_projects_start_with_default_and_names_are_unique(self, store: SecurityStore) -> None:
        assert [p.name for p in store.list_projects()] == ["default"]
        store.create_project("vision", "image models")
        with pytest.raises(Conflict):
            store.create_project("vision")
        assert [p.name for p in store.list_projects()] == ["default", "vision"]

    def test_principals_and_role_bindings(self, store: SecurityStore) -> None:
        store.create_principal("alice", "user")
        with pytest.raises(Conflict):
            store.create_principal("alice", "service")
        store.grant("alice", "researcher", "vision")
        alice = store.grant("alice", "researcher", "vision")  # granting twice changes nothing
        assert [(b.role, b.project) for b in alice.roles] == [("researcher", "vision")]
        store.grant("alice", "viewer", "*")
        assert store.revoke("alice", "researcher", "vision").roles[0].role == "viewer"
        with pytest.raises(NotFound):
            store.revoke("alice", "researcher", "vision")
        assert store.set_disabled("alice", True).disabled
        with pytest.raises(NotFound):
            store.get_principal("bob")

    def test_tokens_keep_their_hash_out_of_every_dump(self, store: SecurityStore) -> None:
        store.create_principal("ci", "service")
        expires = datetime.now(UTC) + timedelta(days=1)
        made = store.add_token("abcd1234", "ci", "pipeline", "$argon2id$hash", ["runs:read"], expires)
        assert "secret_hash" not in made.to_json() and made.secret_hash == "$argon2id$hash"
        with pytest.raises(Conflict):
            store.add_token("abcd1234", "ci", "again", "$argon2id$other", ["*"], None)
        got = store.get_token("abcd1234")
        assert got is not None and got.principal == "ci" and got.scopes == ["runs:read"]
        assert abs((got.expires_at - expires).total_seconds()) < 1e-3  # type: ignore[operator]
        store.touch_token("abcd1234", datetime.now(UTC))
        assert store.revoke_token("abcd1234", datetime.now(UTC)).revoked_at is not None
        assert [t.id for t in store.list_tokens("ci")] == ["abcd1234"] and store.list_tokens("nobody") == []
        assert store.get_token("nope0000") is None

    def test_a_tokens_expiry_is_moved_and_reads_back_as_moved(self, store: SecurityStore) -> None:
        store.create_principal("ci", "service")
        store.add_token("abcd1234", "ci", "job:j1", "$argon2id$hash", ["jobs:read"], datetime.now(UTC))
        later = datetime.now(UTC) + timedelta(days=7)
        moved = store.extend_token("abcd1234", later)
        got = store.get_token("abcd1234")
        for token in (moved, got):
            assert token is not None and token.expires_at is not None
            assert abs((token.expires_at - later).total_seconds()) < 1e-3
        with pytest.raises(NotFound):
            store.extend_token("nope0000", later)

    def test_audit_entries_chain_and_filter(self, store: SecurityStore) -> None:
        first = _entry(store, at=datetime.now(UTC) - timedelta(hours=2))
        _entry(store, actor="bob", action="role.grant")
        _entry(store, actor="anonymous", action="GET /api/v1/runs", result="denied")
        entries = list(store.iter_audit())
        assert [e.seq for e in entries] == [1, 2, 3] and entries[0].prev_hash == GENESIS
        assert entries[1].prev_hash == entries[0].hash == first.hash  # type: ignore[attr-defined]
        assert verify_chain(entries).ok  # hashes survive the round trip (time zones, JSON details)
        assert [e.actor for e in store.audit_entries(action="token.")] == ["alice"]
        assert [e.seq for e in store.audit_entries(result="denied")] == [3]
        assert [e.seq for e in store.audit_entries(since=datetime.now(UTC) - timedelta(hours=1))] == [3, 2]
        assert [e.seq for e in store.audit_entries(limit=2)] == [3, 2]

    def test_concurrent_writers_keep_one_unbroken_chain(self, store: SecurityStore) -> None:
        def write(actor: str) -> None:
            for _ in range(8):
                _entry(store, actor=actor)

        threads = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report = verify_chain(store.iter_audit())
        assert report.ok and report.checked == 32, report

    def test_prune_leaves_an_entry_that_accounts_for_the_deleted(self, store: SecurityStore) -> None:
        old = datetime.now(UTC) - timedelta(days=400)
        for _ in range(3):
            _entry(store, at=old)
        _entry(store)
        assert store.prune_audit(datetime.now(UTC) - timedelta(days=1000), actor="x", source="y") is None
        marker = store.prune_audit(datetime.now(UTC) - timedelta(days=180), actor="system", source="server")
        assert marker is not None and marker.action == PRUNE and marker.details["through_seq"] == 3
        assert [e.seq for e in store.iter_audit()] == [4, 5]
        assert verify_chain(store.iter_audit()).ok

    def test_records_projects(self, store: SecurityStore, metadata_url: str) -> None:
        md = open_metadata_store(metadata_url)
        try:
            md.create_run("run-1", "digits", {}, None)
            assert store.projects_of("run", ["run-1", "missing"]) == {"run-1": "default"}
            store.create_project("vision")
            assert store.assign_project("run", "run-1", "vision") == "default"
            assert store.projects_of("run", ["run-1"]) == {"run-1": "vision"}
            with pytest.raises(NotFound):
                store.assign_project("run", "run-1", "nowhere")
            with pytest.raises(NotFound):
                store.assign_project("model_version", "12345", "vision")
            with pytest.raises(InvalidInput):
                store.projects_of("artifact", ["1"])
        finally:
            md.close()


class TestSqlite(SecurityStoreContract):
    @pytest.fixture()
    def metadata_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'aidc.db'}"

    @pytest.fixture()
    def store(self, metadata_url: str) -> Iterator[SecurityStore]:
        s = SqlSecurityStore(metadata_url)
        yield s
        s.close()


@pytest.mark.postgres
class TestPostgres(SecurityStoreContract):
    @pytest.fixture()
    def metadata_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture()
    def store(self, metadata_url: str) -> Iterator[SecurityStore]:
        from sqlalchemy import text

        s = SqlSecurityStore(metadata_url)

        def reset() -> None:
            with s.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {SECURITY_TABLES}, pipeline_runs RESTART IDENTITY CASCADE"))
                conn.execute(text("INSERT INTO projects (name, description, created_at) VALUES ('default', '', now())"))

        reset()
        yield s
        reset()
        s.close()
