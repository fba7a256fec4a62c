"""CPU offload chosen only when memory demands it; interleaving with layers that do not split evenly."""

from __future__ import annotations

import pytest

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import Catalog
from aidc.planner.iteration import iteration_time, uneven_chunks
from aidc.planner.layout import search
from aidc.planner.memory import Layout, memory_per_gpu
from aidc.planner.workload import Parallelism

CATALOG = Catalog.load()
A100 = CATALOG.gpu("A100-80GB")
ARCH_7B = Architecture(layers=32, hidden=4096, heads=32, kv_heads=32, ffn_hidden=16384, vocab=32000, seq_len=2048)


def test_a_7b_model_on_one_gpu_fits_only_with_the_optimizer_state_on_the_host() -> None:
    """7B × 16 B of mixed-precision Adam state is 112 GB, more than an 80 GB A100 holds; ZeRO-Offload keeps the
    12 B/param of fp32 master weights and moments in host memory and the rest (28 GB) fits."""
    choice = search(ARCH_7B, A100, 1, 64, "bf16")
    assert choice.best is not None and choice.best.layout.offload
    assert choice.best.memory.optimizer == 0 and choice.best.memory.fits
    assert "offload" in choice.best.layout.label() and "host memory" in choice.why()
    # the step pays the PCIe trips: 7B × 2 B down and up at 32 GB/s each way (A100's PCIe Gen4, 64 GB/s both)
    assert choice.best.time.optimizer == pytest.approx(2 * 7e9 * 2 / 32e9, rel=0.1)
    # refused: nothing fits
    assert search(ARCH_7B, A100, 1, 64, "bf16", Parallelism(offload=False)).best is None


def test_offload_is_not_chosen_where_the_state_fits_on_the_gpus() -> None:
    choice = search(ARCH_7B, A100, 16, 64, "bf16")
    assert choice.best is not None and not choice.best.layout.offload
    on_gpu = Layout(tp=8, dp=2)
    assert memory_per_gpu(ARCH_7B, Layout(tp=8, dp=2, offload=True), A100, 64).total < (
        memory_per_gpu(ARCH_7B, on_gpu, A100, 64).total
    )


def test_interleaving_uneven_layers_pays_for_the_largest_chunk() -> None:
    """30 layers on PP4 (8 on the busiest stage) in v=3 chunks: chunks of 3, 3 and 2 layers, so the bubble is
    paced by 3-layer chunks (9/8 of an even split); 32 layers in v=4 chunks of 2 split evenly."""
    assert uneven_chunks(8, 3) == pytest.approx(9 / 8)
    assert uneven_chunks(8, 4) == 1.0
    arch = Architecture(layers=30, hidden=4096, heads=32, kv_heads=32, ffn_hidden=16384, vocab=32000, seq_len=2048)
    gpu = CATALOG.gpu("H100")
    v1 = iteration_time(arch, Layout(tp=8, pp=4, dp=1, interleave=1), gpu, 16)
    v3 = iteration_time(arch, Layout(tp=8, pp=4, dp=1, interleave=3), gpu, 16)
    v4 = iteration_time(arch, Layout(tp=8, pp=4, dp=1, interleave=4), gpu, 16)
    # interleaving still shrinks the bubble, but v=3 by less than 3× because its chunks are uneven
    assert v3.bubble < v1.bubble
    assert v3.bubble / v1.bubble == pytest.approx(1 / 3 * 9 / 8, rel=1e-6)
    assert v4.bubble / v1.bubble == pytest.approx(1 / 4, rel=1e-6)
