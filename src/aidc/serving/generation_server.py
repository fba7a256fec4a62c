"""The generation server process: ``python -m aidc.serving.generation_server --bundle PATH --name NAME`` serves a
registered language model (its bundle: training/gpt/bundle.py) with serving/generation_app.py on uvicorn.

A generation replica runs this where an ONNX replica runs ``aidc.serving.server``: same ``--host``, ``--port``,
``--port-file`` and health routes, so the replica's supervisor (serving/replicas.py) starts, watches and restarts
it the same way.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aidc.errors import AidcError

log = logging.getLogger("aidc.serving.generation_server")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aidc.serving.generation_server",
        description="Serve a registered language model's text generation (OIP v2 BYTES infer, generate, SSE stream).",
    )
    parser.add_argument("--bundle", required=True, help="the model version's bundle (register_lm's artifact)")
    parser.add_argument("--name", required=True, help="the model name requests use (the deployment's)")
    parser.add_argument("--version", default="1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (see --port-file)")
    parser.add_argument("--port-file", help="write the bound port here once listening (for port 0)")
    parser.add_argument("--max-batch", type=int, default=16, help="requests decoded together (continuous batching)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA where torch sees a GPU"
    )
    parser.add_argument("--log-level", default="info")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import torch
        import uvicorn

        from aidc.serving.generation import GenerationEngine, TextGenerator
        from aidc.serving.generation_app import create_generation_app
        from aidc.serving.server import _graceful_server, bind, write_port_file
        from aidc.training.gpt.bundle import unpack
        from aidc.training.gpt.evaluate_stage import load_gpt
        from aidc.training.gpt.text import END_OF_TEXT, load_tokenizer

        if args.threads:
            torch.set_num_threads(args.threads)
        bundle = unpack(args.bundle)
        device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
        model = load_gpt(bundle.weights, bundle.arch).to(device)
        tok = load_tokenizer(bundle.tokenizer_json)
        engine = GenerationEngine(model, max_batch=args.max_batch, stop_token=tok.token_to_id(END_OF_TEXT))
        generator = TextGenerator(engine, tok, args.name, args.version)
        log.info("loaded %s from %s on %s", args.name, args.bundle, device)
        app = create_generation_app(generator)
        sock = bind(args.host, args.port)
    except (AidcError, ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    port = sock.getsockname()[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    log.info("serving %s version %s (text generation) on http://%s:%d", args.name, args.version, args.host, port)
    config = uvicorn.Config(
        app, log_level=args.log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=10
    )
    try:
        _graceful_server(config).run(sockets=[sock])
    finally:
        generator.engine.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
