"""The audit chain: how an entry's SHA-256 covers its content and its predecessor, and how a chain is verified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aidc.security.records import AuditEntry

GENESIS = "0" * 64  # the "previous hash" of entry 1
PRUNE = "audit.prune"  # the entry retention leaves behind: which entries it deleted and the last one's hash
HASHED_FIELDS = ("seq", "at", "actor", "action", "target", "project", "source", "result", "details")


def canonical_time(at: datetime) -> str:
    """UTC, microseconds: SQLite hands times back without a zone and PostgreSQL in the session's zone."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the entry's fields as canonical JSON (sorted keys, UTC time)."""
    content = {k: fields[k] for k in HASHED_FIELDS} | {"at": canonical_time(fields["at"])}
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


@dataclass
class ChainReport:
    """What ``aidc audit verify`` says: ok, or the first bad entry (by sequence number) and what is wrong."""

    ok: bool
    checked: int
    first_seq: int | None
    head_seq: int | None
    head_hash: str | None
    bad_seq: int | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify_chain(entries: Iterable[AuditEntry]) -> ChainReport:
    """Walk the entries in sequence order; the first modified, missing or moved entry ends the walk.

    The first entry may follow deleted ones only if a later ``audit.prune`` entry names exactly them
    (the last deleted sequence number and its hash); otherwise the deletion is reported.
    """
    report = ChainReport(ok=True, checked=0, first_seq=None, head_seq=None, head_hash=None)
    prev: AuditEntry | None = None
    unexplained_start: AuditEntry | None = None  # a first entry after seq 1, until a prune entry accounts for it

    def bad(seq: int, problem: str) -> ChainReport:
        report.ok, report.bad_seq, report.problem = False, seq, problem
        return report

    for entry in entries:
        if prev is None:
            report.first_seq = entry.seq
            if entry.seq != 1:
                unexplained_start = entry
            elif entry.prev_hash != GENESIS:
                return bad(entry.seq, "entry 1 does not start the chain (its previous hash is not the genesis hash)")
        elif entry.seq != prev.seq + 1:
            missing = f"{prev.seq + 1}" if entry.seq == prev.seq + 2 else f"{prev.seq + 1}–{entry.seq - 1}"
            return bad(prev.seq + 1, f"entry {missing} is missing (deleted)")
        elif entry.prev_hash != prev.hash:
            return bad(
                entry.seq, f"entry {entry.seq} does not chain to entry {prev.seq}: one of them was rewritten or moved"
            )
        if entry_hash(entry.prev_hash, entry.model_dump()) != entry.hash:
            return bad(entry.seq, f"entry {entry.seq} was modified: its content does not match its hash")
        if (
            unexplained_start is not None
            and entry.action == PRUNE
            and entry.details.get("through_seq") == unexplained_start.seq - 1
            and entry.details.get("through_hash") == unexplained_start.prev_hash
        ):
            unexplained_start = None
        report.checked += 1
        report.head_seq, report.head_hash = entry.seq, entry.hash
        prev = entry
    if unexplained_start is not None:
        return bad(
            unexplained_start.seq - 1,
            f"entries before {unexplained_start.seq} are missing and no audit.prune entry accounts for them",
        )
    return report
