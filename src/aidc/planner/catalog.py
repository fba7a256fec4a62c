"""The GPU and node catalog: accelerator peaks, memory, interconnect and node power, with their sources."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aidc.errors import InvalidSpec
from aidc.specfile import parse_yaml, read_yaml, validate

# A GPU without a measured MAMF reaches this fraction of its datasheet peak: the median of the NVIDIA SXM rows of
# Bekman's BF16 table (ml-engineering, compute/accelerator/README.md, "Maximum Achievable Matmul FLOPS comparison
# table": A100 86.9%, GH200 83.8%, A100 PCIe 81.1%, H100 80.3%, B300 78.6%, B200 77.6%, GB200 72.9%)
MAMF_FRACTION = 0.803


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeModel(CatalogEntry):
    """One server (or, for rack-scale systems like NVL72, one rack) that holds GPUs."""

    name: str
    gpus: int = Field(gt=0)
    kw: float = Field(gt=0, description="maximum system power, kW")
    cooling: str = "air"


class GPU(CatalogEntry):
    """One accelerator model. Peaks are dense (no sparsity); bandwidths per GPU, per direction."""

    name: str = ""
    generation: str = Field("", description="architecture generation (Volta, Ampere, Hopper, Blackwell, ...)")
    peak_tflops: dict[str, float]
    hbm_gb: float = Field(gt=0)
    hbm_mib: float | None = Field(
        None, gt=0, description="memory capacity as the driver reports it (nvidia-smi total, MiB), where measured"
    )
    hbm_tbps: float = Field(gt=0)
    nvlink_gbps: float = Field(gt=0, description="scale-up bandwidth per GPU per direction, GB/s")
    nvlink_domain: int = Field(ge=1, description="GPUs that share one NVLink/Infinity Fabric domain")
    nic_gbps: float = Field(gt=0, description="scale-out NIC per GPU, Gb/s")
    tdp_w: float = Field(gt=0)
    node: NodeModel
    mamf_tflops: dict[str, float] = Field(
        {},
        description="measured Maximum Achievable Matmul FLOPS by precision (dense TFLOP/s, best large GEMM shape)",
    )
    sources: list[str] = []

    def peak(self, precision: str) -> float:
        """Dense peak FLOP/s at a precision; fp8 falls back to bf16 on GPUs without it."""
        for p in (precision, "bf16") if precision == "fp8" else (precision,):
            if p in self.peak_tflops:
                return self.peak_tflops[p] * 1e12
        raise InvalidSpec(
            f"{self.name} has no {precision} peak in the catalog",
            hint=f"use one of {sorted(self.peak_tflops)} or add it to your catalog file",
        )

    def achievable(self, precision: str) -> float:
        """FLOP/s the best large GEMM reaches at ``precision``: the GPU's measured MAMF (fp16 runs on the same tensor
        cores as bf16); where none is measured, its peak times the bf16 MAMF fraction, or MAMF_FRACTION."""
        measured = self.mamf_tflops.get(precision) or (self.mamf_tflops.get("bf16") if precision == "fp16" else None)
        if measured:
            return measured * 1e12
        bf16 = self.mamf_tflops.get("bf16")
        fraction = bf16 * 1e12 / self.peak("bf16") if bf16 and "bf16" in self.peak_tflops else MAMF_FRACTION
        return self.peak(precision) * fraction

    @property
    def hbm_bytes(self) -> float:
        return self.hbm_gb * 1e9

    @property
    def hbm_capacity_bytes(self) -> float:
        """Bytes a program can allocate from: the driver's figure where measured, else the datasheet's. The
        datasheets round HBM to a marketing figure — an "80 GB" H100 reports 81,559 MiB (85.5e9 bytes), an A100
        80GB 81,920 MiB (85.9e9) — so the datasheet undercounts it by ~7%."""
        return self.hbm_mib * 2**20 if self.hbm_mib else self.hbm_bytes

    @property
    def hbm_bytes_per_s(self) -> float:
        return self.hbm_tbps * 1e12

    @property
    def nvlink_bytes_per_s(self) -> float:
        return self.nvlink_gbps * 1e9

    @property
    def nic_bytes_per_s(self) -> float:
        return self.nic_gbps * 1e9 / 8


class CatalogFile(CatalogEntry):
    gpus: dict[str, GPU] = {}


class Catalog:
    """Every GPU aidc knows: the packaged list, then user files in order (a later entry replaces an earlier one)."""

    def __init__(self, gpus: dict[str, GPU], files: list[str]) -> None:
        self.gpus, self.files = gpus, files

    @classmethod
    def load(cls, extra: list[str | Path] | tuple[str | Path, ...] = ()) -> Catalog:
        text = resources.files("aidc.planner").joinpath("data/catalog.yaml").read_text(encoding="utf-8")
        sources = [parse_yaml(text, "aidc/planner/data/catalog.yaml")] + [read_yaml(p) for p in extra]
        gpus: dict[str, GPU] = {}
        for source in sources:
            parsed = validate(CatalogFile, source)
            for name, gpu in parsed.gpus.items():
                gpu.name = name
                gpus[name] = gpu
        return cls(gpus, [s.file for s in sources])

    def gpu(self, name: str, where: str | None = None) -> GPU:
        if name in self.gpus:
            return self.gpus[name]
        folded = {k.lower().replace("-", "").replace(" ", ""): k for k in self.gpus}
        key = name.lower().replace("-", "").replace(" ", "")
        if key in folded:
            return self.gpus[folded[key]]
        close = difflib.get_close_matches(name, list(self.gpus), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known GPUs: {', '.join(sorted(self.gpus))}"
        raise InvalidSpec(f"unknown GPU {name!r}", hint=hint + " (add your own with a catalog file)", where=where)
