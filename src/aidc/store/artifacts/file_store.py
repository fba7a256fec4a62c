"""FileArtifactStore: artifacts in a local directory (``file://``), written via temp file + os.replace."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from aidc.errors import BackendUnavailable

from .base import ArtifactRef
from .codec import ArtifactCodec, CodecWriter
from .fsspec_store import ContentMeter, FsspecArtifactStore, changed_while_storing, source_chunks


class FileArtifactStore(FsspecArtifactStore):
    """Content-addressed artifacts under a local directory.

    Unfinished writes live in ``<root>/tmp`` (same filesystem as the content addresses, so the final
    ``os.replace`` is atomic): a crash leaves at most a stray temp file, never a partial artifact.
    """

    unavailable_hint = "choose a local directory this user can create and write (AIDC_HOME or the store URL)"

    def __init__(self, root: str | Path, *, codec: ArtifactCodec | None = None) -> None:
        root_path = Path(root).expanduser().absolute()
        super().__init__(url=root_path.as_uri(), root=str(root_path), codec=codec)

    def _make_fs(self) -> Any:
        import fsspec

        return fsspec.filesystem("file")

    def _uri_for_path(self, path: str) -> str:
        return Path(path).as_uri()

    def ensure_ready(self) -> None:
        root = Path(self._root)
        try:
            (root / "sha256").mkdir(parents=True, exist_ok=True)
            (root / "tmp").mkdir(exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot use {root} as the artifact store: {exc}", where=self.url, hint=self.unavailable_hint
            ) from exc
        if not os.access(root / "tmp", os.W_OK):
            raise BackendUnavailable(
                f"artifact store directory {root} is not writable", where=self.url, hint=self.unavailable_hint
            )

    # -- writes ---------------------------------------------------------------------------------

    def put_stream(self, stream: BinaryIO) -> ArtifactRef:
        # A local rename is free, so one pass: write to a temp file while hashing, then move into place.
        with self._translated("storing artifact", self.url):
            partial, meter, writer = self._write_partial(source_chunks(stream))
            try:
                if not self._is_intact(meter.hexdigest):
                    self._store_key_record(meter.hexdigest, writer)
                    self._commit(partial, meter.hexdigest)
            finally:
                partial.unlink(missing_ok=True)
        return self._ref(meter.hexdigest, meter.size)

    def _write_object(self, hexdigest: str, chunks: Iterable[bytes]) -> None:
        partial, meter, writer = self._write_partial(chunks)
        try:
            if meter.hexdigest != hexdigest:
                raise changed_while_storing(hexdigest, meter.hexdigest, self._uri_for_path(self._path(hexdigest)))
            self._store_key_record(hexdigest, writer)
            self._commit(partial, hexdigest)
        finally:
            partial.unlink(missing_ok=True)

    def _write_encoded(self, hexdigest: str, writer: CodecWriter, stored: Iterable[bytes]) -> None:
        partial, _, _ = self._write_partial(stored, encoded=True)
        try:
            self._store_key_record(hexdigest, writer)
            self._commit(partial, hexdigest)
        finally:
            partial.unlink(missing_ok=True)

    def _put_small(self, path: str, data: bytes) -> None:
        # Temp file + rename: a key record is replaced whole when re-wrapped, never left half-written.
        temp_dir = Path(self._root) / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        partial = temp_dir / f"{uuid.uuid4().hex}.part"
        try:
            with partial.open("wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def _write_partial(
        self, chunks: Iterable[bytes], *, encoded: bool = False
    ) -> tuple[Path, ContentMeter, CodecWriter]:
        temp_dir = Path(self._root) / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        partial = temp_dir / f"{uuid.uuid4().hex}.part"
        meter = ContentMeter()
        writer = self._codec.writer()
        try:
            with partial.open("wb") as out:
                for chunk in chunks if encoded else writer.encode(meter.watch(chunks)):
                    out.write(chunk)
                out.flush()
                # Durable before it becomes visible: after a power loss the address holds whole bytes or nothing.
                os.fsync(out.fileno())
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return partial, meter, writer

    def _commit(self, partial: Path, hexdigest: str) -> None:
        final = Path(self._path(hexdigest))
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
