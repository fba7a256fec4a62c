"""The audit chain over HTTP: filtered lists, verification, JSON-lines export for a SIEM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from aidc.api.auth import get_services
from aidc.api.schemas import AuditEntryOut, ChainReportOut, DateTimeParam
from aidc.services import Services

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=list[AuditEntryOut])
def list_entries(
    actor: str | None = Query(None, max_length=200),
    action: str | None = Query(None, max_length=100),
    result: str | None = Query(None, max_length=20),
    project: str | None = Query(None, max_length=200),
    since: DateTimeParam | None = None,
    until: DateTimeParam | None = None,
    limit: int = Query(100, ge=1, le=10000),
    services: Services = Depends(get_services),
) -> list[dict[str, Any]]:
    """The newest entries matching every filter given (``action`` matches a prefix, e.g. ``token.``), newest first."""
    entries = services.security.audit_list(
        actor=actor, action=action, result=result, project=project, since=since, until=until, limit=limit
    )
    return [e.to_json() for e in entries]


@router.get("/verify", response_model=ChainReportOut)
def verify(services: Services = Depends(get_services)) -> dict[str, Any]:
    """Recompute the chain: ``ok``, or the first modified, deleted or moved entry (``bad_seq``) and why."""
    return services.security.audit_verify().to_json()


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "one entry per line, oldest first"}},
)
def export(services: Services = Depends(get_services)) -> StreamingResponse:
    """Every entry as JSON lines, oldest first, with its hashes: what a SIEM ingests."""

    def lines() -> Iterator[str]:
        for entry in services.security.audit_export():
            yield json.dumps(entry.to_json(), sort_keys=True) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
