"""S3ArtifactStore: artifacts in an S3-compatible bucket through s3fs, uploaded whole or not at all."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from aidc.errors import BackendUnavailable, InvalidInput, PermissionDenied

from .codec import ArtifactCodec, CodecWriter
from .fsspec_store import ContentMeter, FsspecArtifactStore, changed_while_storing

log = logging.getLogger(__name__)


class S3ArtifactStore(FsspecArtifactStore):
    """Content-addressed artifacts under ``s3://bucket/prefix``.

    Credentials come from the usual AWS environment variables / config files that s3fs reads;
    ``endpoint_url`` points at a non-AWS server (MinIO, Ceph, moto). ``storage_options`` go to
    ``s3fs.S3FileSystem`` as they are (e.g. ``default_block_size`` sets the multipart part size).
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
        codec: ArtifactCodec | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise InvalidInput(f"not an S3 artifact store URL: {url!r}", hint="use s3://bucket or s3://bucket/prefix")
        self._bucket = parts.netloc
        prefix = parts.path.strip("/")
        root = f"{self._bucket}/{prefix}" if prefix else self._bucket
        super().__init__(url=f"s3://{root}", root=root, codec=codec)
        self._endpoint_url = endpoint_url
        self._storage_options = dict(storage_options or {})
        where = endpoint_url or "the AWS default endpoint"
        self.unavailable_hint = (
            f"check that the S3 server at {where} is running and reachable, and that "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the AWS config) are right"
        )

    def _make_fs(self) -> Any:
        import s3fs

        # Other processes (Ray workers) write and delete concurrently; a cached listing would lie about them.
        options: dict[str, Any] = {"use_listings_cache": False, **self._storage_options}
        if self._endpoint_url:
            options["endpoint_url"] = self._endpoint_url
        return s3fs.S3FileSystem(**options)

    def _uri_for_path(self, path: str) -> str:
        return f"s3://{path}"

    def _backend_errors(self) -> tuple[type[BaseException], ...]:
        import botocore.exceptions

        errors: tuple[type[BaseException], ...] = (OSError, botocore.exceptions.BotoCoreError)
        try:
            import aiohttp

            errors += (aiohttp.ClientError,)
        except ImportError:  # pragma: no cover - s3fs depends on aiohttp
            pass
        return errors

    def ensure_ready(self) -> None:
        """Reach the server and make sure the bucket exists (created when missing)."""
        try:
            try:
                self._fs.call_s3("head_bucket", Bucket=self._bucket)
            except FileNotFoundError:
                log.info("creating bucket %s", self._bucket)
                try:
                    # No LocationConstraint here: the region comes from AWS_DEFAULT_REGION, since sending
                    # us-east-1 explicitly is rejected by S3 (and moto).
                    self._fs.mkdir(self._bucket)
                except FileExistsError:
                    pass  # someone else created it meanwhile
        except PermissionError as exc:
            raise PermissionDenied(
                f"access to bucket {self._bucket!r} was refused: {exc}",
                where=self.url,
                hint="check the AWS credentials and the bucket policy",
            ) from exc
        except self._backend_errors() as exc:
            raise BackendUnavailable(
                f"cannot reach artifact store bucket {self._bucket!r} "
                f"at {self._endpoint_url or 'the AWS default endpoint'}: {exc}",
                where=self.url,
                hint=self.unavailable_hint,
            ) from exc

    def _write_object(self, hexdigest: str, chunks: Iterable[bytes]) -> None:
        meter = ContentMeter()
        writer = self._codec.writer()

        def checked() -> Iterable[bytes]:
            yield from writer.encode(meter.watch(chunks))
            if meter.hexdigest != hexdigest:
                raise changed_while_storing(hexdigest, meter.hexdigest, self._uri_for_path(self._path(hexdigest)))

        self._write_encoded(hexdigest, writer, checked())

    def _write_encoded(self, hexdigest: str, writer: CodecWriter, stored: Iterable[bytes]) -> None:
        path = self._path(hexdigest)
        # autocommit=False: parts upload as they fill, but the object only appears on commit(), which we
        # call after checking the digest. (A plain `with fs.open(...)` would commit even on an exception.)
        upload = self._fs.open(path, "wb", autocommit=False)
        try:
            for chunk in stored:
                upload.write(chunk)
            upload.close()  # sends the last part; does not complete the upload
            self._store_key_record(hexdigest, writer)  # before the data is visible: never data without its key
            upload.commit()
        except BaseException:
            self._abandon(upload)
            raise

    @staticmethod
    def _abandon(upload: Any) -> None:
        """Abort the multipart upload so no parts linger (they are billed and invisible)."""
        try:
            upload.discard()
        except Exception as exc:  # the original failure matters more than this cleanup's
            log.warning("could not abort multipart upload for %s: %s", upload.path, exc)
        upload.closed = True  # discard() leaves no buffer; stop __del__ from trying to flush one
