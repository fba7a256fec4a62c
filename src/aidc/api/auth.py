"""The one place the API authorizes: every request's token → caller, and the route's policy → allowed or not.

Denied requests are audited here (who, which route, from where, why); nothing here ever echoes a token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aidc.api.gate import ACCESS_KEY
from aidc.errors import AidcError, PermissionDenied, Unauthenticated
from aidc.security.policy import JOB_ROUTES, required_permission
from aidc.security.roles import PUBLIC, Access
from aidc.security.service import JOB_TOKEN_SCOPES
from aidc.services.callers import authenticate

if TYPE_CHECKING:
    from aidc.services import Services

bearer = HTTPBearer(
    auto_error=False,
    description="an aidc API token: `aidc tokens create`, or the one `aidc server` printed on its first start",
)


async def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


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
    checked: Access | None = request.scope.get(ACCESS_KEY)  # the front door (gate.py) verified the token already
    try:
        if checked is not None:
            access = checked
        elif credentials is None:
            raise Unauthenticated(
                "this route needs an API token",
                hint="send `Authorization: Bearer TOKEN`; `aidc tokens create` makes one",
            )
        else:
            token = credentials.credentials
            known = services.security.recently_verified(token, source)
            access = known if known is not None else await run_in_threadpool(authenticate, services, token, source)
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
        if access.scopes == JOB_TOKEN_SCOPES and (method, path) not in JOB_ROUTES:
            if await run_in_threadpool(services.security.job_of_token, access.token_id) is not None:
                raise PermissionDenied(
                    f"a job's credential reaches its own job's stores only, not {method} {path}",
                    hint="a job's code acts through its pipeline; its submitter's other rights stay with her",
                )
    except AidcError as exc:
        await run_in_threadpool(services.security.denied, access, f"{method} {path}", request.url.path, exc)
        raise
    return access
