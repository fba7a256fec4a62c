"""Mechanisms the iteration and memory models price: uneven stages, dropout, experts, FP8, overlap, schedules."""

from __future__ import annotations

from dataclasses import replace

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import Catalog
from aidc.planner.iteration import DEFAULT_EFFICIENCY, busiest_stage, expert_exchange, iteration_time, pipeline_bubble
from aidc.planner.layout import layouts
from aidc.planner.memory import Layout, activation_bytes_per_layer, stage_params
from aidc.planner.published import RUNS
from aidc.planner.workload import Parallelism

H100 = Catalog.load().gpu("H100")
LLAMA3 = next(r for r in RUNS if r.name.startswith("Llama 3.1 405B on 8192"))
V3 = next(r for r in RUNS if r.name.startswith("DeepSeek-V3"))


def test_uneven_stages_put_the_head_on_a_lighter_last_stage() -> None:
    """Llama 3: 126 layers on 16 stages run as 8 per stage with fewer on the last (the head's), not 8 + head."""
    layers, head = busiest_stage(126, 16, 0.3)
    assert layers == 8 and head == 0.0
    # 96 layers on 16 stages divide evenly: the last stage carries its 6 layers and the head
    assert busiest_stage(96, 16, 0.3) == (6.0, 1.0)


def test_interleaving_offered_when_layers_do_not_divide_by_stages() -> None:
    fixed = Parallelism(tp=8, pp=16, cp=1, zero=1, recompute="full", micro_batch=1)
    depths = {lay.interleave for lay in layouts(LLAMA3.arch, H100, 8192, LLAMA3.global_batch, fixed)}
    assert {2, 4} <= depths


def test_models_without_dropout_store_no_masks() -> None:
    """Korthikanti's 34·sbh per layer counts dropout masks; a model without dropout stores 32·sbh (2 fewer)."""
    arch = Architecture(layers=1, hidden=4096, heads=32, kv_heads=32, ffn_hidden=16384, vocab=1, seq_len=2048)
    layout = Layout(tp=1, recompute="none", micro_batch=1)
    sbh = 2048 * 4096
    assert activation_bytes_per_layer(replace(arch, dropout=True), layout) == 34 * sbh
    assert activation_bytes_per_layer(arch, layout) == 32 * sbh


def test_expert_parallel_splits_only_routed_experts_and_pays_all_to_all() -> None:
    one = replace(V3.layout, ep=1)
    assert stage_params(V3.arch, V3.layout) < stage_params(V3.arch, one) / 10
    nic = H100.nic_bytes_per_s * 0.56
    tokens = 4096.0
    inside_node = expert_exchange(V3.arch, replace(V3.layout, ep=8), H100, tokens, nic, DEFAULT_EFFICIENCY)
    across = expert_exchange(V3.arch, V3.layout, H100, tokens, nic, DEFAULT_EFFICIENCY)
    unlimited = expert_exchange(replace(V3.arch, route_nodes=0), V3.layout, H100, tokens, nic, DEFAULT_EFFICIENCY)
    assert 0 < inside_node < across < unlimited  # node-limited routing (4 nodes) sends fewer copies over the NIC


def test_fp8_is_faster_than_bf16_but_not_twice() -> None:
    arch, layout = LLAMA3.arch, replace(LLAMA3.layout, recompute="full", interleave=2)
    bf16 = iteration_time(arch, layout, H100, LLAMA3.global_batch, "bf16").total
    fp8 = iteration_time(arch, layout, H100, LLAMA3.global_batch, "fp8").total
    assert bf16 / 2 < fp8 < bf16


def test_gradient_reduction_overlapped_with_backward_shows_less() -> None:
    run = next(r for r in RUNS if r.name.startswith("GPT 1.7B"))  # DP32, one pipeline stage: DP all-reduce shows
    gpu = Catalog.load().gpu(run.gpu)
    after = iteration_time(run.arch, run.layout, gpu, run.global_batch, run.precision).dp_comm
    overlapped = iteration_time(run.arch, replace(run.layout, overlap=True), gpu, run.global_batch, run.precision)
    assert 0 <= overlapped.dp_comm < after


def test_pipeline_schedules_bubbles() -> None:
    assert pipeline_bubble("1f1b", 16, 1, 64) == 15
    assert pipeline_bubble("1f1b", 16, 4, 64) == 15 / 4
    assert pipeline_bubble("dualpipe", 16, 1, 64) == 7
    assert pipeline_bubble("zero-bubble", 16, 1, 64) == 0


def test_search_offers_expert_parallel_for_moe_only() -> None:
    fixed = Parallelism(tp=1, pp=16, recompute="full", micro_batch=1, zero=1, interleave=1)
    eps = {lay.ep for lay in layouts(V3.arch, H100, 2048, V3.global_batch, fixed)}
    assert {1, 8, 64} <= eps and all(V3.arch.experts % e == 0 for e in eps)
    dense = {lay.ep for lay in layouts(LLAMA3.arch, H100, 8192, LLAMA3.global_batch, None)}
    assert dense == {1}


def test_recomputation_is_chosen_by_memory_not_forced() -> None:
    """Llama 3 405B at 8K context on TP8 PP16: keeping every activation does not fit in 80 GB, recomputing every
    layer wastes a third of the compute; the search recomputes the fewest whole layers that make it fit."""
    from aidc.planner.layout import partial_recompute
    from aidc.planner.memory import memory_per_gpu

    layout = replace(LLAMA3.layout, interleave=4)
    assert not memory_per_gpu(LLAMA3.arch, replace(layout, recompute="none"), H100, LLAMA3.global_batch).fits
    partial = partial_recompute(LLAMA3.arch, layout, H100, LLAMA3.global_batch)
    assert partial is not None and 0 < partial.recompute_fraction < 1
    assert memory_per_gpu(LLAMA3.arch, partial, H100, LLAMA3.global_batch).fits
    full = iteration_time(LLAMA3.arch, replace(layout, recompute="full"), H100, LLAMA3.global_batch).total
    assert iteration_time(LLAMA3.arch, partial, H100, LLAMA3.global_batch).total < full
    # a small model that fits without recomputation is not offered a partial variant
    small = next(r for r in RUNS if r.name.startswith("LLaMA 7B"))
    assert partial_recompute(small.arch, Layout(dp=1024, zero=3), Catalog.load().gpu("A100-80GB"), 2048) is None
