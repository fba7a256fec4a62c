"""Network rules: non-blocking AI compute fabric, one NIC per GPU at target speed, TP ≤ NVLink domain, fat-tree arithmetic."""

from __future__ import annotations

from typing import Any

from aidc.facility.derived import FabricShape
from aidc.standards.rule import Context, Outcome, count, rule

SPOD = "NVIDIA DGX SuperPOD Reference Architecture: DGX H100 (2023) / DGX B200 (2024)"


def _compute(ctx: Context) -> list[FabricShape]:
    return [s for s in ctx.derived.fabrics if s.fabric.kind == "compute"]


@rule(
    "NET-NONBLOCK",
    "AI compute fabric is non-blocking (1:1) at every tier",
    family="network",
    standard=SPOD,
    clause="§ compute fabric: rail-optimized non-blocking fat tree",
    thresholds={"max_ratio": 1.0},
    remediation="Give each leaf as many uplinks as downlinks (and each spine the same), or add spines.",
)
def non_blocking(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    out = []
    for s in _compute(ctx):
        for tier, ratio in s.oversubscription.items():
            out.append(
                Outcome(
                    ratio <= t["max_ratio"],
                    f"{ratio:g}:1",
                    f"≤ {t['max_ratio']:g}:1",
                    ("fabrics", s.index),
                    f"{s.fabric.name} {tier}",
                )
            )
    return out or None


def _gpu_nodes(ctx: Context) -> list[tuple[int, Any]]:
    return [(i, n) for i, n in enumerate(ctx.facility.nodes) if n.gpus > 0]


@rule(
    "NET-NIC-PER-GPU",
    "One compute-fabric NIC per GPU",
    family="network",
    standard=SPOD,
    clause="§ compute fabric: 1 × 400G NDR per GPU",
    thresholds={"nics_per_gpu": 1.0},
    remediation="Fit one compute-fabric NIC (HCA) per GPU so each GPU has its own rail.",
)
def nic_per_gpu(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    compute = {s.fabric.name for s in _compute(ctx)}
    if not compute:
        return None
    out = []
    for i, node in _gpu_nodes(ctx):
        nics = sum(n.count for n in node.nics if n.fabric in compute)
        need = node.gpus * t["nics_per_gpu"]
        out.append(
            Outcome(
                nics >= need,
                f"{count(nics, 'NIC')} for {count(node.gpus, 'GPU')}",
                f"≥ {need:g}",
                ("nodes", i, "nics"),
                node.name,
            )
        )
    return out or None


@rule(
    "NET-NIC-SPEED",
    "Compute NICs run at the target speed",
    family="network",
    standard=SPOD,
    clause="§ compute fabric: 400 Gb/s NDR per GPU (targets.gpu_nic_gbps)",
    remediation="Use NICs and switch ports at the target speed (e.g. 400G NDR).",
)
def nic_speed(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    compute = {s.fabric.name: s.fabric for s in _compute(ctx)}
    target = ctx.targets.gpu_nic_gbps
    out = []
    for i, node in _gpu_nodes(ctx):
        for j, nic in enumerate(node.nics):
            if nic.fabric in compute:
                speed = min(nic.gbps, compute[nic.fabric].port_gbps)
                out.append(
                    Outcome(
                        speed >= target,
                        f"{speed:g} Gb/s",
                        f"≥ {target:g} Gb/s",
                        ("nodes", i, "nics", j, "gbps"),
                        node.name,
                        "limited by switch port" if compute[nic.fabric].port_gbps < nic.gbps else "",
                    )
                )
    return out or None


@rule(
    "NET-TP",
    "Tensor-parallel degree fits the NVLink domain",
    family="network",
    standard="Narayanan et al., Efficient Large-Scale Language Model Training on GPU Clusters Using "
    "Megatron-LM (SC 2021)",
    clause="§3.3 takeaway #1: TP ≤ NVLink domain; PP/DP across nodes",
    remediation="Keep tensor parallelism inside one NVLink domain (8 on HGX, 72 on NVL72); use pipeline or data "
    "parallelism across nodes.",
)
def tensor_parallel(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    tp = ctx.targets.tensor_parallel
    if tp is None or ctx.derived.gpus == 0:
        return None
    dom = ctx.derived.max_nvlink_domain
    return Outcome(tp <= dom, f"TP {tp}", f"≤ NVLink domain {dom}", ("targets", "tensor_parallel"))


@rule(
    "NET-FATTREE",
    "Declared switch counts match fat-tree arithmetic",
    family="network",
    standard="Al-Fares, Loukissas, Vahdat, A Scalable, Commodity Data Center Network Architecture (SIGCOMM 2008)",
    clause="§2.2 fat tree of radix k: 2-tier leaves 2E/k, spines E/k; 3-tier leaf = spine = 2E/k, core E/k",
    remediation="Declare at least the switches a non-blocking fat tree of this radix needs for its endpoints.",
)
def fat_tree_counts(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    out = []
    for s in ctx.derived.fabrics:
        if s.endpoints == 0:
            continue
        for tier, need in s.required.items():
            have = s.declared.get(tier, 0)
            out.append(
                Outcome(
                    have >= need,
                    f"{have} {tier}",
                    f"≥ {need} for {s.endpoints} endpoints (k={s.fabric.radix})",
                    ("fabrics", s.index, f"{tier}_switches"),
                    s.fabric.name,
                )
            )
    return out or None


@rule(
    "NET-RADIX",
    "Endpoints fit the fabric's tiers and radix",
    family="network",
    standard="Al-Fares, Loukissas, Vahdat, A Scalable, Commodity Data Center Network Architecture (SIGCOMM 2008)",
    clause="§2.2 non-blocking limit: 2-tier ≤ k²/2, 3-tier ≤ k³/4 endpoints",
    remediation="Add a tier, or use higher-radix switches.",
)
def radix_limit(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    return [
        Outcome(
            s.endpoints <= s.max_endpoints,
            s.endpoints,
            f"≤ {s.max_endpoints}",
            ("fabrics", s.index, "tiers"),
            s.fabric.name,
        )
        for s in ctx.derived.fabrics
        if s.endpoints
    ] or None


@rule(
    "NET-PORTS",
    "Leaf and spine port plans fit the switch radix",
    family="network",
    standard="Al-Fares, Loukissas, Vahdat, A Scalable, Commodity Data Center Network Architecture (SIGCOMM 2008)",
    clause="§2.2 each switch: downlinks + uplinks ≤ radix",
    remediation="Reduce the declared downlinks/uplinks per switch to the radix.",
)
def port_plan(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    out = []
    for i, f in enumerate(ctx.facility.fabrics):
        half = f.radix // 2
        for tier in ("leaf", "spine"):
            down, up = getattr(f, f"{tier}_downlinks"), getattr(f, f"{tier}_uplinks")
            if down is None and up is None:
                continue
            used = (down or half) + (up if up is not None else half)
            out.append(
                Outcome(
                    used <= f.radix,
                    f"{used} ports",
                    f"≤ {f.radix}",
                    ("fabrics", i, f"{tier}_downlinks"),
                    f"{f.name} {tier}",
                )
            )
    return out or None


@rule(
    "NET-FABRICS",
    "GPU cluster has all four fabrics",
    family="network",
    standard=SPOD,
    clause="§ network fabrics: compute, storage, in-band management, out-of-band management",
    remediation="Declare the missing fabric(s); mixing training traffic with storage or management hurts both.",
)
def four_fabrics(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if ctx.derived.gpus == 0:
        return None
    kinds = {f.kind for f in ctx.facility.fabrics}
    missing = [k for k in ("compute", "storage", "in_band", "out_of_band") if k not in kinds]
    return Outcome(
        not missing,
        "missing " + ", ".join(missing) if missing else "all four",
        "compute, storage, in_band, out_of_band",
        ("fabrics",),
    )


@rule(
    "NET-STORAGE-BW",
    "Storage bandwidth per GPU node",
    family="network",
    standard=SPOD,
    clause="§ storage fabric: GPUDirect Storage read > 40 GB/s per DGX",
    thresholds={"min_gbytes_s": 40.0},
    remediation="Add storage-fabric NICs (or faster ones) so each GPU node reads at the required rate.",
)
def storage_bandwidth(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    storage = {f.name for f in ctx.facility.fabrics if f.kind == "storage"}
    if not storage:
        return None
    out = []
    for i, node in _gpu_nodes(ctx):
        gbs = sum(n.count * n.gbps for n in node.nics if n.fabric in storage) / 8
        out.append(
            Outcome(
                gbs >= t["min_gbytes_s"],
                f"{gbs:g} GB/s",
                f"≥ {t['min_gbytes_s']:g} GB/s",
                ("nodes", i, "nics"),
                node.name,
            )
        )
    return out or None


@rule(
    "NET-BMC",
    "Every node reachable out-of-band (Redfish/IPMI)",
    family="network",
    standard="DMTF DSP0266 Redfish Specification (1.20, 2023)",
    clause="§ service root: one Redfish service per managed node (BMC), on the out-of-band network",
    severity="warning",
    remediation="Give each node group a bmc address template so the control plane can read power and inlet "
    "temperature per node.",
)
def bmc(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    return [
        Outcome(
            n.bmc is not None and bool(n.bmc.address),
            "address" if n.bmc and n.bmc.address else "none",
            "Redfish or IPMI address",
            ("nodes", i, "bmc"),
            n.name,
        )
        for i, n in enumerate(ctx.facility.nodes)
        if n.role != "network"
    ] or None
