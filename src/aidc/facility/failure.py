"""Redundancy proven by failing parts: take elements out of the one-line and see which racks still get their kW.

Each scenario is a maximum flow from the live sources to the loads, every element passing at most its
rating: a rack is served if its cords can bring its whole load from what is left. Dual-corded racks may
draw everything through one cord (as their power supplies do when the other side dies), so 2N, 2(N+1),
distributed-redundant and catcher designs are judged by the same arithmetic, with no scheme guessed from
labels. Source states: on utility (generators off) and on generators (utility lost), as each exists.

- N: every load served with everything in service, in every source state.
- Concurrent maintainability: any one element taken out (alternate, manually switched paths allowed),
  in whichever source state the operator chooses for the work.
- Fault tolerance: any one element failed, no manual switching, on generators (utility loss is the event
  a fault-tolerant site must ride through; without generators, on utility).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from aidc.facility.oneline import OneLine

_EPS = 1e-6
SWITCHES = ("ats", "sts")


@dataclass(frozen=True)
class Shortfall:
    """What one scenario leaves unserved: the racks (or halls) short, those cut off altogether, and the kW."""

    element: str
    state: str
    removed: tuple[str, ...]
    racks: tuple[str, ...]
    dead: tuple[str, ...]
    loads: tuple[str, ...]
    short_kw: float
    demand_kw: float
    rack_short_kw: float = 0.0
    rack_demand_kw: float = 0.0
    served: str = "rack"  # what ``racks`` holds: racks, or (for a cooling chain) halls' heat

    def describe(self, limit: int = 5, named: bool = True) -> str:
        """``with X out: 3 rack(s) short (r1, r2, r3): 250.0 of 1,000.0 kW not served (utility)``."""
        head = f"with {self.element} out: " if named and self.removed else ""
        who = list(self.racks[:limit]) + (["…"] if len(self.racks) > limit else [])
        parts = []
        if self.racks:
            parts.append(f"{len(self.racks)} {self.served}(s) short ({', '.join(who)})")
        if self.dead:
            parts.append(f"{len(self.dead)} with " + ("no live cord" if self.served == "rack" else "no cooling left"))
        if self.loads:
            parts.append(", ".join(self.loads) + " short")
        served = f"{self.short_kw:,.1f} of {self.demand_kw:,.1f} kW not served ({self.state})"
        return f"{head}{'; '.join(parts) or 'short'}: {served}"


@dataclass(frozen=True)
class KindVerdict:
    """How the elements of one kind (UPS, generators, …) stand up to losing a unit, a system, or both."""

    system: str
    elements: int
    n_ok: bool
    unit_ok: bool
    system_ok: bool
    system_unit_ok: bool
    worst: Shortfall | None


@dataclass
class PowerAnalysis:
    """N, maintenance and fault verdicts for a one-line; each failure names the element taken out."""

    oneline: OneLine
    states: list[str]
    normal: list[Shortfall] = field(default_factory=list)
    maintenance: list[Shortfall] = field(default_factory=list)
    faults: list[Shortfall] = field(default_factory=list)
    kinds: dict[str, KindVerdict] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """What JSON reports carry: the verdicts and, per failing scenario, the element and racks short."""

        def rows(items: list[Shortfall]) -> list[dict[str, object]]:
            return [
                {
                    "element": s.element,
                    "state": s.state,
                    "racks_short": len(s.racks),
                    "racks": list(s.racks[:20]),
                    "loads_short": list(s.loads),
                    "short_kw": round(s.short_kw, 2),
                }
                for s in items
            ]

        return {
            "elements": len(self.oneline.elements),
            "source_states": self.states,
            "carries_n": not self.normal,
            "concurrently_maintainable": self.concurrently_maintainable,
            "fault_tolerant": self.fault_tolerant,
            "short_in_service": rows(self.normal),
            "short_in_maintenance": rows(self.maintenance),
            "short_after_fault": rows(self.faults),
        }

    @property
    def concurrently_maintainable(self) -> bool:
        return not self.normal and not self.maintenance

    @property
    def fault_tolerant(self) -> bool:
        return not self.normal and not self.faults


class _Network:
    """A tiny Dinic max-flow over float capacities (graphs here have tens of nodes)."""

    def __init__(self, n: int) -> None:
        self.graph: list[list[int]] = [[] for _ in range(n)]
        self.to: list[int] = []
        self.cap: list[float] = []

    def edge(self, u: int, v: int, cap: float) -> int:
        self.graph[u].append(len(self.to))
        self.to.append(v)
        self.cap.append(cap)
        self.graph[v].append(len(self.to))
        self.to.append(u)
        self.cap.append(0.0)
        return len(self.to) - 2

    def reachable(self, s: int) -> set[int]:
        seen, queue = {s}, deque([s])
        while queue:
            u = queue.popleft()
            for e in self.graph[u]:
                if self.cap[e] > _EPS and self.to[e] not in seen:
                    seen.add(self.to[e])
                    queue.append(self.to[e])
        return seen

    def max_flow(self, s: int, t: int) -> None:
        while True:
            level = [-1] * len(self.graph)
            level[s] = 0
            queue = deque([s])
            while queue:
                u = queue.popleft()
                for e in self.graph[u]:
                    if self.cap[e] > _EPS and level[self.to[e]] < 0:
                        level[self.to[e]] = level[u] + 1
                        queue.append(self.to[e])
            if level[t] < 0:
                return
            it = [0] * len(self.graph)
            while self._push(s, t, math.inf, level, it) > _EPS:
                pass

    def _push(self, u: int, t: int, f: float, level: list[int], it: list[int]) -> float:
        if u == t:
            return f
        while it[u] < len(self.graph[u]):
            e = self.graph[u][it[u]]
            v = self.to[e]
            if self.cap[e] > _EPS and level[v] == level[u] + 1:
                pushed = self._push(v, t, min(f, self.cap[e]), level, it)
                if pushed > _EPS:
                    self.cap[e] -= pushed
                    self.cap[e ^ 1] += pushed
                    return pushed
            it[u] += 1
        return 0.0


def serve(
    line: OneLine,
    state: str,
    removed: dict[str, int] | None = None,
    alternates: bool = False,
    scale: float = 1.0,
    only: str | None = None,
) -> Shortfall | None:
    """The shortfall with ``removed`` units (element → units out) gone in ``state``; None if all is served.

    ``scale`` multiplies the racks' demand (1.1 asks for GB 50174's 10 % UPS margin); ``only`` names the one
    system (``ups``, ``generators`` …) whose ratings count, every other element passing what it is asked.
    """
    removed = removed or {}
    names = list(line.elements)
    index = {n: 2 + 2 * i for i, n in enumerate(names)}
    groups_at = 2 + 2 * len(names)
    net = _Network(groups_at + len(line.groups) + len(line.loads))
    caps: dict[str, float] = {}
    for name, e in line.elements.items():
        left = max(e.units - removed.get(name, 0), 0)
        off = (bool(e.state) and e.state != state) or (e.alternate and not alternates)
        unlimited = math.isinf(e.unit_kw) or (only is not None and e.system != only)
        caps[name] = 0.0 if off or left == 0 else (math.inf if unlimited else e.unit_kw * left)
    alive = _energised(line, caps)
    for name, e in line.elements.items():
        net.edge(index[name], index[name] + 1, caps[name])
        if e.state:
            net.edge(0, index[name], math.inf)
        inputs = [up for up in e.fed_by if up in index]
        if e.kind in SWITCHES:
            # A transfer switch carries its whole load from one source: the first of its inputs (in fed_by
            # order, the preferred one) that is energised; it does not share load between them.
            inputs = [up for up in inputs if up in alive][:1]
        for up in inputs:
            net.edge(index[up] + 1, index[name], math.inf)
    sinks: list[tuple[int, float]] = []
    # Judging the UPS, a cord that bypasses every UPS does not count: it keeps the rack on, unprotected.
    cords = line.protected() if only == "ups" else set(index)
    for g_i, g in enumerate(line.groups):
        node = groups_at + g_i
        for f in g.feeds:
            if f in index and f in cords:
                net.edge(index[f] + 1, node, math.inf)
        sinks.append((net.edge(node, 1, g.kw * scale), g.kw * scale))
    for l_i, (name, kw) in enumerate(line.loads.items()):
        node = groups_at + len(line.groups) + l_i
        net.edge(index[name] + 1, node, math.inf)
        sinks.append((net.edge(node, 1, kw), kw))
    live_nodes = net.reachable(0)
    net.max_flow(0, 1)
    short, rack_short, racks, dead, loads = 0.0, 0.0, [], [], []
    for i, (edge, demand) in enumerate(sinks):
        missing = net.cap[edge]  # what is left of the sink edge = demand not delivered
        is_group = i < len(line.groups)
        unreachable = is_group and (groups_at + i) not in live_nodes
        if missing > _EPS * max(demand, 1.0) or unreachable:
            short += missing
            rack_short += missing if is_group else 0.0
            if is_group:
                racks += line.groups[i].racks
                if unreachable:
                    dead += line.groups[i].racks
            else:
                loads.append(list(line.loads)[i - len(line.groups)])
    if not racks and not loads:
        return None
    element = " and ".join(_outage(line, k, v) for k, v in removed.items()) or "none"
    demand = sum(d for _, d in sinks)
    rack_demand = sum(d for _, d in sinks[: len(line.groups)])
    return Shortfall(
        element, state, tuple(removed), tuple(racks), tuple(dead), tuple(loads), short, demand, rack_short, rack_demand,
        served=line.served,
    )  # fmt: skip


def _energised(line: OneLine, caps: dict[str, float]) -> set[str]:
    """Elements with a live source upstream through elements still in service (ratings aside)."""
    alive = {n for n, e in line.elements.items() if e.state and caps[n] > 0}
    changed = True
    while changed:
        changed = False
        for n, e in line.elements.items():
            if n not in alive and caps[n] > 0 and any(up in alive for up in e.fed_by):
                alive.add(n)
                changed = True
    return alive


def _outage(line: OneLine, name: str, units: int) -> str:
    total = line.elements[name].units
    return name if units >= total else f"{units} of {total} units of {name}"


def survives(line: OneLine, system: str, level: str, scale: float = 1.0) -> Shortfall | None:
    """Whether ``system`` alone (others unlimited) carries ``scale`` × the racks at redundancy ``level``.

    N: everything in service; N+X: any one unit out; 2N and above: any one whole element (system) out.
    """
    members = [n for n, e in line.elements.items() if e.system == system]
    if level == "N" or not members:
        scenarios: list[dict[str, int]] = [{}]
    elif level.startswith("N+"):
        scenarios = [{m: 1} for m in members]
    else:
        scenarios = [{m: line.elements[m].units} for m in members]
    for removed in scenarios:
        for s in states(line):
            short = serve(line, s, removed, scale=scale, only=system)
            if short is not None:
                return short
    return None


def states(line: OneLine) -> list[str]:
    present = {e.state for e in line.elements.values() if e.state}
    return [s for s in ("utility", "generator", "cooling") if s in present] or ["utility"]


def analyse(line: OneLine) -> PowerAnalysis:
    """N, concurrent maintenance and single-fault verdicts, and per-kind unit/system loss, for one one-line."""
    st = states(line)
    result = PowerAnalysis(line, st)
    result.normal = [s for s in (serve(line, x) for x in st) if s is not None]
    fault_states = ["generator"] if line.has_generators else st
    for name, e in line.elements.items():
        if e.kind == "load":
            continue
        out = {name: e.one_outage}
        tries = [serve(line, x, out, alternates=True) for x in st]
        if all(t is not None for t in tries):
            result.maintenance.append(min((t for t in tries if t is not None), key=lambda t: t.short_kw))
        fault = next((s for s in (serve(line, x, out) for x in fault_states) if s is not None), None)
        if fault is not None:
            result.faults.append(fault)
    systems = {e.system for e in line.elements.values() if e.system}
    result.kinds = {system: _kind(line, system, st) for system in sorted(systems)}
    return result


def _kind(line: OneLine, system: str, st: list[str]) -> KindVerdict:
    members = [n for n, e in line.elements.items() if e.system == system]
    where = {"generators": ["generator"], "utility_feeds": ["utility"], "transformers": ["utility"]}.get(system, st)
    where = [s for s in where if s in st]

    def first(scenarios: list[dict[str, int]]) -> Shortfall | None:
        for removed in scenarios:
            for s in where:
                short = serve(line, s, removed, only=system)
                if short is not None:
                    return short
        return None

    units = line.elements
    n = first([{}])
    unit = n or first([{m: 1} for m in members])
    system_loss = n or first([{m: units[m].units} for m in members])
    both = system_loss or first([{a: units[a].units, b: 1} for a in members for b in members if a != b])
    return KindVerdict(
        system,
        len(members),
        n is None,
        unit is None,
        system_loss is None and len(members) > 1,
        both is None and len(members) > 1,
        both,
    )
