"""Tampering with the audit log in the database itself: `aidc audit verify` finds it and names the first bad entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from aidc.cli.app import app
from aidc.platform import Platform
from aidc.security.audit import entry_hash
from aidc.security.records import AuditEntry
from aidc.settings import Settings

runner = CliRunner()


@pytest.fixture()
def home(aidc_home: Path) -> Iterator[Path]:
    """A store whose audit log holds six entries made through the security commands."""
    for args in (
        ["projects", "create", "vision"],
        ["users", "create", "alice", "--role", "researcher", "--project", "vision"],
        ["users", "create", "ci", "--service"],
        ["users", "disable", "ci"],
        ["users", "enable", "ci"],
    ):
        assert runner.invoke(app, args).exit_code == 0
    yield aidc_home


def _sql(home: Path, *statements: str) -> None:
    engine = create_engine(f"sqlite:///{home / 'aidc.db'}")
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _verify() -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify"])
    return result.exit_code, result.output


def _verdict() -> tuple[int | None, str | None]:
    """What `aidc audit verify --json` names: the first bad entry and the problem, word for word."""
    report = json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout)
    return report["bad_seq"], report["problem"]


def test_an_untouched_chain_verifies(home: Path) -> None:
    code, output = _verify()
    assert code == 0 and "audit chain ok: 6 entries" in output


def test_a_modified_entry_is_named(home: Path) -> None:
    _sql(home, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 3")
    code, output = _verify()
    assert code == 1 and "entry 3 was modified" in output
    assert _verdict() == (3, "entry 3 was modified: its content does not match its hash")


def test_a_modified_entry_with_a_garbled_hash_is_named(home: Path) -> None:
    _sql(home, "UPDATE audit_entries SET result = 'denied', hash = 'f' || substr(hash, 2) WHERE seq = 4")
    code, output = _verify()
    assert code == 1 and "entry 4" in output


def test_a_modified_entry_with_a_recomputed_hash_breaks_the_next_link(home: Path) -> None:
    """A forger who rewrites entry 4 and recomputes its own hash correctly: entry 4 now checks out by itself, and
    only entry 5's link to it (its prev_hash) shows the rewrite."""
    _rewrite_one_entry(home, 4, result="denied", actor="mallory")
    code, output = _verify()
    assert code == 1 and "entry 5 does not chain to entry 4" in output
    assert _verdict() == (5, "entry 5 does not chain to entry 4: one of them was rewritten or moved")


def test_a_first_entry_that_does_not_start_from_the_genesis_hash_is_named(home: Path) -> None:
    """Entry 1 re-linked to an invented predecessor, its own hash recomputed: the chain's start is what is wrong."""
    _rewrite_one_entry(home, 1, prev_hash="a" * 64)
    code, output = _verify()
    assert code == 1 and "entry 1 does not start the chain" in output
    assert _verdict() == (1, "entry 1 does not start the chain (its previous hash is not the genesis hash)")


def test_a_deleted_entry_is_named(home: Path) -> None:
    _sql(home, "DELETE FROM audit_entries WHERE seq = 2")
    code, output = _verify()
    assert code == 1 and "entry 2 is missing" in output
    assert _verdict() == (2, "entry 2 is missing (deleted)")


def test_deleted_entries_in_the_middle_are_named_as_a_range(home: Path) -> None:
    _sql(home, "DELETE FROM audit_entries WHERE seq IN (3, 4)")
    code, output = _verify()
    assert code == 1 and "entry 3–4 is missing" in output
    assert _verdict() == (3, "entry 3–4 is missing (deleted)")


def test_reordered_entries_are_named(home: Path) -> None:
    _sql(
        home,
        "UPDATE audit_entries SET seq = 100 WHERE seq = 2",
        "UPDATE audit_entries SET seq = 2 WHERE seq = 3",
        "UPDATE audit_entries SET seq = 3 WHERE seq = 100",
    )
    code, output = _verify()
    assert code == 1 and "entry 2" in output


def test_deleting_the_oldest_entries_is_not_passed_off_as_retention(home: Path) -> None:
    _sql(home, "DELETE FROM audit_entries WHERE seq <= 2")
    code, output = _verify()
    assert code == 1 and "before 3 are missing" in output
    assert _verdict() == (2, "entries before 3 are missing and no audit.prune entry accounts for them")


def test_retention_prunes_old_entries_and_the_chain_still_verifies(home: Path) -> None:
    long_ago = (datetime.now(UTC) - timedelta(days=400)).strftime("%Y-%m-%d %H:%M:%S.%f")
    _sql(home, f"UPDATE audit_entries SET at = '{long_ago}' WHERE seq <= 3")  # breaks 1–3, which retention removes
    result = runner.invoke(app, ["audit", "prune"])
    assert result.exit_code == 0 and "pruned 3 entries" in result.output
    code, output = _verify()
    assert code == 0 and "4 entries, 4–7" in output
    _sql(home, "DELETE FROM audit_entries WHERE action = 'audit.prune'")  # hide the pruning: now it shows
    assert _verify()[0] == 1


