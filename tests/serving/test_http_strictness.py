"""The inference front end and the router, fed malformed and smuggling requests, refuse at least what uvicorn
(on h11, a strict parser) refuses, never let a request hidden in another reach the app, and drop a slowloris."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from aidc.serving import frontend
from aidc.serving.router import RouterApp, RouterClient

SMUGGLED = b"GET /v2/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def _post(headers: bytes, body: bytes) -> bytes:
    # Connection: close, so that a server done with the request hangs up rather than wait for the next one.
    return b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n" + body


# (name, raw request, what is expected: "valid" = answered as uvicorn answers it; "refused" = refused by the front
# end and the router whatever uvicorn does — h11 lets some through (a repeated equal Content-Length, obs-fold,
# Transfer-Encoding beside Content-Length, 300 headers), which a proxy in front may frame otherwise)
CORPUS: list[tuple[str, bytes, str]] = [
    ("plain", _post(b"Content-Length: 2\r\n", b"{}"), "valid"),
    ("chunked", _post(b"Transfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n"), "valid"),
    (
        "two requests pipelined",
        b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n" + _post(b"Content-Length: 2\r\n", b"{}"),
        "valid",
    ),
    ("duplicate content-length", _post(b"Content-Length: 2\r\nContent-Length: 2\r\n", b"{}"), "refused"),
    ("conflicting content-length", _post(b"Content-Length: 2\r\nContent-Length: 40\r\n", b"{}" + SMUGGLED), "refused"),
    ("content-length list", _post(b"Content-Length: 2, 40\r\n", b"{}" + SMUGGLED), "refused"),
    ("CL.TE", _post(b"Content-Length: 45\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED), "refused"),
    (
        "TE.CL",
        _post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"2\r\n{}\r\n0\r\n\r\n" + SMUGGLED),
        "refused",
    ),
    ("TE gzip, chunked", _post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), "refused"),
    ("TE identity", _post(b"Transfer-Encoding: identity\r\nContent-Length: 2\r\n", b"{}"), "refused"),
    ("TE xchunked", _post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n" + SMUGGLED), "refused"),
    ("TE with a space before the colon", _post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + SMUGGLED), "refused"),
    ("obs-folded header", _post(b"X-A: a\r\n  folded\r\nContent-Length: 2\r\n", b"{}"), "refused"),
    ("obs-folded transfer-encoding", _post(b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n" + SMUGGLED), "refused"),
    ("negative content-length", _post(b"Content-Length: -1\r\n", b"{}"), "refused"),
    ("non-numeric content-length", _post(b"Content-Length: 1x\r\n", b"{}"), "refused"),
    ("bad chunk size", _post(b"Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"), "refused"),
    ("NUL in a header", _post(b"X-A: a\x00b\r\nContent-Length: 2\r\n", b"{}"), "refused"),
    ("header without a colon", _post(b"X-A a\r\nContent-Length: 2\r\n", b"{}"), "refused"),
    ("oversized header block", _post(b"X-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n", b"{}"), "refused"),
    (
        "too many headers",
        _post(b"".join(b"X-%d: a\r\n" % i for i in range(300)) + b"Content-Length: 2\r\n", b"{}"),
        False,
    ),
]


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """What the app saw: the request's method, path and body."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    seen = json.dumps({"method": scope["method"], "path": scope["path"], "body": body.decode("latin-1")}).encode()
    _echo.seen.append(scope["path"])  # type: ignore[attr-defined]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": seen})


_echo.seen = []  # type: ignore[attr-defined]


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _in_thread(start: Callable[[asyncio.AbstractEventLoop], Any]) -> Callable[[], None]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start(loop))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(30)

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return stop


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, int]]:
    """The echo app on aidc's front end and on uvicorn (h11); aidc's router in front of the former."""
    stops = []
    ports: dict[str, int] = {}

    aidc_sock = _listening()
    ports["aidc"] = aidc_sock.getsockname()[1]

    async def start_aidc(_: Any) -> None:
        await frontend.listen(_echo, aidc_sock)

    stops.append(_in_thread(start_aidc))

    uv_sock = _listening()
    ports["uvicorn"] = uv_sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_echo, http="h11", lifespan="off", log_level="critical"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[uv_sock])), daemon=True)
    thread.start()

    router_sock = _listening()
    ports["router"] = router_sock.getsockname()[1]
    router = RouterApp("fuzz", "admin-token")

    async def start_router(_: Any) -> None:
        await frontend.listen(router, router_sock)

    stops.append(_in_thread(start_router))
    while not server.started:
        threading.Event().wait(0.05)
    client = RouterClient(f"http://127.0.0.1:{ports['router']}", "admin-token")
    client.set_routes([{"version": "1", "weight": 100.0, "replicas": [f"http://127.0.0.1:{ports['aidc']}"]}])
    client.close()
    yield ports
    server.should_exit = True
    thread.join(10)
    for stop in stops:
        stop()


def _exchange(port: int, raw: bytes, timeout: float = 3.0) -> list[int]:
    """Send ``raw`` on a fresh connection; the statuses answered before the server closed (or, waiting for bytes
    that never come, went quiet for ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
        except OSError:
            pass  # the server closed on us mid-send: it refused
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


def _refused(statuses: list[int]) -> bool:
    return not statuses or 400 <= statuses[0] < 500


@pytest.mark.parametrize(("name", "raw", "expected"), CORPUS, ids=[c[0] for c in CORPUS])
def test_front_end_and_router_refuse_what_uvicorn_refuses(
    servers: dict[str, int], name: str, raw: bytes, expected: str
) -> None:
    _echo.seen.clear()  # type: ignore[attr-defined]
    reference = _exchange(servers["uvicorn"], raw)
    ours = _exchange(servers["aidc"], raw)
    routed = _exchange(servers["router"], raw)
    if expected == "valid":
        assert ours == reference and routed == reference, (ours, routed, reference)
        return
    assert _refused(ours), f"the front end accepted {name}: {ours} (uvicorn: {reference})"
    assert _refused(routed), f"the router accepted {name}: {routed}"
    assert "/v2/smuggled" not in _echo.seen  # type: ignore[attr-defined]


def test_a_slowloris_is_disconnected(servers: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frontend, "HEADER_TIMEOUT_S", 0.5)
    for port in (servers["aidc"], servers["router"]):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
            assert sock.recv(1024) == b""  # the server hung up on it (a timeout here raises instead)
