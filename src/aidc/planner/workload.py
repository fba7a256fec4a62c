"""The workload spec: training jobs, inference services and facility constraints, loaded with located errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aidc.planner.architecture import Architecture
from aidc.specfile import SpecSource, raise_problems, read_yaml, validate

Precision = Literal["bf16", "fp16", "fp8", "fp32", "tf32"]
Recompute = Literal["none", "selective", "partial", "full"]
RedundancyTarget = Literal["N", "N+1", "2N", "2(N+1)"]
Tier = Literal["I", "II", "III", "IV"]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(Spec):
    """The model either by parameter count or by architecture (layers, widths; MoE with experts and top_k)."""

    params: float | None = Field(None, gt=0, description="total parameters; shape is assumed if layers are absent")
    layers: int | None = Field(None, gt=0)
    hidden: int | None = Field(None, gt=0)
    heads: int | None = Field(None, gt=0)
    kv_heads: int | None = Field(None, gt=0, description="GQA/MQA key-value heads (default: heads)")
    ffn_hidden: int | None = Field(None, gt=0, description="MLP width (default 4·hidden)")
    vocab: int = Field(32000, gt=0)
    seq_len: int = Field(4096, gt=0)
    glu: bool = Field(False, description="gated MLP (SwiGLU): three projections instead of two")
    experts: int = Field(1, ge=1)
    top_k: int = Field(1, ge=1)
    tied_embeddings: bool = False
    flash_attention: bool = True
    dropout: bool = Field(False, description="trained with dropout (stores masks for backward)")
    shared_experts: int = Field(0, ge=0, description="MoE: experts every token passes through")
    dense_layers: int = Field(0, ge=0, description="MoE: leading layers with a dense MLP")
    dense_ffn_hidden: int | None = Field(None, gt=0, description="MLP width of those dense layers")
    route_nodes: int = Field(0, ge=0, description="MoE: most nodes one token's experts may span (0: any)")
    capacity_factor: float = Field(
        1.0, ge=1.0, description="MoE: routed tokens on the busiest expert-parallel rank over the mean (1: balanced)"
    )
    kv_lora_rank: int = Field(0, ge=0, description="multi-head latent attention: compressed KV width")
    q_lora_rank: int = Field(0, ge=0, description="multi-head latent attention: compressed query width")
    rope_head_dim: int = Field(0, ge=0, description="multi-head latent attention: shared RoPE key width")
    head_dim: int | None = Field(None, gt=0, description="per-head width where it is not hidden/heads")

    @model_validator(mode="after")
    def _either(self) -> ModelSpec:
        if self.params is None and self.layers is None:
            raise ValueError("give either params or an architecture (layers, hidden, heads)")
        if self.layers is not None and (self.hidden is None or self.heads is None):
            raise ValueError("an architecture needs layers, hidden and heads")
        if self.top_k > self.experts:
            raise ValueError(f"top_k ({self.top_k}) exceeds experts ({self.experts})")
        return self

    def architecture(self) -> Architecture:
        if self.layers is None:
            assert self.params is not None
            return Architecture.from_params(self.params, self.seq_len, self.vocab)
        assert self.hidden is not None and self.heads is not None
        return Architecture(
            layers=self.layers,
            hidden=self.hidden,
            heads=self.heads,
            kv_heads=self.kv_heads or self.heads,
            ffn_hidden=self.ffn_hidden or 4 * self.hidden,
            vocab=self.vocab,
            seq_len=self.seq_len,
            glu=self.glu,
            experts=self.experts,
            top_k=self.top_k,
            tied_embeddings=self.tied_embeddings,
            flash_attention=self.flash_attention,
            dropout=self.dropout,
            shared_experts=self.shared_experts,
            dense_layers=self.dense_layers,
            dense_ffn_hidden=self.dense_ffn_hidden or 0,
            route_nodes=self.route_nodes,
            capacity_factor=self.capacity_factor,
            kv_lora_rank=self.kv_lora_rank,
            q_lora_rank=self.q_lora_rank,
            rope_head_dim=self.rope_head_dim,
            attention_head_dim=self.head_dim or 0,
        )


class Parallelism(Spec):
    """A given layout. Omitted fields are searched; ``dp`` defaults to what the GPU count leaves."""

    tp: int | None = Field(None, ge=1)
    pp: int | None = Field(None, ge=1)
    dp: int | None = Field(None, ge=1)
    cp: int | None = Field(None, ge=1)
    zero: Literal[0, 1, 2, 3] | None = None
    recompute: Recompute | None = None
    micro_batch: int | None = Field(None, ge=1)
    interleave: int | None = Field(None, ge=1, description="virtual pipeline chunks per stage")
    sequence_parallel: bool | None = None
    ep: int | None = Field(None, ge=1, description="expert parallel (MoE): ranks of the data-parallel group")
    schedule: Literal["1f1b", "zero-bubble", "dualpipe"] = "1f1b"
    overlap: bool = Field(True, description="gradient reduction overlapped with backward")
    offload: bool | None = Field(
        None, description="optimizer state in host memory (ZeRO-Offload); absent: only where nothing else fits"
    )


class Stage(Spec):
    """A stretch of the run at another sequence length or batch: a batch-size/sequence ramp-up at the start or a
    long-context extension at the end (Llama 3 405B, §3.4: 4M-token batches of 4,096-token sequences for the first
    252M tokens, and six context-extension stages from 8K to 128K over about 800B tokens).  The tokens the
    stages do not cover run at the model's sequence length and the job's global batch."""

    name: str | None = None
    tokens: float = Field(gt=0)
    seq_len: int | None = Field(None, gt=0, description="sequence length in this stage (default: the model's)")
    global_batch: int | None = Field(None, gt=0, description="sequences per iteration")
    global_batch_tokens: float | None = Field(
        None, gt=0, description="tokens per iteration (default: the job's tokens per iteration)"
    )


def _offer_auto(schema: dict[str, Any]) -> None:
    schema["anyOf"] = [{"const": "auto"}, *schema.get("anyOf", [])]


class TrainingJob(Spec):
    name: str
    model: ModelSpec
    tokens: float = Field(gt=0)
    gpu: str = "H100"
    precision: Precision = "bf16"
    gpus: int | None = Field(None, gt=0, description="a fixed GPU count")
    deadline_days: float | None = Field(None, gt=0, description="or: the fewest GPUs that finish in time")
    max_gpus: int | None = Field(None, gt=0, description="the most GPUs the deadline search may use")
    global_batch: int | None = Field(None, gt=0, description="sequences per iteration")
    global_batch_tokens: float | None = Field(None, gt=0, description="tokens per iteration (default 4M)")
    parallelism: Parallelism | None = Field(
        None,
        description="'auto' (or absent): searched; or a fixed layout",
        # the validator below turns 'auto' into None; editors should still offer it
        json_schema_extra=_offer_auto,
    )
    mfu: float | None = Field(None, gt=0, le=1, description="assumed model-FLOPs utilisation; derived if absent")
    goodput: float | None = Field(None, gt=0, le=1, description="useful fraction of wall time; derived if absent")
    dataset_bytes_per_token: float = Field(4.0, gt=0, description="tokenised dataset on disk (uint32 ids)")
    checkpoint_stall_s: float | None = Field(
        None, gt=0, description="pause to write one checkpoint; derived from facility.storage_write_gbps if absent"
    )
    async_checkpoint: bool = Field(False, description="snapshot to host memory, write to storage in the background")
    restart_minutes: float = Field(10.0, ge=0, description="time to restart the job after a failure")
    stages: list[Stage] = Field(
        default_factory=list, description="ramp-up or long-context stages, part of `tokens`; the rest runs as given"
    )

    @field_validator("parallelism", mode="before")
    @classmethod
    def _auto(cls, value: object) -> object:
        # 'auto' is spelled in the file but means "search everything"; a plain optional field (not a union with a
        # literal) keeps pydantic's errors at the field the user wrote rather than at a union branch's name.
        if value == "auto":
            return None
        if isinstance(value, str):
            raise ValueError(f"parallelism is 'auto' or a mapping of tp, pp, dp, ... (got {value!r})")
        return value

    @model_validator(mode="after")
    def _count_or_deadline(self) -> TrainingJob:
        if self.gpus is None and self.deadline_days is None:
            raise ValueError("give gpus (a fixed count) or deadline_days (and optionally max_gpus)")
        if self.gpus is not None and self.deadline_days is not None:
            raise ValueError("give gpus or deadline_days, not both")
        staged = sum(stage.tokens for stage in self.stages)
        if staged >= self.tokens:
            raise ValueError(
                f"the stages' tokens ({staged:.3g}) must be part of the job's tokens ({self.tokens:.3g}), "
                "leaving some for the main stage"
            )
        return self


class InferenceService(Spec):
    """A model served to a request rate with latency targets at a percentile (continuous batching)."""

    name: str
    model: ModelSpec
    gpu: str = "H100"
    precision: Precision = "bf16"
    requests_per_s: float = Field(gt=0, description="mean arrival rate (Poisson)")
    prompt_tokens: int = Field(gt=0, description="mean prompt length")
    output_tokens: int = Field(gt=0, description="mean answer length")
    ttft_ms: float | None = Field(
        None, gt=0, description="time-to-first-token target at `percentile`, queueing included"
    )
    tpot_ms: float | None = Field(None, gt=0, description="time-per-output-token target at `percentile`")
    percentile: float = Field(99.0, ge=50, lt=100, description="the percentile the latency targets hold at")
    max_batch: int | None = Field(
        None, ge=1, description="most sequences in flight per replica (default 256 per attention rank: TP group or GPU)"
    )
    tp: int | None = Field(None, ge=1, description="tensor parallel per replica; searched if absent")
    ep: int | None = Field(
        None, ge=2, description="MoE: expert parallel GPUs per replica, attention data-parallel across them"
    )
    kv_precision: Precision | None = Field(None, description="KV-cache precision (default: the weights')")
    prefill: Literal["chunked", "inline", "disaggregated"] = Field(
        "chunked",
        description="chunked: prompt chunks share steps with decodes; inline: a prompt runs in a step of its own and "
        "stalls decodes; disaggregated: separate prefill replicas send the KV cache over the NIC",
    )
    chunk_tokens: int | None = Field(
        None, gt=0, description="prompt tokens per step with chunked prefill; searched (256-8192) if absent"
    )
    speculative_tokens: int = Field(0, ge=0, description="draft tokens verified per step (speculative decoding, MTP)")
    acceptance: float = Field(0.8, gt=0, lt=1, description="probability each draft token is accepted")


class FacilityConstraints(Spec):
    name: str = "planned-ai-hall"
    pue: float = Field(1.3, ge=1.0)
    electricity_usd_per_kwh: float = Field(0.08, ge=0)
    carbon_kg_per_kwh: float = Field(0.4, ge=0, description="grid carbon intensity, kgCO2e per kWh")
    rack_kw_limit: float = Field(40.0, gt=0)
    redundancy: RedundancyTarget = "N+1"
    tier: Tier = "III"
    switch_radix: int = Field(64, ge=4)
    nic_gbps: float | None = Field(None, gt=0, description="override the GPU's NIC speed")
    oversubscription: float = Field(1.0, ge=1.0, description="leaf down:up bandwidth; 1 = non-blocking")
    sharp: bool = Field(
        False, description="in-network reduction (InfiniBand SHARP) on the switches: all-reduces sum in the fabric"
    )
    storage_write_gbps: float | None = Field(
        None, gt=0, description="aggregate write bandwidth of the checkpoint storage, GB/s"
    )
    gpu_mtbf_hours: float | None = Field(
        None,
        gt=0,
        description="per GPU-slot, all causes; absent: per component (GPU, host, switch, software) at Llama 3's rates",
    )
    average_load: float = Field(0.8, gt=0, le=1, description="mean power as a fraction of node maximum")
    gpu_hour_usd: float | None = Field(None, ge=0, description="rental price per GPU-hour, if costed")


class Workload(Spec):
    name: str = "workload"
    catalog: list[str] = Field(default_factory=list, description="extra GPU catalog files, relative to this file")
    facility: FacilityConstraints = Field(default_factory=FacilityConstraints)
    training: list[TrainingJob] = Field(default_factory=list)
    inference: list[InferenceService] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Workload:
        if not self.training and not self.inference:
            raise ValueError("a workload needs at least one training job or inference service")
        return self


def load_workload(path: str | Path) -> tuple[Workload, SpecSource]:
    """Read and validate a workload file; semantic problems (shapes that do not divide) are located too."""
    source = read_yaml(path)
    workload = validate(Workload, source)
    problems = []
    models = [("training", i, job.model) for i, job in enumerate(workload.training)]
    models += [("inference", i, svc.model) for i, svc in enumerate(workload.inference)]
    for section, i, m in models:
        if m.hidden and m.heads and m.hidden % m.heads:
            problems.append(
                source.problem(
                    (section, i, "model", "heads"), f"hidden ({m.hidden}) is not divisible by heads ({m.heads})"
                )
            )
        if m.heads and m.kv_heads and m.heads % m.kv_heads:
            problems.append(
                source.problem(
                    (section, i, "model", "kv_heads"),
                    f"heads ({m.heads}) is not divisible by kv_heads ({m.kv_heads})",
                )
            )
    for i, svc in enumerate(workload.inference):
        if svc.ep is not None and svc.model.experts <= 1:
            problems.append(
                source.problem(("inference", i, "ep"), "ep (expert parallel) needs a mixture-of-experts model")
            )
        if svc.ep is not None and svc.tp not in (None, 1):
            problems.append(
                source.problem(
                    ("inference", i, "tp"),
                    f"tp {svc.tp} with ep {svc.ep}: expert-parallel serving runs attention data-parallel (tp 1)",
                )
            )
        if svc.chunk_tokens is not None and svc.prefill != "chunked":
            problems.append(
                source.problem(
                    ("inference", i, "chunk_tokens"),
                    f"chunk_tokens only applies to prefill: chunked (not {svc.prefill})",
                )
            )
    raise_problems(problems)
    base = Path(path).parent
    workload.catalog = [str((base / p) if not Path(p).is_absolute() else p) for p in workload.catalog]
    return workload, source
