"""Envelope encryption of artifacts: AES-256-GCM in sealed chunks under a per-artifact data key.

A stored (encrypted) artifact is a 36-byte header then chunks::

    header = MAGIC (8) | version (1) | chunk size (4, big-endian) | object id (16, random) | nonce prefix (7, random)
    chunk i = AES-256-GCM(data key, nonce = prefix | i (4, big-endian) | last (1), plaintext[i], aad = header)

Every chunk but the last holds exactly ``chunk size`` plaintext bytes; the last holds 0..chunk size and is
sealed with ``last = 1``. So reordered chunks fail (the counter is in the nonce), a truncated artifact
fails (its new last chunk was sealed as not-last), and a header edit fails (it is every chunk's
associated data). Each artifact has its own random data key, so chunks of another artifact never open.

The data key is wrapped by the active master key (AES-256-GCM, the associated data binding the artifact's
digest, object id and master key id) in a small JSON *key record* kept apart from the data object, at
``keys/sha256/<2 hex>/<62 hex>/<object id>.json``: rotating the master key rewrites only these records.
Objects without MAGIC are plaintext (written before encryption was on) and read as they are.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aidc.errors import IntegrityError, InvalidInput, MasterKeyUnavailable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .codec import ArtifactCodec, CodecWriter, KeyRecords
from .digests import CHUNK_SIZE, format_digest
from .keyring import ENV_VAR, MasterKey, MasterKeyRing

MAGIC = b"\x89AIDCENV"
VERSION = 1
HEADER_LEN = len(MAGIC) + 1 + 4 + 16 + 7
TAG_LEN = 16
RECORD_FORMAT = "aidc-envelope/1"
MAX_CHUNKS = 1 << 32  # the counter's width; 4 PiB of content at 1 MiB chunks


def stored_size(content_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Bytes an encrypted artifact of ``content_size`` takes at rest (header + one tag per chunk)."""
    chunks = max(1, -(-content_size // chunk_size))
    return HEADER_LEN + content_size + chunks * TAG_LEN


def _aesgcm(key: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _wrap_aad(hexdigest: str, object_id: str, master_key_id: str) -> bytes:
    return f"{RECORD_FORMAT}|{format_digest(hexdigest)}|{object_id}|{master_key_id}".encode()


def wrap_data_key(data_key: bytes, master: MasterKey, hexdigest: str, object_id: str) -> dict[str, Any]:
    nonce = os.urandom(12)
    sealed = _aesgcm(master.material).encrypt(nonce, data_key, _wrap_aad(hexdigest, object_id, master.key_id))
    return {
        "format": RECORD_FORMAT,
        "digest": format_digest(hexdigest),
        "object_id": object_id,
        "cipher": "AES-256-GCM",
        "chunk_size": CHUNK_SIZE,
        "wrap": "AES-256-GCM",
        "master_key_id": master.key_id,
        "wrapped_key": base64.b64encode(nonce + sealed).decode(),
        "wrapped_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class _EnvelopeWriter(CodecWriter):
    def __init__(self, codec: EnvelopeCodec) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._codec = codec
        self._wrapped_under = ""
        self._data_key = AESGCM.generate_key(bit_length=256)
        self._object_id = os.urandom(16)
        prefix = os.urandom(7)
        self._header = MAGIC + bytes([VERSION]) + CHUNK_SIZE.to_bytes(4, "big") + self._object_id + prefix
        self._prefix = prefix
        super().__init__(self._seal)

    def _seal(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        aes, header, prefix = _aesgcm(self._data_key), self._header, self._prefix
        yield header
        pending = bytearray()
        counter = 0
        for chunk in chunks:
            pending += chunk
            # Hold back until more follows: only then is a full chunk known not to be the last.
            if len(pending) > CHUNK_SIZE:
                view, done = memoryview(pending), 0  # slices of a view: no copies on the hot path
                while len(pending) - done > CHUNK_SIZE:
                    yield aes.encrypt(_nonce(prefix, counter, False), view[done : done + CHUNK_SIZE], header)
                    done += CHUNK_SIZE
                    counter += 1
                    if counter >= MAX_CHUNKS:
                        raise ValueError("artifact too large for one envelope (2^32 chunks)")
                view.release()
                del pending[:done]
        yield aes.encrypt(_nonce(prefix, counter, True), bytes(pending), header)

    def _record(self, hexdigest: str, master: MasterKey) -> bytes:
        self._wrapped_under = master.key_id
        return json.dumps(wrap_data_key(self._data_key, master, hexdigest, self._object_id.hex()), indent=1).encode()

    def key_record(self, hexdigest: str) -> tuple[str, bytes]:
        # Wrapped under the key active when the write ends, not when it began: a big upload may outlast
        # the start of a rotation, which would then retire the key it began with.
        return self._object_id.hex(), self._record(hexdigest, self._codec.active_key())

    def stale_record(self, hexdigest: str) -> bytes | None:
        master = self._codec.active_key()
        return None if master.key_id == self._wrapped_under else self._record(hexdigest, master)


class EnvelopeCodec(ArtifactCodec):
    """Encrypts new artifacts when ``encrypt`` (needs an active master key); always reads both encrypted
    artifacts (needing the master key their record names) and plaintext ones."""

    def __init__(self, ring: MasterKeyRing, *, encrypt: bool) -> None:
        self.ring = ring
        self.encrypt = encrypt
        if encrypt and ring.active is None:
            raise MasterKeyUnavailable(
                "artifact encryption is on but no master key is configured",
                hint=f"looked in {ring.sources}: create a key with `aidc keys rotate`, set "
                f"{ENV_VAR}, or set AIDC_ENCRYPTION=off",
            )

    def __repr__(self) -> str:
        return f"EnvelopeCodec(encrypt={self.encrypt}, ring={self.ring!r})"

    def _current_ring(self, *, force: bool = False) -> MasterKeyRing:
        self.ring = self.ring.refreshed(force=force)
        return self.ring

    def active_key(self) -> MasterKey:
        """The key new data keys are wrapped under now (the key file re-read if it changed)."""
        master = self._current_ring().active
        assert master is not None  # checked in __init__; a rotation never empties the file
        return master

    def writer(self) -> CodecWriter:
        if not self.encrypt:
            return CodecWriter(self.encode)
        self.active_key()
        return _EnvelopeWriter(self)

    def encode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Plaintext mode (encrypted writes go through writer()): as it is, unless it would read back as an
        envelope — content that itself starts with MAGIC can only be stored encrypted."""
        first = True
        for chunk in chunks:
            if first and chunk[: len(MAGIC)] == MAGIC:
                raise InvalidInput(
                    "this content begins with the marker of an encrypted artifact, so stored "
                    "as plaintext it would not read back",
                    hint="store it with encryption on (AIDC_ENCRYPTION=on and a master key)",
                )
            first = False
            yield chunk

    # -- reads -----------------------------------------------------------------------------------

    def decode(
        self, chunks: Iterable[bytes], *, hexdigest: str = "", records: KeyRecords | None = None
    ) -> Iterator[bytes]:
        stream = iter(chunks)
        head = bytearray()
        for chunk in stream:
            head += chunk
            if len(head) >= HEADER_LEN:
                break
        if bytes(head[: len(MAGIC)]) != MAGIC:  # plaintext: stored before encryption was switched on
            yield bytes(head)
            yield from stream
            return
        where = records.uri_of(hexdigest) if records else ""
        digest = format_digest(hexdigest)
        if len(head) < HEADER_LEN:
            raise self._tampered(digest, where, "its header is cut short")
        header = bytes(head[:HEADER_LEN])
        if header[len(MAGIC)] != VERSION:
            raise IntegrityError(
                f"artifact {digest} has envelope version {header[len(MAGIC)]}, not {VERSION}",
                where=where,
                hint="it was written by a newer aidc, or modified; upgrade aidc",
            )
        chunk_size = int.from_bytes(header[9:13], "big")
        object_id, prefix = header[13:29].hex(), header[29:36]
        aes = _aesgcm(self._data_key(hexdigest, object_id, records, where))
        segment = chunk_size + TAG_LEN
        pending = head[HEADER_LEN:]
        counter = 0
        for chunk in stream:
            pending += chunk
            if len(pending) > segment:
                view, done = memoryview(pending), 0  # slices of a view: no copies on the hot path
                while len(pending) - done > segment:
                    opened = self._open(aes, prefix, counter, False, view[done : done + segment], header, digest, where)
                    done += segment
                    counter += 1
                    yield opened
                view.release()
                del pending[:done]
        if len(pending) < TAG_LEN:
            raise self._tampered(digest, where, "it is truncated")
        yield self._open(aes, prefix, counter, True, bytes(pending), header, digest, where)

    @staticmethod
    def _tampered(digest: str, where: str, what: str) -> IntegrityError:
        return IntegrityError(
            f"encrypted artifact {digest} failed authentication: {what}",
            where=where,
            hint="the stored copy was modified, truncated or reordered; put the original again "
            "to repair it, or delete it",
        )

    def _open(
        self,
        aes: Any,
        prefix: bytes,
        counter: int,
        last: bool,
        sealed: bytes | memoryview,
        header: bytes,
        digest: str,
        where: str,
    ) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return aes.decrypt(_nonce(prefix, counter, last), sealed, header)  # type: ignore[no-any-return]
        except InvalidTag:
            what = f"chunk {counter}" + (" (the last one) does not verify" if last else " does not verify")
            raise self._tampered(digest, where, what) from None

    def read_record(self, hexdigest: str, object_id: str, records: KeyRecords | None) -> dict[str, Any]:
        digest = format_digest(hexdigest)
        raw = records.read_key_record(hexdigest, object_id) if records is not None else None
        where = records.key_record_uri(hexdigest, object_id) if records is not None else "(no key records)"
        if raw is None:
            raise IntegrityError(
                f"encrypted artifact {digest} has no key record",
                where=where,
                hint="its data key is gone: restore the store's keys/ objects from a backup; "
                "without them the artifact cannot be decrypted",
            )
        try:
            record = json.loads(raw)
            ok = (
                record["digest"] == digest
                and record["object_id"] == object_id
                and isinstance(record["master_key_id"], str)
                and isinstance(record["wrapped_key"], str)
            )
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise IntegrityError(
                f"the key record of encrypted artifact {digest} is damaged or belongs to another artifact",
                where=where,
                hint="restore it from a backup",
            )
        return record  # type: ignore[no-any-return]

    def unwrap(self, hexdigest: str, record: dict[str, Any], where: str) -> bytes:
        """The data key in ``record``; MasterKeyUnavailable when its master key is not configured here."""
        from cryptography.exceptions import InvalidTag

        digest = format_digest(hexdigest)
        ring = self._current_ring()
        key_id = record["master_key_id"]
        master = ring.get(key_id)
        if master is None:  # re-wrapped by a rotation this process has not seen yet? read the key file again
            ring = self._current_ring(force=True)
            master = ring.get(key_id)
        if master is None:
            have = ", ".join(k.key_id for k in ring.keys) or "none"
            raise MasterKeyUnavailable(
                f"artifact {digest} is encrypted under master key {key_id}, which is not configured here "
                f"(configured: {have})",
                where=where,
                hint=f"looked in {ring.sources}: put the key with id {key_id} back (the key file in use when it "
                f"was written, or its backup) or add it to {ENV_VAR}; `aidc keys status` lists the ids",
            )
        try:
            blob = base64.b64decode(record["wrapped_key"], validate=True)
            return _aesgcm(master.material).decrypt(
                blob[:12], blob[12:], _wrap_aad(hexdigest, record["object_id"], key_id)
            )
        except (InvalidTag, binascii.Error, ValueError):
            raise IntegrityError(
                f"the key record of encrypted artifact {digest} does not verify under master key {key_id}",
                where=where,
                hint="the record was modified or moved from another artifact; restore it from a backup",
            ) from None

    def _data_key(self, hexdigest: str, object_id: str, records: KeyRecords | None, where: str) -> bytes:
        record = self.read_record(hexdigest, object_id, records)
        record_where = records.key_record_uri(hexdigest, object_id) if records is not None else where
        return self.unwrap(hexdigest, record, record_where)

    def rewrap(self, hexdigest: str, object_id: str, records: KeyRecords) -> bytes | None:
        """The record re-wrapped under the active master key, or None if it already is (rotation)."""
        record = self.read_record(hexdigest, object_id, records)
        master = self._current_ring().active
        assert master is not None
        if record["master_key_id"] == master.key_id:
            return None
        data_key = self.unwrap(hexdigest, record, records.key_record_uri(hexdigest, object_id))
        fresh = wrap_data_key(data_key, master, hexdigest, object_id) | {
            "chunk_size": record.get("chunk_size", CHUNK_SIZE),
            "rewrapped_from": record["master_key_id"],
        }
        return json.dumps(fresh, indent=1).encode()
