"""The gpt workload's two speed figures, printed side by side as ratios.

1. Training: tokens/s and MFU of the platform's language-model step (`aidc.training.gpt.train.LMTraining.step`,
   what each train_lm worker runs: the cosine schedule, gradient clipping, accumulation bookkeeping, the loss
   kept on the device) against a bare PyTorch loop (forward, cross-entropy, backward, AdamW step) of the same
   model on the same batches, in this process with the same threads. Goal: ≥ 0.95 of bare. MFU is against
   `aidc.training.gpt.flops.cpu_peak_flops` (a short fp32 matmul probe) with PaLM's 6·N + 12·L·d·T FLOPs a
   token. The tokens are random ids (throughput does not depend on them); Ray Train and DDP are not in this
   comparison (benchmarks/train_overhead.py measures the train stage's overhead over bare torchrun DDP).
   The sides alternate --repeats times; the median ratio is the result.
2. Generation: `aidc.serving.generation.GenerationEngine` with continuous batching (max_batch 8) against the same
   engine serving one request at a time (max_batch 1), with 1 and 8 concurrent clients each asking for
   --new-tokens greedy tokens after a 16-token prompt. Printed: output tokens/s, time to first token and time
   per output token (mean over requests). Goal: ≥ 3× tokens/s at 8 clients.
3. Streaming through a deployment's router (--streaming): one client asks a generation server process
   (`aidc.serving.generation_server`, what a generation replica runs) for --new-tokens greedy tokens over
   `generate_stream`, directly and through a router process (`aidc.serving.router`, what `aidc deploy` puts in
   front), the two sides alternating --repeats times. Printed: time to the first event and to the end (median),
   router ÷ direct, and first ÷ end (well below 1: the router passes pieces on as they come, not at the end).

Run: PYTHONPATH=src .venv/bin/python benchmarks/gpt.py [--steps 20] [--repeats 3] [--new-tokens 64] [--streaming]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aidc.serving.generation import GenerationEngine
from aidc.training.gpt.flops import cpu_peak_flops
from aidc.training.gpt.generate import Sampling
from aidc.training.gpt.model import GPT, GPTConfig
from aidc.training.gpt.train import LMTraining, Schedule, batch_rows, make_optimizer

CONFIG = GPTConfig(vocab_size=2048, context=128, dim=128, layers=4, heads=4, kv_heads=2)


def model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(CONFIG)


def platform_side(tokens: np.ndarray, steps: int, batch: int) -> float:
    run = LMTraining(
        model(), tokens, schedule=Schedule(1e-3, 1e-4, 5, steps + 2), batch_size=batch, clip=1.0, precision="fp32"
    )
    run.step()  # warm-up
    began = time.perf_counter()
    loss = torch.zeros(())
    for _ in range(steps):
        loss += run.step()
    float(loss)
    return steps * run.tokens_per_step() / (time.perf_counter() - began)


def bare_side(tokens: np.ndarray, steps: int, batch: int) -> float:
    net = model()
    opt = make_optimizer(net, 1e-3, 0.1, torch.device("cpu"))
    data = torch.from_numpy(tokens)

    def step(i: int) -> None:
        seqs = data[torch.from_numpy(batch_rows(i, 0, len(data), batch, 1, 0, 0))]
        logits = net(seqs[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), seqs[:, 1:].flatten().long())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(0)
    began = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    return steps * batch * (tokens.shape[1] - 1) / (time.perf_counter() - began)


def training(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, CONFIG.vocab_size, size=(512, CONFIG.context + 1), dtype=np.int32)
    peak = cpu_peak_flops(seconds=1.0)
    per_token = CONFIG.train_flops_per_token(CONFIG.context)
    ours, bare, ratios = [], [], []
    for r in range(args.repeats):
        pair = [("platform", platform_side), ("bare", bare_side)]
        if r % 2:
            pair.reverse()
        got = {name: fn(tokens, args.steps, args.batch) for name, fn in pair}
        ours.append(got["platform"])
        bare.append(got["bare"])
        ratios.append(got["platform"] / got["bare"])
    print(f"\n# training: gpt {CONFIG.dim}×{CONFIG.layers}, {sum(p.numel() for p in model().parameters()):,} params,")
    print(
        f"#   batch {args.batch}×{CONFIG.context} tokens, {args.steps} steps × {args.repeats} repeats, "
        f"{torch.get_num_threads()} threads, peak {peak / 1e9:.1f} GFLOP/s (fp32 matmul probe)"
    )
    print(f"{'side':<10}{'tokens/s':>12}{'MFU':>8}")
    for name, runs in (("bare", bare), ("platform", ours)):
        tps = statistics.median(runs)
        print(f"{name:<10}{tps:>12.0f}{tps * per_token / peak:>8.1%}")
    print(f"platform / bare (median of {args.repeats} paired ratios): {statistics.median(ratios):.3f}  (goal ≥ 0.95)")


async def clients(engine: GenerationEngine, n: int, new_tokens: int) -> dict[str, float]:
    rng = np.random.default_rng(n)
    prompts = [rng.integers(0, CONFIG.vocab_size, 16).tolist() for _ in range(n)]
    began = time.perf_counter()
    gens = [engine.submit(p, Sampling(new_tokens)) for p in prompts]

    async def drain(g: Any) -> list[int]:
        return [t async for t in engine.stream(g)]

    await asyncio.gather(*(drain(g) for g in gens))
    wall = time.perf_counter() - began
    ttft = [g.first_token_s or 0.0 for g in gens]
    tpot = [((g.finished_s or 0.0) - (g.first_token_s or 0.0)) / max(1, len(g.tokens) - 1) for g in gens]
    return {
        "tokens_per_s": sum(len(g.tokens) for g in gens) / wall,
        "ttft_ms": 1e3 * statistics.mean(ttft),
        "tpot_ms": 1e3 * statistics.mean(tpot),
    }


def generation(args: argparse.Namespace) -> None:
    net = model().eval()
    print(
        f"\n# generation: {args.new_tokens} greedy tokens after a 16-token prompt per client, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'clients':>7} {'engine':<22}{'tokens/s':>10}{'TTFT ms':>10}{'TPOT ms':>10}")
    results: dict[tuple[int, int], Any] = {}
    for n in (1, 8):
        for max_batch in (1, 8):
            engine = GenerationEngine(net, max_batch=max_batch)
            asyncio.run(clients(engine, 1, 4))  # warm-up
            runs = [asyncio.run(clients(engine, n, args.new_tokens)) for _ in range(args.repeats)]
            engine.close()
            best = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            results[n, max_batch] = best
            label = "continuous batching (8)" if max_batch == 8 else "one at a time"
            print(f"{n:>7} {label:<22}{best['tokens_per_s']:>10.0f}{best['ttft_ms']:>10.1f}{best['tpot_ms']:>10.2f}")
    ratio = results[8, 8]["tokens_per_s"] / results[8, 1]["tokens_per_s"]
    print(f"continuous batching / one at a time at 8 clients: {ratio:.2f}× tokens/s  (goal ≥ 3×)")


def streaming(args: argparse.Namespace) -> None:
    import io
    import json
    import tempfile
    from pathlib import Path

    import httpx

    from aidc.serving.endpoint import start_generation_endpoint
    from aidc.serving.router import RouterClient, start_router
    from aidc.training.gpt.bundle import pack
    from aidc.training.gpt.text import stdlib_corpus, train_tokenizer

    tok = train_tokenizer([f.text for f in stdlib_corpus(max_bytes=200_000)], 512)
    arch = {"model": "gpt", "vocab_size": tok.get_vocab_size(), "context": 128, "dim": 128, "layers": 4}
    arch |= {"heads": 4, "kv_heads": 2}
    torch.manual_seed(0)
    weights = io.BytesIO()
    torch.save(GPT(GPTConfig.from_dict(arch)).state_dict(), weights)
    work = Path(tempfile.mkdtemp(prefix="aidc-bench-stream-"))
    (work / "bundle.zip").write_bytes(pack(weights.getvalue(), arch, tok.to_str().encode()))
    server = start_generation_endpoint(work / "bundle.zip", "coder", threads=args.threads, log_path=work / "s.log")
    router = start_router("coder", "bench", log_path=work / "router.log")
    admin = RouterClient(router.url, "bench")
    admin.set_routes([{"version": "1", "weight": 100, "replicas": [server.url]}])
    body = {"text_input": "def main(", "parameters": {"max_tokens": args.new_tokens}}

    def one(url: str) -> tuple[float, float, str]:
        began = time.perf_counter()
        first, text = 0.0, []
        with httpx.stream("POST", f"{url}/v2/models/coder/generate_stream", json=body, timeout=600) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    first = first or time.perf_counter() - began
                    text.append(json.loads(line[6:])["text_output"])
        return first, time.perf_counter() - began, "".join(text)

    try:
        one(server.url), one(router.url)  # warm-up
        sides: dict[str, list[tuple[float, float, str]]] = {"direct": [], "router": []}
        for _ in range(args.repeats):
            sides["direct"].append(one(server.url))
            sides["router"].append(one(router.url))
    finally:
        admin.close()
        router.stop()
        server.stop()
    assert len({t for runs in sides.values() for _, _, t in runs}) == 1, "greedy text differs between the sides"
    print(f"\n# streaming: {args.new_tokens} greedy tokens over generate_stream, 1 client, {args.repeats} repeats")
    print(f"{'side':<8}{'first event ms':>16}{'end ms':>10}{'first / end':>13}")
    med = {}
    for side, runs in sides.items():
        med[side] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        print(f"{side:<8}{1e3 * med[side][0]:>16.1f}{1e3 * med[side][1]:>10.1f}{med[side][0] / med[side][1]:>13.3f}")
    print(
        f"router / direct: first event {med['router'][0] / med['direct'][0]:.2f}×, "
        f"end {med['router'][1] / med['direct'][1]:.2f}×"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--streaming", action="store_true", help="only the router pass-through of the stream (3.)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.streaming:
        streaming(args)
        return
    if not args.skip_training:
        training(args)
    generation(args)


if __name__ == "__main__":
    main()
