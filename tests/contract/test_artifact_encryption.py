"""Encrypted artifact stores: the whole ArtifactStore contract again with envelope encryption on (local
directory and the moto S3 server), plus what encryption itself promises — no plaintext at rest, clear errors
for a wrong or missing key, tampering detected, rotation that rewrites no data object."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.contract import test_artifact_store as plain
from tests.contract.test_artifact_store import ArtifactStoreContract, Backend, LocalBackend, MiB, S3Backend, sha

from aidc.errors import IntegrityError, InvalidInput, MasterKeyUnavailable
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings
from aidc.store.artifacts import ArtifactCodec, ArtifactStore, EnvelopeCodec, FileArtifactStore, S3ArtifactStore
from aidc.store.artifacts.codec import CodecWriter
from aidc.store.artifacts.digests import CHUNK_SIZE, digest_of_key
from aidc.store.artifacts.envelope import HEADER_LEN, MAGIC, TAG_LEN, stored_size
from aidc.store.artifacts.keyring import MasterKey, MasterKeyRing, write_key_file

SEGMENT = CHUNK_SIZE + TAG_LEN


def _is_key_record_of(relative: str, present: set[str]) -> bool:
    """keys/sha256/ab/<62 hex>/<object id>.json of an artifact that is there."""
    parts = relative.split("/")
    if len(parts) != 5 or parts[0] != "keys" or not parts[4].endswith(".json"):
        return False
    return digest_of_key("/".join(parts[1:4])) in present


class EncryptedBackend(Backend):
    """A backend whose default store encrypts under a key file of its own."""

    key_file: Path
    url: str

    def ring(self) -> MasterKeyRing:
        return MasterKeyRing.load(self.key_file)

    def codec(self) -> EnvelopeCodec:
        return EnvelopeCodec(self.ring(), encrypt=True)

    def raw(self, uri: str) -> bytes:
        raise NotImplementedError

    def stamp(self, uri: str) -> Any:
        """What changes when an object is rewritten (mtime and inode, or ETag and LastModified)."""
        raise NotImplementedError

    def settings(self, home: Path) -> Settings:
        return Settings(home=home, artifact_url=self.url, master_key_file=str(self.key_file), encryption="on")


class EncryptedLocalBackend(LocalBackend, EncryptedBackend):
    def __init__(self, root: Path, key_file: Path) -> None:
        super().__init__(root)
        self.key_file, self.url = key_file, root.as_uri()

    def open(self, codec: ArtifactCodec | None = None) -> ArtifactStore:
        store = FileArtifactStore(self.root, codec=codec or self.codec())
        store.ensure_ready()
        return store

    def raw(self, uri: str) -> bytes:
        return Path(urlsplit(uri).path).read_bytes()

    def stamp(self, uri: str) -> Any:
        st = Path(urlsplit(uri).path).stat()
        return st.st_mtime_ns, st.st_ino

    def leftovers(self) -> list[str]:
        files = [p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()]
        present = {d for f in files if (d := digest_of_key(f)) is not None}
        return [f for f in files if digest_of_key(f) is None and not _is_key_record_of(f, present)]


class EncryptedS3Backend(S3Backend, EncryptedBackend):
    def __init__(self, endpoint: str, key_file: Path) -> None:
        super().__init__(endpoint)
        self.key_file = key_file

    def open(self, codec: ArtifactCodec | None = None) -> ArtifactStore:
        store = S3ArtifactStore(
            self.url, endpoint_url=self.endpoint, storage_options=self.options, codec=codec or self.codec()
        )
        store.ensure_ready()
        return store

    def _key(self, uri: str) -> str:
        return urlsplit(uri).path.lstrip("/")

    def raw(self, uri: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=self._key(uri))["Body"].read()  # type: ignore[no-any-return]

    def stamp(self, uri: str) -> Any:
        head = self.s3.head_object(Bucket=self.bucket, Key=self._key(uri))
        return head["ETag"], head["LastModified"]

    def leftovers(self) -> list[str]:
        pending = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        keys = [k.removeprefix("artifacts/") for k in self.keys()]
        present = {d for k in keys if (d := digest_of_key(k)) is not None}
        odd = [k for k in keys if digest_of_key(k) is None and not _is_key_record_of(k, present)]
        return odd + [f"pending upload {u['Key']}" for u in pending]

    def settings(self, home: Path) -> Settings:
        return super().settings(home).model_copy(update={"s3_endpoint_url": self.endpoint})


@pytest.fixture()
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "master.key"
    write_key_file(path, [MasterKey.generate()])
    return path


def _segments(raw: bytes) -> tuple[bytes, list[bytes]]:
    body = raw[HEADER_LEN:]
    return raw[:HEADER_LEN], [body[i : i + SEGMENT] for i in range(0, len(body), SEGMENT)]


class ExplodingEnvelope(EnvelopeCodec):
    """Encrypts, and fails once 8 MiB of ciphertext have gone to the backend: a crash mid-upload."""

    def writer(self) -> CodecWriter:
        writer = super().writer()
        seal = writer.encode

        def encode(chunks: Iterable[bytes]) -> Iterator[bytes]:
            sent = 0
            for chunk in seal(chunks):
                if sent >= 8 * MiB:
                    raise RuntimeError("crashed mid-write")
                sent += len(chunk)
                yield chunk

        writer.encode = encode  # type: ignore[method-assign]
        return writer


class EncryptedContract(ArtifactStoreContract):
    """The plain contract, plus what encryption promises."""

    def test_crash_mid_encrypted_write_leaves_no_data_and_no_key_record(
        self, backend: EncryptedBackend, tmp_path: Path
    ) -> None:
        store = backend.open(codec=ExplodingEnvelope(backend.ring(), encrypt=True))
        data = os.urandom(12 * MiB)
        source = tmp_path / "big.bin"
        source.write_bytes(data)
        for put in (lambda: store.put_file(source), lambda: store.put_bytes(data)):
            with pytest.raises(RuntimeError, match="crashed mid-write"):
                put()
            assert not store.exists(sha(data)) and backend.leftovers() == []
            assert list(store.iter_key_records()) == []  # type: ignore[attr-defined]

    def test_delete_removes_the_key_record_too(self, store: ArtifactStore, backend: EncryptedBackend) -> None:
        keep, gone = store.put_bytes(b"kept"), store.put_bytes(b"deleted")
        assert len(list(store.iter_key_records())) == 2  # type: ignore[attr-defined]
        store.delete(gone.digest)
        assert [d for d, _ in store.iter_key_records()] == [keep.digest.removeprefix("sha256:")]  # type: ignore[attr-defined]
        assert backend.leftovers() == []

    def test_bytes_at_rest_are_sealed_chunks_not_the_plaintext(
        self, store: ArtifactStore, backend: EncryptedBackend
    ) -> None:
        data = b"patient record 0042; " * (3 * MiB // 21)  # several chunks of recognisable text
        ref = store.put_bytes(data)
        raw = backend.raw(ref.uri)
        assert raw.startswith(MAGIC) and len(raw) == stored_size(len(data))
        assert b"patient record" not in raw
        assert store.get_bytes(ref.digest) == data

    def test_wrong_key_is_a_clear_error_naming_the_key_needed(
        self, store: ArtifactStore, backend: EncryptedBackend, tmp_path: Path
    ) -> None:
        ref = store.put_bytes(b"secret weights")
        needed = backend.ring().active
        other = tmp_path / "other.key"
        write_key_file(other, [MasterKey.generate()])
        wrong = backend.open(codec=EnvelopeCodec(MasterKeyRing.load(other), encrypt=True))
        with pytest.raises(MasterKeyUnavailable) as exc:
            wrong.get_bytes(ref.digest)
        text = str(exc.value)
        assert needed is not None and needed.key_id in text and ref.digest in text and str(other) in text

    def test_missing_key_is_a_clear_error_saying_where_it_was_looked_for(
        self, store: ArtifactStore, backend: EncryptedBackend, tmp_path: Path
    ) -> None:
        ref = store.put_bytes(b"secret weights")
        absent = tmp_path / "nowhere" / "master.key"
        keyless = backend.open(codec=EnvelopeCodec(MasterKeyRing.load(absent), encrypt=False))
        with pytest.raises(MasterKeyUnavailable) as exc:
            keyless.get_bytes(ref.digest)
        assert f"key file {absent} (absent)" in str(exc.value) and "AIDC_MASTER_KEY" in str(exc.value)
        with pytest.raises(MasterKeyUnavailable, match="encryption is on but no master key"):
            EnvelopeCodec(MasterKeyRing.load(absent), encrypt=True)

    def test_tampered_truncated_reordered_or_swapped_chunks_raise_integrity_error(
        self, store: ArtifactStore, backend: EncryptedBackend
    ) -> None:
        data = os.urandom(3 * MiB + 100)  # four chunks
        ref = store.put_bytes(data)
        other = store.put_bytes(os.urandom(3 * MiB + 100))
        header, chunks = _segments(backend.raw(ref.uri))
        _, foreign = _segments(backend.raw(other.uri))
        assert len(chunks) == 4
        flipped = bytearray(chunks[1])
        flipped[100] ^= 1
        forgeries = {
            "flipped bit": header + chunks[0] + bytes(flipped) + b"".join(chunks[2:]),
            "truncated at a chunk boundary": header + b"".join(chunks[:3]),
            "reordered": header + chunks[1] + chunks[0] + b"".join(chunks[2:]),
            "chunk of another artifact": header + chunks[0] + foreign[1] + b"".join(chunks[2:]),
            "header edited": header[:-1] + bytes([header[-1] ^ 1]) + b"".join(chunks),
            "cut inside the header": header[:20],
        }
        for what, forged in forgeries.items():
            backend.overwrite(ref.uri, forged)
            with pytest.raises(IntegrityError) as exc:
                store.get_bytes(ref.digest)
            assert ref.digest in str(exc.value), what
        assert store.put_bytes(data) == ref  # putting the original again repairs it
        assert store.get_bytes(ref.digest) == data

    def test_plaintext_artifacts_from_before_encryption_still_read(self, backend: EncryptedBackend) -> None:
        plain = backend.open(codec=EnvelopeCodec(MasterKeyRing(), encrypt=False))
        ref = plain.put_bytes(b"written before encryption was switched on")
        assert backend.raw(ref.uri) == b"written before encryption was switched on"
        encrypted = backend.open()
        assert encrypted.get_bytes(ref.digest) == b"written before encryption was switched on"
        lookalike = MAGIC + b"\x01 not really an envelope"
        with pytest.raises(InvalidInput, match="marker of an encrypted artifact"):
            plain.put_bytes(lookalike)  # it would not read back as plaintext
        assert encrypted.get_bytes(encrypted.put_bytes(lookalike).digest) == lookalike

    def test_rotation_rewraps_data_keys_without_rewriting_data(self, backend: EncryptedBackend, tmp_path: Path) -> None:
        platform = Platform(backend.settings(tmp_path / "home"))
        old = backend.ring().active
        small = platform.artifacts.put_bytes(b"small model")
        big = platform.artifacts.put_bytes(os.urandom(3 * MiB))
        before = {r.uri: (backend.raw(r.uri), backend.stamp(r.uri)) for r in (small, big)}
        status = platform.keys.status()
        assert old is not None and [(k["key_id"], k["artifacts"]) for k in status["keys"]] == [(old.key_id, 2)]

        done = platform.keys.rotate(local_access())
        assert done["rewrapped"] == 2 and done["failed"] == [] and done["retired"] == [old.key_id]
        assert {r.uri: (backend.raw(r.uri), backend.stamp(r.uri)) for r in (small, big)} == before
        new = backend.ring()
        assert [k.key_id for k in new.keys] == [done["master_key_id"]] != [old.key_id]  # only the new key is left
        only_new = backend.open(codec=EnvelopeCodec(new, encrypt=False))
        assert only_new.get_bytes(small.digest) == b"small model" and len(only_new.get_bytes(big.digest)) == 3 * MiB
        again = platform.keys.rotate(local_access())  # a second rotation works the same way
        assert again["rewrapped"] == 2 and again["master_key_id"] != done["master_key_id"]
        entries = platform.security.audit_list(action="keys.rotate")
        assert len(entries) == 2 and all(e.result == "ok" for e in entries)
        platform.close()

    def test_interrupted_rotation_loses_nothing_and_resumes(
        self, backend: EncryptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        platform = Platform(backend.settings(tmp_path / "home"))
        refs = [platform.artifacts.put_bytes(bytes([i]) * 1000) for i in range(4)]
        old = backend.ring().active
        store = platform.artifacts
        real_write, written = store.write_key_record, []  # type: ignore[attr-defined]

        def dies_after_two(hexdigest: str, record_id: str, data: bytes) -> None:
            if len(written) == 2:
                raise KeyboardInterrupt  # the operator's Ctrl-C, or the host going down
            written.append(hexdigest)
            real_write(hexdigest, record_id, data)

        monkeypatch.setattr(store, "write_key_record", dies_after_two)
        with pytest.raises(KeyboardInterrupt):
            platform.keys.rotate(local_access())
        monkeypatch.undo()
        ring = backend.ring()
        assert old is not None and [k.key_id for k in ring.keys][1:] == [old.key_id]  # old key still there
        half = backend.open(codec=EnvelopeCodec(ring, encrypt=False))
        assert all(half.get_bytes(r.digest) == bytes([i]) * 1000 for i, r in enumerate(refs))

        done = platform.keys.rotate(local_access())  # resumes the same rotation
        assert done["master_key_id"] == ring.keys[0].key_id
        assert (done["rewrapped"], done["already"], done["retired"]) == (2, 2, [old.key_id])
        finished = backend.open(codec=EnvelopeCodec(backend.ring(), encrypt=False))
        assert all(finished.get_bytes(r.digest) == bytes([i]) * 1000 for i, r in enumerate(refs))
        platform.close()


class TestEncryptedFileArtifactStore(EncryptedContract):
    @pytest.fixture()
    def backend(self, tmp_path: Path, key_file: Path) -> Backend:
        return EncryptedLocalBackend(tmp_path / "artifacts", key_file)


class TestEncryptedS3ArtifactStore(EncryptedContract, plain.TestS3ArtifactStore):
    @pytest.fixture()
    def backend(self, moto_s3_url: str, key_file: Path) -> Backend:
        return EncryptedS3Backend(moto_s3_url, key_file)

    def test_big_artifacts_go_up_in_parts(self, backend: Backend, tmp_path: Path) -> None:
        assert isinstance(backend, EncryptedS3Backend)
        store = backend.open()
        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(12 * MiB))
        ref = store.put_file(source)
        head = backend.s3.head_object(Bucket=backend.bucket, Key=urlsplit(ref.uri).path.lstrip("/"))
        assert head["ETag"].strip('"').endswith("-3")
        assert head["ContentLength"] == stored_size(ref.size)  # header + a 16-byte tag per MiB
        record = json.loads(
            store.read_key_record(
                ref.digest.removeprefix("sha256:"),  # type: ignore[attr-defined]
                backend.raw(ref.uri)[13:29].hex(),
            )
        )
        assert record["cipher"] == "AES-256-GCM" and record["digest"] == ref.digest
