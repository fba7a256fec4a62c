"""SHA-256 content addresses: parsing user-given digests, formatting them, and the on-store layout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from aidc.errors import InvalidInput

ALGORITHM = "sha256"
# 1 MiB: big enough to keep per-chunk overhead negligible, small enough to keep memory flat.
CHUNK_SIZE = 1 << 20

_HEX = re.compile(r"[0-9a-f]{64}")
_LAYOUT = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{62})")


def parse_digest(digest: str) -> str:
    """Return the 64 lowercase hex characters of ``sha256:<hex>`` or ``<hex>``; InvalidInput otherwise."""
    if not isinstance(digest, str):
        raise InvalidInput(
            f"artifact digest must be a string, got {type(digest).__name__}",
            hint="pass 'sha256:<64 hex>' as returned in ArtifactRef.digest",
        )
    text = digest.strip()
    algorithm, sep, hexpart = text.partition(":")
    if not sep:
        algorithm, hexpart = ALGORITHM, text
    hexpart = hexpart.lower()
    if algorithm.lower() != ALGORITHM or not _HEX.fullmatch(hexpart):
        raise InvalidInput(
            f"malformed artifact digest {digest!r}",
            hint="expected 'sha256:' followed by 64 hex characters (the prefix is optional)",
        )
    return hexpart


def format_digest(hexdigest: str) -> str:
    return f"{ALGORITHM}:{hexdigest}"


def relative_key(hexdigest: str) -> str:
    """Layout ``sha256/<2 hex>/<62 hex>``: the 2-hex fan-out keeps any one directory or prefix small."""
    return f"{ALGORITHM}/{hexdigest[:2]}/{hexdigest[2:]}"


def digest_of_key(relative: str) -> str | None:
    """The hex digest a relative key stands for, or None for anything that is not a content address."""
    match = _LAYOUT.fullmatch(relative)
    return match.group(1) + match.group(2) if match else None


def read_chunks(stream: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    while True:
        chunk = stream.read(size)
        if not chunk:
            return
        yield chunk
