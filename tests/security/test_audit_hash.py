"""The audit hash as someone checking an exported log computes it, and the time it covers on any machine clock.

An export can be verified outside aidc (docs/control-plane.md: each entry carries the SHA-256 of its content and
of the previous entry's hash): the formula is written out here again, independently of aidc's code, so a
change to what is hashed breaks every old export, and this test, instead of passing silently.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from aidc.security.audit import GENESIS, canonical_time, entry_hash

ENTRY = {
    "seq": 7,
    "at": datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
    "actor": "alice",
    "action": "job.cancel",
    "target": "job:job-1",
    "project": "vision",
    "source": "127.0.0.1",
    "result": "ok",
    "details": {"was": "queued", "token_id": "ab12cd34"},
}


def by_hand(prev_hash: str, entry: dict[str, object]) -> str:
    content = dict(entry) | {"at": "2026-03-01T12:30:05.123456+00:00"}
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


@pytest.fixture()
def shanghai_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time zone set to UTC+8, as on a server in China."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_an_entrys_hash_is_the_documented_formula() -> None:
    assert entry_hash(GENESIS, ENTRY) == by_hand(GENESIS, ENTRY)
    other = "ab" * 32
    assert entry_hash(other, ENTRY) == by_hand(other, ENTRY) != by_hand(GENESIS, ENTRY)


def test_fields_outside_the_hashed_set_do_not_change_it() -> None:
    assert entry_hash(GENESIS, ENTRY | {"hash": "x", "prev_hash": "y"}) == by_hand(GENESIS, ENTRY)


@pytest.mark.usefixtures("shanghai_clock")
def test_the_time_is_hashed_in_utc_whatever_the_clock_and_the_database_hand_back() -> None:
    aware = ENTRY["at"]
    assert isinstance(aware, datetime)
    naive = aware.replace(tzinfo=None)  # SQLite hands UTC times back without a zone
    beijing = aware.astimezone(timezone(timedelta(hours=8)))  # PostgreSQL in the session's zone
    expected = "2026-03-01T12:30:05.123456+00:00"
    assert canonical_time(aware) == canonical_time(naive) == canonical_time(beijing) == expected
    assert entry_hash(GENESIS, ENTRY | {"at": naive}) == by_hand(GENESIS, ENTRY)


def test_a_detail_json_cannot_hold_is_hashed_as_its_text() -> None:
    until = datetime(2027, 1, 1, tzinfo=UTC)
    entry = ENTRY | {"actor": "zoë", "details": {"expires_at": until}}
    written = entry | {"details": {"expires_at": str(until)}}
    assert entry_hash(GENESIS, entry) == by_hand(GENESIS, written)
