"""The audit chain's anchor off the database: every entry also appended to a JSON-lines file, signed with a key.

Whoever can write the database can rewrite an entry and re-hash every entry after it; the chain then verifies
again. Two things stop that going unnoticed. Each entry is also appended, as it is written, to a JSON-lines file
(``AIDC_AUDIT_SINK``: point a log shipper at it, or put it on storage the database's writers cannot change, as
Vault's file audit device is used) — ``audit verify`` compares the database's hashes with the file's. And with
``AIDC_AUDIT_HMAC_KEY`` each line carries HMAC-SHA256(key, "seq:hash"), so the file cannot be rewritten to
match a re-hashed database by anyone who lacks the key either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aidc.security.audit import ChainReport, canonical_time
from aidc.security.records import AuditEntry

log = logging.getLogger("aidc.audit")


def line_mac(key: bytes, seq: int, entry_hash: str) -> str:
    return hmac.new(key, f"{seq}:{entry_hash}".encode(), hashlib.sha256).hexdigest()


class AuditSink:
    def __init__(self, path: str | Path, key: bytes | None = None) -> None:
        self.path, self.key = Path(path), key or None
        self._lock = threading.Lock()

    def write(self, entry: AuditEntry) -> None:
        """Append ``entry``; a sink that cannot be written is logged, not fatal (the database has the entry)."""
        line: dict[str, Any] = entry.model_dump() | {"at": canonical_time(entry.at)}
        if self.key:
            line["mac"] = line_mac(self.key, entry.seq, entry.hash)
        data = (json.dumps(line, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
        except OSError as exc:
            log.error("cannot append audit entry %d to %s: %s", entry.seq, self.path, exc)

    def read(self) -> dict[int, dict[str, Any]]:
        """seq → the line written for it (the last one, if an entry was written twice)."""
        found: dict[int, dict[str, Any]] = {}
        try:
            with self.path.open(encoding="utf-8") as lines:
                for raw in lines:
                    try:
                        line = json.loads(raw)
                        found[int(line["seq"])] = line
                    except (ValueError, KeyError, TypeError):
                        continue
        except FileNotFoundError:
            pass
        return found

    def check(self, entries: Iterable[AuditEntry], report: ChainReport) -> ChainReport:
        """``report`` (the chain's own verification), failed at the first entry the sink disagrees with."""
        if not report.ok:
            return report
        lines = self.read()
        last_in_db = 0
        for entry in entries:
            last_in_db = entry.seq
            line = lines.get(entry.seq)
            if line is None:
                continue  # written before the sink was configured (or while it could not be written)
            signed = line_mac(self.key, entry.seq, str(line.get("hash"))) if self.key else None
            if signed is not None and not hmac.compare_digest(str(line.get("mac", "")), signed):
                return _bad(
                    report, entry.seq, f"the audit sink's line for entry {entry.seq} is not signed with the key"
                )
            if line.get("hash") != entry.hash:
                return _bad(
                    report,
                    entry.seq,
                    f"entry {entry.seq} differs from the audit sink's copy: the database was rewritten",
                )
        newer = [seq for seq in lines if seq > last_in_db]
        if newer:
            return _bad(report, min(newer), f"entries from {min(newer)} on are in the audit sink but not the database")
        return report


def _bad(report: ChainReport, seq: int, problem: str) -> ChainReport:
    report.ok, report.bad_seq, report.problem = False, seq, problem
    return report
