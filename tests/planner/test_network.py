"""The network under a job's collectives: NCCL's ring/tree choice, in-network reduction, groups placed on leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import Catalog
from aidc.planner.fabric import Network, leaf_downlinks
from aidc.planner.iteration import (
    DEFAULT_EFFICIENCY,
    data_parallel_all_reduce,
    iteration_time,
    ring_all_reduce,
    tree_all_reduce,
)
from aidc.planner.memory import Layout
from aidc.planner.plan import plan_file

H100 = Catalog.load().gpu("H100")
NIC = H100.nic_bytes_per_s * DEFAULT_EFFICIENCY.network
NVLINK = H100.nvlink_bytes_per_s * DEFAULT_EFFICIENCY.nvlink
ALPHA = DEFAULT_EFFICIENCY.latency_s
ARCH = Architecture(layers=32, hidden=4096, heads=32, kv_heads=32, ffn_hidden=16384, vocab=32000, seq_len=4096)


def test_small_buffers_over_many_ranks_take_the_tree_large_ones_on_few_ranks_the_ring() -> None:
    """A ring's latency grows with the rank count, the tree's with its depth: a 64 MB bucket over 1024 ranks
    costs a ring 2·1023 steps (~20 ms of latency alone) and the tree 2·10; 1 GB over 4 ranks is the ring's."""
    small, large = 64e6, 1e9
    chosen = data_parallel_all_reduce(small, H100, 8, 1024, NIC, NVLINK, ALPHA)
    assert chosen == pytest.approx(tree_all_reduce(small, 1024, NIC, ALPHA))
    assert chosen < ring_all_reduce(small, 1024, NIC, ALPHA) / 3
    few = data_parallel_all_reduce(large, H100, 8, 4, NIC, NVLINK, ALPHA)
    assert few == pytest.approx(ring_all_reduce(large, 4, NIC, ALPHA))
    # eight members (eight NICs) per node: NCCL's tree does not reach ring bandwidth there, so the ring
    per_rail = data_parallel_all_reduce(small, H100, 1, 1024, NIC, NVLINK, ALPHA)
    assert per_rail == pytest.approx(ring_all_reduce(small, 1024, min(NVLINK, 8 * NIC), ALPHA))


def test_in_network_reduction_halves_a_large_cross_node_all_reduce() -> None:
    """SHARP: each GPU sends its gradients to the switches once and receives the sum once, S/B instead of
    ≈ 2·S/B: a 1024-GPU data-parallel all-reduce (TP8, one member per node) of 14 GB takes about half as long."""
    grads = 14e9
    plain = data_parallel_all_reduce(grads, H100, 8, 1024, NIC, NVLINK, ALPHA, sharp=False)
    sharp = data_parallel_all_reduce(grads, H100, 8, 1024, NIC, NVLINK, ALPHA, sharp=True)
    assert sharp / plain == pytest.approx(0.5, abs=0.03)
    # hierarchical with eight members per node (TP1): NVLink reduce-scatter / all-gather around the switch phase,
    # still far below the flat ring through all 1024 ranks
    flat = data_parallel_all_reduce(grads, H100, 1, 1024, NIC, NVLINK, ALPHA, sharp=False)
    assert data_parallel_all_reduce(grads, H100, 1, 1024, NIC, NVLINK, ALPHA, sharp=True) < 0.6 * flat
    # inside one node there is no switch to reduce in
    one_node = data_parallel_all_reduce(grads, H100, 1, 8, NIC, NVLINK, ALPHA, sharp=True)
    assert one_node == pytest.approx(data_parallel_all_reduce(grads, H100, 1, 8, NIC, NVLINK, ALPHA))


def test_a_group_inside_a_leaf_does_not_pay_oversubscription_one_across_leaves_does() -> None:
    """2:1 at radix 48: 32 GPUs per leaf.  TP8 × DP2 blocks (16 GPUs) tile a leaf, so the data-parallel
    all-reduce runs at the NIC's rate; TP8 × DP16 (128 GPUs) spans four leaves and runs at half; pipeline hops
    of a 256-GPU job cross leaves either way."""
    leaf = leaf_downlinks(48, 2.0)
    assert leaf == 32
    blocking, free = Network(None, 2.0, leaf), Network(None, 1.0, leaf)
    inside = Layout(tp=8, pp=16, dp=2, overlap=False)
    across = Layout(tp=8, pp=2, dp=16, overlap=False)
    assert not blocking.spans_leaves(16, 256) and blocking.spans_leaves(128, 256)

    def times(layout: Layout, net: Network) -> tuple[float, float]:
        it = iteration_time(ARCH, layout, H100, 1024, network=net)
        return it.dp_comm, it.pp_comm

    dp_in, pp_in = times(inside, blocking)
    dp_in_free, pp_in_free = times(inside, free)
    assert dp_in == pytest.approx(dp_in_free)
    assert pp_in > 1.5 * pp_in_free
    dp_across, _ = times(across, blocking)
    dp_across_free, _ = times(across, free)
    assert dp_across > 1.5 * dp_across_free
    # a job that fits under one leaf never sees the uplinks
    small = Layout(tp=8, pp=1, dp=4, overlap=False)
    assert iteration_time(ARCH, small, H100, 1024, network=blocking).total == pytest.approx(
        iteration_time(ARCH, small, H100, 1024, network=free).total
    )


def test_the_facility_sharp_knob_shortens_a_data_parallel_heavy_plan(tmp_path: Path) -> None:
    spec = tmp_path / "w.yaml"
    job = (
        "training:\n  - name: a\n    model: {layers: 32, hidden: 4096, heads: 32}\n    tokens: 1.0e12\n"
        "    gpus: 1024\n    gpu: H100\n    parallelism: {tp: 8, pp: 1, overlap: false}\n"
    )
    spec.write_text(job)
    plain = plan_file(spec).jobs[0].training
    spec.write_text(job + "facility:\n  sharp: true\n")
    sharp = plan_file(spec).jobs[0].training
    assert sharp.choice.best is not None and plain.choice.best is not None
    assert sharp.choice.best.time.dp_comm < 0.6 * plain.choice.best.time.dp_comm
    assert sharp.iteration_s < plain.iteration_s
