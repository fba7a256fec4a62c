"""Content-addressed artifact storage (SHA-256, verified on read): pick a backend by URL scheme."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from aidc.errors import InvalidInput

from .base import ArtifactRef, ArtifactStore
from .codec import ArtifactCodec, PlainCodec
from .envelope import EnvelopeCodec
from .file_store import FileArtifactStore
from .s3_store import S3ArtifactStore

__all__ = [
    "ArtifactCodec",
    "ArtifactRef",
    "ArtifactStore",
    "EnvelopeCodec",
    "FileArtifactStore",
    "PlainCodec",
    "S3ArtifactStore",
    "SUPPORTED_SCHEMES",
    "open_artifact_store",
]

SUPPORTED_SCHEMES = ("file", "s3")


def open_artifact_store(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    storage_options: dict[str, Any] | None = None,
    codec: ArtifactCodec | None = None,
) -> ArtifactStore:
    """Open (and prepare) the store at ``url``: ``file:///abs/dir`` (or a plain path) or ``s3://bucket/prefix``.

    ``codec`` transforms stored bytes (``EnvelopeCodec`` encrypts); without one the store writes plaintext
    and still recognises encrypted artifacts. Raises InvalidInput for an unsupported scheme,
    BackendUnavailable when the backend cannot be reached.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    store: ArtifactStore
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(
                f"file:// artifact store URL names a host: {url!r}",
                hint="use file:///absolute/path (three slashes) for a local directory",
            )
        store = FileArtifactStore(Path(unquote(parts.path)), codec=codec)
    elif scheme == "":
        store = FileArtifactStore(Path(url), codec=codec)
    elif scheme == "s3":
        store = S3ArtifactStore(url, endpoint_url=s3_endpoint_url, storage_options=storage_options, codec=codec)
    else:
        raise InvalidInput(
            f"unsupported artifact store scheme {parts.scheme!r} in {url!r}",
            hint=f"supported schemes: {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}",
        )
    store.ensure_ready()
    return store
