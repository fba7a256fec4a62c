"""Model FLOPs utilisation: achieved training FLOP/s against the host's peak (a short matmul probe on a CPU, the
datasheet's dense bf16 figure on a known GPU)."""

from __future__ import annotations

import time

import torch

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' datasheets, FLOP/s, by a substring of the name.
GPU_PEAKS_BF16: dict[str, float] = {
    "H200": 989e12,
    "H100 SXM": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10": 125e12,
}


def cpu_peak_flops(size: int = 512, seconds: float = 0.3, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of square fp32 matmuls on this process's CPU threads: the best this host does on dense math."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b  # warm the kernels up
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - t))
    return best


def device_peak_flops(device: torch.device) -> tuple[float, str]:
    """(peak FLOP/s, where the figure comes from) for ``device``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peak in GPU_PEAKS_BF16.items():
            if key in name:
                return peak, f"{name} datasheet bf16 dense"
        return 0.0, f"{name}: no datasheet peak known"
    return cpu_peak_flops(), f"fp32 matmul probe on {torch.get_num_threads()} CPU thread(s)"


def mfu(tokens_per_s: float, flops_per_token: float, peak: float) -> float | None:
    return tokens_per_s * flops_per_token / peak if peak > 0 else None
