"""The inference server process: ``python -m aidc.serving.server --model NAME=PATH`` serves the OIP v2 app (serving/frontend.py, or uvicorn)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aidc.errors import AidcError, InvalidInput

log = logging.getLogger("aidc.serving.server")


def parse_model(text: str, default_version: str) -> tuple[str, str, str]:
    """``NAME=PATH`` or ``NAME:VERSION=PATH`` → (name, version, path)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise InvalidInput(f"--model {text!r} must look like NAME=PATH or NAME:VERSION=PATH")
    name, _, version = name.partition(":")
    return name, version or default_version, path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aidc.serving.server",
        description="Serve ONNX models over the Open Inference Protocol v2 (REST).",
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME[:VERSION]=PATH",
        help="an ONNX model to serve; repeat for several",
    )
    parser.add_argument("--model-version", default="1", help="version for models given without one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (see --port-file)")
    parser.add_argument("--port-file", help="write the bound port here once listening (for port 0)")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-queue-delay-ms", type=float, default=2.0)
    parser.add_argument("--max-queue-size", type=int, default=1024, help="queued requests before 503")
    parser.add_argument(
        "--no-adaptive-batching",
        action="store_true",
        help="always wait up to the queue delay, even when batching does not pay",
    )
    parser.add_argument("--max-body-mb", type=float, default=64.0)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: cores)")
    parser.add_argument(
        "--front-end",
        choices=("aidc", "uvicorn"),
        default="aidc",
        help="HTTP layer: aidc's lean httptools front end (infer and health in one write, the rest "
        "through the app) or plain uvicorn (what benchmarks compare with)",
    )
    parser.add_argument("--log-level", default="info")
    return parser


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves so port 0 yields a real port we can report before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY on accepted sockets only then, and without
    # it Nagle's algorithm + delayed ACKs add ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def write_port_file(path: str, port: int) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(str(port))
    os.replace(tmp, path)  # atomic: a reader never sees a half-written port


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvicorn

        from aidc.serving.app import create_app
        from aidc.serving.batching import BatchingConfig
        from aidc.serving.model import OnnxModel

        models = []
        for spec in args.model:
            name, version, path = parse_model(spec, args.model_version)
            model = OnnxModel(path, name, version, intra_op_threads=args.threads)
            log.info("loaded %s version %s from %s on %s", name, version, path, ", ".join(model.providers))
            models.append(model)
        batching = BatchingConfig(
            max_batch_size=args.max_batch_size,
            max_queue_delay_ms=args.max_queue_delay_ms,
            max_queue_size=args.max_queue_size,
            adaptive=not args.no_adaptive_batching,
        )
        app = create_app(models, batching=batching, max_body_bytes=int(args.max_body_mb * 1024 * 1024))
        sock = bind(args.host, args.port)
    except (AidcError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    port = sock.getsockname()[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    log.info("serving OIP v2 on http://%s:%d (%s front end)", args.host, port, args.front_end)
    if args.front_end == "aidc":
        from aidc.serving.frontend import serve

        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(app, sock))
        log.info("stopped")
        return 0
    # One process, one event loop: batching needs all requests for a model in one queue. uvicorn turns
    # SIGTERM/SIGINT into a graceful shutdown (finish in-flight requests, then the app's lifespan exit).
    config = uvicorn.Config(
        app, log_level=args.log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=10
    )
    _graceful_server(config).run(sockets=[sock])
    log.info("stopped")
    return 0


def _loop_factory() -> Any:
    """uvloop's event loop where it is installed (it comes with uvicorn[standard]), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _graceful_server(config: Any) -> Any:
    """uvicorn's Server, minus re-raising SIGTERM after a graceful shutdown, so a stop exits with status 0."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                # uvicorn re-raises captured signals on exit; ours was handled, so drop it.
                captured = getattr(self, "_captured_signals", None)
                if isinstance(captured, list):
                    captured.clear()

    return Server(config)


if __name__ == "__main__":
    sys.exit(main())
