"""The seam where artifact bytes are transformed on their way to and from storage (encryption goes here)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol


class KeyRecords(Protocol):
    """Where a store keeps the small per-artifact key records a codec needs, apart from the data objects."""

    def read_key_record(self, hexdigest: str, record_id: str) -> bytes | None: ...

    def key_record_uri(self, hexdigest: str, record_id: str) -> str: ...

    def uri_of(self, digest: str) -> str: ...


class CodecWriter:
    """One artifact being encoded: ``encode`` its chunks, then ``key_record`` (once its digest is known)
    is what the store must write *before* the data object becomes visible, or None."""

    def __init__(self, encode: Callable[[Iterable[bytes]], Iterator[bytes]]) -> None:
        self.encode = encode

    def key_record(self, hexdigest: str) -> tuple[str, bytes] | None:
        return None

    def stale_record(self, hexdigest: str) -> bytes | None:
        """Asked once the key record is stored: a replacement for it if it is already out of date (a master
        key rotation began while it was written), else None."""
        return None


class ArtifactCodec(ABC):
    """Turns content chunks into stored chunks and back, streaming.

    Content addresses are always the SHA-256 of the *content* (what ``encode`` receives and ``decode``
    returns), so the same artifact keeps its digest whatever the codec or key. A codec that detects
    tampering itself (AES-GCM tags) should raise ``aidc.errors.IntegrityError``. Codecs must pickle:
    stores carrying them are shipped to Ray workers.
    """

    def writer(self) -> CodecWriter:
        """A fresh encoder for one artifact (a codec with per-artifact keys makes them here)."""
        return CodecWriter(self.encode)

    @abstractmethod
    def encode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Content chunks → stored chunks (for codecs without per-artifact state)."""

    @abstractmethod
    def decode(
        self, chunks: Iterable[bytes], *, hexdigest: str = "", records: KeyRecords | None = None
    ) -> Iterator[bytes]:
        """Stored chunks of the artifact at ``hexdigest`` → content chunks; ``records`` holds its key records."""


class PlainCodec(ArtifactCodec):
    """Stores content as it is."""

    def encode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        yield from chunks

    def decode(
        self, chunks: Iterable[bytes], *, hexdigest: str = "", records: KeyRecords | None = None
    ) -> Iterator[bytes]:
        yield from chunks

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlainCodec)

    def __hash__(self) -> int:
        return hash(PlainCodec)
