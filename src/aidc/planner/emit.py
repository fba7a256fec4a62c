"""Emit a facility spec for a plan, built through the facility models so `aidc check` judges what we write."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from aidc.facility import layout
from aidc.facility.model import Facility
from aidc.planner.plan import Plan
from aidc.planner.power import SWITCH_KW

TIER_NUMBER = {"I": 1, "II": 2, "III": 3, "IV": 4}
# TIA-942's tables per rating (recalled figures, as the checker's AV-TIA-FUEL and AV-TIA-ARCH rows): fuel at full
# load (Rated-1's 8 h raised to Uptime's 12 h, which every tier needs), and the floor's superimposed live load.
TIA_FUEL_H = {1: 12, 2: 24, 3: 72, 4: 96}
TIA_FLOOR_KPA = {1: 7.2, 2: 8.4, 3: 12.0, 4: 12.0}
# Continuous cooling with chillers: stored chilled water outlasting the chillers' restart on generators.
CHILLER_RESTART_MIN = 10.0
UPS_MODULE_KW = 500.0
SWITCHES_PER_RACK = 12


def _n_plus(load_kw: float, unit_kw: float, spare: int) -> int:
    return max(1, math.ceil(load_kw / unit_kw)) + spare


# Optics reach on the node-to-leaf links (IEEE 802.3: 400GBASE-SR4/SR8 100 m on OM4, 800G 50 m; DR4 500 m).
MMF_REACH_M = {True: 50.0, False: 100.0}
TRAY_DROP_M = 1.0


def compute_cable(spec: dict[str, Any], gbps: float) -> str:
    """Multimode optics where every GPU rack reaches a network rack within their reach, else singlemode."""
    facility = Facility.model_validate(spec)
    places = layout.places(facility)
    leaves = [p for name, p in places.items() if name.startswith("net-")]
    far = max(
        (layout.nearest(p, leaves, TRAY_DROP_M)[1] for name, p in places.items() if name.startswith("gpu-")),
        default=0.0,
    )
    return "mmf" if far <= MMF_REACH_M[gbps > 400] else "smf"


def facility_dict(plan: Plan) -> dict[str, Any]:
    """The hall, racks, nodes, 2N power, N+1 cooling and fabrics the plan needs, at the workload's tier."""
    fc = plan.workload.facility
    size, tree = plan.facility, plan.fabric
    if size is None or tree is None:
        raise ValueError("the plan sizes no GPUs, so there is no facility to emit")
    job_gpu = next((j.training.gpu for j in plan.jobs), None)
    gpu_name = job_gpu.name if job_gpu else plan.services[0].gpu
    node = job_gpu.node if job_gpu else None
    from aidc.planner.catalog import Catalog

    gpu = job_gpu or Catalog.load().gpu(gpu_name)
    node = gpu.node
    tier = TIER_NUMBER[fc.tier]
    cooling = "direct_liquid" if node.cooling == "direct_liquid" else ("rear_door" if size.rack_kw > 25 else "air")
    per_rack = max(1, size.nodes_per_rack)
    gpu_racks = math.ceil(size.nodes / per_rack)
    racks = [
        {
            "name": f"gpu-{i + 1:03d}",
            "row": f"R{i // 10 + 1}",
            "position": f"R{i // 10 + 1}-{i % 10 + 1:02d}",
            "power_budget_kw": math.ceil(per_rack * node.kw * 1.1),
            "cooling": cooling,
        }
        for i in range(gpu_racks)
    ]
    switches = max(1, tree.switches)
    net_racks = math.ceil(switches / SWITCHES_PER_RACK)
    racks += [
        {
            "name": f"net-{i + 1:02d}",
            "row": "N",
            "position": f"N-{i + 1:02d}",
            "power_budget_kw": math.ceil(SWITCHES_PER_RACK * SWITCH_KW * 1.1),
        }
        for i in range(net_racks)
    ]
    gpu_rack_names = [r["name"] for r in racks[:gpu_racks]]
    nodes = [
        {
            "name": "gpu",
            "model": node.name,
            "role": "compute",
            "count": per_rack,
            "racks": gpu_rack_names,
            "gpus": node.gpus,
            "gpu_type": gpu.name,
            "nvlink_domain_gpus": gpu.nvlink_domain,
            "nominal_kw": round(node.kw * 0.8, 2),
            "max_kw": node.kw,
            "nics": [
                {"fabric": "compute", "count": node.gpus, "gbps": fc.nic_gbps or gpu.nic_gbps},
                # GPUDirect Storage wants > 40 GB/s per node (DGX SuperPOD RA): 2 × 200 Gb/s
                {"fabric": "storage", "count": 2, "gbps": 200},
                {"fabric": "in-band", "count": 1, "gbps": 100},
                {"fabric": "oob", "count": 1, "gbps": 1},
            ],
            "bmc": {"protocol": "redfish", "address": "https://{name}.bmc.example"},
        },
        {
            "name": "switch",
            "model": f"radix-{tree.radix} switch",
            "role": "network",
            "count": min(SWITCHES_PER_RACK, switches),
            "racks": [r["name"] for r in racks[gpu_racks:]],
            "nominal_kw": round(SWITCH_KW * 0.65, 2),
            "max_kw": SWITCH_KW,
            "nics": [{"fabric": "oob", "count": 1, "gbps": 1}],
            "bmc": {"protocol": "redfish", "address": "https://{name}.bmc.example"},
        },
    ]
    it_kw = gpu_racks * per_rack * node.kw + net_racks * SWITCHES_PER_RACK * SWITCH_KW
    mech_kw = it_kw * max(0.05, fc.pue - 1)
    dual = tier >= 3
    paths = [{"name": "A", "active": True}] + ([{"name": "B", "active": tier >= 4 or dual}] if dual else [])
    feed_kw = math.ceil((it_kw + mech_kw) * 1.25)
    ups_modules = _n_plus(it_kw * 1.1, UPS_MODULE_KW, 1 if tier >= 2 else 0)
    power = {
        "compartmentalized": tier >= 4,
        "paths": paths,
        "utility_feeds": [
            {"name": f"feed-{p['name']}", "capacity_kw": feed_kw, "substation": f"sub-{p['name']}", "path": p["name"]}
            for p in paths
        ],
        "transformers": [{"name": f"tx-{p['name']}", "capacity_kw": feed_kw, "path": p["name"]} for p in paths],
        "ups": [
            {
                "name": f"ups-{p['name']}",
                "path": p["name"],
                "serves": "it",
                "module_kw": UPS_MODULE_KW,
                "modules": ups_modules,
                "battery_minutes": 15,
            }
            for p in paths
        ]
        # Fans, pumps and controls on their own UPS group (GB 50174 §8.1); at Tier IV one per active path so
        # Continuous Cooling survives the loss of a path.
        + [
            {
                "name": f"ups-mech-{p['name']}",
                "path": p["name"],
                "serves": "cooling",
                "module_kw": UPS_MODULE_KW,
                "modules": _n_plus(mech_kw * 1.1, UPS_MODULE_KW, 1),
                "battery_minutes": 15,
            }
            for p in (paths if tier >= 4 else paths[:1])
        ],
        "generators": [
            {
                "name": "gen",
                "capacity_kw": 2000,
                "count": _n_plus(it_kw + mech_kw, 2000, 1),
                "rating": "data_center",
                "fuel_hours": TIA_FUEL_H[tier],
            }
        ],
        "pdus": [
            {"name": f"rpp-{p['name']}", "capacity_kw": 400, "count": math.ceil(it_kw / 400), "path": p["name"]}
            for p in paths
        ],
    }
    spare = 2 if tier >= 4 else 1
    units = [{"name": "chiller", "kind": "chiller", "capacity_kw": 1000, "count": _n_plus(it_kw, 1000, spare)}]
    if cooling == "direct_liquid":
        units.append(
            {"name": "cdu", "kind": "cdu", "capacity_kw": 500, "count": _n_plus(it_kw, 500, spare), "serves": "liquid"}
        )
        units.append(
            {
                "name": "crah",
                "kind": "crah",
                "capacity_kw": 100,
                "count": _n_plus(it_kw * 0.15, 100, spare),
                "serves": "air",
            }
        )
    else:
        units.append(
            {"name": "crah", "kind": "crah", "capacity_kw": 250, "count": _n_plus(it_kw, 250, spare), "serves": "air"}
        )
    spec: dict[str, Any] = {
        "name": fc.name,
        "site": {
            "name": f"{fc.name} site",
            "country": "US",
            "grid_carbon_g_per_kwh": fc.carbon_kg_per_kwh * 1000,
            "access_providers": 2 if tier >= 3 else 1,
            "diverse_entrances": tier >= 3,
            "maintenance_hole_separation_m": 30,
        },
        "targets": {
            "uptime": fc.tier,
            "tia942": tier,
            "en50600": tier,
            "ashrae": "A1",
            "pue_target": fc.pue,
            "tensor_parallel": min(gpu.nvlink_domain, 8),
            "gpu_nic_gbps": fc.nic_gbps or gpu.nic_gbps,
        },
        "halls": [
            {
                "name": "hall-1",
                "area_m2": max(100, 3 * len(racks)),
                "containment": "hot_aisle",
                "floor_rating_kpa": TIA_FLOOR_KPA[tier],
                "racks": racks,
            }
        ],
        "nodes": nodes,
        "power": power,
        "cooling": {
            "units": units,
            "inlet_c": {"min": 18, "max": 27},
            "dew_point_c": {"min": 5.5, "max": 15},
            "rh_pct": {"min": 20, "max": 60},
            "rate_of_change_c_per_h": 5,
            "distribution_paths": 2 if tier >= 3 else 1,
            "battery_room_c": {"min": 20, "max": 30},
            # Tier IV Continuous Cooling: fans and pumps ride through on the cooling UPS above, and a chilled-water
            # tank carries the heat until the chillers restart on generators.
            "continuous_cooling": tier >= 4,
        }
        | ({"ride_through_min": 2 * CHILLER_RESTART_MIN, "restart_min": CHILLER_RESTART_MIN} if tier >= 4 else {}),
        # TIA-942 architectural rows: automatic suppression from Rated-2, logged access control and CCTV from Rated-3.
        "security": {
            "fire_suppression": "pre_action" if tier >= 2 else "none",
            "fire_detector_groups": 1,
            "access_control": tier >= 3,
            "access_logged": tier >= 3,
            "access_zones": 2 if tier >= 3 else 0,
            "cctv": tier >= 3,
        },
        "fabrics": [
            {
                "name": "compute",
                "kind": "compute",
                "switch_model": f"radix-{tree.radix}",
                "radix": tree.radix,
                "port_gbps": fc.nic_gbps or gpu.nic_gbps,
                "tiers": max(1, tree.tiers),
                "leaf_switches": tree.leaves,
                "spine_switches": tree.spines,
                "rail_optimized": True,
            }
            | ({"core_switches": tree.cores} if tree.cores else {}),
            _side_fabric("storage", "storage", 2 * size.nodes, 64, 200),
            _side_fabric("in-band", "in_band", size.nodes, 64, 100),
            _side_fabric("oob", "out_of_band", size.nodes + switches, 48, 1),
        ],
        "telemetry": {
            "endpoints": [
                {
                    "name": "utility-meter",
                    "protocol": "modbus",
                    "address": "10.0.0.10:502",
                    "measures": ["facility_kwh"],
                },
                {
                    "name": "ups-output-meter",
                    "protocol": "modbus",
                    "address": "10.0.0.11:502",
                    "measures": ["it_kwh"],
                    "target": "ups-A",
                },
            ]
        },
        "energy": {"design_pue": fc.pue},
        # TIA-942: an entrance room and an MDA always; a second entrance room from Rated-3, an SDA at Rated-4.
        "telecom_spaces": [{"name": "er-1", "kind": "entrance_room"}]
        + ([{"name": "er-2", "kind": "entrance_room"}] if tier >= 3 else [])
        + [{"name": "mda", "kind": "mda"}]
        + ([{"name": "sda", "kind": "sda"}] if tier >= 4 else []),
    }
    compute = spec["fabrics"][0]
    compute["switch_racks"] = [r["name"] for r in racks[gpu_racks:]]
    compute["cable"] = compute_cable(spec, compute["port_gbps"])
    return spec


