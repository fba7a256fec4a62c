"""The OIP v2 REST data plane as a FastAPI app: health, metadata, infer and Prometheus metrics for loaded models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from aidc.errors import AidcError, InvalidInput, NotFound
from aidc.serving.batching import BatchingConfig, DynamicBatcher, ServerOverloaded
from aidc.serving.protocol import HEADER_LENGTH, JSON_TYPE, InferRequest, decode_infer_request, encode_infer_response

if TYPE_CHECKING:
    from aidc.serving.model import OnnxModel

SERVER_NAME = "aidc"
EXTENSIONS = ["binary_tensor_data"]
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# Decoding a big JSON body takes milliseconds; past this size it moves to a thread so the loop keeps serving.
DECODE_IN_THREAD_BYTES = 1024 * 1024
HEADER_LENGTH_KEY = HEADER_LENGTH.lower().encode()
JSON_HEADERS = {"content-type": JSON_TYPE}
INFER_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")


class BodyTooLarge(InvalidInput):
    code = "payload_too_large"
    http_status = 413


class ServingMetrics:
    """Prometheus series per model and version, in a registry owned by one app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["model", "version"]
        self.requests = Counter("aidc_serving_requests", "Inference requests received.", labels, registry=registry)
        self.errors = Counter(
            "aidc_serving_errors", "Inference requests answered with an error.", labels + ["status"], registry=registry
        )
        self.latency = Histogram(
            "aidc_serving_request_duration_seconds",
            "Time from request received to response ready.",
            labels,
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.batch_size = Histogram(
            "aidc_serving_batch_size",
            "Rows per model execution.",
            labels,
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.batch_requests = Histogram(
            "aidc_serving_batch_requests",
            "Requests merged per model execution.",
            labels,
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.queue_depth = Gauge(
            "aidc_serving_queue_depth", "Requests waiting in the model's queue.", labels, registry=registry
        )


@dataclass
class ServedModel:
    model: OnnxModel
    batcher: DynamicBatcher
    requests: Any = None  # this model's metric children, bound once (a labels() lookup per request adds up)
    latency: Any = None


class ModelTable:
    """Loaded models by name and version; a name without a version means its latest-registered version."""

    def __init__(self) -> None:
        self._by_name: dict[str, dict[str, ServedModel]] = {}

    def add(self, served: ServedModel) -> None:
        versions = self._by_name.setdefault(served.model.name, {})
        if served.model.version in versions:
            raise InvalidInput(f"model {served.model.name!r} version {served.model.version!r} is loaded twice")
        versions[served.model.version] = served

    def get(self, name: str, version: str | None = None) -> ServedModel:
        versions = self._by_name.get(name)
        if not versions:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise NotFound(f"model {name!r} is not served here; models: {known}")
        if version is None or version == "":
            return list(versions.values())[-1]
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version!r}; versions: {', '.join(versions)}")
        return versions[version]

    def versions(self, name: str) -> list[str]:
        return list(self._by_name.get(name, {}))

    def all(self) -> list[ServedModel]:
        return [s for versions in self._by_name.values() for s in versions.values()]


def _error(exc: AidcError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, ServerOverloaded) else None
    return JSONResponse({"error": str(exc)}, status_code=exc.http_status, headers=headers)


async def _read_body(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(
            f"request body is {declared} bytes; this server accepts at most {limit}", hint="send fewer rows per request"
        )
    chunks: list[bytes] = []
    size = 0
    while True:  # chunked uploads have no content-length to trust
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body exceeds {limit} bytes", hint="send fewer rows per request")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _send(send: Any, status: int, content: bytes, headers: dict[str, str]) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


@dataclass
class Answer:
    """A whole HTTP answer: status, body and headers (content-length is the front end's to add)."""

    status: int
    content: bytes
    headers: dict[str, str]


def error_answer(exc: AidcError) -> Answer:
    extra = {"retry-after": str(exc.retry_after)} if isinstance(exc, ServerOverloaded) else {}
    return Answer(exc.http_status, json.dumps({"error": str(exc)}).encode(), JSON_HEADERS | extra)


@dataclass
class InferTicket:
    """An infer request queued in its model's batcher: what is needed to answer it once ``future`` is done."""

    route: InferRoute
    served: ServedModel
    request: InferRequest
    started: float
    future: asyncio.Future[dict[str, Any]]


class InferRoute:
    """``POST /v2/models/{m}[/versions/{v}]/infer`` once the body is read: decode, queue, encode, count.

    Shared by the ASGI app and the lean front end (serving/frontend.py), so both answer alike. ``submit`` never
    blocks or awaits, which lets the front end call it from a protocol callback and finish on a done-callback.
    """

    def __init__(self, table: ModelTable, metrics: ServingMetrics) -> None:
        self.table = table
        self.metrics = metrics

    def submit(
        self,
        name: str,
        version: str | None,
        body: bytes | AidcError,
        header_length: str | None,
        on_done: Callable[[], None] | None = None,
    ) -> Answer | InferTicket:
        """An answer now (an error), or a ticket to ``finish`` when its future is done (``on_done`` is then called).

        ``body`` is the exception to answer with when reading it failed (too large, client gone).
        """
        served = self._served(name, version)
        if isinstance(served, Answer):
            return served
        started = time.perf_counter()
        try:
            if isinstance(body, AidcError):
                raise body
            decoded = decode_infer_request(body, header_length, served.model)
            return InferTicket(self, served, decoded, started, served.batcher.submit(decoded.inputs, on_done))
        except AidcError as exc:
            return self._failed(served, exc)

    def _served(self, name: str, version: str | None) -> ServedModel | Answer:
        """The model a request names, counted as a request to it; or the 404 answer."""
        try:
            served = self.table.get(name, version)
        except AidcError as exc:
            return error_answer(exc)
        served.requests.inc()
        return served

    def finish(self, ticket: InferTicket) -> Answer:
        served, model = ticket.served, ticket.served.model
        try:
            results = ticket.future.result()
            content, headers = encode_infer_response(model.name, model.version, ticket.request, results)
        except AidcError as exc:
            return self._failed(served, exc)
        except Exception as exc:  # the model itself failed (ONNX Runtime error): the server is fine
            self.metrics.errors.labels(model.name, model.version, "500").inc()
            return Answer(500, json.dumps({"error": f"model {model.name!r} failed: {exc}"}).encode(), JSON_HEADERS)
        served.latency.observe(time.perf_counter() - ticket.started)
        return Answer(200, content, headers)

    def _failed(self, served: ServedModel, exc: AidcError) -> Answer:
        self.metrics.errors.labels(served.model.name, served.model.version, str(exc.http_status)).inc()
        return error_answer(exc)

    async def answer(
        self,
        name: str,
        version: str | None,
        body: bytes | AidcError,
        header_length: str | None,
        *,
        decode_in_thread: bool = False,
    ) -> Answer:
        """The whole answer, awaited (the ASGI path)."""
        if decode_in_thread and isinstance(body, bytes):
            ticket = await self._submit_decoded_in_thread(name, version, body, header_length)
        else:
            ticket = self.submit(name, version, body, header_length)
        if isinstance(ticket, Answer):
            return ticket
        try:
            await ticket.future  # a cancelled caller (client gone) cancels it: the batcher skips it
        except Exception:
            pass  # finish turns the failure into the protocol's error form
        return self.finish(ticket)

    async def _submit_decoded_in_thread(
        self, name: str, version: str | None, body: bytes, header_length: str | None
    ) -> Answer | InferTicket:
        """Decoding a big body takes milliseconds: it runs on a thread so the loop keeps serving."""
        served = self._served(name, version)
        if isinstance(served, Answer):
            return served
        started = time.perf_counter()
        try:
            decoded = await anyio.to_thread.run_sync(decode_infer_request, body, header_length, served.model)
            return InferTicket(self, served, decoded, started, served.batcher.submit(decoded.inputs))
        except AidcError as exc:
            return self._failed(served, exc)


class InferFastPath:
    """ASGI middleware answering ``POST …/infer`` itself: FastAPI's routing, Request and Response objects cost
    more than decoding and running a small model, and infer is the one route where that shows."""

    def __init__(self, app: Any, route: InferRoute, max_body_bytes: int) -> None:
        self.app = app
        self.route = route
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = INFER_PATH.match(scope["path"])
            if match is not None:
                await self.infer(scope, receive, send, match.group(1), match.group(2))
                return
        await self.app(scope, receive, send)

    async def infer(self, scope: dict[str, Any], receive: Any, send: Any, name: str, version: str | None) -> None:
        body: bytes | AidcError
        try:
            body = await _read_body(scope, receive, self.max_body_bytes)
        except AidcError as exc:
            body = exc
        answer = await self.route.answer(
            name,
            version,
            body,
            _header(scope, HEADER_LENGTH_KEY),
            decode_in_thread=isinstance(body, bytes) and len(body) > DECODE_IN_THREAD_BYTES,
        )
        await _send(send, answer.status, answer.content, answer.headers)


def _batch_observer(merged: Histogram, rows: Histogram) -> Callable[[int, int], None]:
    """What a model's batcher calls after each batch: how many requests it merged and how many rows they made."""

    def observe(requests: int, batch_rows: int) -> None:
        merged.observe(requests)
        rows.observe(batch_rows)

    return observe


def create_app(
    models: list[OnnxModel],
    *,
    batching: BatchingConfig | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    server_version: str | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """An OIP v2 app serving ``models``, each behind its own dynamic batcher."""
    if server_version is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            server_version = version("aidc")
        except PackageNotFoundError:
            server_version = "0"
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ServingMetrics(registry)
    table = ModelTable()
    for model in models:
        labels = (model.name, model.version)
        merged, rows = metrics.batch_requests.labels(*labels), metrics.batch_size.labels(*labels)
        batcher = DynamicBatcher(
            model,
            batching,
            on_batch=_batch_observer(merged, rows),
            on_queue_depth=metrics.queue_depth.labels(*labels).set,
        )
        table.add(ServedModel(model, batcher, metrics.requests.labels(*labels), metrics.latency.labels(*labels)))
    state = {"ready": True}

    async def shutdown() -> None:
        state["ready"] = False  # a draining server must stop looking ready to load balancers
        for served in table.all():
            await served.batcher.close()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await shutdown()

    app = FastAPI(title="aidc inference server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    route = InferRoute(table, metrics)
    app.state.models = table
    app.state.metrics = metrics
    app.state.registry = registry
    # What the lean front end (serving/frontend.py) needs to answer the hot routes without this app.
    app.state.infer_route = route
    app.state.readiness = state
    app.state.shutdown = shutdown
    app.state.max_body_bytes = max_body_bytes

    @app.exception_handler(AidcError)
    async def aidc_error(_: Request, exc: AidcError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": server_version, "extensions": EXTENSIONS}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def model_metadata(name: str, version: str | None) -> dict[str, Any]:
        served = table.get(name, version)
        versions = table.versions(name) if version is None else [served.model.version]
        return served.model.metadata(versions)

    def model_ready(name: str, version: str | None) -> JSONResponse:
        table.get(name, version)
        return JSONResponse({"name": name, "ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    app.add_middleware(InferFastPath, route=route, max_body_bytes=max_body_bytes)

    @app.get("/v2/models/{name}")
    async def get_model(name: str) -> dict[str, Any]:
        return model_metadata(name, None)

    @app.get("/v2/models/{name}/versions/{version}")
    async def get_model_version(name: str, version: str) -> dict[str, Any]:
        return model_metadata(name, version)

    @app.get("/v2/models/{name}/ready")
    async def get_model_ready(name: str) -> JSONResponse:
        return model_ready(name, None)

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def get_model_version_ready(name: str, version: str) -> JSONResponse:
        return model_ready(name, version)

    return app
