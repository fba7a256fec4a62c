"""Jobs over HTTP: submit a pipeline to the queue, list, show, cancel, stream its log; per-project quotas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator, Field

from aidc.api.auth import authorize, get_services
from aidc.api.schemas import Body
from aidc.errors import InvalidInput
from aidc.security.roles import NAME_PATTERN, Access
from aidc.services import Services
from aidc.store.metadata.base import JobState

router = APIRouter(prefix="/api/v1")
JSON = dict[str, Any]
KEY = r"^[A-Za-z0-9._:-]{1,200}$"
FILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


# JSON Schema counts 3.0 as an integer; strict pydantic would not.
_whole = BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
Priority = Annotated[int, Field(ge=-1000, le=1000), _whole]
Workers = Annotated[int, Field(ge=1, le=4096), _whole]
JobCount = Annotated[int, Field(ge=0, le=1_000_000), _whole]


class JobRequest(Body):
    pipeline: str = Field(min_length=1, max_length=1_000_000, description="the pipeline spec (YAML text)")
    path_name: str = Field("pipeline.yaml", pattern=FILE_NAME, description="the file name it was submitted as")
    project: str = Field("default", pattern=NAME_PATTERN)
    priority: Priority = Field(0, description="higher runs first, and may preempt lower")
    cpus: Annotated[float, Field(gt=0, le=100_000)] | None = Field(None, description="CPUs per worker (default 1)")
    gpus: Annotated[float, Field(ge=0, le=100_000)] | None = Field(None, description="GPUs per worker (default 0)")
    workers: Workers | None = Field(None, description="gang size (default: the train stage's workers)")
    idempotency_key: str | None = Field(None, pattern=KEY, description="or the Idempotency-Key header")


class QuotaRequest(Body):
    """Limits to change; a limit given as null is removed (no limit), one left out stays as it is."""

    max_gpus: Annotated[float, Field(ge=0, le=1_000_000)] | None = None
    max_cpus: Annotated[float, Field(ge=0, le=1_000_000)] | None = None
    max_jobs: JobCount | None = None
    gpu_hours_per_month: Annotated[float, Field(ge=0, le=1_000_000_000)] | None = None


@router.post(
    "/jobs",
    tags=["jobs"],
    status_code=201,
    responses={200: {"description": "a retry with the same idempotency key: the job made before"}},
)
def submit_job(
    body: JobRequest,
    response: Response,
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", pattern=KEY),
) -> JSON:
    """Queue a pipeline in a project; the same idempotency key from the same caller returns the same job."""
    if "\x00" in body.pipeline:
        raise InvalidInput("the pipeline text contains a NUL character", where="pipeline")
    job, created = services.jobs.submit(
        access,
        spec_text=body.pipeline,
        path_name=body.path_name,
        project=body.project,
        priority=body.priority,
        cpus=body.cpus,
        gpus=body.gpus,
        workers=body.workers,
        idempotency_key=idempotency_key or body.idempotency_key,
    )
    if not created:
        response.status_code = 200
    return job


@router.get("/jobs", tags=["jobs"])
def list_jobs(
    project: str | None = Query(None, max_length=200),
    state: JobState | None = None,
    limit: int = Query(100, ge=1, le=1000),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> list[JSON]:
    """Jobs of the projects you may see, newest first."""
    return services.jobs.list_jobs(access, project=project, state=state, limit=limit)


@router.get("/jobs/{job_id}", tags=["jobs"])
def show_job(job_id: str, access: Access = Depends(authorize), services: Services = Depends(get_services)) -> JSON:
    """A job (by id, unique id prefix, or the id of its run) with its pipeline spec."""
    return services.jobs.show(access, job_id)


@router.post("/jobs/{job_id}/cancel", tags=["jobs"])
def cancel_job(job_id: str, access: Access = Depends(authorize), services: Services = Depends(get_services)) -> JSON:
    """Cancel a queued, preempted or running job (a running one is stopped)."""
    return services.jobs.cancel(access, job_id)


@router.get(
    "/jobs/{job_id}/logs",
    tags=["jobs"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "the job's log"}},
)
def job_logs(
    job_id: str,
    follow: bool = Query(False, description="keep streaming until the job ends"),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> StreamingResponse:
    """The job's log from its start; with ``follow=true`` it streams until the job ends (`aidc logs -f`)."""
    chunks: Iterator[str] = services.jobs.log_lines(access, job_id, follow=follow)
    return StreamingResponse(chunks, media_type="text/plain")


@router.get("/quotas", tags=["jobs"])
def list_quotas(access: Access = Depends(authorize), services: Services = Depends(get_services)) -> list[JSON]:
    """Each project you may see jobs of: its limits (null: none) and what it holds now."""
    return services.jobs.quotas(access)


@router.put("/quotas/{project}", tags=["jobs"])
def set_quota(
    project: str, body: QuotaRequest, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    """Set a project's limits: max_gpus, max_cpus, max_jobs (at once) and gpu_hours_per_month."""
    return services.jobs.set_quota(access, project, **body.model_dump(exclude_unset=True))
