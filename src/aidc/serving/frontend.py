"""The inference server's HTTP/1.1 front end: infer and health answered straight from an httptools parser, in one write.

uvicorn turns every request into an ASGI scope, a receive and two sends (head and body: two socket writes), and
on a model that runs in 0.1 ms that machinery is most of the request's cost. Here an asyncio ``Protocol`` feeds
bytes to httptools (the C parser uvicorn itself uses), hands an infer body to the model's batcher (serving/app.py's
``InferRoute``, the same code the ASGI app runs) and writes the whole response — status line, headers, body — with
one ``transport.write`` when the batcher's future is done: no task, no scope, no Starlette. Every other route
(metadata, model readiness, ``/metrics``, unknown paths, wrong methods) goes to the ASGI app unchanged, so its
answers and error forms stay exactly the app's.

HTTP/1.1 rules kept: keep-alive (HTTP/1.0 closes unless asked), pipelined requests answered in order (at most
``MAX_PIPELINED`` parsed ahead before the connection stops being read), bodies framed by httptools
(Content-Length or chunked), ``Expect: 100-continue``, 413 for bodies over the limit (the rest of the body is
read and dropped, so the client sees the answer), 400 and close for bytes that are not HTTP.

And what a strict server or proxy refuses, so that no two parsers on a request's way (a proxy in front, this
front end, the router's hop to a replica) can frame it differently — the stuff of request smuggling: 400 and
close for a repeated Content-Length, for Content-Length beside Transfer-Encoding, for any Transfer-Encoding but
``chunked``, and for a header value holding CR or LF (an obs-folded line); 431 and close for a header block over
``MAX_HEADER_BYTES`` or ``MAX_HEADERS`` fields; and a connection that has not finished a request's headers within
``HEADER_TIMEOUT_S`` of starting it (or of going idle) is closed — a slowloris holds no connection for long.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from aidc.serving.app import (
    DECODE_IN_THREAD_BYTES,
    INFER_PATH,
    JSON_HEADERS,
    Answer,
    BodyTooLarge,
    InferRoute,
    InferTicket,
)

log = logging.getLogger("aidc.serving.frontend")

MAX_PIPELINED = 32  # complete requests waiting for their turn on one connection before it stops being read
MAX_HEADER_BYTES = 64 * 1024  # a request line and header block larger than this is refused (431)
MAX_HEADERS = 100
HEADER_TIMEOUT_S = 10.0  # from a connection's start or idleness to the end of a request's headers
STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
LIVE = b'{"live":true}'
READY = {True: b'{"ready":true}', False: b'{"ready":false}'}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def response_bytes(status: int, content: bytes, headers: dict[str, str], keep_alive: bool) -> bytes:
    """A whole HTTP/1.1 response, ready for one write."""
    parts = [STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status]
    parts += [f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items()]
    parts.append(b"content-length: %d\r\n" % len(content))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(content)
    return b"".join(parts)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request already refused."""


class _Request:
    """One parsed request: what the parser told us, and its body (or why it has none)."""

    __slots__ = (
        "url",
        "method",
        "headers",
        "body",
        "size",
        "too_large",
        "header_length",
        "keep_alive",
        "http_version",
        "expect_continue",
        "answered_early",
        "error",
        "header_bytes",
        "framing",
    )

    def __init__(self) -> None:
        self.url = b""
        self.method = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.too_large: BodyTooLarge | None = None
        self.header_length: str | None = None
        self.keep_alive = True
        self.http_version = "1.1"
        self.expect_continue = False
        self.answered_early = False  # a 413 sent before the body (Expect: 100-continue); its body is not awaited
        self.error: Answer | None = None  # the parser gave up on these bytes: answer this, then close
        self.header_bytes = 0
        self.framing: list[bytes] = []  # the Content-Length and Transfer-Encoding headers, in order


