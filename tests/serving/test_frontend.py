"""The lean HTTP/1.1 front end over a real socket: the same answers as the app, and HTTP/1.1 kept (keep-alive,
pipelining, Expect, 413, chunked bodies, bad bytes, 503 with Retry-After)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.pace import HANG_S, wait_until

from aidc.serving.app import create_app
from aidc.serving.batching import BatchingConfig
from aidc.serving.frontend import listen
from aidc.serving.model import OnnxModel
from aidc.serving.protocol import HEADER_LENGTH, encode_infer_request
from aidc.serving.server import bind


@contextlib.contextmanager
def served(app) -> Iterator[int]:
    """The app behind the front end on a free port, its loop on a thread of this process; yields the port."""
    loop = asyncio.new_event_loop()
    sock = bind("127.0.0.1", 0)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        server, _ = loop.run_until_complete(listen(app, sock))
        started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(app.state.shutdown())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(HANG_S)
    try:
        yield sock.getsockname()[1]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


@pytest.fixture(scope="module")
def model(onnx_path: Path) -> OnnxModel:
    return OnnxModel(onnx_path, "digits", "2")


@pytest.fixture
def port(model: OnnxModel) -> Iterator[int]:
    with served(create_app([model], max_body_bytes=4096)) as p:
        yield p


def _infer_bytes(x: np.ndarray, request_id: str, *, binary: bool = False, extra: str = "") -> bytes:
    body, headers = encode_infer_request({"input": x}, binary=binary, binary_output=binary, request_id=request_id)
    head = ["POST /v2/models/digits/infer HTTP/1.1", "Host: t", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n" + extra + "\r\n").encode() + body


class Wire:
    """A raw HTTP/1.1 connection that reads responses one at a time (Content-Length framed)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), "connection closed before a response"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            assert self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def wire(port: int) -> Iterator[Wire]:
    w = Wire(port)
    yield w
    w.close()


def test_every_route_answers_as_the_app_does(model: OnnxModel, batch: np.ndarray) -> None:
    json_body, json_headers = encode_infer_request({"input": batch}, request_id="7")
    binary_body, binary_headers = encode_infer_request({"input": batch}, binary=True, binary_output=True)
    bad = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": [0] * 4}]}
    requests = [
        ("GET", "/v2/health/live", None, {}),
        ("GET", "/v2/health/ready", None, {}),
        ("GET", "/v2", None, {}),
        ("GET", "/v2/models/digits", None, {}),
        ("GET", "/v2/models/digits/versions/2", None, {}),
        ("GET", "/v2/models/digits/ready", None, {}),
        ("GET", "/v2/models/nope", None, {}),
        ("GET", "/v2/models/digits/versions/9/ready", None, {}),
        ("GET", "/nothing/here", None, {}),
        ("POST", "/v2/health/live", b"", {}),
        ("DELETE", "/v2/models/digits/infer", None, {}),
        ("POST", "/v2/models/digits/infer", json_body, json_headers),
        ("POST", "/v2/models/digits/versions/2/infer", binary_body, binary_headers),
        ("POST", "/v2/models/digits/infer", json.dumps(bad).encode(), {}),
        ("POST", "/v2/models/digits/infer", b"not json", {}),
        ("POST", "/v2/models/nope/infer", json_body, json_headers),
        ("POST", "/v2/models/digits/versions/9/infer", json_body, json_headers),
        ("POST", "/v2/models/digits/infer", b"[" + b"0," * 3000 + b"0]", {}),  # over the 4096-byte limit
    ]
    app_kwargs = {"max_body_bytes": 4096, "server_version": "9.9"}
    with (
        TestClient(create_app([model], **app_kwargs)) as asgi,
        served(create_app([model], **app_kwargs)) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as lean,
    ):
        for method, path, body, headers in requests:
            want = asgi.request(method, path, content=body, headers=headers)
            got = lean.request(method, path, content=body, headers=headers)
            what = f"{method} {path}"
            assert got.status_code == want.status_code, what
            assert got.content == want.content, what
            for header in ("content-type", HEADER_LENGTH.lower(), "retry-after", "allow"):
                assert got.headers.get(header) == want.headers.get(header), f"{what}: {header}"


