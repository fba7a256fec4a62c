"""The router's connections to replicas: keep-alive HTTP/1.1 on asyncio streams, each request written in one piece.

A proxy hop is two loopback round trips, and on the hosts we measured a socket send costs 0.1-0.4 ms: aiohttp
and httpx spent 0.75-0.85 ms of CPU per proxied request (headers and body in separate writes, pool
bookkeeping), this ~0.2 ms. It speaks only what our replicas answer: a status line, headers, then a
Content-Length body (chunked is read too, for safety). ``stream`` passes a chunked answer on piece by piece as it
arrives (a generation replica's server-sent events), on a connection of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

HEAD_LIMIT = 64 * 1024
IDLE_PER_REPLICA = 256


class NotSent(Exception):
    """The request never reached the replica (it refused or did not accept the connection): safe to resend."""


class UpstreamFailed(Exception):
    """The replica took the request and then failed to answer it (it died, or closed the connection)."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class StreamedAnswer:
    """An answer whose body arrives in pieces (``pieces``: each chunk as the replica sent it)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    pieces: AsyncGenerator[bytes]


@dataclass
class Upstream:
    """Idle connections to one replica, reused LIFO (the warmest first)."""

    host: str
    port: int
    connect_timeout: float = 2.0
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)

    @classmethod
    def for_url(cls, url: str) -> Upstream:
        host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
        return cls(host.strip("[]"), int(port))

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=HEAD_LIMIT), self.connect_timeout
            )
        except (TimeoutError, OSError) as exc:
            raise NotSent(f"cannot connect to {self.host}:{self.port}: {exc!r}") from None

    async def request(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes, timeout: float
    ) -> Answer:
        head = [
            f"{method} {target} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-length: {len(body)}\r\n".encode(
                "latin-1"
            )
        ]
        head += [k + b": " + v + b"\r\n" for k, v in headers]
        message = b"".join(head) + b"\r\n" + body
        resent = False
        while self.idle:
            reader, writer = self.idle.pop()
            if reader.at_eof() or writer.is_closing():  # the replica closed it while it sat idle
                writer.close()
                continue
            try:
                return await self._exchange(reader, writer, message, timeout)
            except _Stale:
                # Closed as we sent: an idle timeout racing us, or the replica died holding the request. Only
                # a fresh connection tells which; a dead replica's request fails rather than moving on, so a
                # request that kills replicas cannot take them all down one after another.
                resent = True
                self.close()
                break
        try:
            reader, writer = await self._open()
        except NotSent:
            if resent:
                raise UpstreamFailed(f"{self.host}:{self.port} went away holding the request") from None
            raise
        try:
            return await self._exchange(reader, writer, message, timeout)
        except _Stale:
            raise UpstreamFailed(f"{self.host}:{self.port} closed the connection without answering") from None

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes, timeout: float
    ) -> Answer:
        try:
            writer.write(message)
            answer = await asyncio.wait_for(_read_answer(reader), timeout)
        except asyncio.IncompleteReadError as exc:
            writer.close()
            if not exc.partial:
                raise _Stale from None
            raise UpstreamFailed(f"{self.host}:{self.port} closed the connection mid-answer") from None
        except TimeoutError:
            writer.close()
            raise
        except (OSError, asyncio.LimitOverrunError, ValueError) as exc:
            writer.close()
            raise UpstreamFailed(f"{self.host}:{self.port}: {exc!r}") from None
        if (
            any(k == b"connection" and v.lower() == b"close" for k, v in answer.headers)
            or len(self.idle) >= IDLE_PER_REPLICA
        ):
            writer.close()
        else:
            self.idle.append((reader, writer))
        return answer

    async def stream(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes, timeout: float
    ) -> StreamedAnswer:
        """Send a request on a fresh connection and return as soon as the answer's head is in; its body follows
        chunk by chunk (each within ``timeout`` of the last), and the connection closes when it ends."""
        head = [
            f"{method} {target} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-length: {len(body)}\r\n".encode(
                "latin-1"
            )
        ]
        head += [k + b": " + v + b"\r\n" for k, v in headers]
        reader, writer = await self._open()
        try:
            writer.write(b"".join(head) + b"\r\n" + body)
            status, answer_headers, length, chunked = _parse_head(
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            )
        except TimeoutError:
            writer.close()
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            writer.close()
            raise UpstreamFailed(f"{self.host}:{self.port} did not answer: {exc!r}") from None

        async def pieces() -> AsyncGenerator[bytes]:
            try:
                if not chunked:
                    data = await asyncio.wait_for(
                        reader.readexactly(length) if length is not None else reader.read(), timeout
                    )
                    if data:
                        yield data
                    return
                while True:
                    size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)).split(b";")[0], 16)
                    data = await asyncio.wait_for(reader.readexactly(size + 2), timeout)
                    if size == 0:
                        return
                    yield data[:-2]
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                raise UpstreamFailed(f"{self.host}:{self.port} broke off the answer: {exc!r}") from None
            finally:
                writer.close()

        return StreamedAnswer(status, answer_headers, pieces())

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


class _Stale(Exception):
    pass


def _parse_head(raw: bytes) -> tuple[int, list[tuple[bytes, bytes]], int | None, bool]:
    """A status line and headers → (status, headers but the framing ones, Content-Length, chunked)."""
    lines = raw[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        else:
            headers.append((name, value))
    return status, headers, length, chunked


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    status, headers, length, chunked = _parse_head(await reader.readuntil(b"\r\n\r\n"))
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(p[:-2] for p in parts)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()
    return Answer(status, headers, body)
