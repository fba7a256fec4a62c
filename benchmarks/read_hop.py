"""What handing a PostgreSQL read to a thread costs the server, each way of doing it measured on its own.

The API server (one process, uvloop) runs PostgreSQL reads off the event loop so that a slow answer holds up no
other request. This measures, in process and at 16 concurrent callers like benchmarks/api.py, the CPU per read
(all of the process's threads) and the reads per second of the real list/detail reads on a filled store, for:
  loop          the read called on the event loop (no hop: the floor; stalls the loop while it waits)
  anyio-40      anyio.to_thread.run_sync with its default 40-token limiter (FastAPI's run_in_threadpool)
  executor-N    loop.run_in_executor on a ThreadPoolExecutor of N threads
and the engine settings on the anyio hop: pool_pre_ping off, psycopg's prepare_threshold (server-side prepared
statements after 5 executions by default) off.

Run: PYTHONPATH=src .venv/bin/python benchmarks/read_hop.py [--seconds 2]   (AIDC_TEST_POSTGRES_URL as api.py)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from api import CONCURRENCY, PROJECTS, fill, throwaway_postgres  # noqa: E402

Hop = Callable[[Callable[[], Any]], Awaitable[Any]]


async def run_for(hop: Hop, read: Callable[[], Any], seconds: float) -> tuple[float, float]:
    """(reads/s, CPU µs per read) with CONCURRENCY callers each awaiting ``hop(read)`` back to back."""
    stop = time.perf_counter() + seconds
    count = 0

    async def caller() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await hop(read)
            count += 1

    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))  # warm-up: threads, pool connections
    count, stop = 0, time.perf_counter() + seconds
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - wall), (time.process_time() - cpu) / count * 1e6


def hops() -> dict[str, Hop]:
    import anyio.to_thread

    async def on_loop(fn: Callable[[], Any]) -> Any:
        return fn()

    def executor(n: int) -> Hop:
        pool = ThreadPoolExecutor(max_workers=n)
        return lambda fn: asyncio.get_running_loop().run_in_executor(pool, fn)

    return {
        "loop": on_loop,
        "anyio-40": anyio.to_thread.run_sync,
        "executor-16": executor(16),
        "executor-4": executor(4),
        "executor-2": executor(2),
    }


def main() -> None:
    import uvloop
    from sqlalchemy import create_engine

    from aidc.store.metadata.sql import MAX_OVERFLOW, POOL_SIZE, SqlMetadataStore

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, throwaway_postgres() as url:
        filled = fill(Path(tmp) / "home", url)
        store = SqlMetadataStore(url)
        reads = {
            "/runs": functools.partial(store.list_runs_json, projects=[PROJECTS[0]]),
            "/runs/{id}": functools.partial(store.run_details_json, filled["run"]),
            "/models": functools.partial(store.list_model_versions_json, projects=[PROJECTS[0]]),
        }
        engines = {
            "as shipped": store.engine,
            "no pre_ping": create_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW),
            "no prepare": create_engine(
                url,
                pool_pre_ping=True,
                pool_size=POOL_SIZE,
                max_overflow=MAX_OVERFLOW,
                connect_args={"prepare_threshold": None},
            ),
        }
        print(
            f"PostgreSQL reads at {CONCURRENCY} concurrent callers, uvloop, {args.seconds:g} s each: "
            "reads/s · CPU µs per read (all threads)"
        )
        all_hops = hops()
        cases = [(hop, "as shipped") for hop in all_hops] + [("anyio-40", "no pre_ping"), ("anyio-40", "no prepare")]
        for hop_name, engine_name in cases:
            store.engine = engines[engine_name]
            cells = []
            for read_name, read in reads.items():
                rps, cpu_us = uvloop.run(run_for(all_hops[hop_name], read, args.seconds))
                cells.append(f"{read_name} {rps:6.0f} · {cpu_us:5.0f}")
            print(f"  {hop_name:12} {engine_name:12} " + "   ".join(cells), flush=True)
        for engine in engines.values():
            engine.dispose()


if __name__ == "__main__":
    main()
