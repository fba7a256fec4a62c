"""Quantities derived from a facility once: IT load, rack loads, redundancy per system, headroom, fabric shape.

Rules, reports and the control plane all read these instead of re-deriving them, so a number shown in
the report is the number every rule judged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from aidc.facility.failure import KindVerdict, PowerAnalysis, analyse
from aidc.facility.model import Fabric, Facility
from aidc.facility.oneline import build, build_cooling

# Facility load used to size generators, transformers and feeds when no PUE is given (inf; typical air-cooled).
DEFAULT_DESIGN_PUE = 1.5


@dataclass(frozen=True)
class Redundancy:
    """How many units a system has against the load it carries: N, N+X, 2N or 2(N+1)."""

    system: str
    load_kw: float
    capacity_kw: float
    units: int
    n: int
    x: int
    paths: int
    full_paths: int
    scheme: str

    @property
    def present(self) -> bool:
        return self.units > 0

    @property
    def fault_tolerant(self) -> bool:
        """Two paths that each carry the whole load: survives losing a path (2N and above)."""
        return self.full_paths >= 2

    @property
    def headroom_kw(self) -> float:
        return self.capacity_kw - self.load_kw

    def meets(self, required: str) -> bool:
        """Whether this system meets a redundancy level written as N, N+1, N+2, 2N or 2(N+1)."""
        if self.scheme in ("none", "below N"):
            return required == "none"
        if required == "N":
            return True
        if required.startswith("N+"):
            return self.fault_tolerant or self.x >= int(required[2:])
        if required == "2N":
            return self.fault_tolerant
        if required == "2(N+1)":
            return self.scheme == "2(N+1)"
        raise ValueError(f"unknown redundancy level {required!r}")


def redundancy(system: str, units: list[tuple[str | None, float]], load_kw: float) -> Redundancy:
    """Classify installed ``(path, unit_kw)`` units against ``load_kw``.

    Pooled units give N+X where X is how many of the largest units can fail with the load still carried;
    two or more paths that each carry the load alone give 2N, or 2(N+1) if each survives losing a unit.
    """
    capacity = sum(kw for _, kw in units)
    paths: dict[str | None, list[float]] = defaultdict(list)
    for path, kw in units:
        paths[path].append(kw)
    if not units:
        return Redundancy(system, load_kw, 0.0, 0, 0, 0, 0, 0, "none")
    full = [sorted(kws, reverse=True) for kws in paths.values() if sum(kws) >= load_kw > 0]
    if len(full) >= 2:
        per_path_n = max(_n_needed(kws, load_kw) for kws in full)
        plus_one = all(sum(kws) - kws[0] >= load_kw for kws in full)
        x = len(units) - per_path_n
        return Redundancy(
            system, load_kw, capacity, len(units), per_path_n, x, len(paths), len(full), "2(N+1)" if plus_one else "2N"
        )
    if capacity < load_kw:
        return Redundancy(system, load_kw, capacity, len(units), len(units), 0, len(paths), 0, "below N")
    ordered = sorted((kw for _, kw in units), reverse=True)
    x = 0
    remaining = capacity
    for kw in ordered:
        if remaining - kw >= load_kw and x < len(units) - 1:
            remaining -= kw
            x += 1
        else:
            break
    n = len(units) - x
    return Redundancy(system, load_kw, capacity, len(units), n, x, len(paths), len(full), "N" if x == 0 else f"N+{x}")


def _n_needed(kws: list[float], load_kw: float) -> int:
    total, n = 0.0, 0
    for kw in sorted(kws, reverse=True):
        if total >= load_kw:
            break
        total += kw
        n += 1
    return n


@dataclass(frozen=True)
class FabricShape:
    """A fabric's endpoints, oversubscription per tier and the switches a non-blocking fat tree needs."""

    fabric: Fabric
    index: int
    endpoints: int
    oversubscription: dict[str, float]
    required: dict[str, int]
    max_endpoints: int

    @property
    def declared(self) -> dict[str, int]:
        f = self.fabric
        out = {"leaf": f.leaf_switches, "spine": f.spine_switches, "core": f.core_switches}
        return {k: v for k, v in out.items() if k in self.required}


