"""The one place the API authorizes: every request's token → caller, and the route's policy → allowed or not.

Denied requests are audited here (who, which route, from where, why); nothing here ever echoes a token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aidc.errors import AidcError, PermissionDenied, Unauthenticated
from aidc.security import oidc
from aidc.security.policy import required_permission
from aidc.security.roles import PUBLIC, Access

if TYPE_CHECKING:
    from aidc.services import Services

bearer = HTTPBearer(
    auto_error=False,
    description="an aidc API token: `aidc tokens create`, or the one `aidc server` printed on its first start",
)


async def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def _verify(services: Services, token: str, source: str) -> Access:
    """An OIDC JWT (when an issuer is configured) or else an aidc API token; may read the store and the issuer."""
    verifier = services.oidc if oidc.looks_like_jwt(token) else None
    if verifier is not None:
        return verifier.authenticate(token, source, services.security)
    return services.security.authenticate(token, source)


def route_key(request: Request) -> tuple[str, str]:
    """(method, path template) of the matched route: what POLICY is keyed by."""
    route = request.scope.get("route")
    return request.method, getattr(route, "path", request.url.path)


async def authorize(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    services: Services = Depends(get_services),
) -> Access:
    """Async: a token verified seconds ago is answered from memory on the event loop; anything that needs the
    store (a new token, the audit entry of a denial) goes to the thread pool."""
    method, path = route_key(request)
    permission = required_permission(method, path)
    source = request.client.host if request.client else "unknown"
    if permission == PUBLIC:
        return Access.anonymous(source)
    access = Access.anonymous(source)
    try:
        if credentials is None:
            raise Unauthenticated(
                "this route needs an API token",
                hint="send `Authorization: Bearer TOKEN`; `aidc tokens create` makes one",
            )
        token = credentials.credentials
        access = services.security.recently_verified(token, source) or await run_in_threadpool(  # type: ignore[assignment]
            _verify, services, token, source
        )
        if permission is None:
            raise PermissionDenied(
                f"{method} {path} has no access policy, so nobody may call it",
                hint="add it to aidc.security.policy.POLICY",
            )
        if not access.allows(permission):
            raise PermissionDenied(
                f"{access.principal} may not {permission} ({method} {path})",
                hint="ask an admin for a role that has it: `aidc users grant`",
            )
    except AidcError as exc:
        await run_in_threadpool(services.security.denied, access, f"{method} {path}", request.url.path, exc)
        raise
    return access
