"""Facility sizing: nodes, racks at the kW limit, IT and facility kW, UPS and cooling with redundancy."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from aidc.planner.catalog import GPU

# A 64-port 400G switch draws on the order of 1.5–2 kW (vendor datasheets, inf); used for fabric power.
SWITCH_KW = 1.8
UPS_HEADROOM = 1.1  # GB 50174: UPS capacity E ≥ 1.1·P_IT
REDUNDANCY = {"N": 1.0, "N+1": 1.25, "2N": 2.0, "2(N+1)": 2.5}  # N+1 counted as 4+1 modules (inf)


@dataclass(frozen=True)
class FacilitySize:
    gpus: int
    nodes: int
    nodes_per_rack: int
    racks: int
    rack_kw: float
    it_kw: float
    facility_kw: float
    ups_kw: float
    cooling_kw: float
    liquid_cooling: bool

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def size_facility(
    gpu: GPU, gpus: int, switches: int, pue: float, rack_kw_limit: float, redundancy: str
) -> FacilitySize:
    """Racks hold as many nodes as the kW limit allows; UPS and cooling carry the IT load times redundancy."""
    nodes = math.ceil(gpus / gpu.node.gpus)
    per_rack = max(0, int(rack_kw_limit // gpu.node.kw))
    racks = math.ceil(nodes / per_rack) if per_rack else 0
    it_kw = nodes * gpu.node.kw + switches * SWITCH_KW
    factor = REDUNDANCY[redundancy]
    return FacilitySize(
        gpus=gpus,
        nodes=nodes,
        nodes_per_rack=per_rack,
        racks=racks,
        rack_kw=per_rack * gpu.node.kw,
        it_kw=it_kw,
        facility_kw=it_kw * pue,
        ups_kw=it_kw * UPS_HEADROOM * factor,
        cooling_kw=it_kw * factor,
        liquid_cooling=gpu.node.cooling == "direct_liquid" or per_rack * gpu.node.kw > 30,
    )


@dataclass(frozen=True)
class EnergyCost:
    mwh: float
    energy_usd: float
    compute_usd: float | None
    tco2e: float

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def energy_cost(
    facility_kw: float,
    wall_hours: float,
    average_load: float,
    usd_per_kwh: float,
    kg_per_kwh: float,
    gpu_hours: float,
    gpu_hour_usd: float | None,
) -> EnergyCost:
    """Energy = facility kW × mean load × hours (PUE already in facility kW); CO2e = energy × grid intensity."""
    mwh = facility_kw * average_load * wall_hours / 1000
    return EnergyCost(
        mwh=mwh,
        energy_usd=mwh * 1000 * usd_per_kwh,
        compute_usd=None if gpu_hour_usd is None else gpu_hours * gpu_hour_usd,
        tco2e=mwh * kg_per_kwh,
    )