def fat_tree(endpoints: int, radix: int, tiers: int) -> tuple[dict[str, int], int]:
    """Switches of a non-blocking fat tree (2-tier ≤ k²/2 endpoints; 3-tier ≤ k³/4) and its endpoint limit."""
    k = radix
    if tiers == 1:
        return {"leaf": math.ceil(endpoints / k) if endpoints else 0}, k
    if tiers == 2:
        return ({"leaf": math.ceil(2 * endpoints / k), "spine": math.ceil(endpoints / k)}, k * k // 2)
    return (
        {"leaf": math.ceil(2 * endpoints / k), "spine": math.ceil(2 * endpoints / k), "core": math.ceil(endpoints / k)},
        k**3 // 4,
    )


def _shape(index: int, fabric: Fabric, endpoints: int) -> FabricShape:
    half = fabric.radix // 2
    over: dict[str, float] = {}
    if fabric.tiers >= 2:
        down, up = fabric.leaf_downlinks or half, fabric.leaf_uplinks if fabric.leaf_uplinks is not None else half
        over["leaf"] = down / up if up else math.inf
    if fabric.tiers >= 3:
        down = fabric.spine_downlinks or half
        up = fabric.spine_uplinks if fabric.spine_uplinks is not None else half
        over["spine"] = down / up if up else math.inf
    required, limit = fat_tree(endpoints, fabric.radix, fabric.tiers)
    return FabricShape(fabric, index, endpoints, over, required, limit)


@dataclass
class Derived:
    """Everything the rules and reports need that is computed rather than declared."""

    it_load_kw: float = 0.0
    it_nominal_kw: float = 0.0
    facility_load_kw: float = 0.0
    design_pue: float = DEFAULT_DESIGN_PUE
    design_pue_declared: bool = False
    nodes: int = 0
    gpus: int = 0
    gpu_nodes: int = 0
    racks: int = 0
    rack_load_kw: dict[str, float] = field(default_factory=dict)
    rack_path: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    air_heat_kw: float = 0.0
    liquid_heat_kw: float = 0.0
    systems: dict[str, Redundancy] = field(default_factory=dict)
    fabrics: list[FabricShape] = field(default_factory=list)
    max_nvlink_domain: int = 0
    power: PowerAnalysis | None = None
    cooling: PowerAnalysis | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "it_load_kw": round(self.it_load_kw, 2),
            "it_nominal_kw": round(self.it_nominal_kw, 2),
            "facility_load_kw": round(self.facility_load_kw, 2),
            "design_pue": self.design_pue,
            "nodes": self.nodes,
            "gpus": self.gpus,
            "racks": self.racks,
            "air_heat_kw": round(self.air_heat_kw, 2),
            "liquid_heat_kw": round(self.liquid_heat_kw, 2),
            "max_nvlink_domain": self.max_nvlink_domain,
            "rack_load_kw": {k: round(v, 2) for k, v in self.rack_load_kw.items()},
            "power_one_line": self.power.as_dict() if self.power is not None else None,
            "cooling_chain": self.cooling.as_dict() if self.cooling is not None else None,
            "redundancy": {
                name: {
                    "scheme": r.scheme,
                    "n": r.n,
                    "x": r.x,
                    "units": r.units,
                    "capacity_kw": round(r.capacity_kw, 2),
                    "load_kw": round(r.load_kw, 2),
                    "headroom_kw": round(r.headroom_kw, 2),
                    "paths": r.paths,
                }
                for name, r in self.systems.items()
            },
            "fabrics": [
                {
                    "name": s.fabric.name,
                    "kind": s.fabric.kind,
                    "endpoints": s.endpoints,
                    "oversubscription": s.oversubscription,
                    "required_switches": s.required,
                    "declared_switches": s.declared,
                    "max_endpoints": s.max_endpoints,
                }
                for s in self.fabrics
            ],
        }


