"""Nodes, energy and /metrics over HTTP: the inventory with live telemetry, cordon/drain/uncordon, the energy
report, and the Prometheus exposition."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from aidc.api.auth import authorize, get_services
from aidc.api.schemas import Body
from aidc.security.roles import NAME_PATTERN, Access
from aidc.services import Services

router = APIRouter(prefix="/api/v1")
metrics_router = APIRouter()
JSON = dict[str, Any]
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class NodeHold(Body):
    reason: str = Field("", max_length=500, description="why (shown in `aidc nodes list` and the audit log)")


@router.get("/nodes", tags=["nodes"])
def list_nodes(
    trend_minutes: int = Query(0, ge=0, le=24 * 60, description="add each node's CPU and power per minute, this long"),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> list[JSON]:
    """Every node of the cluster and of the facility spec, with its rack, hold and latest telemetry."""
    return services.nodes.list(access, trend_minutes=trend_minutes)


@router.get("/nodes/{name}", tags=["nodes"])
def show_node(name: str, access: Access = Depends(authorize), services: Services = Depends(get_services)) -> JSON:
    """One node (by name, hostname or Ray node id) with the jobs running on it."""
    return services.nodes.show(access, name)


@router.post("/nodes/{name}/{verb}", tags=["nodes"])
def change_node(
    name: str,
    verb: Literal["cordon", "drain", "uncordon"],
    body: NodeHold | None = None,
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> JSON:
    """cordon: no new jobs or replicas; drain: cordon, and its jobs checkpoint and requeue; uncordon: release."""
    return services.nodes.change(access, verb, name, body.reason if body else "")


@router.get("/energy", tags=["energy"])
def energy_report(
    period_days: float = Query(30.0, gt=0, le=3660),
    project: str | None = Query(None, pattern=NAME_PATTERN),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> JSON:
    """IT and facility energy, carbon and the ISO/IEC 30134 KPIs over the period; per node and per project."""
    return services.energy.report(access, period_days=period_days, project=project)


@metrics_router.get(
    "/metrics",
    tags=["metrics"],
    response_class=Response,
    responses={200: {"content": {PROMETHEUS_TEXT: {}}, "description": "Prometheus exposition"}},
)
def metrics(access: Access = Depends(authorize), services: Services = Depends(get_services)) -> Response:
    """Nodes, GPUs, jobs, queue, deployments and energy for Prometheus (scrape with a token that holds nodes:read)."""
    return Response(services.energy.exposition(access), media_type=PROMETHEUS_TEXT)
