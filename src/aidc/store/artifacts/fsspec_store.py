"""The artifact-store algorithm shared by every fsspec backend: layout, verified reads, idempotent puts."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import uuid
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from aidc.errors import AidcError, BackendUnavailable, IntegrityError, InvalidInput, NotFound, PermissionDenied

from .base import ArtifactRef, ArtifactStore
from .codec import ArtifactCodec, CodecWriter
from .digests import CHUNK_SIZE, digest_of_key, format_digest, parse_digest, read_chunks, relative_key

log = logging.getLogger(__name__)

# Streams up to this size are spooled in memory before a two-pass upload; bigger ones go to a temp file.
_SPOOL_IN_MEMORY = 8 * CHUNK_SIZE


class ContentMeter:
    """SHA-256 and byte count of the content flowing through ``watch``."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def watch(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._hash.update(chunk)
            self.size += len(chunk)
            yield chunk

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def source_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Read the caller's stream, marking its OSErrors so they are not blamed on the backend."""
    try:
        yield from read_chunks(stream)
    except OSError as exc:
        exc.aidc_from_source = True  # type: ignore[attr-defined]
        raise


def changed_while_storing(expected: str, actual: str, uri: str) -> IntegrityError:
    return IntegrityError(
        f"content changed while being stored: expected {format_digest(expected)}, read {format_digest(actual)}",
        hint="the source was modified during the put; store it again once it no longer changes",
        where=uri,
    )


