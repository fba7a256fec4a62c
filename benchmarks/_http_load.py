"""One keep-alive HTTP/1.1 request and its whole answer over raw asyncio streams: the load generators' exchange
(benchmarks/serving.py, benchmarks/api.py), kept this bare so the client's own cost stays far below the server's."""

from __future__ import annotations

import asyncio


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send ``request``, read the answer to its last byte (Content-Length or chunked); its HTTP status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        start = lower.index(b"\r\ncontent-length:") + 17
        await reader.readexactly(int(lower[start : lower.index(b"\r\n", start)]))
    return int(head[9:12])
