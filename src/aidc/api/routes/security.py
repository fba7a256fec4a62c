"""The caller, its tokens, projects, and (for admins) users, service accounts, their roles and tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from aidc.api.auth import authorize, get_services
from aidc.api.schemas import (
    Assignment,
    AssignRequest,
    NewToken,
    PrincipalOut,
    PrincipalPatch,
    PrincipalRequest,
    ProjectOut,
    ProjectRequest,
    RoleRequest,
    TokenOut,
    TokenRequest,
    WhoAmI,
)
from aidc.security.roles import Access
from aidc.services import Services

router = APIRouter(prefix="/api/v1")
JSON = dict[str, Any]


@router.get("/whoami", tags=["you"])
async def whoami(access: Access = Depends(authorize)) -> WhoAmI:
    """The principal your token stands for, its roles and the token's scopes."""
    return WhoAmI.model_validate(access.to_json())


@router.get("/tokens", tags=["you"], response_model=list[TokenOut])
def my_tokens(access: Access = Depends(authorize), services: Services = Depends(get_services)) -> list[JSON]:
    """Your API tokens (ids and metadata; a token itself is never shown again)."""
    return [t.to_json() for t in services.security.list_tokens(access.principal)]


@router.post("/tokens", tags=["you"], status_code=201, response_model=NewToken)
def create_my_token(
    body: TokenRequest, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    """A new token for yourself, shown this once; scopes may narrow it, never widen it past your token's."""
    return services.security.create_token(
        access, principal=access.principal, name=body.name, scopes=body.scopes, expires_days=body.expires_days
    )


@router.delete("/tokens/{token_id}", tags=["you"], response_model=TokenOut)
def revoke_my_token(
    token_id: str, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    """Revoke one of your tokens."""
    return services.security.revoke_token(access, token_id, owner=access.principal).to_json()


@router.get("/projects", tags=["projects"], response_model=list[ProjectOut])
def list_projects(access: Access = Depends(authorize), services: Services = Depends(get_services)) -> list[JSON]:
    """The projects you have a role on (all of them for a role on *)."""
    return [p.to_json() for p in services.security.list_projects(access)]


@router.post("/projects", tags=["projects"], status_code=201, response_model=ProjectOut)
def create_project(
    body: ProjectRequest, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    return services.security.create_project(access, body.name, body.description).to_json()


@router.post("/projects/{name}/records", tags=["projects"], response_model=Assignment)
def assign_record(
    name: str, body: AssignRequest, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    """Move a run, dataset version, model version or deployment into project ``name``."""
    return services.security.assign_project(access, body.kind, body.id, name)


@router.get("/principals", tags=["principals"], response_model=list[PrincipalOut])
def list_principals(services: Services = Depends(get_services)) -> list[JSON]:
    """Users and service accounts with their roles."""
    return [p.to_json() for p in services.security.list_principals()]


@router.post("/principals", tags=["principals"], status_code=201, response_model=PrincipalOut)
def create_principal(
    body: PrincipalRequest, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    return services.security.create_principal(access, body.name, body.kind).to_json()


@router.patch("/principals/{name}", tags=["principals"], response_model=PrincipalOut)
def update_principal(
    name: str, body: PrincipalPatch, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    """Disable (or enable again) a user or service account: its tokens stop working while it is disabled."""
    return services.security.set_disabled(access, name, body.disabled).to_json()


@router.post("/principals/{name}/roles", tags=["principals"], response_model=PrincipalOut)
def grant_role(
    name: str, body: RoleRequest, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    return services.security.grant(access, name, body.role, body.project).to_json()


@router.delete("/principals/{name}/roles/{role}", tags=["principals"], response_model=PrincipalOut)
def revoke_role(
    name: str,
    role: str,
    project: str = Query(..., max_length=200),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> JSON:
    return services.security.revoke_role(access, name, role, project).to_json()


@router.get("/principals/{name}/tokens", tags=["principals"], response_model=list[TokenOut])
def principal_tokens(name: str, services: Services = Depends(get_services)) -> list[JSON]:
    services.security.store.get_principal(name)  # NotFound for an unknown name, not an empty list
    return [t.to_json() for t in services.security.list_tokens(name)]


@router.post("/principals/{name}/tokens", tags=["principals"], status_code=201, response_model=NewToken)
def create_principal_token(
    name: str, body: TokenRequest, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    """A token for a user or service account (e.g. for CI), shown this once."""
    return services.security.create_token(
        access, principal=name, name=body.name, scopes=body.scopes, expires_days=body.expires_days
    )


@router.delete("/principals/{name}/tokens/{token_id}", tags=["principals"], response_model=TokenOut)
def revoke_principal_token(
    name: str, token_id: str, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> JSON:
    return services.security.revoke_token(access, token_id, owner=name).to_json()
