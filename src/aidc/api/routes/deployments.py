"""Deployments: list, show, deploy, scale, canary promote/rollback, delete — limited to the caller's projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from aidc.api.auth import authorize, get_services
from aidc.api.schemas import DeployRequest, ScaleRequest
from aidc.security.roles import Access
from aidc.services import Services

router = APIRouter(prefix="/api/v1", tags=["deployments"])
JSON = dict[str, Any]
PROJECT = Query(None, max_length=200, description="the deployment's project, when the name is in several")


@router.get("/deployments")
def list_deployments(
    include_stopped: bool = Query(False, description="include stopped deployments"),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> list[JSON]:
    """Deployments with their versions, replicas and whether their URL answers."""
    return services.deployments.list(access, include_stopped=include_stopped)


@router.post("/deployments", status_code=201)
def deploy(
    body: DeployRequest, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    """Serve a model version (as `aidc deploy`); answers once its replicas are ready. The deployment joins the
    model's project."""
    from aidc.serving.canary import CanaryPolicy

    policy = CanaryPolicy(
        min_requests=body.min_requests,
        max_error_rate_increase=body.max_error_rate_increase,
        max_latency_ratio=body.max_latency_ratio,
        promote_after=body.promote_after,
    )
    return services.deployments.deploy(
        access,
        body.model,
        project=body.project,
        name=body.name,
        replicas=body.replicas,
        canary=body.canary,
        cpus=body.cpus,
        gpus=body.gpus,
        host=body.host,
        policy=policy,
        timeout=body.timeout,
        auth=body.auth,
    )


@router.get("/deployments/{name}")
def show_deployment(
    name: str,
    project: str | None = PROJECT,
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> JSON:
    """A deployment with its replicas, traffic per version and events (as `aidc deployments show`)."""
    return services.deployments.show(access, name, project=project)


@router.post("/deployments/{name}/scale")
def scale_deployment(
    name: str,
    body: ScaleRequest,
    project: str | None = PROJECT,
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> JSON:
    """Run this many replicas of the stable version."""
    return services.deployments.change(access, "scale", name, body.replicas, project=project)


@router.post("/deployments/{name}/promote")
def promote_deployment(
    name: str,
    project: str | None = PROJECT,
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> JSON:
    """Make the canary the stable version on every replica."""
    return services.deployments.change(access, "promote", name, project=project)


@router.post("/deployments/{name}/rollback")
def rollback_deployment(
    name: str,
    project: str | None = PROJECT,
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> JSON:
    """Drop the canary, or return to the version served before the last promotion."""
    return services.deployments.change(access, "rollback", name, project=project)


@router.delete("/deployments/{name}")
def delete_deployment(
    name: str,
    project: str | None = PROJECT,
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> JSON:
    """Stop a deployment: traffic off, replicas drained and stopped."""
    return services.deployments.change(access, "delete", name, project=project)