def derive(facility: Facility) -> Derived:
    """Compute loads, redundancy and fabric shape in one pass over the spec (linear in its size)."""
    d = Derived()
    rack_cooling: dict[str, tuple[str, float]] = {}
    for h, hall in enumerate(facility.halls):
        for r, rack in enumerate(hall.racks):
            d.rack_load_kw[rack.name] = 0.0
            d.rack_path[rack.name] = ("halls", h, "racks", r)
            rack_cooling[rack.name] = (rack.cooling, rack.liquid_fraction)
    d.racks = len(d.rack_load_kw)
    endpoints: dict[str, int] = defaultdict(int)
    for node in facility.nodes:
        total = node.total
        d.nodes += total
        d.gpus += total * node.gpus
        d.gpu_nodes += total if node.gpus else 0
        d.it_load_kw += total * node.max_kw
        d.it_nominal_kw += total * node.nominal_kw
        if node.gpus:
            d.max_nvlink_domain = max(d.max_nvlink_domain, node.nvlink_domain)
        for placed in node.placement:
            kw = node.count * node.max_kw
            d.rack_load_kw[placed] = d.rack_load_kw.get(placed, 0.0) + kw
            kind, fraction = rack_cooling.get(placed, ("air", 0.0))
            liquid = kw * fraction if kind == "direct_liquid" else 0.0
            d.liquid_heat_kw += liquid
            d.air_heat_kw += kw - liquid
        for nic in node.nics:
            endpoints[nic.fabric] += total * nic.count
    if facility.energy.design_pue is not None:
        d.design_pue, d.design_pue_declared = facility.energy.design_pue, True
    elif facility.targets.pue_target is not None:
        d.design_pue, d.design_pue_declared = facility.targets.pue_target, True
    d.facility_load_kw = d.it_load_kw * d.design_pue
    _systems(facility, d)
    d.power = analyse(build(facility, d.rack_load_kw, d.facility_load_kw - d.it_load_kw))
    chain = build_cooling(facility, d.rack_load_kw)
    d.cooling = analyse(chain) if chain is not None else None
    if d.it_load_kw > 0:
        for analysis in (d.power, d.cooling):
            for system, verdict in (analysis.kinds if analysis is not None else {}).items():
                if system in d.systems and verdict.elements:
                    d.systems[system] = _proven(d.systems[system], verdict)
    d.fabrics = [_shape(i, f, endpoints.get(f.name, 0)) for i, f in enumerate(facility.fabrics)]
    return d


def _component_systems(facility: Facility, d: Derived) -> None:
    """Pooled figures for the one-line form: each component is its own system (its name is its path)."""
    from aidc.facility.oneline import SYSTEM_OF_KIND

    units: dict[str, list[tuple[str | None, float]]] = defaultdict(list)
    for c in facility.power.components:
        system = "ups_cooling" if c.kind == "ups" and c.serves == "cooling" else SYSTEM_OF_KIND.get(c.kind)
        if system is not None and math.isfinite(c.unit_kw):
            units[system] += [(c.name, c.unit_kw)] * c.units
    loads = {"ups": d.it_load_kw, "pdus": d.it_load_kw}
    for system in ("ups", "generators", "transformers", "utility_feeds", "pdus"):
        d.systems[system] = redundancy(system, units[system], loads.get(system, d.facility_load_kw))
    if units["ups_cooling"]:
        mechanical = max(d.facility_load_kw - d.it_load_kw, 0.0)
        d.systems["ups_cooling"] = redundancy("ups_cooling", units["ups_cooling"], mechanical)


