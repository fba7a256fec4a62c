"""The seam where artifact bytes are transformed on their way to and from storage (encryption goes here)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator


class ArtifactCodec(ABC):
    """Turns content chunks into stored chunks and back, streaming.

    Content addresses are always the SHA-256 of the *content* (what ``encode`` receives and ``decode``
    returns), so the same artifact keeps its digest whatever the codec or key. A codec that detects
    tampering itself (AES-GCM tags) should raise ``aidc.errors.IntegrityError``. Codecs must pickle:
    stores carrying them are shipped to Ray workers.
    """

    @abstractmethod
    def encode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Content chunks → stored chunks."""

    @abstractmethod
    def decode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Stored chunks → content chunks."""


class PlainCodec(ArtifactCodec):
    """Stores content as it is."""

    def encode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        yield from chunks

    def decode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        yield from chunks

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlainCodec)

    def __hash__(self) -> int:
        return hash(PlainCodec)
