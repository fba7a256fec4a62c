"""Runs, models and datasets, limited to the caller's projects (Platform.scoped)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse

from aidc.api.auth import authorize, get_platform
from aidc.api.schemas import Health, PromoteRequest
from aidc.platform import Platform
from aidc.security.roles import Access

router = APIRouter(prefix="/api/v1")
JSON = dict[str, Any]
MODEL_REF = r"^[^:/]+(:[0-9]+)?$"
MODEL_VERSION_REF = r"^[^:/]+:[0-9]+$"


@router.get("/health", tags=["server"])
async def health() -> Health:
    """Whether the server answers (no token needed)."""
    from aidc import __version__

    return Health(status="ok", version=__version__)


@router.get("/runs", tags=["runs"])
def list_runs(pipeline: str | None = Query(None, max_length=200), status: str | None = Query(None, max_length=20),
              limit: int = Query(50, ge=1, le=1000), access: Access = Depends(authorize),
              platform: Platform = Depends(get_platform)) -> list[JSON]:
    """Pipeline runs, newest first (as `aidc runs list --json`, plus each run's project)."""
    return platform.scoped(access).list_runs(pipeline=pipeline, status=status, limit=limit)


@router.get("/runs/{run_id}", tags=["runs"])
def show_run(run_id: str, access: Access = Depends(authorize), platform: Platform = Depends(get_platform)) -> JSON:
    """A run with its stages, metrics and artifacts; a unique prefix of the id is enough."""
    return platform.scoped(access).run_details(run_id)


@router.get("/runs/{run_id}/report", tags=["runs"], response_model=None, responses={
    200: {"description": "the report", "content": {"text/html": {"schema": {"type": "string"}}}}})
def run_report(run_id: str, access: Access = Depends(authorize), platform: Platform = Depends(get_platform)) -> HTMLResponse:
    """The run's self-contained HTML report (as `aidc runs report`), rendered now from the store."""
    return HTMLResponse(platform.scoped(access).run_report(run_id).read_text(encoding="utf-8"))


@router.get("/models", tags=["models"])
def list_models(name: str | None = Query(None, max_length=200), access: Access = Depends(authorize),
                platform: Platform = Depends(get_platform)) -> list[JSON]:
    """Registered model versions with their stage and metrics."""
    return platform.scoped(access).list_models(name)


@router.get("/models/{ref}", tags=["models"])
def show_model(ref: str = Path(pattern=MODEL_REF, description="NAME or NAME:VERSION"),
               access: Access = Depends(authorize), platform: Platform = Depends(get_platform)) -> JSON:
    """``NAME`` (its newest version you may see) or ``NAME:VERSION``, with lineage."""
    return platform.scoped(access).model(ref)


@router.post("/models/{ref}/promote", tags=["models"])
def promote_model(body: PromoteRequest, ref: str = Path(pattern=MODEL_VERSION_REF, description="NAME:VERSION"),
                  access: Access = Depends(authorize), platform: Platform = Depends(get_platform)) -> list[JSON]:
    """Move ``NAME:VERSION`` to staging, production or archived; returns every version whose stage changed."""
    return platform.scoped(access).promote_model(ref, body.stage)


@router.get("/datasets", tags=["datasets"])
def list_datasets(name: str | None = Query(None, max_length=200), access: Access = Depends(authorize),
                  platform: Platform = Depends(get_platform)) -> list[JSON]:
    """Dataset versions with their statistics."""
    return platform.scoped(access).list_datasets(name)
