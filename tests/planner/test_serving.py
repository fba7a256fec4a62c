"""What a serving engineer sizing a fleet would check: batching, prefill modes, P99 queueing, MoE, published cases."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from aidc.errors import InvalidSpec
from aidc.planner.catalog import Catalog
from aidc.planner.inference import size_service
from aidc.planner.plan import plan_file
from aidc.planner.published_inference import CASES, predict
from aidc.planner.queueing import erlang_c, wait_percentile
from aidc.planner.serving_step import Shard, experts_touched, step_time
from aidc.planner.workload import InferenceService, ModelSpec

CATALOG = Catalog.load()
LLAMA_8B = ModelSpec(layers=32, hidden=4096, heads=32, kv_heads=8, ffn_hidden=14336, vocab=128256, glu=True)
LLAMA_70B = ModelSpec(layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672, vocab=128256, glu=True)


def _svc(**kw: object) -> InferenceService:
    spec: dict[str, object] = {
        "name": "s",
        "model": LLAMA_70B,
        "gpu": "H100",
        "precision": "fp8",
        "requests_per_s": 10.0,
        "prompt_tokens": 1000,
        "output_tokens": 250,
        "ttft_ms": 2000,
        "tpot_ms": 60,
    }
    spec.update(kw)
    return InferenceService.model_validate(spec)


def test_erlang_c_matches_the_textbook_values() -> None:
    # one server: the probability of waiting is the utilisation; two servers at load 1: 1/3
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert wait_percentile(4, 5.0, 1.0, 99) == float("inf")  # offered load 5 on 4 servers never drains


def test_p99_wait_grows_sharply_near_capacity() -> None:
    light = wait_percentile(10, 5.0, 1.0, 99)
    heavy = wait_percentile(10, 9.5, 1.0, 99)
    assert light < 0.3 and heavy > 5  # half load: a quarter service; 95%: many services


def test_decode_step_is_weight_bound_at_batch_one_and_grows_with_kv_reads() -> None:
    arch, gpu = LLAMA_8B.architecture(), CATALOG.gpu("H100")
    kv = arch.kv_bytes_per_token(2.0)
    one = step_time(arch, gpu, Shard(1), "bf16", kv, 1, 2000).total
    many = step_time(arch, gpu, Shard(1), "bf16", kv, 128, 2000).total
    # batch 1 reads 16 GB of weights at ~70% of 3.35 TB/s: about 7 ms, whatever the GEMMs cost
    assert 5e-3 < one < 10e-3
    assert many > 2 * one  # 128 sequences' KV (128 × 2000 × 128 KiB ≈ 34 GB) outweighs the weights


def test_moe_step_reads_few_experts_at_small_batch_and_all_at_large() -> None:
    assert experts_touched(256, 8, 1) == pytest.approx(8)
    assert experts_touched(256, 8, 2000) == pytest.approx(256, rel=1e-3)
    assert 8 < experts_touched(256, 8, 16) < 128


def test_tensor_parallel_adds_latency_bound_all_reduces_in_decode() -> None:
    arch, gpu = LLAMA_70B.architecture(), CATALOG.gpu("H100")
    kv = arch.kv_bytes_per_token(1.0)
    tp8 = step_time(arch, gpu, Shard(8), "fp8", kv, 1, 1000)
    # 2 all-reduces × 80 layers × 2(8−1) ring steps at 5 µs: ~11 ms, more than the weights' read at TP8
    assert tp8.tp_comm > tp8.linear


def test_chunked_prefill_keeps_p99_tpot_far_below_inline() -> None:
    chunked = size_service(_svc(prefill="chunked", tpot_ms=None, max_batch=64, tp=4), CATALOG.gpu("H100"), CATALOG)
    inline = size_service(_svc(prefill="inline", tpot_ms=None, max_batch=64, tp=4), CATALOG.gpu("H100"), CATALOG)
    assert chunked.tp == inline.tp and chunked.batch == inline.batch
    # inline: a whole 1000-token prefill stalls decodes in more than 1% of steps; chunked: one chunk per step
    assert inline.tpot_ms > chunked.tpot_ms


def test_disaggregated_prefill_frees_decode_of_prefill_and_counts_the_kv_transfer() -> None:
    plan = size_service(_svc(prefill="disaggregated"), CATALOG.gpu("H100"), CATALOG)
    assert plan.feasible and plan.prefill_replicas >= 1 and plan.kv_transfer_ms > 0
    assert plan.tpot_ms == pytest.approx(plan.tpot_mean_ms)  # no prefill steps among the decodes
    assert plan.gpus == (plan.replicas + plan.prefill_replicas) * plan.tp


def test_tighter_p99_ttft_needs_more_replicas_than_the_mean_load() -> None:
    loose = size_service(_svc(requests_per_s=40, ttft_ms=5000, tp=4, chunk_tokens=2048), CATALOG.gpu("H100"), CATALOG)
    tight = size_service(_svc(requests_per_s=40, ttft_ms=150, tp=4, chunk_tokens=2048), CATALOG.gpu("H100"), CATALOG)
    assert loose.feasible and tight.feasible and loose.ttft_ms > 150
    # the mean load fits the loose plan's replicas; the P99 wait for the prefill server does not
    assert tight.replicas > loose.replicas and tight.ttft_ms <= 150 and tight.utilization < loose.utilization


def test_chunk_size_searched_when_not_given_grows_for_a_tight_ttft() -> None:
    # a larger chunk prefills a prompt in fewer (slower) steps: what a tight TTFT needs, at some TPOT cost
    loose = size_service(_svc(requests_per_s=40, ttft_ms=5000, tp=4), CATALOG.gpu("H100"), CATALOG)
    tight = size_service(_svc(requests_per_s=40, ttft_ms=100, tp=4), CATALOG.gpu("H100"), CATALOG)
    assert tight.feasible and tight.ttft_ms <= 100
    assert tight.chunk_tokens > loose.chunk_tokens and tight.ttft_ms < loose.ttft_ms


def test_tpot_target_lowers_the_batch() -> None:
    free = size_service(_svc(tpot_ms=None, tp=4), CATALOG.gpu("H100"), CATALOG)
    tight = size_service(_svc(tpot_ms=25, tp=4), CATALOG.gpu("H100"), CATALOG)
    assert tight.feasible and tight.batch < free.batch and tight.tpot_ms <= 25


def test_speculative_decoding_shortens_tpot_at_small_batch() -> None:
    plain = size_service(_svc(tp=4, tpot_ms=None, max_batch=8), CATALOG.gpu("H100"), CATALOG)
    mtp = size_service(
        _svc(tp=4, tpot_ms=None, max_batch=8, speculative_tokens=1, acceptance=0.85), CATALOG.gpu("H100"), CATALOG
    )
    assert mtp.tpot_mean_ms < 0.75 * plain.tpot_mean_ms


def test_expert_parallel_moe_service_holds_all_experts_and_reads_the_touched_ones() -> None:
    moe = ModelSpec(
        layers=61, hidden=7168, heads=128, head_dim=128, kv_lora_rank=512, q_lora_rank=1536, rope_head_dim=64,
        ffn_hidden=2048, glu=True, experts=256, top_k=8, shared_experts=1, route_nodes=4, dense_layers=3,
        dense_ffn_hidden=18432, vocab=129280,
    )  # fmt: skip
    svc = _svc(
        model=moe, gpu="H800", ep=32, max_batch=2048, requests_per_s=50, prompt_tokens=2000, output_tokens=500,
        prefill="disaggregated",
    )  # fmt: skip
    plan = size_service(svc, CATALOG.gpu("H800"), CATALOG)
    assert plan.feasible and plan.ep == 32 and plan.gpus % 32 == 0
    assert plan.experts_read == pytest.approx(256, rel=0.01)  # a batch of thousands touches every expert
    # chunked prefill in a lockstep EP replica: every rank's chunk slows all 32 ranks' decodes
    chunked = size_service(svc.model_copy(update={"prefill": "chunked"}), CATALOG.gpu("H800"), CATALOG)
    assert chunked.tpot_mean_ms > 1.2 * plan.tpot_mean_ms


def test_published_inference_cases_stay_near_their_figures() -> None:
    errors = {c.name: predict(c, CATALOG).error for c in CASES}
    dense = [abs(e) for name, e in errors.items() if name.startswith("TRT-LLM")]
    assert len(dense) == 30 and statistics.median(dense) < 0.12 and max(dense) < 0.30
    moe = [abs(e) for name, e in errors.items() if "DeepSeek" in name]
    assert len(moe) == 3 and max(moe) < 0.15


def test_every_published_inference_case_has_a_source() -> None:
    for case in CASES:
        assert case.source and case.published > 0 and case.stack


def test_chat_example_reports_p99_and_a_band() -> None:
    plan = plan_file(Path(__file__).resolve().parents[2] / "examples" / "workloads" / "chat-inference.yaml")
    svc = plan.services[0]
    assert svc.feasible and svc.ttft_ms <= 1000 and svc.tpot_ms <= 50
    assert svc.tpot_band[0] <= 1 <= svc.tpot_band[1] and svc.assumptions
    assert plan.to_dict()["inference"][0]["percentile"] == 99


def test_plan_json_has_no_infinity_where_a_pessimistic_assumption_overloads_the_pool() -> None:
    plan = plan_file(Path(__file__).resolve().parents[2] / "examples" / "workloads" / "chat-inference.yaml")
    text = json.dumps(plan.to_dict())

    def refuse(token: str) -> None:
        raise ValueError(token)

    json.loads(text, parse_constant=refuse)  # strict JSON: no Infinity or NaN


def test_moe_serving_example_is_feasible_and_disaggregated() -> None:
    plan = plan_file(Path(__file__).resolve().parents[2] / "examples" / "workloads" / "moe-serving.yaml")
    svc = plan.services[0]
    assert svc.feasible and svc.prefill == "disaggregated" and svc.ep == 64 and svc.prefill_replicas >= 1
    assert "micro-batching" in "; ".join(svc.assumptions)


def _refusal(tmp_path: Path, text: str) -> str:
    spec = tmp_path / "w.yaml"
    spec.write_text(text)
    with pytest.raises(InvalidSpec) as caught:
        plan_file(spec)
    assert caught.value.exit_code == 2
    return str(caught.value)


SVC = "inference:\n  - name: s\n    model: {params: 7.0e9}\n    requests_per_s: 1\n    prompt_tokens: 100\n"


def test_chunk_tokens_without_chunked_prefill_is_located(tmp_path: Path) -> None:
    err = _refusal(tmp_path, SVC + "    output_tokens: 10\n    prefill: inline\n    chunk_tokens: 512\n")
    assert ":8:19: inference[0].chunk_tokens: chunk_tokens only applies to prefill: chunked" in err


def test_expert_parallel_on_a_dense_model_is_located(tmp_path: Path) -> None:
    err = _refusal(tmp_path, SVC + "    output_tokens: 10\n    ep: 8\n")
    assert ":7:9: inference[0].ep: ep (expert parallel) needs a mixture-of-experts model" in err


def test_bad_prefill_mode_and_percentile_are_located(tmp_path: Path) -> None:
    err = _refusal(tmp_path, SVC + "    output_tokens: 10\n    prefill: batched\n    percentile: 100\n")
    assert ":7:14: inference[0].prefill:" in err and ":8:17: inference[0].percentile:" in err
