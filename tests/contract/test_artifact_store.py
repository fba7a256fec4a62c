"""ArtifactStore contract: every backend (local directory, S3) must behave the same way for these."""

from __future__ import annotations

import hashlib
import os
import pickle
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aidc.errors import IntegrityError, InvalidInput, NotFound
from aidc.store.artifacts import (
    ArtifactCodec,
    ArtifactStore,
    FileArtifactStore,
    PlainCodec,
    S3ArtifactStore,
    open_artifact_store,
)
from aidc.store.artifacts.digests import digest_of_key

MiB = 1 << 20
PART_SIZE = 5 * MiB  # S3's minimum part size: a 12 MiB artifact then takes a 3-part multipart upload


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BreaksHalfway:
    """A source stream that fails with OSError once half its bytes have been read."""

    def __init__(self, data: bytes, *, seekable: bool) -> None:
        self._data, self._pos, self._seekable = data, 0, seekable

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._data) // 2:
            raise OSError("source went away")
        size = len(self._data) if size < 0 else size
        end = min(self._pos + size, len(self._data) // 2 + 1)
        chunk, self._pos = self._data[self._pos : end], end
        return chunk

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos
        return pos


class ExplodesMidWrite(PlainCodec):
    """Fails after 8 MiB have gone to the backend: a crash in the middle of the upload itself."""

    def encode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        sent = 0
        for chunk in chunks:
            if sent >= 8 * MiB:
                raise RuntimeError("crashed mid-write")
            sent += len(chunk)
            yield chunk


class Backend:
    """How a test opens a store of one kind and looks behind its back."""

    def open(self, codec: ArtifactCodec | None = None) -> ArtifactStore:
        raise NotImplementedError

    def overwrite(self, uri: str, data: bytes) -> None:
        raise NotImplementedError

    def leftovers(self) -> list[str]:
        """Anything stored that is not a complete artifact (temp files, pending uploads)."""
        raise NotImplementedError


class ArtifactStoreContract:
    @pytest.fixture()
    def backend(self) -> Backend:
        raise NotImplementedError

    @pytest.fixture()
    def store(self, backend: Backend) -> ArtifactStore:
        return backend.open()

    def test_bytes_round_trip_at_their_content_address(self, store: ArtifactStore) -> None:
        data = b"weights \x00\xff" * 1000
        ref = store.put_bytes(data)
        assert ref.digest == sha(data) and ref.size == len(data)
        assert ref.uri == store.uri_of(ref.digest) and ref.uri.startswith(store.url + "/sha256/")
        hexdigest = ref.digest.removeprefix("sha256:")
        assert ref.uri.endswith(f"/sha256/{hexdigest[:2]}/{hexdigest[2:]}")
        assert store.get_bytes(ref.digest) == data
        assert store.get_bytes(hexdigest) == data  # the prefix is optional
        assert store.exists(ref.digest) and store.exists(hexdigest.upper())

    def test_empty_artifact_round_trips(self, store: ArtifactStore) -> None:
        ref = store.put_bytes(b"")
        assert ref.size == 0 and store.get_bytes(ref.digest) == b""

    def test_multi_mib_file_round_trips_through_files(self, store: ArtifactStore, tmp_path: Path) -> None:
        data = os.urandom(12 * MiB + 123)
        source = tmp_path / "model.onnx"
        source.write_bytes(data)
        ref = store.put_file(source)
        assert ref.digest == sha(data) and ref.size == len(data)
        out = store.get_file(ref.digest, tmp_path / "out" / "model.onnx")
        assert out == tmp_path / "out" / "model.onnx" and out.read_bytes() == data
        assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no temp file left beside it

    def test_put_is_idempotent_and_does_not_rewrite(
        self, store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = store.put_bytes(b"same bytes")
        writes: list[str] = []
        original = store._write_object  # type: ignore[attr-defined]
        monkeypatch.setattr(store, "_write_object", lambda h, c: (writes.append(h), original(h, c)))
        source = tmp_path / "same.bin"
        source.write_bytes(b"same bytes")
        assert store.put_bytes(b"same bytes") == first
        assert store.put_file(source) == first
        assert writes == []
        assert list(store.iter_digests()) == [first.digest]

    def test_corrupted_artifact_raises_integrity_error_naming_it(
        self, store: ArtifactStore, backend: Backend, tmp_path: Path
    ) -> None:
        data = b"the real model" * 100
        ref = store.put_bytes(data)
        backend.overwrite(ref.uri, b"tampered" + data[8:])
        with pytest.raises(IntegrityError) as exc:
            store.get_bytes(ref.digest)
        assert ref.digest in str(exc.value) and ref.uri in str(exc.value)
        (tmp_path / "out").mkdir()
        dest = tmp_path / "out" / "model.bin"
        dest.write_bytes(b"previous version")
        with pytest.raises(IntegrityError):
            store.get_file(ref.digest, dest)
        assert dest.read_bytes() == b"previous version"  # never replaced by unverified bytes
        assert list(dest.parent.iterdir()) == [dest]  # nor is a temp file left beside it
        # Putting the original again repairs the stored copy.
        assert store.put_bytes(data) == ref
        assert store.get_bytes(ref.digest) == data

    def test_missing_artifact_is_not_found(self, store: ArtifactStore, tmp_path: Path) -> None:
        absent = sha(b"never stored")
        assert not store.exists(absent)
        with pytest.raises(NotFound) as exc:
            store.get_bytes(absent)
        assert absent in str(exc.value)
        with pytest.raises(NotFound):
            store.get_file(absent, tmp_path / "x")
        assert not (tmp_path / "x").exists()
        with pytest.raises(NotFound):
            store.put_file(tmp_path / "no-such-file")

    @pytest.mark.parametrize(
        "digest", ["", "sha256:", "sha256:abc", "md5:" + "0" * 64, "z" * 64, "sha256:" + "0" * 65, "../" + "0" * 61]
    )
    def test_malformed_digest_is_invalid_input(self, store: ArtifactStore, digest: str) -> None:
        for call in (store.get_bytes, store.exists, store.uri_of, store.delete):
            with pytest.raises(InvalidInput):
                call(digest)

    def test_pickled_store_reads_and_writes_the_same_artifacts(self, store: ArtifactStore) -> None:
        ref = store.put_bytes(b"before shipping")
        clone = pickle.loads(pickle.dumps(store))
        assert clone.url == store.url
        assert clone.get_bytes(ref.digest) == b"before shipping"
        back = clone.put_bytes(b"written by a worker")
        assert store.get_bytes(back.digest) == b"written by a worker"

    def test_iter_digests_and_delete(self, store: ArtifactStore) -> None:
        assert list(store.iter_digests()) == []
        refs = [store.put_bytes(bytes([i]) * 10) for i in range(3)]
        assert sorted(store.iter_digests()) == sorted(r.digest for r in refs)
        store.delete(refs[0].digest)
        assert not store.exists(refs[0].digest)
        with pytest.raises(NotFound):
            store.get_bytes(refs[0].digest)
        assert sorted(store.iter_digests()) == sorted(r.digest for r in refs[1:])
        store.delete(refs[0].digest)  # already gone: no error

    @pytest.mark.parametrize("seekable", [True, False])
    def test_source_failing_mid_stream_leaves_nothing(
        self, store: ArtifactStore, backend: Backend, seekable: bool
    ) -> None:
        data = os.urandom(3 * MiB)
        with pytest.raises(OSError, match="source went away"):  # the source's own error, not blamed on the store
            store.put_stream(BreaksHalfway(data, seekable=seekable))  # type: ignore[arg-type]
        assert not store.exists(sha(data))
        assert list(store.iter_digests()) == []
        assert backend.leftovers() == []

    def test_crash_mid_write_leaves_nothing_at_the_address(self, backend: Backend, tmp_path: Path) -> None:
        store = backend.open(codec=ExplodesMidWrite())
        data = os.urandom(12 * MiB)
        source = tmp_path / "big.bin"
        source.write_bytes(data)
        for put in (lambda: store.put_file(source), lambda: store.put_bytes(data)):
            with pytest.raises(RuntimeError, match="crashed mid-write"):
                put()
            assert not store.exists(sha(data))
            assert list(store.iter_digests()) == []
            assert backend.leftovers() == []


# -- local directory ---------------------------------------------------------------------------


class LocalBackend(Backend):
    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, codec: ArtifactCodec | None = None) -> ArtifactStore:
        if codec is None:
            return open_artifact_store(self.root.as_uri())
        store = FileArtifactStore(self.root, codec=codec)
        store.ensure_ready()
        return store

    def overwrite(self, uri: str, data: bytes) -> None:
        Path(urlsplit(uri).path).write_bytes(data)

    def leftovers(self) -> list[str]:
        files = [p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()]
        return [f for f in files if digest_of_key(f) is None]


class TestFileArtifactStore(ArtifactStoreContract):
    @pytest.fixture()
    def backend(self, tmp_path: Path) -> Backend:
        return LocalBackend(tmp_path / "artifacts")


# -- S3 (moto server) --------------------------------------------------------------------------


class S3Backend(Backend):
    def __init__(self, endpoint: str) -> None:
        import boto3

        self.endpoint = endpoint
        self.bucket = f"aidc-test-{uuid.uuid4().hex[:12]}"  # not created: the store must create it
        self.url = f"s3://{self.bucket}/artifacts"
        self.options = {"default_block_size": PART_SIZE}
        self.s3 = boto3.client("s3", endpoint_url=endpoint)

    def open(self, codec: ArtifactCodec | None = None) -> ArtifactStore:
        if codec is None:
            return open_artifact_store(self.url, s3_endpoint_url=self.endpoint, storage_options=self.options)
        store = S3ArtifactStore(self.url, endpoint_url=self.endpoint, storage_options=self.options, codec=codec)
        store.ensure_ready()
        return store

    def overwrite(self, uri: str, data: bytes) -> None:
        parts = urlsplit(uri)
        self.s3.put_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"), Body=data)

    def keys(self) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def leftovers(self) -> list[str]:
        pending = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        odd = [k for k in self.keys() if digest_of_key(k.removeprefix("artifacts/")) is None]
        return odd + [f"pending upload {u['Key']}" for u in pending]


class TestS3ArtifactStore(ArtifactStoreContract):
    @pytest.fixture()
    def backend(self, moto_s3_url: str) -> Backend:
        return S3Backend(moto_s3_url)

    def test_big_artifacts_go_up_in_parts(self, backend: Backend, tmp_path: Path) -> None:
        assert isinstance(backend, S3Backend)
        store = backend.open()
        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(12 * MiB))
        ref = store.put_file(source)
        head = backend.s3.head_object(Bucket=backend.bucket, Key=urlsplit(ref.uri).path.lstrip("/"))
        assert head["ETag"].strip('"').endswith("-3")  # a 3-part multipart upload
        assert head["ContentLength"] == ref.size

    def test_source_changing_between_hash_and_upload_stores_nothing(self, backend: Backend) -> None:
        store = backend.open()

        class ChangesOnSecondRead:
            """Seekable, so the store hashes it first; someone rewrites it before the upload pass."""

            def __init__(self) -> None:
                self.passes, self.pos = 0, 0

            def read(self, size: int = -1) -> bytes:
                data = b"A" * 1000 if self.passes == 0 else b"B" * 1000
                chunk, self.pos = data[self.pos :], 1000
                return chunk

            def seekable(self) -> bool:
                return True

            def tell(self) -> int:
                return self.pos

            def seek(self, pos: int, whence: int = 0) -> int:
                self.passes, self.pos = self.passes + 1, pos
                return pos

        with pytest.raises(IntegrityError, match="changed while being stored"):
            store.put_stream(ChangesOnSecondRead())  # type: ignore[arg-type]
        assert list(store.iter_digests()) == []
        assert backend.leftovers() == []
