"""A job's stores over HTTP: the metadata verbs, artifacts and data files a job's process uses, for its own credential
only (services/job_stores.py checks each against the job's project). JSON in and out; artifacts as raw bytes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from aidc.api.auth import authorize, get_services
from aidc.security.roles import Access
from aidc.services import Services

router = APIRouter(prefix="/api/v1", tags=["job stores"])
DIGEST = r"^(sha256:)?[0-9a-f]{64}$"
OP = r"^[a-z_]{1,60}$"
SPOOL_BYTES = 8 * 2**20  # an upload larger than this goes to a temporary file on its way to the store


@router.post("/jobs/{job_id}/store/{op}")
def job_store_call(
    job_id: str,
    op: str,
    args: dict[str, Any] = Body(default_factory=dict),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    """One metadata verb of job ``job_id``'s pipeline (its own credential only), as ``{"result": …}``."""
    return {"result": services.job_stores.call(access, job_id, op, args)}


@router.put("/jobs/{job_id}/artifacts", status_code=201)
async def job_put_artifact(
    job_id: str, request: Request, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> dict[str, Any]:
    """Store the body (raw bytes) as an artifact, encrypted by the server; its digest, size and URI."""
    stores = services.job_stores
    await run_in_threadpool(stores.job_of, access, job_id)  # before a byte of the body is read
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        async for chunk in request.stream():
            await run_in_threadpool(spool.write, chunk)
        spool.seek(0)
        return await run_in_threadpool(stores.put_artifact, access, job_id, spool)  # type: ignore[arg-type]


@router.get(
    "/jobs/{job_id}/artifacts/{digest}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the artifact's bytes"}},
)
def job_get_artifact(
    job_id: str,
    digest: Annotated[str, PathParam(pattern=DIGEST, description="sha256:<64 hex digits> (the prefix is optional)")],
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> FileResponse:
    """An artifact of the job's project (or one the job stored), decrypted and verified by the server."""
    fd, name = tempfile.mkstemp(prefix="aidc-job-artifact-")
    os.close(fd)
    try:
        path = services.job_stores.artifact_file(access, job_id, digest, Path(name))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return FileResponse(path, media_type="application/octet-stream", background=BackgroundTask(path.unlink, True))


@router.get(
    "/jobs/{job_id}/files",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file's bytes"}},
)
def job_data_file(
    job_id: str,
    path: str = Query(..., min_length=1, max_length=4096, description="as the data stage's source names it"),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> FileResponse:
    """A file of the job's project's data folders (a `file:` source of a job that cannot read them itself)."""
    found = services.job_stores.data_file(access, job_id, path)
    return FileResponse(found, media_type="application/octet-stream")
