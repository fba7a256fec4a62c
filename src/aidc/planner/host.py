"""This host's measured matmul peak (a short numpy probe) and the step time it predicts for a small network."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

# Each layer costs a forward, an input-gradient and a weight-gradient GEMM; a framework adds a fixed dispatch
# cost per operator on CPU (tens of µs in PyTorch eager, inf) that dominates tiny layers.
DISPATCH_S = 25e-6
OPS_PER_LAYER = 6  # forward op + activation, two backward GEMMs, optimizer update, grad zeroing


@dataclass(frozen=True)
class Gemm:
    """One layer as the GEMM it lowers to: (m × k) · (k × n); convolutions through im2col."""

    name: str
    m: int
    k: int
    n: int

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n


def conv2d(name: str, batch: int, c_in: int, c_out: int, kernel: int, h: int, w: int) -> Gemm:
    return Gemm(name, batch * h * w, c_in * kernel * kernel, c_out)


def linear(name: str, batch: int, d_in: int, d_out: int) -> Gemm:
    return Gemm(name, batch, d_in, d_out)


def matmul_flops(m: int, k: int, n: int, seconds: float = 0.05) -> float:
    """FLOP/s numpy (float32) reaches on this host for one GEMM shape: the best of repeated runs."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    a @ b  # warm-up: page in, pick the BLAS kernel
    best, deadline = float("inf"), time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() > deadline:
            break
    return 2.0 * m * k * n / max(best, 1e-9)


def host_peak(size: int = 1024) -> float:
    """The host's large-GEMM peak, the CPU counterpart of a datasheet's dense FLOP/s."""
    return matmul_flops(size, size, size, seconds=0.2)


def predict_step(layers: list[Gemm], probe: bool = True) -> dict[str, float]:
    """Seconds per training step: three GEMMs per layer at the probed rate for their shape, plus dispatch."""
    compute = 0.0
    for g in layers:
        for m, k, n in ((g.m, g.k, g.n), (g.m, g.n, g.k), (g.k, g.m, g.n)):  # forward, dX, dW
            compute += 2.0 * m * k * n / matmul_flops(m, k, n, 0.02 if probe else 0.0)
    overhead = DISPATCH_S * OPS_PER_LAYER * len(layers)
    return {"compute_s": compute, "overhead_s": overhead, "step_s": compute + overhead,
            "flops": 3 * sum(g.flops for g in layers)}
