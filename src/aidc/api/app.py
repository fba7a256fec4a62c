"""The control-plane app: routes, the authorization dependency on all of them, errors as one JSON body."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from aidc import __version__
from aidc.api.auth import authorize
from aidc.api.gate import FrontDoor
from aidc.api.read_cache import ReadCache
from aidc.api.routes import alerts, audit, deployments, job_stores, jobs, keys, nodes, records, security
from aidc.api.schemas import ERROR_RESPONSES
from aidc.errors import AidcError, RateLimited
from aidc.security.policy import required_permission, unpoliced
from aidc.security.roles import PUBLIC, Access
from aidc.store.metadata.changes import SECURITY_TABLES, ChangeFeed

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before routers were included lazily: app.routes is already flat

    def iter_route_contexts(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)


if TYPE_CHECKING:
    from aidc.platform import Platform

log = logging.getLogger("aidc.api")
RETENTION = Access(principal="system:retention", kind="local", source="aidc server")
DOC_ROUTES = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")


def routes_of(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the app answers: what the policy must cover."""
    found: list[tuple[str, str]] = []
    for route in iter_route_contexts(app.routes):
        if isinstance(getattr(route, "original_route", route), APIRoute):
            found += [(method, str(route.path)) for method in sorted(route.methods or ())]
        elif route.path in DOC_ROUTES:
            found.append(("GET", str(route.path)))
    return found


def _error(status: int, body: Mapping[str, object], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AidcError)
    async def aidc_error(_: Request, exc: AidcError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
        return _error(exc.http_status, exc.to_dict(), headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in problems[:5])
        return _error(
            422,
            {
                "code": "invalid_input",
                "message": message or "invalid request",
                "where": where or None,
                "hint": "see the request schema at /docs",
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the methods of the first route on the path; name all of them
            headers["Allow"] = ", ".join(
                sorted(
                    {
                        m
                        for r in iter_route_contexts(request.app.routes)
                        if r.path_regex.match(request.url.path)
                        for m in r.methods or ()
                    }
                )
            )
        return _error(
            exc.status_code, {"code": code, "message": str(exc.detail), "where": None, "hint": None}, headers or None
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(
            500,
            {
                "code": "internal_error",
                "message": "internal error; the server log has the details",
                "where": None,
                "hint": None,
            },
        )


def settle_heap() -> None:
    """Once the server is built, keep what it made while starting (modules, routes, templates, the stores' engines:
    objects that live as long as the process) out of the garbage collector's reach. Each
    full collection walks every tracked object: with the start-up heap in it, the slowest of 40 overview requests
    (1,000 runs, benchmarks/console.py) took 124 ms against a median of 9 ms; with it frozen, 10 ms."""
    import gc

    gc.collect()
    gc.freeze()


def create_app(
    platform: Platform | None = None,
    *,
    prune_every_s: float | None = None,
    scheduler: Any = None,
    telemetry: Any = None,
    alert_runner: Any = None,
) -> FastAPI:
    """The API over ``platform``; with ``prune_every_s``, audit retention runs that often while it serves;
    with a ``scheduler`` (aidc.jobs.scheduler.Scheduler), it runs queued jobs while the app serves; with
    ``telemetry`` (aidc.monitoring.collector.NodeCollector), it samples this host while the app serves; with
    ``alert_runner`` (aidc.monitoring.alerts.runner.AlertRunner), it judges the alert rules while the app serves."""
    from aidc.platform import Platform

    platform = platform or Platform()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        feed = _follow_changes(platform)
        app.state.read_cache = ReadCache(feed, int(platform.settings.read_cache_mb * 2**20))
        task = asyncio.create_task(_prune_forever(platform, prune_every_s)) if prune_every_s else None
        if scheduler is not None:
            scheduler.start()
            platform.jobs.wake = platform.nodes.wake = scheduler.wake
        if telemetry is not None:
            telemetry.start()
        if alert_runner is not None:
            alert_runner.start()
        yield
        if alert_runner is not None:
            alert_runner.stop()
        if telemetry is not None:
            telemetry.stop()
        if scheduler is not None:
            scheduler.stop()
        if task:
            task.cancel()
        app.state.read_cache = ReadCache(None, 0)
        if feed is not None:
            platform.security.verified.follow(None)
            feed.close()

    app = FastAPI(
        title="aidc control plane",
        version=__version__,
        lifespan=lifespan,
        description="Runs, models, datasets, deployments, identities and the audit chain of one AI data "
        "center. Every route needs `Authorization: Bearer TOKEN` except /api/v1/health.",
        dependencies=[Depends(authorize)],
        responses=ERROR_RESPONSES,
    )
    app.state.services = platform  # the routes see the services, never the composition root
    app.state.read_cache = ReadCache(None, 0)  # (until the app starts: an app never started keeps nothing)
    for module in (records, deployments, security, audit, jobs, job_stores, keys, nodes, alerts):
        app.include_router(module.router)
    app.include_router(nodes.metrics_router)
    _install_error_handlers(app)
    _serve_console(app, platform)
    app.add_middleware(FrontDoor, services=platform)
    _document_public_routes(app)
    missing = unpoliced(routes_of(app))
    if missing:
        raise RuntimeError(f"routes without an access policy (add them to aidc.security.policy.POLICY): {missing}")
    return app


def _serve_console(app: FastAPI, platform: Platform) -> None:
    """The web console at /console (its own session and pages, over the same services), and / leads there."""
    from starlette.responses import RedirectResponse

    from aidc.console import create_console

    app.mount("/console", create_console(platform))

    async def home(_: Request) -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    app.add_route("/", home, methods=["GET"], include_in_schema=False)


def _follow_changes(platform: Platform) -> ChangeFeed | None:
    """The store's change feed, which the read cache and the memory of verified tokens go by (a revocation made
    anywhere counts at the next request). The security store writes through an engine of its own: its commits
    count too."""
    feed = platform.metadata.change_feed()
    if feed is None:
        return None
    engine = getattr(platform.security.store, "engine", None)
    if engine is not None:
        feed.watch(engine)
    platform.security.verified.follow(lambda: feed.token(SECURITY_TABLES))
    return feed


def _document_public_routes(app: FastAPI) -> None:
    """The authorization dependency puts the bearer scheme on every operation; the schema should say that
    the PUBLIC ones need no token."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for path, operations in build()["paths"].items():
                for method, operation in operations.items():
                    if required_permission(method, path) == PUBLIC:
                        operation["security"] = []
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


async def _prune_forever(platform: Platform, every_s: float) -> None:
    while True:
        try:
            await asyncio.to_thread(platform.security.prune_audit, RETENTION)
        except AidcError as exc:  # a database blip must not stop the server; the next round retries
            log.warning("audit retention failed: %s", exc)
        await asyncio.sleep(every_s)
