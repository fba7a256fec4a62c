"""Keys: the master keys of artifact encryption — which artifacts each wraps, and rotation while jobs run."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aidc.errors import AidcError, Conflict, InvalidInput, MasterKeyUnavailable
from aidc.security.keys import artifact_codec, load_ring, master_key_path
from aidc.security.roles import Access
from aidc.services.guard import Guard
from aidc.settings import Settings
from aidc.store.artifacts import ArtifactStore
from aidc.store.artifacts.envelope import EnvelopeCodec
from aidc.store.artifacts.fsspec_store import FsspecArtifactStore
from aidc.store.artifacts.keyring import ENV_VAR, MasterKey, MasterKeyRing, read_key_file, write_key_file


class Keys:
    def __init__(self, settings: Settings, artifacts: ArtifactStore, guard: Guard) -> None:
        """``settings``: where the key file is and whether ``AIDC_MASTER_KEY`` holds the keys."""
        self.settings, self.artifacts, self.guard = settings, artifacts, guard

    def status(self) -> dict[str, Any]:
        return key_status(self.settings, self._envelope_store())

    def rotate(self, access: Access, *, new_key: str | None = None, keep_old: bool = False) -> dict[str, Any]:
        return rotate(self.settings, self._envelope_store(), self.guard, access, new_key=new_key, keep_old=keep_old)

    def _envelope_store(self) -> FsspecArtifactStore:
        store = self.artifacts
        if not isinstance(store, FsspecArtifactStore):  # pragma: no cover - every backend is fsspec today
            raise InvalidInput(f"{type(store).__name__} keeps no key records")
        return store


def _record_key_ids(store: FsspecArtifactStore, codec: EnvelopeCodec) -> dict[tuple[str, str], str | None]:
    """(digest, record id) → the master key id the record is wrapped under (None: unreadable record)."""
    found: dict[tuple[str, str], str | None] = {}
    for hexdigest, record_id in store.iter_key_records():
        try:
            found[(hexdigest, record_id)] = codec.read_record(hexdigest, record_id, store)["master_key_id"]
        except AidcError:
            found[(hexdigest, record_id)] = None
    return found


def key_status(settings: Settings, store: FsspecArtifactStore) -> dict[str, Any]:
    """Master keys configured, how many artifacts are wrapped under each, and how many are plaintext."""
    codec = EnvelopeCodec(load_ring(settings), encrypt=False)
    records = _record_key_ids(store, codec)
    per_key: Counter[str] = Counter()
    plaintext = missing = damaged = 0
    in_use: set[tuple[str, str]] = set()
    for digest in store.iter_digests():
        hexdigest = digest.removeprefix("sha256:")
        object_id = store.stored_object_id(hexdigest)
        if object_id is None:
            plaintext += 1
            continue
        in_use.add((hexdigest, object_id))
        if (hexdigest, object_id) not in records:
            missing += 1
        elif records[(hexdigest, object_id)] is None:
            damaged += 1
        else:
            per_key[records[(hexdigest, object_id)] or ""] += 1
    ring = codec.ring
    env_ids = {k.key_id for k in MasterKeyRing.load(None, settings.master_key.get_secret_value()).keys}
    keys: list[dict[str, Any]] = [
        {
            "key_id": k.key_id,
            "active": k is ring.active,
            "artifacts": per_key.pop(k.key_id, 0),
            "source": "env" if k.key_id in env_ids else "file",
        }
        for k in ring.keys
    ]
    return {
        "encryption": "on" if artifact_codec(settings).encrypt else "off",
        "artifact_store": store.url,
        "key_file": str(master_key_path(settings)),
        "keys": keys,
        "unknown_keys": [{"key_id": i, "artifacts": n} for i, n in sorted(per_key.items())],
        "encrypted": sum(int(k["artifacts"]) for k in keys) + sum(per_key.values()),
        "plaintext": plaintext,
        "missing_key_record": missing,
        "damaged_key_record": damaged,
        "unused_key_records": len(set(records) - in_use),
    }


SWEEPS = 3  # looks for records written during the pass, before the old keys go


@contextmanager
def _rotation_lock(path: Path) -> Iterator[None]:
    """One rotation at a time per key file: the CLI on the host and the server's API may both be asked."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"a master key rotation is already running on {path}",
                where=str(path),
                hint="wait for it to finish, then `aidc keys status` shows the result",
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _rewrap_records(
    store: FsspecArtifactStore, codec: EnvelopeCodec, seen: set[tuple[str, str]]
) -> tuple[int, int, list[dict[str, str]]]:
    """Re-wrap every key record not in ``seen`` under the codec's active key (adding it to ``seen``)."""
    rewrapped = already = 0
    failures: list[dict[str, str]] = []
    for hexdigest, record_id in store.iter_key_records():
        if (hexdigest, record_id) in seen:
            continue
        seen.add((hexdigest, record_id))
        try:
            fresh = codec.rewrap(hexdigest, record_id, store)
            if fresh is None:
                already += 1
            else:
                store.write_key_record(hexdigest, record_id, fresh)
                rewrapped += 1
        except AidcError as exc:
            failures.append({"digest": f"sha256:{hexdigest}", "record": record_id, "error": str(exc)})
    return rewrapped, already, failures