class FrontEnd:
    """What every connection shares: the app, its infer route and readiness, and the set of open connections.

    An app without an infer route (the deployment router) has every request go through it, still answered
    in one write.
    """

    def __init__(self, app: Any, *, max_body_bytes: int | None = None) -> None:
        self.app = app
        state = getattr(app, "state", None)
        self.route: InferRoute | None = getattr(state, "infer_route", None)
        self.readiness: dict[str, bool] = getattr(state, "readiness", {"ready": True})
        configured: int = getattr(state, "max_body_bytes", 64 * 1024 * 1024)
        self.max_body_bytes = max_body_bytes or configured
        self.connections: set[Connection] = set()
        self.stopping = False
        self.idle = asyncio.Event()  # set whenever no connection is open

    def opened(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.idle.clear()

    def closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self.idle.set()


class Connection(asyncio.Protocol):
    """One client connection: parse, answer in order, one write per response."""

    def __init__(self, front: FrontEnd) -> None:
        import httptools

        self.front = front
        self.parser = httptools.HttpRequestParser(self)
        self._parser_errors = (httptools.HttpParserUpgrade, httptools.HttpParserError)
        self.transport: asyncio.Transport | None = None
        self.current: _Request | None = None  # being parsed
        self.waiting: collections.deque[_Request] = collections.deque()  # parsed, not yet being answered
        self.active: _Request | None = None  # being answered
        self.ticket: InferTicket | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.broken = False  # the parser gave up: read nothing more
        self.write_paused = False
        self.read_paused = False
        self.client_gone: asyncio.Future[None] | None = None
        self.header_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------------------------- transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:  # without it Nagle + delayed ACKs hold small responses ~40 ms
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        self.front.opened(self)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        """Until the next request's headers are complete, the connection has HEADER_TIMEOUT_S."""
        if self.header_timer is None and not self.closed:
            self.header_timer = asyncio.get_running_loop().call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_too_slow(self) -> None:
        self.header_timer = None
        if self.transport is not None and not self.closed and self.active is None and not self.waiting:
            self.transport.close()  # nothing of ours is waiting to be written: there is no one to tell

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm_header_timer()
        if self.ticket is not None:
            self.ticket.future.cancel()  # the batcher skips requests nobody waits for
            self.ticket = None
        if self.task is not None:
            self.task.cancel()
        if self.client_gone is not None and not self.client_gone.done():
            self.client_gone.set_result(None)
        self.front.closed(self)

    def pause_writing(self) -> None:
        self.write_paused = True  # the client is not reading: stop reading its requests too
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()

    def _flow(self) -> None:
        if self.transport is None or self.closed:
            return
        pause = self.write_paused or self.broken or len(self.waiting) >= MAX_PIPELINED
        if pause and not self.read_paused:
            self.transport.pause_reading()
            self.read_paused = True
        elif not pause and self.read_paused:
            self.transport.resume_reading()
            self.read_paused = False

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.parser.feed_data(data)
        except self._parser_errors as exc:
            if self.broken:
                return  # refused by one of our own checks (_refuse), already answered
            self.broken = True
            request = _Request()
            request.keep_alive = False
            what = "protocol upgrades are not supported" if "Upgrade" in type(exc).__name__ else str(exc)
            request.error = Answer(400, json.dumps({"error": f"invalid HTTP request: {what}"}).encode(), JSON_HEADERS)
            self.current = None
            self.waiting.append(request)
            self._flow()
            self._next()

    def shutdown(self) -> None:
        """The server is stopping: close now if idle, else after the answer in progress."""
        if self.active is None and not self.waiting and self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------------------------------- parser callbacks

    def _refuse(self, status: int, why: str) -> None:
        """Answer ``status`` and close, reading nothing more (raises, to stop the parser where it is)."""
        self.broken = True
        request = _Request()
        request.keep_alive = False
        request.error = Answer(status, json.dumps({"error": f"invalid HTTP request: {why}"}).encode(), JSON_HEADERS)
        self.current = None
        self.waiting.append(request)
        self._flow()
        self._next()
        raise _Refused(why)

    def on_message_begin(self) -> None:
        self.current = _Request()
        self._disarm_header_timer()  # each request has the whole HEADER_TIMEOUT_S from its first byte
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.url += url
        self.current.header_bytes += len(url)
        if self.current.header_bytes > MAX_HEADER_BYTES:
            self._refuse(431, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.current
        assert request is not None
        name = name.lower()
        request.header_bytes += len(name) + len(value) + 4
        if request.header_bytes > MAX_HEADER_BYTES or len(request.headers) >= MAX_HEADERS:
            self._refuse(431, "header block too large")
        if b"\r" in value or b"\n" in value:
            self._refuse(400, f"obs-folded or broken value of header {name.decode('latin-1')!r}")
        request.headers.append((name, value))
        if name in (b"content-length", b"transfer-encoding"):
            request.framing.append(name)
            if name == b"transfer-encoding" and value.strip().lower() != b"chunked":
                self._refuse(400, "only Transfer-Encoding: chunked is accepted")
        if name == b"inference-header-content-length":
            request.header_length = value.decode("latin-1")
        elif name == b"expect" and value.lower() == b"100-continue":
            request.expect_continue = True

    def on_headers_complete(self) -> None:
        request = self.current
        assert request is not None and self.transport is not None
        self._disarm_header_timer()
        if request.framing.count(b"content-length") > 1:
            self._refuse(400, "more than one Content-Length")
        if b"content-length" in request.framing and b"transfer-encoding" in request.framing:
            self._refuse(400, "both Content-Length and Transfer-Encoding")
        request.method = self.parser.get_method()
        request.keep_alive = self.parser.should_keep_alive()
        request.http_version = self.parser.get_http_version()
        declared = next((v for k, v in request.headers if k == b"content-length"), None)
        limit = self.front.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            request.too_large = BodyTooLarge(
                f"request body is {int(declared)} bytes; this server accepts at most {limit}",
                hint="send fewer rows per request",
            )
        if request.expect_continue:
            if request.too_large is not None:
                # The client waits before sending the body: answer now, and close, since the body may never come.
                request.answered_early = True
                request.keep_alive = False
                self.waiting.append(request)
                self._next()
            elif self.active is None and not self.waiting:
                self.transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        request = self.current
        assert request is not None
        if request.too_large is not None:
            return  # read and dropped, so the client gets to read our 413
        request.size += len(body)
        if request.size > self.front.max_body_bytes:
            request.too_large = BodyTooLarge(
                f"request body exceeds {self.front.max_body_bytes} bytes", hint="send fewer rows per request"
            )
            request.body.clear()
            return
        request.body.append(body)

    def on_message_complete(self) -> None:
        request, self.current = self.current, None
        assert request is not None
        if request.answered_early:
            return
        self.waiting.append(request)
        self._flow()
        if self.active is None:
            self._next()

    # ------------------------------------------------------------------------------------- answering

    def _next(self) -> None:
        """Answer waiting requests in order until one must wait (for the batcher or the ASGI app)."""
        while self.waiting and self.active is None and not self.closed:
            request = self.waiting.popleft()
            self.active = request
            self._answer(request)
        self._flow()

    def _answer(self, request: _Request) -> None:
        if request.error is not None:
            self._write(request.error)
            return
        raw_path, _, query = request.url.partition(b"?")
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        front = self.front
        if front.route is None:
            pass  # everything goes to the app
        elif request.method == b"POST":
            match = INFER_PATH.match(path)
            if match is not None:
                self._infer(request, match.group(1), match.group(2))
                return
        elif request.method == b"GET":
            if path == "/v2/health/live":
                self._write(Answer(200, LIVE, JSON_HEADERS))
                return
            if path == "/v2/health/ready":
                ready = front.readiness["ready"]
                self._write(Answer(200 if ready else 503, READY[ready], JSON_HEADERS))
                return
        if request.too_large is not None:
            self._write(Answer(413, json.dumps({"error": str(request.too_large)}).encode(), JSON_HEADERS))
            return
        self.task = asyncio.get_running_loop().create_task(self._delegate(request, path, raw_path, query))

    def _infer(self, request: _Request, name: str, version: str | None) -> None:
        body: bytes | BodyTooLarge = request.too_large or b"".join(request.body)
        route = self.front.route
        assert route is not None
        if isinstance(body, bytes) and len(body) > DECODE_IN_THREAD_BYTES:
            self.task = asyncio.get_running_loop().create_task(
                self._answer_later(route.answer(name, version, body, request.header_length, decode_in_thread=True))
            )
            return
        ticket = route.submit(name, version, body, request.header_length, self._infer_done)
        if isinstance(ticket, Answer):
            self._write(ticket)
        else:
            self.ticket = ticket  # the batcher settles it on a later turn of the loop, then calls _infer_done
            if ticket.future.done():  # an idle batcher answered it already and calls nothing back
                self._infer_done()

    def _infer_done(self) -> None:
        ticket, self.ticket = self.ticket, None
        if ticket is None or self.closed:
            return
        try:
            self._write(ticket.route.finish(ticket))
            self._next()
        except Exception:  # called from the batcher's dispatcher: never let one connection break it
            log.exception("answering an infer request failed")
            if self.transport is not None:
                self.transport.abort()

    async def _answer_later(self, answer: Any) -> None:
        try:
            result = await answer
        finally:
            self.task = None
        self._write(result)
        self._next()

    def _write(self, answer: Answer, *, head_only: bool = False) -> None:
        """Send one answer in one write; close the connection after it when keep-alive ends."""
        request, self.active = self.active, None
        if self.closed or self.transport is None:
            return
        if self.current is None and not self.waiting:
            self._arm_header_timer()  # idle again: the next request has HEADER_TIMEOUT_S to arrive
        keep_alive = bool(request and request.keep_alive) and not self.broken and not self.front.stopping
        data = response_bytes(answer.status, answer.content, answer.headers, keep_alive)
        if head_only:
            data = data[: len(data) - len(answer.content)]
        self.transport.write(data)
        if not keep_alive:
            self.waiting.clear()
            self.transport.close()

    def _write_stream_head(self, status: int, headers: dict[str, str], first: bytes) -> None:
        """The head of an answer whose body follows in chunks as the app sends it."""
        if self.closed or self.transport is None:
            return
        parts = [STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status]
        parts += [f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items()]
        parts.append(b"transfer-encoding: chunked\r\n\r\n")
        if first:
            parts.append(b"%x\r\n%b\r\n" % (len(first), first))
        self.transport.write(b"".join(parts))

    def _end_stream(self, failed: bool) -> None:
        """The last chunk of a streamed answer (or, when the app failed mid-way, a closed connection: the client
        sees the answer cut short rather than a complete one)."""
        request, self.active = self.active, None
        if self.closed or self.transport is None:
            return
        if self.current is None and not self.waiting:
            self._arm_header_timer()
        keep_alive = not failed and bool(request and request.keep_alive) and not self.broken and not self.front.stopping
        if not failed:
            self.transport.write(b"0\r\n\r\n")
        if not keep_alive:
            self.waiting.clear()
            self.transport.close()

    async def _delegate(self, request: _Request, path: str, raw_path: bytes, query: bytes) -> None:
        """Everything but the hot routes: the ASGI app answers, and its answer still goes out in one write."""
        assert self.transport is not None
        body = b"".join(request.body)
        self.client_gone = asyncio.get_running_loop().create_future()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version,
            "method": request.method.decode("latin-1"),
            "scheme": "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": request.headers,
            "server": self.transport.get_extra_info("sockname"),
            "client": self.transport.get_extra_info("peername"),
            "state": {},
        }
        received = False
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        # An answer sent in several bodies (more_body) goes out as it comes, chunked (server-sent events through
        # the router); HEAD and HTTP/1.0 get it whole.
        can_stream = request.method != b"HEAD" and request.http_version != "1.0"
        streaming = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": body, "more_body": False}
            assert self.client_gone is not None
            await self.client_gone
            return {"type": "http.disconnect"}

        def answer_headers() -> dict[str, str]:
            return {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in start.get("headers", [])
                if k.lower() not in (b"content-length", b"transfer-encoding", b"connection")
            }

        async def send(message: dict[str, Any]) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                piece = message.get("body", b"")
                if not streaming and can_stream and message.get("more_body", False):
                    streaming = True
                    self._write_stream_head(int(start.get("status", 200)), answer_headers(), b"".join(chunks))
                if streaming:
                    if piece and self.transport is not None and not self.closed:
                        self.transport.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                else:
                    chunks.append(piece)

        failed = False
        try:
            await self.front.app(scope, receive, send)
        except Exception:
            log.exception("%s %s failed", scope["method"], path)
            failed = True
            if not start:
                start = {"status": 500, "headers": []}
                chunks = [b'{"error":"internal server error"}']
        finally:
            self.task = None
        if streaming:
            self._end_stream(failed)
            self._next()
            return
        content = b"".join(chunks)
        headers = answer_headers()
        self._write(Answer(int(start.get("status", 500)), content, headers), head_only=request.method == b"HEAD")
        self._next()


async def listen(
    app: Any, sock: socket.socket, *, max_body_bytes: int | None = None
) -> tuple[asyncio.Server, FrontEnd]:
    """Start answering connections to ``sock`` on the running loop; the caller closes the server."""
    front = FrontEnd(app, max_body_bytes=max_body_bytes)
    front.idle.set()
    server = await asyncio.get_running_loop().create_server(lambda: Connection(front), sock=sock, backlog=2048)
    return server, front


async def serve(
    app: Any,
    sock: socket.socket,
    *,
    graceful_timeout: float = 10.0,
    shutdown: Callable[[], Awaitable[None]] | None = None,
    max_body_bytes: int | None = None,
) -> None:
    """Serve ``app`` on a bound, listening socket until SIGTERM or SIGINT, then drain and stop.

    Draining: stop accepting, close idle connections, let answers in progress finish (up to
    ``graceful_timeout`` seconds), then ``shutdown`` (default: the app's own, which closes the batchers).
    """
    loop = asyncio.get_running_loop()
    server, front = await listen(app, sock, max_body_bytes=max_body_bytes)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("draining %d connection(s)", len(front.connections))
    server.close()
    front.stopping = True
    for connection in list(front.connections):
        connection.shutdown()
    try:
        await asyncio.wait_for(front.idle.wait(), graceful_timeout)
    except TimeoutError:
        log.warning("%d connection(s) still busy after %gs; closing them", len(front.connections), graceful_timeout)
        for connection in list(front.connections):
            if connection.transport is not None:
                connection.transport.abort()
    await (shutdown or app.state.shutdown)()
