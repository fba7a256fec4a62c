"""The power one-line as a graph: sources → switchgear → UPS → distribution → racks, from either spec form.

The spec may give the one-line itself (``power.components`` with ``fed_by``, racks naming their ``feeds``)
or the per-path shorthand (``paths``, ``utility_feeds``, ``transformers``, ``generators``, ``ups``, ``pdus``),
which expands here into the graph a designer would draw for it: per path a switchgear bus, the path's UPS
groups on a UPS output bus, its PDUs on a distribution bus, and every rack corded to the buses of its paths.
Racks with the same cords are folded into one load so a 10,000-rack hall stays a small graph.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aidc.facility.model import Facility, PowerComponent

SOURCES = ("utility", "generator")
# The kinds the pooled redundancy figures (derived.systems) are named after.
SYSTEM_OF_KIND = {
    "utility": "utility_feeds",
    "transformer": "transformers",
    "generator": "generators",
    "ups": "ups",
    "pdu": "pdus",
    "busway": "pdus",
    "rpp": "pdus",
}


@dataclass
class Element:
    """One node of the one-line: ``units`` parallel units of ``unit_kw`` each (inf: not limiting)."""

    name: str
    kind: str
    unit_kw: float
    units: int = 1
    fed_by: list[str] = field(default_factory=list)
    alternate: bool = False
    path: tuple[Any, ...] = ()
    # True when the units share common parts (a modular UPS's bypass and output breaker, a declared
    # component): taking the element out takes every unit. False for a shorthand entry's `count` of
    # independent sets (three generators, four PDUs), where one fault or one outage takes one unit.
    shared: bool = True
    role: str = ""  # the system it belongs to when not its kind's (a UPS serving cooling: ups_cooling)
    state: str = ""  # for a source: the source state it is live in (utility, generator, cooling)

    def __post_init__(self) -> None:
        if not self.state and self.kind in SOURCES:
            self.state = self.kind

    @property
    def system(self) -> str | None:
        return self.role or SYSTEM_OF_KIND.get(self.kind)

    @property
    def one_outage(self) -> int:
        """Units lost when this element fails or is taken out for maintenance."""
        return self.units if self.shared else 1

    @property
    def capacity_kw(self) -> float:
        return self.unit_kw * self.units


@dataclass
class RackGroup:
    """Racks corded to the same elements, as one load (their kW summed)."""

    feeds: tuple[str, ...]
    racks: list[str]
    kw: float


@dataclass
class OneLine:
    """Elements by name, rack groups, other loads (mechanical boards) and where each came from in the spec."""

    elements: dict[str, Element]
    groups: list[RackGroup]
    loads: dict[str, float]
    expanded: bool
    served: str = "rack"  # what a group's members are, as a shortfall names them: racks, or a cooling chain's halls

    def protected(self) -> set[str]:
        """Elements downstream of an IT UPS: a cord from anywhere else brings raw, unconditioned power."""
        below: dict[str, list[str]] = defaultdict(list)
        for e in self.elements.values():
            for up in e.fed_by:
                below[up].append(e.name)
        out: set[str] = set()
        stack = [n for n, e in self.elements.items() if e.system == "ups"]
        while stack:
            n = stack.pop()
            if n not in out:
                out.add(n)
                stack.extend(below[n])
        return out

    @property
    def has_generators(self) -> bool:
        return any(e.kind == "generator" for e in self.elements.values())

    @property
    def has_utility(self) -> bool:
        return any(e.kind == "utility" for e in self.elements.values())


def build(facility: Facility, rack_kw: dict[str, float], mechanical_kw: float) -> OneLine:
    """The one-line of ``facility``: its own components when given, else the per-path shorthand expanded."""
    if facility.power.components:
        return _from_components(facility, rack_kw)
    return _from_paths(facility, rack_kw, mechanical_kw)


def _group(racks: list[tuple[str, tuple[str, ...]]], rack_kw: dict[str, float]) -> list[RackGroup]:
    by_feeds: dict[tuple[str, ...], RackGroup] = {}
    for name, feeds in racks:
        key = tuple(sorted(set(feeds)))
        g = by_feeds.get(key)
        if g is None:
            g = by_feeds[key] = RackGroup(key, [], 0.0)
        g.racks.append(name)
        g.kw += rack_kw.get(name, 0.0)
    return list(by_feeds.values())


def _from_components(facility: Facility, rack_kw: dict[str, float]) -> OneLine:
    elements: dict[str, Element] = {}
    loads: dict[str, float] = {}
    for i, c in enumerate(facility.power.components):
        elements[c.name] = _element(c, ("power", "components", i))
        if c.kind == "load":
            loads[c.name] = (c.kw or 0.0) * c.units
    racks = [(rack.name, tuple(rack.feeds)) for _, rack in facility.racks()]
    return OneLine(elements, _group(racks, rack_kw), loads, expanded=False)


def _element(c: PowerComponent, path: tuple[Any, ...]) -> Element:
    # A load's kw is its demand, not a limit: the load element itself passes whatever it draws.
    unit = math.inf if c.kind == "load" else c.unit_kw
    role = "ups_cooling" if c.kind == "ups" and c.serves == "cooling" else ""
    return Element(c.name, c.kind, unit, c.units, list(c.fed_by), c.alternate, path, role=role)


def _from_paths(facility: Facility, rack_kw: dict[str, float], mechanical_kw: float) -> OneLine:
    """Expand the per-path shorthand: one element per declared entry (``count`` parallel units), plus buses."""
    p = facility.power
    paths = [x.name for x in p.paths]
    path_index = {x.name: i for i, x in enumerate(p.paths)}
    inactive = {x.name for x in p.paths if not x.active}
    el: dict[str, Element] = {}

    def on(path: str | None) -> list[str]:
        return paths if path is None else [path]

    def add(e: Element, prefix: bool = True) -> str:
        # Declared entries carry their kind in the name so a UPS and a PDU both called "A" stay two elements.
        if prefix:
            e.name = f"{e.kind}:{e.name}"
        el[e.name] = e
        return e.name

    def bus(name: str, inputs: list[str], path: tuple[Any, ...], alternate: bool = False) -> str:
        return add(Element(name, "bus", math.inf, 1, inputs, alternate, path), prefix=False)

    swgr = {x: bus(f"switchgear:{x}", [], ("power", "paths", path_index[x]), x in inactive) for x in paths}
    feeds: dict[str, list[str]] = defaultdict(list)
    if not p.utility_feeds:
        # No feed declared: the utility is assumed, unlimited, so the rest of the chain is still judged.
        src = add(Element("utility", "utility", math.inf, path=("power", "utility_feeds")))
        for x in paths:
            feeds[x].append(src)
    for i, f in enumerate(p.utility_feeds):
        src = add(Element(f.name, "utility", f.capacity_kw, path=("power", "utility_feeds", i)))
        for x in on(f.path):
            feeds[x].append(src)
    tx_on: dict[str, list[str]] = defaultdict(list)
    for i, t in enumerate(p.transformers):
        inputs = sorted({s for x in on(t.path) for s in feeds[x]})
        name = add(
            Element(
                t.name, "transformer", t.capacity_kw, t.count, inputs, path=("power", "transformers", i), shared=False
            )
        )
        for x in on(t.path):
            tx_on[x].append(name)
    for x in paths:
        el[swgr[x]].fed_by = sorted(set(tx_on[x] or feeds[x]))
    if p.generators:
        gens = [
            add(
                Element(
                    g.name,
                    "generator",
                    g.capacity_kw * g.derate,
                    g.count,
                    path=("power", "generators", i),
                    shared=False,
                )
            )
            for i, g in enumerate(p.generators)
        ]
        for i, g in enumerate(p.generators):
            # An unassigned plant reaches every path's switchgear through its own breakers. The shorthand
            # cannot say whether a paralleling bus sits in between; the one-line form (power.components)
            # can, and then that bus is an element the failure analysis takes out like any other.
            for x in on(g.path):
                el[swgr[x]].fed_by.append(gens[i])
    upstream = dict(swgr)
    ups_on: dict[str, list[str]] = defaultdict(list)
    cooling_ups: list[str] = []
    for i, u in enumerate(p.ups):
        inputs = [swgr[x] for x in on(u.path)]
        name = add(Element(u.name, "ups", u.module_kw * u.derate, u.modules, inputs, path=("power", "ups", i)))
        if u.serves == "cooling":
            el[name].role = "ups_cooling"
            cooling_ups.append(name)
        else:
            for x in on(u.path):
                ups_on[x].append(name)
    for x in paths:
        if ups_on[x]:
            upstream[x] = bus(f"ups-bus:{x}", ups_on[x], ("power", "paths", path_index[x]))
    pdu_on: dict[str, list[str]] = defaultdict(list)
    for i, d in enumerate(p.pdus):
        inputs = sorted({upstream[x] for x in on(d.path)})
        name = add(Element(d.name, "pdu", d.capacity_kw, d.count, inputs, path=("power", "pdus", i), shared=False))
        for x in on(d.path):
            pdu_on[x].append(name)
    dist = {x: bus(f"dist:{x}", pdu_on[x] or [upstream[x]], ("power", "paths", path_index[x])) for x in paths}
    loads: dict[str, float] = {}
    if mechanical_kw > 0:
        # Mechanical boards draw from every switchgear (the cooling UPS only rides through a transfer), so a
        # cooling UPS on one path does not make that path's switchgear a single point for the cooling.
        el["load:mechanical"] = Element(
            "load:mechanical", "load", math.inf, 1, cooling_ups + list(swgr.values()), path=("cooling",)
        )
        loads["load:mechanical"] = mechanical_kw
    racks = [(rack.name, tuple(dist[x] for x in (rack.power_paths or paths))) for _, rack in facility.racks()]
    return OneLine(el, _group(racks, rack_kw), loads, expanded=True)


def build_cooling(facility: Facility, rack_kw: dict[str, float]) -> OneLine | None:
    """The cooling chain as a graph when halls name their terminal units (``cooled_by``); else None.

    Cooling capacity flows from the units with nothing upstream (chillers, dry coolers, towers) through the
    units that name them in ``fed_by`` (pumps, CDUs, CRAHs) to the halls: each unit passes at most its
    rating, so units in series limit a hall to the smallest stage, and units in parallel add up.
    """
    if not any(h.cooled_by for h in facility.halls):
        return None
    units = facility.cooling.units
    serves = {u.name: u.serves for u in units}
    el = {
        u.name: Element(
            u.name,
            u.kind,
            u.capacity_kw,
            u.count,
            list(u.fed_by),
            path=("cooling", "units", i),
            shared=False,
            role=f"cooling.{u.kind}",
            state="" if u.fed_by else "cooling",
        )
        for i, u in enumerate(units)
    }
    groups: list[RackGroup] = []
    for hall in facility.halls:
        heat = {"air": 0.0, "liquid": 0.0}
        for rack in hall.racks:
            kw = rack_kw.get(rack.name, 0.0)
            liquid = kw * rack.liquid_fraction if rack.cooling == "direct_liquid" else 0.0
            heat["liquid"] += liquid
            heat["air"] += kw - liquid
        for kind, kw in heat.items():
            if kw > 0:
                feeds = tuple(sorted(n for n in hall.cooled_by if serves.get(n) in (kind, "all")))
                groups.append(RackGroup(feeds, [f"{hall.name} ({kind} heat)"], kw))
    return OneLine(el, groups, {}, expanded=False, served="hall")
