"""The deployment router: one URL per deployment, spreading OIP v2 requests over replicas and splitting them by version.

It is a plain HTTP reverse proxy (serving.frontend in, serving.upstream out); Ray never sees a request. The controller
tells it where the replicas are (``PUT /-/routes``, bearer token) and reads what it saw of each version
(``GET /-/stats``) to judge a canary. Within a version a request goes to the replica with the fewest
requests in flight. A replica that refuses the connection is skipped for a moment and the request — which
it never saw — is sent to another; a replica that fails while it holds a request fails that request (502)
and only that one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import random
import re
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from aidc.serving.upstream import NotSent, Upstream, UpstreamFailed

if TYPE_CHECKING:
    from aidc.serving.endpoint import EndpointProcess

log = logging.getLogger("aidc.serving.router")

TOKEN_ENV = "AIDC_ROUTER_TOKEN"
# SHA-256 (hex) of the bearer token clients must send to /v2 (health excepted); unset: the deployment is open.
CLIENT_TOKEN_ENV = "AIDC_INFERENCE_TOKEN_SHA256"
EJECT_SECONDS = 2.0  # how long a replica that refused a connection is passed over
LATENCY_WINDOW = 2048  # latencies kept per version for the canary's p95
MAX_BODY_BYTES = 64 * 1024 * 1024
# Headers that describe one hop, not the request: never forwarded either way.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"host",
        b"content-length",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"authorization",
    }
)
RESPONSE_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"date", b"server"}
)
STREAM_SUFFIX = "/generate_stream"  # a generation replica's server-sent events: passed on as they come
VERSION_PATH = re.compile(r"^/v2/models/[^/]+/versions/([^/]+)(?:/|$)")


@dataclass
class Replica:
    url: str
    in_flight: int = 0
    ejected_until: float = 0.0


@dataclass
class VersionRoute:
    version: str
    weight: float  # percent of the deployment's traffic
    replicas: list[Replica]


@dataclass
class VersionWindow:
    """Requests, errors and recent latencies of one version since it entered the routes."""

    requests: int = 0
    errors: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else None

        # p99: what the serving SLO alert judges (monitoring/alerts/signals.py)
        return {"requests": self.requests, "errors": self.errors, "p95_ms": pct(0.95), "p99_ms": pct(0.99)}


class RouteTable:
    """Versions with their traffic weight and replicas; replaced whole by the controller, read per request."""

    def __init__(self) -> None:
        self.versions: dict[str, VersionRoute] = {}
        self.windows: dict[str, VersionWindow] = {}

    def update(self, spec: dict[str, Any]) -> None:
        known = {r.url: r for route in self.versions.values() for r in route.replicas}
        versions: dict[str, VersionRoute] = {}
        for entry in spec.get("versions", []):
            version, weight, urls = str(entry["version"]), float(entry["weight"]), list(entry["replicas"])
            if weight < 0 or not urls:
                raise ValueError(f"version {version}: weight must be ≥ 0 and there must be replicas")
            versions[version] = VersionRoute(version, weight, [known.get(u) or Replica(u) for u in urls])
        if set(versions) != set(self.versions):  # a canary started or ended: compare versions afresh
            self.windows = {v: VersionWindow() for v in versions}
        self.versions = versions

    def stable(self) -> VersionRoute | None:
        return max(self.versions.values(), key=lambda r: r.weight, default=None)

    def choose_version(self) -> VersionRoute | None:
        routes = [r for r in self.versions.values() if r.weight > 0]
        if not routes:
            return self.stable()
        return random.choices(routes, weights=[r.weight for r in routes])[0]

    @staticmethod
    def choose_replica(route: VersionRoute, tried: set[str]) -> Replica | None:
        now = time.monotonic()
        candidates = [r for r in route.replicas if r.url not in tried]
        healthy = [r for r in candidates if r.ejected_until <= now]
        pool = healthy or candidates  # every replica ejected: try them anyway rather than fail outright
        if not pool:
            return None
        least = min(r.in_flight for r in pool)
        return random.choice([r for r in pool if r.in_flight == least])

    def ready(self) -> bool:
        now = time.monotonic()
        return any(r.ejected_until <= now for route in self.versions.values() for r in route.replicas)

    def replica_urls(self) -> list[str]:
        return [r.url for route in self.versions.values() for r in route.replicas]


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["deployment", "version"]
        self.requests = Counter(
            "aidc_deployment_requests", "Inference requests received by the deployment.", labels, registry=registry
        )
        self.errors = Counter(
            "aidc_deployment_errors",
            "Inference requests answered with an error.",
            labels + ["status"],
            registry=registry,
        )
        self.latency = Histogram(
            "aidc_deployment_request_duration_seconds",
            "Time from request received by the router to response ready.",
            labels,
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.replicas = Gauge(
            "aidc_deployment_replicas", "Replicas the router sends traffic to.", labels, registry=registry
        )
        self.traffic = Gauge(
            "aidc_deployment_traffic_percent", "Share of traffic sent to a version.", labels, registry=registry
        )


class _Collected:
    """A collector that hands back metric families gathered elsewhere (the replicas' /metrics)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


class _BodyTooLarge(Exception):
    pass


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body; None when the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = list(headers or [(b"content-type", b"application/json")])
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class RouterApp:
    """The router as an ASGI app."""

    def __init__(
        self,
        deployment: str,
        token: str,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        timeout: float = 60.0,
        client_token_sha256: str = "",
    ) -> None:
        self.deployment = deployment
        self.token = token
        self.client_token_sha256 = client_token_sha256
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout
        self.table = RouteTable()
        self.registry = CollectorRegistry()
        self.metrics = RouterMetrics(self.registry)
        self.upstreams: dict[str, Upstream] = {}

    def upstream(self, url: str) -> Upstream:
        if url not in self.upstreams:
            self.upstreams[url] = Upstream.for_url(url)
        return self.upstreams[url]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for upstream in self.upstreams.values():
                        upstream.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/v2/health/live":
            await _respond(send, 200, b'{"live":true}')
        elif path == "/v2/health/ready":
            ready = self.table.ready()
            await _respond(send, 200 if ready else 503, json.dumps({"ready": ready}).encode())
        elif path == "/metrics":
            await _respond(send, 200, await self.metrics_text(), [(b"content-type", CONTENT_TYPE_LATEST.encode())])
        elif path == "/-/stats":
            stats = {v: w.to_dict() for v, w in self.table.windows.items()}
            await _respond(send, 200, json.dumps({"deployment": self.deployment, "versions": stats}).encode())
        elif path == "/-/routes":
            await self.set_routes(scope, receive, send, method)
        elif path.startswith("/v2"):
            if self.client_token_sha256 and not self._client_authorized(scope):
                await _respond(
                    send,
                    401,
                    _error(f"deployment {self.deployment!r} needs `Authorization: Bearer TOKEN`"),
                    [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                )
                return
            await self.proxy(scope, receive, send)
        else:
            await _respond(
                send, 404, _error(f"no route {path}; this is the OIP v2 router of deployment {self.deployment!r}")
            )

    def _authorized(self, scope: dict[str, Any]) -> bool:
        given = dict(scope["headers"]).get(b"authorization", b"").decode()
        return hmac.compare_digest(given, f"Bearer {self.token}")

    def _client_authorized(self, scope: dict[str, Any]) -> bool:
        scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        digest = hashlib.sha256(given.strip()).hexdigest()
        return scheme.lower() == b"bearer" and hmac.compare_digest(digest, self.client_token_sha256)

    async def set_routes(self, scope: dict[str, Any], receive: Any, send: Any, method: str) -> None:
        if method == "GET":
            routes = [
                {"version": r.version, "weight": r.weight, "replicas": [x.url for x in r.replicas]}
                for r in self.table.versions.values()
            ]
            await _respond(send, 200, json.dumps({"versions": routes}).encode())
            return
        if not self._authorized(scope):
            await _respond(send, 401, _error("routes are set by the deployment's controller only"))
            return
        try:
            self.table.update(json.loads(await _read_body(receive, 1024 * 1024) or b"{}"))
        except (ValueError, KeyError, TypeError, _BodyTooLarge) as exc:
            await _respond(send, 400, _error(f"bad routes: {exc}"))
            return
        for url in set(self.upstreams) - set(self.table.replica_urls()):  # idle connections to replicas gone
            self.upstreams.pop(url).close()
        for route in self.table.versions.values():
            self.metrics.replicas.labels(self.deployment, route.version).set(len(route.replicas))
            self.metrics.traffic.labels(self.deployment, route.version).set(route.weight)
        log.info(
            "routes: %s",
            ", ".join(f"v{r.version} {r.weight:g}% on {len(r.replicas)}" for r in self.table.versions.values())
            or "none",
        )
        await _respond(send, 200, b'{"ok":true}')

    async def proxy(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        is_infer = scope["method"] == "POST" and path.endswith("/infer")
        pinned = VERSION_PATH.match(path)
        if pinned:
            route = self.table.versions.get(pinned.group(1))
            if route is None:
                served = ", ".join(self.table.versions) or "none"
                await _respond(
                    send,
                    404,
                    _error(
                        f"deployment {self.deployment!r} does not serve version "
                        f"{pinned.group(1)!r}; it serves: {served}"
                    ),
                )
                return
        else:
            route = self.table.choose_version() if is_infer else self.table.stable()
        if route is None:
            await _respond(
                send,
                503,
                _error(f"deployment {self.deployment!r} has no replicas yet"),
                [(b"content-type", b"application/json"), (b"retry-after", b"1")],
            )
            return
        started = time.perf_counter()
        try:
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                return  # the client went away
            if scope["method"] == "POST" and path.endswith(STREAM_SUFFIX):
                await self._stream(scope, route, body, send, receive)
                return
            status, content, headers = await self._forward(scope, route, body)
        except _BodyTooLarge:
            status, content, headers = 413, _error(f"request body exceeds {self.max_body_bytes} bytes"), None
        if is_infer:
            self._observe(route.version, status, time.perf_counter() - started)
        await _respond(send, status, content, headers)

    async def _forward(
        self, scope: dict[str, Any], route: VersionRoute, body: bytes
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]] | None]:
        query = scope.get("query_string", b"")
        target = scope["path"] + (f"?{query.decode()}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        tried: set[str] = set()
        while True:
            replica = self.table.choose_replica(route, tried)
            if replica is None:
                return (
                    503,
                    _error(
                        f"no replica of deployment {self.deployment!r} version {route.version} accepted the request"
                    ),
                    [(b"content-type", b"application/json"), (b"retry-after", b"1")],
                )
            tried.add(replica.url)
            replica.in_flight += 1
            try:
                answer = await self.upstream(replica.url).request(scope["method"], target, headers, body, self.timeout)
            except NotSent:
                replica.ejected_until = time.monotonic() + EJECT_SECONDS
                continue
            except TimeoutError:
                return (
                    504,
                    _error(
                        f"replica {replica.url} of deployment {self.deployment!r} did not answer within "
                        f"{self.timeout:g}s"
                    ),
                    None,
                )
            except UpstreamFailed as exc:
                return (
                    502,
                    _error(f"replica of deployment {self.deployment!r} failed while serving the request: {exc}"),
                    None,
                )
            finally:
                replica.in_flight -= 1
            return answer.status, answer.body, [h for h in answer.headers if h[0] not in RESPONSE_HOP_BY_HOP]

    async def _stream(self, scope: dict[str, Any], route: VersionRoute, body: bytes, send: Any, receive: Any) -> None:
        """Forward a streaming request and pass each piece of its answer on the moment it arrives (no buffering:
        a client sees the first tokens while the replica is still generating). A client that goes away closes the
        replica's connection too, so the replica stops generating for nobody."""
        query = scope.get("query_string", b"")
        target = scope["path"] + (f"?{query.decode()}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        tried: set[str] = set()
        while True:
            replica = self.table.choose_replica(route, tried)
            if replica is None:
                await _respond(
                    send,
                    503,
                    _error(
                        f"no replica of deployment {self.deployment!r} version {route.version} accepted the request"
                    ),
                    [(b"content-type", b"application/json"), (b"retry-after", b"1")],
                )
                return
            tried.add(replica.url)
            replica.in_flight += 1
            try:
                try:
                    answer = await self.upstream(replica.url).stream(
                        scope["method"], target, headers, body, self.timeout
                    )
                except NotSent:
                    replica.ejected_until = time.monotonic() + EJECT_SECONDS
                    continue
                except (TimeoutError, UpstreamFailed) as exc:
                    await _respond(send, 502, _error(f"replica {replica.url} of deployment {self.deployment!r}: {exc}"))
                    return
                kept = [h for h in answer.headers if h[0] not in RESPONSE_HOP_BY_HOP]
                await send({"type": "http.response.start", "status": answer.status, "headers": kept})
                gone = asyncio.ensure_future(receive())  # settles with http.disconnect if the client leaves
                following: asyncio.Future[bytes] | None = None
                try:
                    while True:
                        following = asyncio.ensure_future(anext(answer.pieces))
                        await asyncio.wait({following, gone}, return_when=asyncio.FIRST_COMPLETED)
                        if not following.done():  # the client left while the replica was still generating
                            break
                        try:
                            piece = following.result()
                        except StopAsyncIteration:
                            break
                        await send({"type": "http.response.body", "body": piece, "more_body": True})
                except (TimeoutError, UpstreamFailed) as exc:  # the head went out: say so in the stream's own terms
                    error = json.dumps({"error": f"replica {replica.url} broke off the stream: {exc}"})
                    await send(
                        {
                            "type": "http.response.body",
                            "body": f"event: error\ndata: {error}\n\n".encode(),
                            "more_body": True,
                        }
                    )
                finally:
                    # the client left (or this task was cancelled as its connection closed): stop reading, and
                    # close the replica's connection, which cancels the generation there
                    gone.cancel()
                    if following is not None and not following.done():
                        following.cancel()
                        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, UpstreamFailed):
                            await following
                    await answer.pieces.aclose()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            finally:
                replica.in_flight -= 1

    def _observe(self, version: str, status: int, seconds: float) -> None:
        labels = (self.deployment, version)
        self.metrics.requests.labels(*labels).inc()
        window = self.table.windows.setdefault(version, VersionWindow())
        window.requests += 1
        if status >= 400:
            window.errors += 1
            self.metrics.errors.labels(*labels, str(status)).inc()
        else:
            window.latencies.append(seconds)
            self.metrics.latency.labels(*labels).observe(seconds)

    async def metrics_text(self) -> bytes:
        """The router's series, then every replica's, each replica's labelled with its URL."""
        urls = self.table.replica_urls()

        async def fetch(url: str) -> str | None:
            try:
                answer = await self.upstream(url).request("GET", "/metrics", [], b"", 2.0)
            except (TimeoutError, NotSent, UpstreamFailed):
                return None
            return answer.body.decode() if answer.status == 200 else None

        families: dict[str, Metric] = {}
        for url, text in zip(urls, await asyncio.gather(*(fetch(u) for u in urls)), strict=False):
            for family in text_string_to_metric_families(text or ""):
                merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for s in family.samples:
                    merged.add_sample(s.name, {**s.labels, "replica": url}, s.value, s.timestamp)
        replicas = CollectorRegistry()
        replicas.register(_Collected(list(families.values())))
        return generate_latest(self.registry) + generate_latest(replicas)


def start_router(
    deployment: str,
    token: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_path: str | os.PathLike[str] | None = None,
    die_with_parent: bool = False,
    client_token_sha256: str = "",
) -> EndpointProcess:
    """Spawn a router process for ``deployment`` and wait until it is live (it is ready once it has routes)."""
    from aidc.serving.endpoint import launch

    return launch(
        "aidc.serving.router",
        ["--deployment", deployment],
        what=f"router of deployment {deployment!r}",
        host=host,
        port=port,
        log_path=log_path,
        env={TOKEN_ENV: token} | ({CLIENT_TOKEN_ENV: client_token_sha256} if client_token_sha256 else {}),
        die_with_parent=die_with_parent,
        wait_for="live",
    )


class RouterClient:
    """The controller's side of the router's admin API."""

    def __init__(self, url: str, token: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers={"authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def set_routes(self, versions: list[dict[str, Any]]) -> None:
        """``versions``: [{"version": "1", "weight": 90.0, "replicas": [url, …]}, …]."""
        self._http.put("/-/routes", json={"versions": versions}).raise_for_status()

    def routes(self) -> list[dict[str, Any]]:
        return list(self._http.get("/-/routes").json()["versions"])

    def stats(self) -> dict[str, dict[str, Any]]:
        return dict(self._http.get("/-/stats").json()["versions"])


def main(argv: list[str] | None = None) -> int:
    from aidc.serving.server import _graceful_server, bind, write_port_file

    parser = argparse.ArgumentParser(
        prog="python -m aidc.serving.router", description="Route a deployment's OIP v2 traffic over its replicas."
    )
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument(
        "--front-end",
        choices=("aidc", "uvicorn"),
        default="aidc",
        help="HTTP layer: aidc's lean front end (one write per answer) or plain uvicorn",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.get(TOKEN_ENV)
    if not token:
        print(f"error: set {TOKEN_ENV} to the token the controller will present", file=sys.stderr)
        return 2
    import uvicorn

    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    port = sock.getsockname()[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    log.info("routing deployment %s on http://%s:%d (%s front end)", args.deployment, args.host, port, args.front_end)
    app = RouterApp(args.deployment, token, client_token_sha256=os.environ.get(CLIENT_TOKEN_ENV, ""))
    if args.front_end == "aidc":
        from aidc.serving.frontend import serve
        from aidc.serving.server import _loop_factory

        async def close_upstreams() -> None:
            for upstream in app.upstreams.values():
                upstream.close()

        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(app, sock, shutdown=close_upstreams, max_body_bytes=app.max_body_bytes))
        log.info("stopped")
        return 0
    config = uvicorn.Config(
        app, log_level=args.log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=10
    )
    _graceful_server(config).run(sockets=[sock])
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
