"""Memory per GPU as Megatron-Core keeps it, and the cluster a published run ran on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aidc.planner.architecture import Architecture
from aidc.planner.calibration import predict, run_gpu
from aidc.planner.catalog import Catalog
from aidc.planner.iteration import iteration_time
from aidc.planner.memory import Layout, activation_bytes_per_layer, memory_per_gpu
from aidc.planner.published import RUNS, Cluster

CATALOG = Catalog.load()
H100 = CATALOG.gpu("H100")
GPT = Architecture(layers=1, hidden=4096, heads=32, kv_heads=32, ffn_hidden=16384, vocab=1, seq_len=2048)
SBH = 2048 * 4096
KEEP_ALL = Layout(tp=1, recompute="none", micro_batch=1)


def run(prefix: str):
    return next(r for r in RUNS if r.name.startswith(prefix))


def test_fp8_keeps_linear_inputs_at_one_byte() -> None:
    """Transformer Engine saves the FP8 copy of each linear layer's input: QKV 2→1, fc1 2→1, fc2 8→4; the
    attention output is kept twice (fused attention's 16-bit O and the projection's FP8 copy, +1): 32 → 27."""
    assert activation_bytes_per_layer(GPT, KEEP_ALL) == 32 * SBH
    assert activation_bytes_per_layer(GPT, KEEP_ALL, precision="fp8") == 27 * SBH


def test_grouped_query_attention_keeps_narrower_keys_and_values() -> None:
    """K and V are as wide as the KV heads: 8 groups of 32 heads keep 2·2·(8/32) instead of 4 bytes per token."""
    gqa = replace(GPT, kv_heads=8)
    assert activation_bytes_per_layer(GPT, KEEP_ALL) - activation_bytes_per_layer(gqa, KEEP_ALL) == 3 * SBH


def test_usable_memory_counts_what_the_driver_reports() -> None:
    """An "80 GB" H100 holds 81,559 MiB (85.5e9 bytes); a GPU with no driver figure keeps its datasheet size."""
    assert H100.hbm_capacity_bytes == 81559 * 2**20 > H100.hbm_bytes
    usable = memory_per_gpu(GPT, KEEP_ALL, H100, 8).usable
    assert usable > 0.9 * 80e9
    b200 = CATALOG.gpu("B200")
    assert b200.hbm_mib is None and b200.hbm_capacity_bytes == b200.hbm_bytes


@pytest.mark.parametrize(
    "prefix",
    [
        # Megatron-Bridge 25.11 presets set no recomputation for these (llama31_workload_base_configs.py)
        "Llama 3.1 405B on 1024 H100 FP8",
        "Llama 3.1 405B on 128 B200 FP8",
        "Llama 3 70B on 64 H100 FP8 (1602",
    ],
)
def test_published_megatron_core_layouts_fit_without_recomputation(prefix: str) -> None:
    r = run(prefix)
    gpu = CATALOG.gpu(r.gpu)
    assert memory_per_gpu(r.arch, replace(r.layout, recompute="none"), gpu, r.global_batch, r.precision).fits
    assert predict(r, CATALOG).layout.recompute == "none"


def test_a_run_on_a_non_dgx_cluster_gets_its_own_network() -> None:
    """BLOOM's Jean Zay nodes: 4 × 100 Gb/s Omni-Path for 8 GPUs, a quarter of a DGX A100's NIC per GPU, so its
    gradient reduction and pipeline sends take longer than on the catalog's DGX A100."""
    bloom = run("BLOOM 176B")
    assert bloom.cluster is not None and bloom.cluster.nic_bytes_per_gpu == pytest.approx(6.25e9)
    a100 = CATALOG.gpu(bloom.gpu)
    layout = predict(bloom, CATALOG).layout
    dgx = iteration_time(bloom.arch, layout, a100, bloom.global_batch, bloom.precision)
    jean_zay = iteration_time(
        bloom.arch, layout, a100, bloom.global_batch, bloom.precision, bloom.cluster.nic_bytes_per_gpu
    )
    assert jean_zay.dp_comm > dgx.dp_comm and jean_zay.pp_comm > dgx.pp_comm
    assert predict(bloom, CATALOG).iteration_s == pytest.approx(jean_zay.total, rel=1e-9)


def test_cluster_node_size_replaces_the_catalog_nodes() -> None:
    neox = run("GPT-NeoX-20B")
    assert run_gpu(neox, CATALOG).node.gpus == 8
    four = replace(neox, cluster=Cluster(gpus_per_node=4, nics_per_node=1, nic_gbps=100, source="test"))
    assert run_gpu(four, CATALOG).node.gpus == 4
    assert CATALOG.gpu(neox.gpu).node.gpus == 8  # the catalog itself is left alone
