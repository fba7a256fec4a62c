"""The artifact store contract: ArtifactRef and the ArtifactStore ABC every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class ArtifactRef:
    """Where one artifact lives and how to recognise it: its SHA-256 content address and plaintext size."""

    digest: str  # "sha256:<64 hex>"
    size: int  # bytes of the artifact's content (not of its stored, possibly encoded, form)
    uri: str  # e.g. file:///home/x/.aidc/artifacts/sha256/ab/cdef… or s3://bucket/prefix/sha256/ab/…


class ArtifactStore(ABC):
    """Content-addressed bytes: put returns the SHA-256 address, get verifies the bytes against it.

    Every read is verified: corrupted bytes raise ``aidc.errors.IntegrityError`` naming the digest and
    where the copy lives, never returning wrong data. Digests are accepted with or without the
    ``sha256:`` prefix. Instances pickle, so a store can be shipped to Ray workers. A store whose codec
    encrypts (``EnvelopeCodec``) also keeps one small key record per artifact under ``keys/``, apart from
    the data objects (see envelope.py).
    """

    url: str

    @abstractmethod
    def put_bytes(self, data: bytes) -> ArtifactRef:
        """Store ``data``; idempotent (an intact copy already present is not rewritten)."""

    @abstractmethod
    def put_file(self, path: str | Path) -> ArtifactRef:
        """Store a local file, streaming it (never loaded whole in memory)."""

    @abstractmethod
    def put_stream(self, stream: BinaryIO) -> ArtifactRef:
        """Store everything readable from a binary stream; nothing lands at the address if it fails."""

    @abstractmethod
    def get_bytes(self, digest: str) -> bytes:
        """Return the verified content; NotFound if absent, IntegrityError if corrupted."""

    @abstractmethod
    def get_file(self, digest: str, dest: str | Path) -> Path:
        """Stream the verified content to ``dest`` (temp name, verify, rename); same errors as get_bytes."""

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether something is stored at the address (not verified; reads verify)."""

    @abstractmethod
    def uri_of(self, digest: str) -> str:
        """The URI the artifact with this digest lives (or would live) at."""

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove the artifact; deleting an absent one is a no-op so concurrent cleanups don't race."""

    @abstractmethod
    def iter_digests(self) -> Iterator[str]:
        """Every stored digest, as ``sha256:<hex>``, in no particular order."""

    def ensure_ready(self) -> None:
        """Check the backend is reachable and prepare it (create the root or bucket); no-op by default."""
        return None