def test_verify_as_json_names_the_bad_entry(home: Path) -> None:
    _sql(home, """UPDATE audit_entries SET details = '{"kind": "admin"}' WHERE seq = 2""")
    result = runner.invoke(app, ["audit", "verify", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and report["ok"] is False and report["bad_seq"] == 2


def test_export_is_json_lines_oldest_first_with_their_hashes(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    assert runner.invoke(app, ["audit", "export", "-o", str(out)]).exit_code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5, 6]
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(lines, lines[1:], strict=False))
    assert {"actor", "action", "target", "source", "result", "at"} <= set(lines[0])


def test_list_filters_by_action_and_result(home: Path) -> None:
    result = runner.invoke(app, ["audit", "list", "--action", "principal.", "--json"])
    assert [e["action"] for e in json.loads(result.stdout)] == [
        "principal.enable",
        "principal.disable",
        "principal.create",
        "principal.create",
    ]
    platform = Platform(Settings())
    assert platform.security.audit_list(result="denied") == []


def _read_entries(conn: Any) -> list[AuditEntry]:
    rows = conn.execute(text("SELECT * FROM audit_entries ORDER BY seq")).mappings().all()
    return [
        AuditEntry.model_validate(
            dict(row) | {"details": json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]}
        )
        for row in rows
    ]


def _rewrite_one_entry(home: Path, seq: int, **changes: str) -> None:
    """Change one entry's content and store the hash of the new content (over its unchanged prev_hash)."""
    engine = create_engine(f"sqlite:///{home / 'aidc.db'}")
    with engine.begin() as conn:
        entry = next(e for e in _read_entries(conn) if e.seq == seq).model_copy(update=changes)
        forged = entry_hash(entry.prev_hash, entry.model_dump())
        assert forged != entry.hash
        sets = ", ".join(f"{k} = :{k}" for k in changes)
        conn.execute(
            text(f"UPDATE audit_entries SET {sets}, hash = :h WHERE seq = :s"), changes | {"h": forged, "s": seq}
        )
    engine.dispose()


def _rehash_everything_after(home: Path, seq: int) -> None:
    """What someone who can write the database does: change an entry and re-hash the chain from there on."""
    engine = create_engine(f"sqlite:///{home / 'aidc.db'}")
    with engine.begin() as conn:
        prev = None
        for entry in _read_entries(conn):
            if entry.seq == seq:
                entry = entry.model_copy(update={"actor": "mallory"})
            if entry.seq >= seq:
                prev_hash = prev.hash if prev else entry.prev_hash
                entry = entry.model_copy(update={"prev_hash": prev_hash})
                entry = entry.model_copy(update={"hash": entry_hash(prev_hash, entry.model_dump())})
                conn.execute(
                    text("UPDATE audit_entries SET actor=:a, prev_hash=:p, hash=:h WHERE seq=:s"),
                    {"a": entry.actor, "p": entry.prev_hash, "h": entry.hash, "s": entry.seq},
                )
            prev = entry
    engine.dispose()


def test_a_rehashed_chain_verifies_alone_but_not_against_the_signed_sink(
    aidc_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = tmp_path / "audit.jsonl"
    monkeypatch.setenv("AIDC_AUDIT_SINK", str(sink))
    monkeypatch.setenv("AIDC_AUDIT_HMAC_KEY", "k" * 40)
    for args in (["projects", "create", "vision"], ["users", "create", "alice"], ["users", "create", "bob"]):
        assert runner.invoke(app, args).exit_code == 0
    lines = [json.loads(x) for x in sink.read_text().splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3] and all(len(x["mac"]) == 64 for x in lines)
    assert _verify()[0] == 0

    _rehash_everything_after(aidc_home, 2)
    monkeypatch.delenv("AIDC_AUDIT_SINK")
    assert _verify()[0] == 0  # the chain alone cannot tell: it was re-hashed consistently
    monkeypatch.setenv("AIDC_AUDIT_SINK", str(sink))
    code, output = _verify()
    assert code == 1 and "entry 2 differs from the audit sink" in output

    # nor can the sink be rewritten to match without the key
    forged = [x | {"hash": "0" * 64} if x["seq"] == 2 else x for x in lines]
    sink.write_text("".join(json.dumps(x) + "\n" for x in forged))
    code, output = _verify()
    assert code == 1 and "not signed with the key" in output