def rotate(
    settings: Settings,
    store: FsspecArtifactStore,
    guard: Guard,
    access: Access,
    *,
    new_key: str | None = None,
    keep_old: bool = False,
) -> dict[str, Any]:
    """Make a new master key active and re-wrap every data key under it; no data object is rewritten.

    The old keys stay in the key file until every record is re-wrapped, so a failure or an interruption
    loses nothing and running it again resumes (an interrupted rotation is recognised: the file holds more
    than one key and some records are still under an older one). With ``AIDC_MASTER_KEY`` the environment
    is the operator's to change: put the new key first there, then rotate re-wraps under it.

    Jobs and the server may store artifacts meanwhile: a writer wraps its data key under the key active when
    it finishes (re-reading the key file), and before the old keys go the store is listed again, up to
    ``SWEEPS`` times, for records written during the pass.
    """
    path = master_key_path(settings)
    env_value = settings.master_key.get_secret_value()
    with (
        guard.audited(access, "keys.rotate", f"artifact-store:{store.url}") as details,
        _rotation_lock(path),
    ):
        if env_value:
            if new_key:
                raise InvalidInput(
                    f"the master keys come from {ENV_VAR}, which aidc cannot change",
                    hint=f"put the new key first in {ENV_VAR} (keep the old one after it) and run "
                    "`aidc keys rotate` without --new-key-file",
                )
            ring = load_ring(settings)
            if ring.active is None:  # pragma: no cover - a set env always yields a key or an error
                raise MasterKeyUnavailable(f"{ENV_VAR} holds no key")
            target, file_keys = ring.active, []
        else:
            file_keys = read_key_file(path)[0] if path.exists() else []
            codec = EnvelopeCodec(MasterKeyRing(file_keys), encrypt=False)
            pending = [i for i in _record_key_ids(store, codec).values() if file_keys and i != file_keys[0].key_id]
            if new_key:
                target = MasterKey.from_text(new_key, "the new key")
            elif len(file_keys) > 1 and pending:
                target = file_keys[0]  # an earlier rotation stopped part-way: finish it
            else:
                target = MasterKey.generate()
            if not file_keys or target.key_id != file_keys[0].key_id:
                write_key_file(
                    path,
                    [target] + [k for k in file_keys if k.key_id != target.key_id],
                    comment=f"rotation to {target.key_id} in progress: older keys follow",
                )
        details["master_key_id"] = target.key_id
        details["previous"] = [k.key_id for k in file_keys if k.key_id != target.key_id]
        codec = EnvelopeCodec(load_ring(settings), encrypt=True)
        seen: set[tuple[str, str]] = set()
        rewrapped, already, failures = _rewrap_records(store, codec, seen)
        for _ in range(SWEEPS):
            before = len(seen)
            late, late_already, late_failures = _rewrap_records(store, codec, seen)
            rewrapped, already, failures = rewrapped + late, already + late_already, failures + late_failures
            if len(seen) == before:
                break
        details |= {"rewrapped": rewrapped, "already": already, "failed": len(failures)}
        retired: list[str] = []
        if not failures and not env_value and not keep_old:
            retired = details["previous"]
            if retired:
                write_key_file(path, [target])
        details["retired"] = retired
    return {
        "master_key_id": target.key_id,
        "key_file": None if env_value else str(path),
        "rewrapped": rewrapped,
        "already": already,
        "failed": failures,
        "retired": retired,
        "kept": [k for k in details["previous"] if k not in retired],
    }