class FsspecArtifactStore(ArtifactStore):
    """An ArtifactStore over one fsspec filesystem rooted at ``root`` (a path in that filesystem)."""

    #: what to try when the backend cannot be reached; subclasses say something specific.
    unavailable_hint = "check that the artifact store is reachable and writable"

    def __init__(self, url: str, root: str, *, codec: ArtifactCodec | None = None) -> None:
        self.url = url
        self._root = root.rstrip("/")
        self._codec: ArtifactCodec = codec or _reader_codec()
        self._fs_instance: Any = None

    # -- what a backend provides ------------------------------------------------------------------

    @abstractmethod
    def _make_fs(self) -> Any:
        """Build the fsspec filesystem (called lazily, again after unpickling)."""

    @abstractmethod
    def _uri_for_path(self, path: str) -> str:
        """The user-facing URI of a filesystem path."""

    @abstractmethod
    def _write_object(self, hexdigest: str, chunks: Iterable[bytes]) -> None:
        """Store ``chunks`` at the content address atomically, only if they hash to ``hexdigest``."""

    @abstractmethod
    def _write_encoded(self, hexdigest: str, writer: CodecWriter, stored: Iterable[bytes]) -> None:
        """Store already-encoded chunks (of content known to hash to ``hexdigest``) at the address atomically,
        the writer's key record first."""

    def _put_small(self, path: str, data: bytes) -> None:
        """Write a small object whole or not at all (a single PUT on object stores)."""
        self._fs.pipe_file(path, data)

    def _backend_errors(self) -> tuple[type[BaseException], ...]:
        """Exceptions meaning 'the backend failed' (translated to BackendUnavailable)."""
        return (OSError,)

    # -- pickling: ship the configuration, rebuild the filesystem client where it lands ---------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fs_instance"] = None
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def _fs(self) -> Any:
        if self._fs_instance is None:
            self._fs_instance = self._make_fs()
        return self._fs_instance

    # -- layout ---------------------------------------------------------------------------------

    def _path(self, hexdigest: str) -> str:
        return f"{self._root}/{relative_key(hexdigest)}"

    def uri_of(self, digest: str) -> str:
        return self._uri_for_path(self._path(parse_digest(digest)))

    def _ref(self, hexdigest: str, size: int) -> ArtifactRef:
        return ArtifactRef(digest=format_digest(hexdigest), size=size, uri=self._uri_for_path(self._path(hexdigest)))

    @contextmanager
    def _translated(self, action: str, where: str) -> Iterator[None]:
        try:
            yield
        except AidcError:
            raise
        except PermissionError as exc:
            raise PermissionDenied(
                f"{action} was refused: {exc}",
                where=where,
                hint="check the credentials and permissions for the artifact store",
            ) from exc
        except self._backend_errors() as exc:
            if getattr(exc, "aidc_from_source", False):
                raise
            raise BackendUnavailable(f"{action} failed: {exc}", where=where, hint=self.unavailable_hint) from exc

    # -- writes ---------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> ArtifactRef:
        hexdigest = hashlib.sha256(data).hexdigest()
        chunks = (data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE))
        return self._put_known(hexdigest, len(data), chunks)

    def put_file(self, path: str | Path) -> ArtifactRef:
        source = Path(path)
        if not source.is_file():
            raise NotFound(
                f"no file to store at {source}", where=str(source), hint="pass the path of an existing regular file"
            )
        with source.open("rb") as stream:
            return self.put_stream(stream)

    def put_stream(self, stream: BinaryIO) -> ArtifactRef:
        # The address must be known before writing (object stores have no rename), so hash first:
        # a seekable source is read twice; anything else is spooled while hashing.
        if _seekable(stream):
            start = stream.tell()
            meter = ContentMeter()
            for _ in meter.watch(source_chunks(stream)):
                pass
            stream.seek(start)
            return self._put_known(meter.hexdigest, meter.size, source_chunks(stream))
        # The spool holds the *encoded* bytes, so an encrypted store never spills plaintext to a temp file.
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            meter = ContentMeter()
            writer = self._codec.writer()
            for chunk in writer.encode(meter.watch(source_chunks(stream))):
                spool.write(chunk)
            spool.seek(0)
            if not self._is_intact(meter.hexdigest):
                with self._translated("storing artifact", self._uri_for_path(self._path(meter.hexdigest))):
                    self._write_encoded(meter.hexdigest, writer, read_chunks(spool))  # type: ignore[arg-type]
            return self._ref(meter.hexdigest, meter.size)

    def _put_known(self, hexdigest: str, size: int, chunks: Iterable[bytes]) -> ArtifactRef:
        if not self._is_intact(hexdigest):
            with self._translated("storing artifact", self._uri_for_path(self._path(hexdigest))):
                self._write_object(hexdigest, chunks)
        return self._ref(hexdigest, size)

    def _is_intact(self, hexdigest: str) -> bool:
        """Present and verified. Verifying costs a read, but lets a put repair a corrupted copy."""
        if not self._exists_hex(hexdigest):
            return False
        try:
            for _ in self._verified_chunks(hexdigest):
                pass
        except (IntegrityError, NotFound) as exc:
            log.warning("replacing unusable stored copy: %s", exc)
            return False
        return True

    # -- reads ----------------------------------------------------------------------------------

    def _verified_chunks(self, hexdigest: str) -> Iterator[bytes]:
        """Yield the content; raise IntegrityError after the last chunk if it does not hash to the address.

        Callers must not use the content as final before the generator finishes.
        """
        path = self._path(hexdigest)
        uri = self._uri_for_path(path)
        meter = ContentMeter()
        with self._translated("reading artifact", uri):
            try:
                stored = self._fs.open(path, "rb")
            except FileNotFoundError:
                raise NotFound(
                    f"artifact {format_digest(hexdigest)} is not in the store",
                    where=uri,
                    hint="check the digest, or put the artifact first",
                ) from None
            with stored:
                yield from meter.watch(self._codec.decode(read_chunks(stored), hexdigest=hexdigest, records=self))
        if meter.hexdigest != hexdigest:
            raise IntegrityError(
                f"artifact {format_digest(hexdigest)} is corrupted: its stored content hashes to "
                f"{format_digest(meter.hexdigest)}",
                where=uri,
                hint="the stored copy was modified or damaged; put the original again to repair it, or delete it",
            )

    def get_bytes(self, digest: str) -> bytes:
        return b"".join(list(self._verified_chunks(parse_digest(digest))))

    def get_file(self, digest: str, dest: str | Path) -> Path:
        hexdigest = parse_digest(digest)
        target = Path(dest)
        if target.is_dir():
            raise InvalidInput(f"{target} is a directory", where=str(target), hint="pass a file path to write to")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Same directory as the target so the final rename is atomic; dot-name so it reads as unfinished.
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with partial.open("wb") as out:
                for chunk in self._verified_chunks(hexdigest):
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def _exists_hex(self, hexdigest: str) -> bool:
        path = self._path(hexdigest)
        with self._translated("checking artifact", self._uri_for_path(path)):
            try:
                self._fs.info(path)
            except FileNotFoundError:
                return False
        return True

    def exists(self, digest: str) -> bool:
        return self._exists_hex(parse_digest(digest))

    def delete(self, digest: str) -> None:
        hexdigest = parse_digest(digest)
        path = self._path(hexdigest)
        with self._translated("deleting artifact", self._uri_for_path(path)):
            try:
                self._fs.rm_file(path)
            except FileNotFoundError:
                pass
            # After the data: a crash in between leaves a harmless record, never data without its key.
            for record_id in self._record_ids(hexdigest):
                try:
                    self._fs.rm_file(self._key_record_path(hexdigest, record_id))
                except FileNotFoundError:
                    pass

    def iter_digests(self) -> Iterator[str]:
        top = f"{self._root}/sha256"
        with self._translated("listing artifacts", self._uri_for_path(top)):
            paths = self._fs.find(top)
        for path in paths:
            hexdigest = digest_of_key(path[len(self._root) + 1 :])
            if hexdigest is not None:
                yield format_digest(hexdigest)

    # -- key records (envelope encryption): small objects apart from the data, see envelope.py --------

    @property
    def codec(self) -> ArtifactCodec:
        return self._codec

    def _key_record_path(self, hexdigest: str, record_id: str) -> str:
        return f"{self._root}/{KEYS_DIR}/{relative_key(hexdigest)}/{record_id}.json"

    def key_record_uri(self, hexdigest: str, record_id: str) -> str:
        return self._uri_for_path(self._key_record_path(hexdigest, record_id))

    def read_key_record(self, hexdigest: str, record_id: str) -> bytes | None:
        path = self._key_record_path(hexdigest, record_id)
        with self._translated("reading key record", self._uri_for_path(path)):
            try:
                return bytes(self._fs.cat_file(path))
            except FileNotFoundError:
                return None

    def write_key_record(self, hexdigest: str, record_id: str, data: bytes) -> None:
        """Write (or replace, when re-wrapping) one key record, atomically."""
        path = self._key_record_path(hexdigest, record_id)
        with self._translated("writing key record", self._uri_for_path(path)):
            self._put_small(path, data)

    def _store_key_record(self, hexdigest: str, writer: CodecWriter) -> None:
        record = writer.key_record(hexdigest)
        if record is None:
            return
        self.write_key_record(hexdigest, *record)
        # A rotation that listed the records before this one existed would never re-wrap it: look again.
        again = writer.stale_record(hexdigest)
        if again is not None:
            self.write_key_record(hexdigest, record[0], again)

    def _record_ids(self, hexdigest: str) -> list[str]:
        folder = f"{self._root}/{KEYS_DIR}/{relative_key(hexdigest)}"
        try:
            names = self._fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        return [n.rsplit("/", 1)[-1].removesuffix(".json") for n in names if n.endswith(".json")]

    def iter_key_records(self) -> Iterator[tuple[str, str]]:
        """(hex digest, record id) of every key record, in no particular order."""
        top = f"{self._root}/{KEYS_DIR}"
        with self._translated("listing key records", self._uri_for_path(top)):
            try:
                paths = self._fs.find(top)
            except FileNotFoundError:
                paths = []
        for path in paths:
            relative, _, name = path[len(top) + 1 :].rpartition("/")
            hexdigest = digest_of_key(relative)
            if hexdigest is not None and name.endswith(".json"):
                yield hexdigest, name.removesuffix(".json")

    def stored_object_id(self, hexdigest: str) -> str | None:
        """The envelope object id in the data object's header (None for a plaintext or absent artifact)."""
        from .envelope import HEADER_LEN, MAGIC

        path = self._path(hexdigest)
        with self._translated("reading artifact", self._uri_for_path(path)):
            try:
                head = self._fs.cat_file(path, start=0, end=HEADER_LEN)  # a ranged GET, not a whole block
            except FileNotFoundError:
                return None
        if len(head) < HEADER_LEN or head[: len(MAGIC)] != MAGIC:
            return None
        return bytes(head[13:29]).hex()


KEYS_DIR = "keys"


def _reader_codec() -> ArtifactCodec:
    """Without a configured codec a store writes plaintext but still recognises encrypted artifacts, so
    reading one says which master key it needs instead of reporting it corrupted."""
    from .envelope import EnvelopeCodec
    from .keyring import MasterKeyRing

    return EnvelopeCodec(MasterKeyRing(), encrypt=False)


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable()) and stream.tell() >= 0
    except (AttributeError, OSError, ValueError):
        return False