def _side_fabric(name: str, kind: str, endpoints: int, radix: int, gbps: float) -> dict[str, Any]:
    """Storage, in-band and out-of-band networks: a fat tree with enough tiers for every endpoint."""
    from aidc.planner.fabric import fat_tree

    tree = fat_tree(max(1, endpoints), radix, 1.0, gbps)
    out: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "switch_model": f"radix-{radix}",
        "radix": radix,
        "port_gbps": gbps,
        "tiers": tree.tiers,
        "leaf_switches": tree.leaves,
    }
    if tree.spines:
        out["spine_switches"] = tree.spines
    if tree.cores:
        out["core_switches"] = tree.cores
    return out


def build_facility(plan: Plan) -> Facility:
    """Validate through the facility models: what we emit is what `aidc check` reads."""
    return Facility.model_validate(facility_dict(plan))


def write_facility(plan: Plan, path: str | Path) -> Facility:
    facility = build_facility(plan)
    data = facility.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    header = (
        f"# Emitted by `aidc plan` for workload {plan.workload.name!r}: {plan.facility.gpus if plan.facility else 0}"
        f" GPUs at Uptime Tier {plan.workload.facility.tier}. Check it with `aidc check {Path(path).name}`.\n"
    )
    Path(path).write_text(header + yaml.safe_dump(data, sort_keys=False, width=110), encoding="utf-8")
    return facility