def test_pipelined_requests_are_answered_in_order(wire: Wire, batch: np.ndarray) -> None:
    wire.send(
        _infer_bytes(batch[:1], "first")
        + b"GET /v2 HTTP/1.1\r\nHost: t\r\n\r\n"
        + _infer_bytes(batch[:2], "third", binary=True)
        + b"GET /v2/health/ready HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    status, _, body = wire.response()
    assert status == 200 and json.loads(body)["id"] == "first"
    status, _, body = wire.response()
    assert status == 200 and json.loads(body)["name"] == "aidc"
    status, headers, body = wire.response()
    assert status == 200 and json.loads(body[: int(headers[HEADER_LENGTH.lower()])])["id"] == "third"
    assert wire.response()[0] == 200
    wire.send(_infer_bytes(batch, "again"))  # and the connection stays open
    assert json.loads(wire.response()[2])["id"] == "again"


def test_http_1_0_closes_unless_asked_to_keep_alive(port: int) -> None:
    wire = Wire(port)
    wire.send(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
    status, headers, body = wire.response()
    assert (status, body) == (200, b'{"live":true}') and headers["connection"] == "close"
    assert wire.closed_by_server()
    wire.close()
    wire = Wire(port)
    wire.send(b"GET /v2/health/live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2)
    assert wire.response()[0] == 200 and wire.response()[0] == 200
    wire.close()


def test_expect_100_continue_gets_its_interim_answer(wire: Wire, batch: np.ndarray) -> None:
    request = _infer_bytes(batch, "x", extra="Expect: 100-continue\r\n")
    head, body = request.split(b"\r\n\r\n", 1)
    wire.send(head + b"\r\n\r\n")
    assert wire.response()[0] == 100
    wire.send(body)
    assert wire.response()[0] == 200


def test_a_body_over_the_limit_is_413_and_the_connection_still_serves(wire: Wire, batch: np.ndarray) -> None:
    rows = np.zeros((400, 4), dtype=np.float32)
    wire.send(_infer_bytes(rows, "big"))
    status, _, body = wire.response()
    assert status == 413 and "at most 4096" in json.loads(body)["error"]
    wire.send(_infer_bytes(batch, "small"))
    assert wire.response()[0] == 200


def test_a_chunked_body_over_the_limit_is_413_too(wire: Wire, batch: np.ndarray) -> None:
    body, _ = encode_infer_request({"input": np.zeros((400, 4), dtype=np.float32)})
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 1000]), body[i : i + 1000]) for i in range(0, len(body), 1000)
    )
    wire.send(
        b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )
    status, _, answer = wire.response()
    assert status == 413 and "exceeds 4096 bytes" in json.loads(answer)["error"]
    small, _ = encode_infer_request({"input": batch}, request_id="chunked")
    wire.send(
        b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)
    )
    status, _, answer = wire.response()
    assert status == 200 and json.loads(answer)["id"] == "chunked"


def test_expect_100_continue_with_a_body_over_the_limit_is_413_at_once(wire: Wire) -> None:
    wire.send(
        b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
    )
    status, headers, _ = wire.response()
    assert status == 413 and headers["connection"] == "close"
    assert wire.closed_by_server()


def test_bytes_that_are_not_http_get_400_and_a_close(wire: Wire) -> None:
    wire.send(b"\x16\x03\x01 hello, this is TLS\r\n\r\n")
    status, _, body = wire.response()
    assert status == 400 and "invalid HTTP request" in json.loads(body)["error"]
    assert wire.closed_by_server()


class GatedModel(OnnxModel):
    """The classifier, but each inference waits until the test opens the gate."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "digits")
        self.entered, self.gate = threading.Event(), threading.Event()

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.entered.set()
        assert self.gate.wait(HANG_S)
        return super().infer(inputs)


def test_a_full_queue_answers_503_with_retry_after(onnx_path: Path, batch: np.ndarray) -> None:
    model = GatedModel(onnx_path)  # a real model held at a gate, so the queue's state does not depend on timing
    app = create_app([model], batching=BatchingConfig(max_batch_size=1, max_queue_size=1))
    batcher = app.state.models.get("digits").batcher
    with served(app) as port:
        running, queued, rejected = Wire(port), Wire(port), Wire(port)
        running.send(_infer_bytes(batch, "running"))
        assert model.entered.wait(HANG_S)
        queued.send(_infer_bytes(batch, "queued"))
        wait_until(lambda: batcher.queue_depth >= 1, "the second request queued", every=0.005)
        rejected.send(_infer_bytes(batch, "rejected"))
        status, headers, body = rejected.response()
        assert status == 503 and int(headers["retry-after"]) >= 1
        assert "requests queued (limit 1)" in json.loads(body)["error"]
        model.gate.set()
        assert running.response()[0] == 200 and queued.response()[0] == 200
        for w in (running, queued, rejected):
            w.close()
