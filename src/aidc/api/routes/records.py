"""Runs, models and datasets, limited to the caller's projects (the runs and records services)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from aidc.api.auth import authorize, get_services
from aidc.api.read_cache import ReadCache
from aidc.api.schemas import Health, PromoteRequest
from aidc.security.roles import Access
from aidc.services import Services
from aidc.services.guard import Guard

router = APIRouter(prefix="/api/v1")
JSON = dict[str, Any]
MODEL_REF = r"^[^:/]+(:[0-9]+)?$"
MODEL_VERSION_REF = r"^[^:/]+:[0-9]+$"


def as_json(content: list[JSON] | JSON) -> JSONResponse:
    """Read routes' results are JSON-ready already (the records' to_json): encode them once. Returned as they are,
    FastAPI would validate them against ``dict[str, Any]`` (which checks nothing) and walk them again with
    jsonable_encoder, ≈ 60 µs per record; ``response_model`` keeps the OpenAPI schema as it was."""
    return JSONResponse(content)


async def read(services: Services, verb: Callable[[], Any]) -> JSONResponse:
    """A read route's work, ``verb`` (a service call as the caller), answered as JSON.

    On SQLite a read is CPU work in this process with nothing to wait for, so it runs on the event loop: in a pool
    thread, sqlite3 gives up and retakes the GIL for every row, and at 16 concurrent requests that contention cost
    more CPU than the queries. The audit entry of a denied read is a write, which can wait for the database's write
    lock: it still goes to the thread pool. A database across the network is waited for in the thread pool, so one
    slow answer holds up no other request."""
    if not services.metadata.reads_in_process:
        return as_json(await run_in_threadpool(verb))
    pending: list[Callable[[], None]] = []
    try:
        with Guard.deferring_denials() as pending:
            return as_json(verb())
    finally:
        for audit in pending:
            await run_in_threadpool(audit)


# What each kept answer is read from (aidc.api.read_cache): the tables whose changes make it stale.
RUN_LIST, RUN, MODELS, DATASETS = (
    ("pipeline_runs",),
    ("pipeline_runs", "stage_runs", "metrics", "artifacts"),
    ("model_versions",),
    ("datasets", "dataset_versions"),
)


async def kept_read(
    request: Request,
    access: Access,
    permission: str,
    key: tuple[Any, ...],
    tables: tuple[str, ...],
    verb: Callable[[Services], Any],
) -> Response:
    """``read``, answered from the read cache while what it was read from is unchanged. The key holds the projects
    the caller may ``permission`` in: callers who see the same projects get the same answer, and only they."""
    services: Services = request.app.state.services
    cache: ReadCache = request.app.state.read_cache
    projects = access.projects(permission)

    async def fresh() -> bytes:
        return bytes((await read(services, lambda: verb(services))).body)

    body, kept = await cache.answer((*key, None if projects is None else tuple(sorted(projects))), tables, fresh)
    return Response(
        body, media_type="application/json", headers=None if kept is None else {"X-Cache": "hit" if kept else "miss"}
    )


@router.get("/health", tags=["server"])
async def health() -> Health:
    """Whether the server answers (no token needed)."""
    from aidc import __version__

    return Health(status="ok", version=__version__)


@router.get("/runs", tags=["runs"], response_model=list[JSON])
async def list_runs(
    request: Request,
    pipeline: str | None = Query(None, max_length=200),
    status: str | None = Query(None, max_length=20),
    limit: int = Query(50, ge=1, le=1000),
    access: Access = Depends(authorize),
) -> Response:
    """Pipeline runs, newest first (as `aidc runs list --json`, plus each run's project)."""
    return await kept_read(
        request,
        access,
        "runs:read",
        ("runs", pipeline, status, limit),
        RUN_LIST,
        lambda s: s.runs.list_runs(access, pipeline=pipeline, status=status, limit=limit),
    )


@router.get("/runs/{run_id}", tags=["runs"], response_model=JSON)
async def show_run(request: Request, run_id: str, access: Access = Depends(authorize)) -> Response:
    """A run with its stages, metrics and artifacts; a unique prefix of the id is enough."""
    return await kept_read(
        request, access, "runs:read", ("run", run_id), RUN, lambda s: s.runs.run_details(access, run_id)
    )


@router.get(
    "/runs/{run_id}/report",
    tags=["runs"],
    response_model=None,
    responses={200: {"description": "the report", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
def run_report(
    run_id: str, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> HTMLResponse:
    """The run's self-contained HTML report (as `aidc runs report`), rendered now from the store."""
    return HTMLResponse(services.runs.run_report(access, run_id).read_text(encoding="utf-8"))


@router.get("/models", tags=["models"], response_model=list[JSON])
async def list_models(
    request: Request, name: str | None = Query(None, max_length=200), access: Access = Depends(authorize)
) -> Response:
    """Registered model versions with their stage and metrics."""
    return await kept_read(
        request, access, "models:read", ("models", name), MODELS, lambda s: s.records.list_models(access, name)
    )


@router.get("/models/{ref}", tags=["models"], response_model=JSON)
async def show_model(
    ref: str = Path(pattern=MODEL_REF, description="NAME or NAME:VERSION"),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> JSONResponse:
    """``NAME`` (its newest version you may see) or ``NAME:VERSION``, with lineage."""
    return await read(services, lambda: services.records.show_model(access, ref))


@router.post("/models/{ref}/promote", tags=["models"])
def promote_model(
    body: PromoteRequest,
    ref: str = Path(pattern=MODEL_VERSION_REF, description="NAME:VERSION"),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> list[JSON]:
    """Move ``NAME:VERSION`` to staging, production or archived; returns every version whose stage changed."""
    return services.records.promote_model(access, ref, body.stage)


@router.get("/datasets", tags=["datasets"], response_model=list[JSON])
async def list_datasets(
    request: Request, name: str | None = Query(None, max_length=200), access: Access = Depends(authorize)
) -> Response:
    """Dataset versions with their statistics."""
    return await kept_read(
        request, access, "datasets:read", ("datasets", name), DATASETS, lambda s: s.records.list_datasets(access, name)
    )
