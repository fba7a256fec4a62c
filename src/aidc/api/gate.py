"""The API's front door, ahead of every route: who is calling from where, their token checked before any byte of
the body is read, the body cap, and the security headers every answer carries.

FastAPI reads and parses a request body before it runs a route's dependencies, so an authorization dependency
alone would let anyone make the server read, buffer and parse a body — and answer a malformed one with 422,
which tells an anonymous caller what the route expects. Here the token is verified first (401 otherwise, the
body unread), then the body is read only up to AIDC_MAX_BODY_MB (413 past it). The route's permission is still
checked by the dependency in auth.py, with the caller found here.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from aidc.errors import AidcError, BodyTooLarge, RateLimited, Unauthenticated
from aidc.security.policy import POLICY, UNCAPPED
from aidc.security.roles import PUBLIC, Access
from aidc.services.callers import authenticate

if TYPE_CHECKING:
    from aidc.services import Services

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ACCESS_KEY = "aidc.access"  # the scope entry the dependency in auth.py finds the caller under
# No page of this API runs script or is meant to be framed; the interactive docs (/docs, /redoc) load their
# script and styles from a CDN, so only they get a policy that allows it.
CSP_API = "default-src 'none'; frame-ancestors 'none'"
CSP_DOCS = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; frame-ancestors 'none'"
)
DOC_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")


@lru_cache(maxsize=1)
def _templates() -> list[tuple[re.Pattern[str], str, int]]:
    """POLICY's path templates as patterns, most literal first (``/audit/verify`` before ``/audit/{x}``)."""
    found = {
        (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"), path, path.count("{"))
        for _, path in POLICY
    }
    return sorted(found, key=lambda t: t[2])


def route_for(method: str, path: str) -> tuple[str, str] | None:
    """(template, permission) of the route ``method path`` would reach by POLICY; None when no route would take
    it (404 and 405 read no body, and the router answers them as before)."""
    method = "GET" if method == "HEAD" else method
    for pattern, template, _ in _templates():
        if pattern.match(path) and (method, template) in POLICY:
            return template, POLICY[(method, template)]
    return None


def _networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]


class FrontDoor:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app, self.services = app, services
        settings = services.settings
        self.max_body = int(settings.max_body_mb * 2**20)
        self.proxies = _networks(settings.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self._believe_proxy(scope)
        send = self._with_headers(scope, send)
        headers = _headers(scope)
        route = route_for(scope["method"], scope["path"])
        if route is not None and route[1] != PUBLIC:
            try:
                scope[ACCESS_KEY] = await self._authenticate(scope, headers, route[0])
            except AidcError as exc:
                await _answer(send, exc)
                return
        if route is not None and (scope["method"], route[0]) in UNCAPPED:
            await self.app(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _answer(send, self._too_large())
            return
        await self.app(scope, self._capped(receive), send)

    # -- the caller's address
    def _believe_proxy(self, scope: Scope) -> None:
        """X-Forwarded-For/-Proto from a configured proxy only: the rightmost address no trusted proxy claims is
        the caller (what a proxy appends is believed; what the client itself wrote further left is not)."""
        client = scope.get("client")
        if not self.proxies or not client or not self._trusted(client[0]):
            return
        headers = _headers(scope)
        hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                scope["client"] = (hop, 0)
                break
        else:
            if hops:
                scope["client"] = (hops[0], 0)
        proto = headers.get("x-forwarded-proto", "").strip().lower()
        if proto in ("http", "https"):
            scope["scheme"] = proto

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)

    # -- the token, before the body
    async def _authenticate(self, scope: Scope, headers: dict[str, str], template: str) -> Access:
        client = scope.get("client")
        source = client[0] if client else "unknown"
        scheme, _, token = headers.get("authorization", "").partition(" ")
        security = self.services.security
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated(
                    "this route needs an API token",
                    hint="send `Authorization: Bearer TOKEN`; `aidc tokens create` makes one",
                )
            token = token.strip()
            known = security.recently_verified(token, source)
            return known if known is not None else await run_in_threadpool(authenticate, self.services, token, source)
        except AidcError as exc:
            action = f"{scope['method']} {template}"
            await run_in_threadpool(security.rejected, Access.anonymous(source), action, scope["path"], exc)
            raise

    # -- the body
    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(
            f"the request body is larger than {self.max_body / 2**20:g} MB",
            hint="send less, or ask the operator to raise AIDC_MAX_BODY_MB",
        )

    def _capped(self, receive: Receive) -> Receive:
        """``receive`` that stops a body (chunked, or lying about its length) at the cap: FastAPI hands an
        HTTPException raised while it reads the body on to the error handlers, which answer 413."""
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    error = self._too_large()
                    raise HTTPException(413, detail=error.message)
            return message

        return capped

    # -- what every answer carries
    def _with_headers(self, scope: Scope, send: Send) -> Send:
        docs = scope["path"] in DOC_PATHS
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", (CSP_DOCS if docs else CSP_API).encode()),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if tls:
                    extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                names = {name.lower() for name, _ in message.get("headers", [])}
                if b"cache-control" not in names and not docs:
                    # Answers carry tokens (on creation), records and audit entries: no cache keeps them.
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + [(n, v) for n, v in extra if n not in names]
            await send(message)

        return send_with_headers


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, lower-case names; a repeated header keeps its first value."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


async def _answer(send: Send, exc: AidcError) -> None:
    """The error body every aidc API error has, sent from here (no route has run)."""
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    if exc.http_status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if isinstance(exc, RateLimited):
        headers.append((b"retry-after", str(max(1, round(exc.retry_after_s))).encode()))
    body = json.dumps({"error": exc.to_dict()}).encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
