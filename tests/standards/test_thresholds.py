"""Each standards rule at its threshold: a design exactly at, just below and just above the clause's number.

The numbers are copied from the clauses (the rule's citation, and the standards reference the catalog was built
from), never imported from aidc.standards: a threshold changed in the code, or a boundary flipped (``>=`` to
``>``), changes a verdict here. How each clause reads its number decides the three verdicts:

    "≥ X"  at: pass, below: fail, above: pass       "> X"  at: fail, below: fail, above: pass
    "≤ X"  at: pass, below: pass, above: fail       "< X"  at: fail, below: pass, above: fail

The base designs are the shipped compliant examples, which pass every rule; one field is moved at a time.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from aidc.facility.loader import facility_from_source
from aidc.specfile import SpecSource
from aidc.standards import builtin_rules
from aidc.standards.checker import run_check

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"
LAB = "lab-two-servers.yaml"  # ASHRAE A2, Germany, no tier: the environment and lab-scale power rules
CN = "gb200-nvl72-china.yaml"  # Uptime III, TIA-942 Rated-3, GB 50174 A, MLPS 3, Yangtze-Delta hub, new build
TIER4 = "nvl72-tier4-oneline.yaml"  # Uptime IV proven by failure analysis on a one-line diagram

# which of (below, at, above) the clause fails
FAILS = {"≥": (True, False, False), ">": (True, True, False), "≤": (False, False, True), "<": (False, True, True)}
POINTS = ("below", "at", "above")

Spec = dict[str, Any]
Edit = Callable[[Spec, float], None]


@cache
def _example(name: str) -> Spec:
    data: Spec = yaml.safe_load((EXAMPLES / name).read_text())
    return data


def set_path(dotted: str) -> Edit:
    """An edit setting one field, by a dotted path through maps and lists (``halls.0.racks.1.weight_kg``)."""
    *parents, last = dotted.split(".")

    def edit(spec: Spec, value: float) -> None:
        node: Any = spec
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[int(last) if isinstance(node, list) else last] = value

    return edit


def every(section: str, name: str, field: str) -> Edit:
    """An edit setting ``field`` on every item of ``section.name`` (e.g. each UPS's battery minutes)."""

    def edit(spec: Spec, value: float) -> None:
        for item in spec[section][name]:
            item[field] = value

    return edit


def both(*edits: Edit, **fixed: Any) -> Edit:
    """Several edits to the same value, after setting ``fixed`` dotted fields (``targets__ashrae="H1"``)."""

    def edit(spec: Spec, value: float) -> None:
        for path, v in fixed.items():
            set_path(path.replace("__", "."))(spec, v)
        for e in edits:
            e(spec, value)

    return edit


def design_pue(spec: Spec, value: float) -> None:
    """PUE from the design figure alone (the metered year would be used first)."""
    spec["energy"] = {"design_pue": value}


def racks(n: int) -> Edit:
    """``n`` racks in all: the example's, then empty ones in a hall of their own (China's "large" sizes)."""

    def edit(spec: Spec, value: float) -> None:
        have = sum(len(h["racks"]) for h in spec["halls"])
        spare = [{"name": f"spare-{i}", "power_budget_kw": 5} for i in range(int(n) - have)]
        spec["halls"].append({"name": "spare-hall", "racks": spare})

    return edit


def lab_it_kw(spec: Spec, value: float) -> None:
    """The lab's IT load made exactly ``value`` kW: its two GPU servers at value/2 kW each, the switch taken out."""
    spec["nodes"] = [n for n in spec["nodes"] if n["name"] != "switch"]
    spec["nodes"][0]["max_kw"] = value / 2


def lab_at_10_kw(spec: Spec) -> None:
    lab_it_kw(spec, 10.0)


def lab_at_10_kw_pue_1_5(spec: Spec) -> None:
    lab_it_kw(spec, 10.0)
    spec["energy"] = {"design_pue": 1.5}


def with_unit(section: str, **fields: Any) -> Edit:
    """An edit giving the power section one unit of ``value`` kW (a generator, transformer, feed or PDU)."""

    def edit(spec: Spec, value: float) -> None:
        spec["power"][section] = [{"name": f"one-{section}", "capacity_kw": value, **fields}]

    return edit


def storage_gbytes_s(spec: Spec, value: float) -> None:
    """The NVL72's storage-fabric NICs made one NIC of ``value`` GB/s (× 8 Gb/s)."""
    nics = spec["nodes"][0]["nics"]
    storage = next(n for n in nics if n["fabric"] == "storage")
    storage.update(count=1, gbps=value * 8)


def lab_endpoints(spec: Spec, value: float) -> None:
    """The lab's compute fabric with ``value`` endpoints: each of its two GPU servers with value/2 NICs on it."""
    spec["nodes"][0]["nics"][0]["count"] = int(value) // 2


@dataclass(frozen=True)
class Edge:
    """A rule's threshold as its clause states it: ``edit(spec, value)`` moves the design to ``value``."""

    rule: str
    clause: str  # "≥ 12 h" … as the standard words it
    example: str
    edit: Edit
    at: float
    step: float
    before: Callable[[Spec], None] | None = None  # a fixed change first (another target, a known load)
    silent_when_passing: bool = False  # the rule applies only once the threshold is crossed (no finding before)

    @property
    def sign(self) -> str:
        return self.clause.split()[0]

    def value(self, point: str) -> float:
        return {"below": self.at - self.step, "at": self.at, "above": self.at + self.step}[point]

    def fails(self, point: str) -> bool:
        return FAILS[self.sign][POINTS.index(point)]


def tier(spec: Spec, **targets: Any) -> None:
    spec["targets"].update(targets)


EDGES: list[Edge] = [
    # ASHRAE TC9.9 (2021) Table 2.1, recommended: A1–A4 18–27 °C, H1 18–22 °C
    Edge("ENV-ASHRAE-REC", "≤ 27 °C", LAB, set_path("cooling.inlet_c.max"), 27, 0.5),
    Edge("ENV-ASHRAE-REC", "≥ 18 °C", LAB, set_path("cooling.inlet_c.min"), 18, 0.5),
    Edge("ENV-ASHRAE-REC", "≤ 22 °C (H1)", LAB, both(set_path("cooling.inlet_c.max"), targets__ashrae="H1"), 22, 0.5),
    # allowable: A1 15–32, A2 10–35, A3 5–40, A4 5–45, H1 5–25 °C
    *[
        Edge("ENV-ASHRAE-ALLOW", f"≤ {hi} °C ({cls})", LAB, both(set_path("cooling.inlet_c.max"), targets__ashrae=cls),
             hi, 0.5)
        for cls, hi in (("A1", 32), ("A2", 35), ("A3", 40), ("A4", 45), ("H1", 25))
    ],
    *[
        Edge("ENV-ASHRAE-ALLOW", f"≥ {lo} °C ({cls})", LAB,
             both(set_path("cooling.inlet_c.min"), targets__ashrae=cls, cooling__inlet_c__max=22), lo, 0.5)
        for cls, lo in (("A1", 15), ("A2", 10), ("A3", 5), ("A4", 5), ("H1", 5))
    ],
    # ... the maximum derated 1 °C per 300 m (A1/A2), 175 m (A3), 125 m (A4) above 900 m
    Edge("ENV-ASHRAE-ALLOW", "≤ 33 °C (A2 at 1500 m)", LAB,
         both(set_path("cooling.inlet_c.max"), site__altitude_m=1500), 33, 0.5),
    Edge("ENV-ASHRAE-ALLOW", "≤ 36 °C (A3 at 1600 m)", LAB,
         both(set_path("cooling.inlet_c.max"), site__altitude_m=1600, targets__ashrae="A3"), 36, 0.5),
    Edge("ENV-ASHRAE-ALLOW", "≤ 41 °C (A4 at 1400 m)", LAB,
         both(set_path("cooling.inlet_c.max"), site__altitude_m=1400, targets__ashrae="A4"), 41, 0.5),
    Edge("ENV-ASHRAE-ALLOW", "≤ 900 m before A2's 35 °C is derated", LAB,
         both(set_path("site.altitude_m"), cooling__inlet_c__max=35), 900, 30),
    # allowable dew point: min −12 °C; max A1 17, A2 21, A3/A4 24 °C
    Edge("ENV-ASHRAE-DP", "≥ -12 °C", LAB, set_path("cooling.dew_point_c.min"), -12, 0.5),
    *[
        Edge("ENV-ASHRAE-DP", f"≤ {hi} °C ({cls})", LAB,
             both(set_path("cooling.dew_point_c.max"), targets__ashrae=cls), hi, 0.5)
        for cls, hi in (("A1", 17), ("A2", 21), ("A3", 24), ("A4", 24))
    ],
    # allowable RH: 8 % minimum; max A1/A2 80 %, A3 85 %, A4 90 %
    Edge("ENV-ASHRAE-RH", "≥ 8 %", LAB, set_path("cooling.rh_pct.min"), 8, 1),
    *[
        Edge("ENV-ASHRAE-RH", f"≤ {hi} % ({cls})", LAB, both(set_path("cooling.rh_pct.max"), targets__ashrae=cls), hi,
             1)
        for cls, hi in (("A1", 80), ("A2", 80), ("A3", 85), ("A4", 90))
    ],
    # recommended RH ≤ 70 %; ≤ 50 % where coupons exceed Ag 200 or Cu 300 Å/month
    Edge("ENV-ASHRAE-RH-REC", "≤ 70 %", LAB, set_path("cooling.rh_pct.max"), 70, 1),
    Edge("ENV-ASHRAE-RH-REC", "≤ 50 % (corrosive air)", LAB,
         both(set_path("cooling.rh_pct.max"), cooling__corrosion_ag_a_per_month=250), 50, 1),
    Edge("ENV-ASHRAE-RH-REC", "≤ 200 Å/month Ag before 60 % RH is too humid", LAB,
         set_path("cooling.corrosion_ag_a_per_month"), 200, 1),
    Edge("ENV-ASHRAE-RH-REC", "≤ 300 Å/month Cu before 60 % RH is too humid", LAB,
         set_path("cooling.corrosion_cu_a_per_month"), 300, 1),
    # maximum altitude 3050 m; rate of change 20 °C/h, 5 °C/h with tape
    Edge("ENV-ASHRAE-ALT", "≤ 3050 m", LAB, set_path("site.altitude_m"), 3050, 10),
    Edge("ENV-ASHRAE-ROC", "≤ 20 °C/h", LAB, set_path("cooling.rate_of_change_c_per_h"), 20, 1),
    Edge("ENV-ASHRAE-ROC", "≤ 5 °C/h (tape)", LAB,
         both(set_path("cooling.rate_of_change_c_per_h"), cooling__tape_storage=True), 5, 1),
    # ASHRAE liquid classes: W17/W27/W32/W40/W45 = maximum facility water supply °C
    *[
        Edge("ENV-LIQ-W", f"≤ {hi} °C ({w})", CN,
             both(set_path("cooling.liquid_loops.0.supply_c"), cooling__liquid_loops__0__w_class=w), hi, 0.5)
        for w, hi in (("W17", 17), ("W27", 27), ("W32", 32), ("W40", 40), ("W45", 45))
    ],
    # rack density: air ≤ ~30 kW/rack (inf), rear door ≤ 60 kW (inf)
    Edge("ENV-DENSITY", "≤ 30 kW (air)", LAB, lab_it_kw, 30, 1),
    Edge("ENV-DENSITY", "≤ 60 kW (rear door)", LAB,
         both(lab_it_kw, halls__0__racks__0__cooling="rear_door"), 60, 1),
    # GB 50174-2017 Annex A: cold aisle 18–27 °C, dew point 5.5–15 °C, RH ≤ 60 %, battery room 20–30 °C
    Edge("ENV-GB-TEMP", "≤ 27 °C", CN, set_path("cooling.inlet_c.max"), 27, 0.5),
    Edge("ENV-GB-TEMP", "≥ 18 °C", CN, set_path("cooling.inlet_c.min"), 18, 0.5),
    Edge("ENV-GB-DP", "≥ 5.5 °C", CN, set_path("cooling.dew_point_c.min"), 5.5, 0.5),
    Edge("ENV-GB-DP", "≤ 15 °C", CN, set_path("cooling.dew_point_c.max"), 15, 0.5),
    Edge("ENV-GB-RH", "≤ 60 %", CN, set_path("cooling.rh_pct.max"), 60, 1),
    Edge("ENV-GB-BATT", "≥ 20 °C", CN, set_path("cooling.battery_room_c.min"), 20, 0.5),
    Edge("ENV-GB-BATT", "≤ 30 °C", CN, set_path("cooling.battery_room_c.max"), 30, 0.5),
    # PUE: the spec's own target; GB 40879-2021 grades 1/2/3 ≈ 1.20/1.30/1.50 (inf)
    Edge("KPI-PUE-TARGET", "≤ 1.2 (the spec's pue_target)", CN, design_pue, 1.2, 0.01),
    *[
        Edge("KPI-CN-GB40879", f"≤ {limit} (grade {grade})", CN,
             both(design_pue, targets__gb40879_grade=grade), limit, 0.01)
        for grade, limit in ((1, 1.2), (2, 1.3), (3, 1.5))
    ],
    # NDRC 2021: hub nodes PUE < 1.25, hub new builds green power > 80 %
    Edge("KPI-CN-HUB", "< 1.25", CN, design_pue, 1.25, 0.01),
    Edge("KPI-CN-HUB", "> 0.8 green power", CN, set_path("site.renewable_share"), 0.8, 0.01),
    # Yangtze-Delta hub PUE ≤ 1.25; Beijing surcharge above 1.35
    Edge("KPI-CN-REGION", "≤ 1.25 (Yangtze-Delta)", CN, design_pue, 1.25, 0.01),
    Edge("KPI-CN-REGION", "≤ 1.35 (Beijing)", CN, both(design_pue, site__region="beijing", site__hub_node=False),
         1.35, 0.01),
    # new large data centers (≥ 3000 racks, inf) PUE < 1.3; the green list: PUE ≤ 1.30 and ≥ 3000 racks
    Edge("KPI-CN-NEWLARGE", "< 1.3", CN, both(design_pue, racks(3000)), 1.3, 0.01),
    Edge("KPI-CN-GREENLIST", "≤ 1.30", CN, both(design_pue, racks(3000), targets__green_dc_list=True), 1.3, 0.01),
    Edge("KPI-CN-GREENLIST", "≥ 3000 racks", CN,
         lambda spec, n: both(racks(int(n)), energy={"design_pue": 1.2}, targets__green_dc_list=True)(spec, n),
         3000, 1),
    # ISO/IEC 30134-2: PUE over a year of metered energy
    Edge("KPI-PUE-VALID", "≥ 365 days", CN, set_path("energy.period_days"), 365, 1),
    # Uptime: fuel ≥ 12 h at N load; TIA-942 fuel at full load Rated-1 8 h, Rated-2 24 h, Rated-3 72 h, Rated-4 96 h
    Edge("AV-UT-FUEL", "≥ 12 h", CN, every("power", "generators", "fuel_hours"), 12, 1),
    *[
        Edge("AV-TIA-FUEL", f"≥ {hours} h (Rated-{rated})", CN,
             both(every("power", "generators", "fuel_hours"), targets__tia942=rated), hours, 1)
        for rated, hours in ((1, 8), (2, 24), (3, 72), (4, 96))
    ],
    # TIA-942 architectural table: floor loading Rated-1 7.2 kPa, Rated-2 8.4 kPa, Rated-3/4 12 kPa; major traffic
    # arteries Rated-3 ≥ 91 m, Rated-4 ≥ 0.8 km; airports ≥ 1.6 km
    *[
        Edge("AV-TIA-ARCH", f"≥ {kpa} kPa (Rated-{rated})", CN,
             both(set_path("halls.0.floor_rating_kpa"), targets__tia942=rated), kpa, 0.1)
        for rated, kpa in ((1, 7.2), (2, 8.4), (3, 12), (4, 12))
    ],
    Edge("AV-TIA-ARCH", "≥ 91 m to a highway (Rated-3)", CN, set_path("site.hazards.highway_m"), 91, 1),
    Edge("AV-TIA-ARCH", "≥ 800 m to a railway (Rated-4)", CN,
         both(set_path("site.hazards.railway_m"), targets__tia942=4), 800, 1),
    Edge("AV-TIA-ARCH", "≥ 1600 m to an airport (Rated-3)", CN, set_path("site.hazards.airport_m"), 1600, 1),
    # TIA-942 telecom table: Rated-2 maintenance holes ≥ 20 m apart; Rated-3 ≥ 2 access providers
    Edge("AV-TIA-TEL", "≥ 20 m between maintenance holes (Rated-2)", CN,
         both(set_path("site.maintenance_hole_separation_m"), targets__tia942=2), 20, 0.5),
    Edge("AV-TIA-TEL", "≥ 2 access providers (Rated-3)", CN, set_path("site.access_providers"), 2, 1),
    # Uptime Tier IV continuous cooling: stored cooling outlasts the plant's restart on generators
    Edge("AV-UT-CC", "≥ 10 min ride-through for a 10 min restart", TIER4,
         both(set_path("cooling.ride_through_min"), cooling__restart_min=10), 10, 1),
    # GB 50174 Annex A: UPS battery A ≥ 15 min, B ≥ 7 min (inf)
    Edge("AV-GB-BATT", "≥ 15 min (class A)", CN, every("power", "ups", "battery_minutes"), 15, 1),
    Edge("AV-GB-BATT", "≥ 7 min (class B)", CN,
         both(every("power", "ups", "battery_minutes"), targets__gb50174="B"), 7, 1),
    # GB 50174 siting, class A / B: parking 20/10 m, railway and highway 800/100 m, airport 8000/1600 m, flammable
    # plants 2000 m (A), explosives 3000 m (A), nuclear hazard zone 40 km
    *[
        Edge("AV-GB-SITE", f"≥ {v} (class {cls}, {field})", CN,
             both(set_path(f"site.hazards.{field}"), targets__gb50174=cls), v, 1)
        for cls, field, v in (
            ("A", "parking_m", 20), ("A", "railway_m", 800), ("A", "highway_m", 800), ("A", "airport_m", 8000),
            ("A", "flammable_plant_m", 2000), ("A", "explosives_m", 3000), ("A", "nuclear_km", 40),
            ("B", "parking_m", 10), ("B", "railway_m", 100), ("B", "highway_m", 100), ("B", "airport_m", 1600),
            ("B", "nuclear_km", 40),
        )
    ],
    # DGX SuperPOD: a scalable unit (248 GPUs, inf) needs a Tier III site: the lab (no tier) fails from 248 GPUs
    Edge("AV-NV-SUPERPOD", "< 248 GPUs on a site below Tier III", LAB,
         both(set_path("nodes.0.gpus"), nodes__0__count=1), 248, 1, silent_when_passing=True),
    # GB 50174 §8.1: UPS capacity E ≥ 1.1 × P (P = IT load)
    Edge("PWR-UPS-CAP", "≥ 11 kW (1.1 × 10 kW)", LAB, set_path("power.ups.0.module_kw"), 11, 0.5, lab_at_10_kw),
    Edge("PWR-UPS-CAP", "≥ 6.6 kW (1.1 × 6 kW)", LAB, set_path("power.ups.0.module_kw"), 6.6, 0.1),
    # ... with Annex A's redundancy: N+1 adds one module (2 × m ≥ 1.1 × 10 + m), 2N doubles it (2 × m ≥ 2 × 11)
    Edge("PWR-UPS-MULT", "≥ 11 kW modules (N+1, 2 of them)", LAB,
         both(set_path("power.ups.0.module_kw"), power__ups__0__modules=2, targets__uptime="II"), 11, 0.5,
         lab_at_10_kw),
    Edge("PWR-UPS-MULT", "≥ 11 kW modules (2N, 2 of them)", LAB,
         both(set_path("power.ups.0.module_kw"), power__ups__0__modules=2, targets__uptime="IV"), 11, 0.5,
         lab_at_10_kw),
    # the spec's own budgets: rack load ≤ power_budget_kw; each upstream stage carries its load
    Edge("PWR-RACK-BUDGET", "≥ 6 kW budget for a 6 kW rack", LAB, set_path("halls.0.racks.0.power_budget_kw"), 6, 0.1),
    # each upstream stage carries its load: the facility's (IT × design PUE = 10 × 1.5 = 15 kW), PDUs the IT's 10 kW
    Edge("PWR-GEN-CAP", "≥ 15 kW", LAB, with_unit("generators", count=1, rating="data_center", fuel_hours=24), 15, 0.5,
         lab_at_10_kw_pue_1_5),
    Edge("PWR-XFMR-CAP", "≥ 15 kW", LAB, with_unit("transformers", path="A"), 15, 0.5, lab_at_10_kw_pue_1_5),
    Edge("PWR-FEED-CAP", "≥ 15 kW", LAB, with_unit("utility_feeds", path="A", substation="campus"), 15, 0.5,
         lab_at_10_kw_pue_1_5),
    Edge("PWR-PDU-CAP", "≥ 10 kW", LAB, with_unit("pdus", path="A", count=1), 10, 0.5, lab_at_10_kw_pue_1_5),
    # SuperPOD RA: 1 compute NIC per GPU
    Edge("NET-NIC-PER-GPU", "≥ 4 NICs for 4 GPUs", LAB, set_path("nodes.0.nics.0.count"), 4, 1),
    # SuperPOD RA: a non-blocking (1:1) compute fabric; storage read "> 40 GB/s per DGX", which the rule (and this
    # test) reads as a floor a design must reach, 40 GB/s included
    Edge("NET-NONBLOCK", "≥ 32 uplinks for 32 downlinks (1:1)", CN, set_path("fabrics.0.leaf_uplinks"), 32, 1,
         lambda spec: set_path("fabrics.0.leaf_downlinks")(spec, 32)),
    Edge("NET-STORAGE-BW", "≥ 40 GB/s", CN, storage_gbytes_s, 40, 1),
    # Al-Fares et al. 2008: a non-blocking fat tree of radix k holds k²/2 endpoints in 2 tiers, k³/4 in 3; each
    # switch's downlinks + uplinks ≤ k
    Edge("NET-RADIX", "≤ 8 endpoints (k = 4, 2 tiers)", LAB, lab_endpoints, 8, 2,
         lambda spec: spec["fabrics"][0].update(radix=4, tiers=2)),
    Edge("NET-RADIX", "≤ 16 endpoints (k = 4, 3 tiers)", LAB, lab_endpoints, 16, 2,
         lambda spec: spec["fabrics"][0].update(radix=4, tiers=3)),
    Edge("NET-PORTS", "≤ 16 uplinks beside 16 downlinks (k = 32)", LAB, set_path("fabrics.0.leaf_uplinks"), 16, 1,
         lambda spec: set_path("fabrics.0.leaf_downlinks")(spec, 16)),
    # the plausibility screen's bounds (its clause: node ≤ 250 kW, rack ≤ 1,000 kW, UPS module ≤ 5,000 kW,
    # generator ≤ 20,000 kW, transformer ≤ 100,000 kW, PDU ≤ 10,000 kW, cooling unit ≤ 50,000 kW)
    Edge("PLAUS-NODE-KW", "≤ 250 kW", LAB, set_path("nodes.0.max_kw"), 250, 1),
    Edge("PLAUS-RACK-KW", "≤ 1000 kW", LAB, set_path("halls.0.racks.0.power_budget_kw"), 1000, 1),
    Edge("PLAUS-UNIT-KW", "≤ 5000 kW (UPS module)", LAB, set_path("power.ups.0.module_kw"), 5000, 1),
    Edge("PLAUS-UNIT-KW", "≤ 20000 kW (generator)", CN, set_path("power.generators.0.capacity_kw"), 20000, 1),
    Edge("PLAUS-UNIT-KW", "≤ 100000 kW (transformer)", CN, set_path("power.transformers.0.capacity_kw"), 100000, 1),
    Edge("PLAUS-UNIT-KW", "≤ 10000 kW (PDU)", CN, set_path("power.pdus.0.capacity_kw"), 10000, 1),
    Edge("PLAUS-UNIT-KW", "≤ 50000 kW (cooling unit)", CN, set_path("cooling.units.0.capacity_kw"), 50000, 1),
    # MLPS L3 / PCI DSS: logs ≥ 6 months; ≥ 2 factors; 2 independent detector groups; walls 2.0 h, floors 1.5 h
    Edge("SEC-LOG", "≥ 180 days", CN, set_path("security.audit_log_retention_days"), 180, 1),
    Edge("SEC-MFA", "≥ 2 factors", CN, set_path("security.mfa_factors"), 2, 1),
    Edge("SEC-FIRE-DETECT", "≥ 2 detector groups", CN, set_path("security.fire_detector_groups"), 2, 1),
    Edge("SEC-FIRE-RESIST", "≥ 2.0 h walls", CN, set_path("security.fire_resistance_walls_h"), 2, 0.5),
    Edge("SEC-FIRE-RESIST", "≥ 1.5 h floors", CN, set_path("security.fire_resistance_floors_h"), 1.5, 0.5),
    Edge("SEC-PHYS", "≥ 2 zones", CN, set_path("security.access_zones"), 2, 1),
    # TIA-942 floor loading: minimum 7.2 kPa
    Edge("PHYS-FLOOR-RATING", "≥ 7.2 kPa", CN, set_path("halls.0.floor_rating_kpa"), 7.2, 0.1),
    # IEC 62040-3 / ISO 8528-1: rated up to 1000 m (inf); above it a derating must be declared
    Edge("PHYS-ALT-DERATE", "≤ 1000 m without a derating", LAB, set_path("site.altitude_m"), 1000, 10,
         silent_when_passing=True),
]  # fmt: skip


RULES = {r.id: r for r in builtin_rules()}


def findings(rule: str, spec: Spec, name: str) -> list[Any]:
    """The findings of ``rule`` alone on ``spec`` (the example's own ``checks`` section, naming others, left out)."""
    spec.pop("checks", None)
    return run_check(facility_from_source(SpecSource(spec, {}, name)), rules=[RULES[rule]]).findings


def fired(found: list[Any]) -> bool:
    return any(f.status in ("fail", "warn") for f in found)


def verdict(edge: Edge, value: float) -> tuple[bool, list[str]]:
    """(fired, what the findings said) for the design moved to ``value``: fired when a finding fails or warns."""
    spec = copy.deepcopy(_example(edge.example))
    if edge.before is not None:
        edge.before(spec)
    edge.edit(spec, value)
    found = findings(edge.rule, spec, f"{edge.example}, {edge.rule} at {value:g}")
    if not edge.silent_when_passing:
        assert found, f"{edge.rule} did not apply to the design"
    return fired(found), [f"{f.status}: {f.message}" for f in found]


CASES = [(edge, point) for edge in EDGES for point in POINTS]


def _ascii(text: str) -> str:
    """A test id in ASCII (mutmut hands node ids back to pytest, which then finds none with an escaped ≤ or °)."""
    for sign, word in (("≤", "<="), ("≥", ">="), ("°", "deg"), ("×", "x")):
        text = text.replace(sign, word)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()  # Å/month: A/month


@pytest.mark.parametrize(("edge", "point"), CASES, ids=[_ascii(f"{e.rule} {e.clause} {p}") for e, p in CASES])
def test_the_rule_at_below_and_above_its_threshold(edge: Edge, point: str) -> None:
    value = edge.value(point)
    fired, said = verdict(edge, value)
    assert fired == edge.fails(point), f"{edge.rule} at {value:g} ({point} {edge.clause}): {said}"


# Rules with no number to sit at (a yes/no control, a topology): one design that breaks each, and the rule must say so.
BREAKS: list[tuple[str, str, Callable[[Spec], None]]] = [
    ("AV-GB-GEN", CN, lambda s: s["power"]["generators"][0].update(count=1)),  # class A: gensets N+X
    ("AV-UT-CC", TIER4, lambda s: s["cooling"].update(continuous_cooling=False)),
    ("AV-TIA-ELEC", CN, lambda s: s["power"]["generators"][0].update(count=1)),  # Rated-3: generators N+1
    ("AV-TIA-MECH", CN, lambda s: s["cooling"].update(distribution_paths=1)),  # Rated-3: redundant distribution
    ("AV-UT-COMPART", TIER4, lambda s: s["power"].update(compartmentalized=False)),
    ("AV-UT-FT", TIER4, lambda s: s["halls"][0]["racks"][0].update(feeds=["pdu-A"])),  # one cord: pdu-A's loss drops it
    ("ENV-COOL-CHAIN", TIER4, lambda s: [u.update(capacity_kw=100) for u in s["cooling"]["units"][:2]]),
    ("ENV-LIQ-FLOW", CN, lambda s: s["cooling"]["liquid_loops"][0].update(flow_lpm=100)),  # Q = ṁ·cp·ΔT ≪ the load
    ("ENV-LIQ-LOOP", CN, lambda s: s["cooling"].update(liquid_loops=[])),
    ("KPI-REF", CN, lambda s: s["targets"].update(ref_target=0.95)),  # 7.6 of 8.9 GWh renewable: 0.85
    ("KPI-ERF", CN, lambda s: s["targets"].update(erf_target=0.1)),  # no heat reused
    ("KPI-CUE", CN, lambda s: s["targets"].update(cue_target_kg_per_kwh=0.01)),
    ("KPI-WUE", CN, lambda s: s["targets"].update(wue_target_l_per_kwh=0.1)),  # 2,000,000 L / 7,800,000 kWh
    ("PHYS-CORD", LAB, lambda s: s["halls"][0]["racks"][0].update(cord_amps=10, cord_volts=230, cord_phases=1)),
    ("PHYS-FLOOR-RACK", LAB, lambda s: s["halls"][0]["racks"][0].update(weight_kg=1360, footprint_m2=0.72)),
    ("PLAUS-LOAD", LAB, lambda s: [n.update(max_kw=0, nominal_kw=0) for n in s["nodes"]]),
    ("SEC-CRYPTO-TRANSIT", CN, lambda s: s["security"].update(encryption_in_transit=False)),
]


@pytest.mark.parametrize(("rule", "example", "edit"), BREAKS, ids=[r for r, _, _ in BREAKS])
def test_the_rule_fires_on_a_design_that_breaks_it(rule: str, example: str, edit: Callable[[Spec], None]) -> None:
    assert not fired(findings(rule, copy.deepcopy(_example(example)), example)), f"{rule} fires on {example} as shipped"
    spec = copy.deepcopy(_example(example))
    edit(spec)
    found = findings(rule, spec, f"{example}, broken for {rule}")
    assert fired(found), [f"{f.status}: {f.message}" for f in found]


# Rules whose at/below/above cases live in a module of their own (the floor plan, EN 50600's own terms).
ELSEWHERE = {
    "AV-TIA-SPACES": "test_en50600.py",
    "KPI-EN-GRAN": "test_en50600.py",
    "SEC-EN-FIRE": "test_en50600.py",
    "SEC-EN-PROTECT": "test_en50600.py",
    "NET-CABLE-REACH": "test_floor_plan.py",
    "NET-TIA-HORIZ": "test_floor_plan.py",
    "NET-TIA-ZDA": "test_floor_plan.py",
    "PHYS-SEISMIC": "test_floor_plan.py",
}


def test_every_rule_in_the_catalog_is_shown_to_fire() -> None:
    """By a threshold edge or a breaking design above, on the shipped non-compliant examples, or in the module that
    holds the rule's own threshold cases."""
    shown = {e.rule for e in EDGES} | {r for r, _, _ in BREAKS}
    for rule, module in ELSEWHERE.items():
        assert rule in (Path(__file__).parent / module).read_text(), f"{module} has no case for {rule}"
        shown.add(rule)
    for example in sorted(EXAMPLES.glob("*noncompliant.yaml")):
        report = run_check(facility_from_source(SpecSource(yaml.safe_load(example.read_text()), {}, example.name)))
        shown |= {f.rule.id for f in report.findings if f.status in ("fail", "warn")}
    assert sorted(set(RULES) - shown) == []


def test_an_envelope_finding_says_the_designs_range_the_clauses_range_and_where() -> None:
    spec = copy.deepcopy(_example(LAB))
    spec["cooling"]["inlet_c"] = {"min": 16, "max": 28}
    [finding] = findings("ENV-ASHRAE-REC", spec, f"{LAB}, inlet 16-28")
    assert finding.status == "warn"  # the rule's severity: a warning
    assert (finding.measured, finding.expected) == ("16–28 °C", "18–27 °C")
    assert finding.path[:2] == ("cooling", "inlet_c") and finding.subject.startswith("inlet (")
    # a design that declares no range is not taken to be within it
    del spec["cooling"]["inlet_c"]
    [undeclared] = findings("ENV-ASHRAE-REC", spec, f"{LAB}, no inlet range")
    assert (undeclared.status, undeclared.measured, undeclared.expected) == ("warn", "not declared", "18–27 °C")
    assert undeclared.note == "declare the design range"
    assert (undeclared.path, undeclared.subject) == (("cooling", "inlet_c"), "inlet (A2)")


def test_a_cooling_stage_exactly_at_its_heat_load_covers_it_and_just_below_does_not() -> None:
    """ENV-COOL-CAP (Tier I: N capacity for the design heat load): the lab's terminal stage, two in-row units, against
    its 6 kW of air heat — 2 × 3 kW covers it, 2 × 2.99999 kW does not."""
    verdicts = {}
    for capacity in (3.0, 2.99999):
        spec = copy.deepcopy(_example(LAB))
        spec["cooling"]["units"] = [{"name": "inrow", "kind": "inrow", "capacity_kw": capacity, "count": 2}]
        [finding] = findings("ENV-COOL-CAP", spec, f"{LAB}, in-row 2 x {capacity:g} kW")
        verdicts[capacity] = finding.status
        assert (finding.measured, finding.expected, finding.path[:2], finding.subject) == (
            "6 kW",  # (what the units add up to, rounded as a report shows it)
            "≥ 6 kW",
            ("cooling", "units"),
            "terminal, air heat",
        )
    assert verdicts == {3.0: "pass", 2.99999: "fail"}