def _systems(facility: Facility, d: Derived) -> None:
    p = facility.power
    if p.components:
        _component_systems(facility, d)
        _cooling_systems(facility, d)
        return
    it_ups = [(u.path, u.module_kw * u.derate) for u in p.ups if u.serves in ("it", "mixed") for _ in range(u.modules)]
    d.systems["ups"] = redundancy("ups", it_ups, d.it_load_kw)
    cooling_ups = [(u.path, u.module_kw * u.derate) for u in p.ups if u.serves == "cooling" for _ in range(u.modules)]
    if cooling_ups:
        cooling_kw = max(d.facility_load_kw - d.it_load_kw, 0.0)
        d.systems["ups_cooling"] = redundancy("ups_cooling", cooling_ups, cooling_kw)
    d.systems["generators"] = redundancy(
        "generators",
        [(g.path, g.capacity_kw * g.derate) for g in p.generators for _ in range(g.count)],
        d.facility_load_kw,
    )
    d.systems["transformers"] = redundancy(
        "transformers", [(t.path, t.capacity_kw) for t in p.transformers for _ in range(t.count)], d.facility_load_kw
    )
    d.systems["utility_feeds"] = redundancy(
        "utility_feeds", [(f.path or f.name, f.capacity_kw) for f in p.utility_feeds], d.facility_load_kw
    )
    d.systems["pdus"] = redundancy(
        "pdus", [(x.path, x.capacity_kw) for x in p.pdus for _ in range(x.count)], d.it_load_kw
    )
    _cooling_systems(facility, d)


def _cooling_systems(facility: Facility, d: Derived) -> None:
    heat = {"all": d.it_load_kw, "air": d.air_heat_kw, "liquid": d.liquid_heat_kw}
    kinds: dict[tuple[str, str], list[tuple[str | None, float]]] = defaultdict(list)
    for unit in facility.cooling.units:
        for _ in range(unit.count):
            kinds[(unit.kind, unit.serves)].append((unit.path, unit.capacity_kw))
    for (kind, serves), units in kinds.items():
        d.systems[f"cooling.{kind}"] = redundancy(f"cooling.{kind}", units, heat[serves])


def _proven(r: Redundancy, v: KindVerdict) -> Redundancy:
    """The pooled figures, with the scheme the failure analysis proved (it wins over pooling by label).

    Pooling counts every unit against the load; the one-line knows that two UPS systems on separate paths
    cannot lend each other modules, so a 2N design whose each side is too small is N+1 at best, not 2N.
    """
    if not r.present:
        return r
    if not v.n_ok:
        return replace(r, scheme="below N", n=r.units, x=0, full_paths=0)
    if not v.unit_ok:
        return replace(r, scheme="N", x=0, full_paths=0)
    if not v.system_ok:
        pooled = r.scheme.startswith("N+")
        return replace(r, scheme=r.scheme if pooled else "N+1", x=max(r.x, 1) if pooled else 1, full_paths=0)
    scheme = "2(N+1)" if v.system_unit_ok else ("2N" if v.elements == 2 else "distributed redundant")
    return replace(r, scheme=scheme, x=max(r.x, 1), full_paths=max(r.full_paths, 2))


def cooling_systems(d: Derived) -> list[Redundancy]:
    """Every installed cooling system, whatever the load: with no IT load the units are still there to rate.

    (Filtering on load > 0 made a facility with no nodes yet look as if it had no cooling at all.)
    """
    return [r for name, r in d.systems.items() if name.startswith("cooling.") and r.present]


def weakest(systems: list[Redundancy]) -> Redundancy | None:
    """The least redundant of several systems (the one that sets the rating)."""
    order = ["none", "below N", "N"]

    def rank(r: Redundancy) -> tuple[int, int]:
        if r.scheme in order:
            return (order.index(r.scheme), 0)
        if r.fault_tolerant:
            return (10, r.x)
        return (3, r.x)

    return min(systems, key=rank) if systems else None
