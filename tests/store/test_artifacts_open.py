"""open_artifact_store: choosing a backend by URL, and the errors a user meets when it is wrong or down."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from aidc.errors import BackendUnavailable, InvalidInput
from aidc.store.artifacts import FileArtifactStore, S3ArtifactStore, open_artifact_store


def test_file_url_and_plain_path_open_a_local_store(tmp_path: Path) -> None:
    root = tmp_path / "with space" / "artifacts"
    by_url = open_artifact_store(root.as_uri())
    by_path = open_artifact_store(str(root))
    assert isinstance(by_url, FileArtifactStore) and by_url.url == by_path.url == root.as_uri()
    ref = by_url.put_bytes(b"x")
    assert by_path.get_bytes(ref.digest) == b"x"
    assert (root / "sha256").is_dir()


def test_unknown_scheme_is_invalid_input_listing_supported_ones() -> None:
    with pytest.raises(InvalidInput) as exc:
        open_artifact_store("gs://bucket/artifacts")
    assert "gs" in exc.value.message and "file://" in (exc.value.hint or "") and "s3://" in (exc.value.hint or "")


def test_file_url_with_a_host_is_rejected() -> None:
    with pytest.raises(InvalidInput) as exc:
        open_artifact_store("file://server/share/artifacts")
    assert "file:///" in (exc.value.hint or "")


def test_s3_url_without_bucket_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        S3ArtifactStore("s3:///prefix")


def test_unusable_local_root_is_backend_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(BackendUnavailable) as exc:
        open_artifact_store((blocker / "artifacts").as_uri())
    assert str(blocker) in str(exc.value) and exc.value.hint


def test_unreachable_s3_is_backend_unavailable_naming_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("s3fs")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # One attempt, so the test does not sit through botocore's retry back-off.
    options = {"config_kwargs": {"retries": {"max_attempts": 1}}}
    with pytest.raises(BackendUnavailable) as exc:
        open_artifact_store("s3://bucket/artifacts", s3_endpoint_url=endpoint, storage_options=options)
    assert endpoint in str(exc.value) and "bucket" in str(exc.value)
    assert endpoint in (exc.value.hint or "")
