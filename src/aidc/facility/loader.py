"""Read a facility YAML into a Facility, with every problem located (file:line:col, field path, hint).

Beyond pydantic's field checks this adds what only the whole document can tell: a node placed in a
rack that does not exist, duplicate names, a NIC on an undeclared fabric, a UPS on an undeclared path,
and "did you mean" suggestions for misspelled keys.
"""

from __future__ import annotations

import difflib
import gc
import types
import typing
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from aidc.errors import SpecProblem
from aidc.facility.model import Facility
from aidc.specfile import SpecSource, parse_yaml, problems_from, raise_problems, read_yaml


@contextmanager
def paused_gc() -> Iterator[None]:
    """Hold the cyclic garbage collector while a big spec is built or checked.

    A 10,000-rack spec is millions of small long-lived objects; the collector rescans them again and again as
    they are made, which made loading ~4× slower (benchmarks/check_scale.py). Nothing built here forms
    garbage cycles worth collecting midway, and reference counting still frees everything else.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@paused_gc()
def load_facility(path: str | Path) -> Facility:
    """Read, validate and cross-check a facility spec file; raises InvalidSpec listing every problem."""
    return facility_from_source(read_yaml(path))


@paused_gc()
def parse_facility(text: str, file: str = "<string>") -> Facility:
    return facility_from_source(parse_yaml(text, file))


def facility_from_source(source: SpecSource) -> Facility:
    if source.data is None:
        raise_problems(
            [source.problem((), "the document is empty", "start from one of the specs in examples/facilities/")]
        )
    if not isinstance(source.data, dict):
        raise_problems(
            [
                source.problem(
                    (),
                    "a facility spec is a mapping (name:, site:, halls: …)",
                    "start from one of the specs in examples/facilities/",
                )
            ]
        )
    try:
        facility = Facility.model_validate(source.data)
    except ValidationError as exc:
        raise_problems(_with_suggestions(exc, source))
        raise AssertionError("unreachable") from None
    raise_problems(cross_check(facility, source))
    facility._source = source
    return facility


def _with_suggestions(exc: ValidationError, source: SpecSource) -> list[SpecProblem]:
    problems = problems_from(exc, source)
    for problem, err in zip(problems, exc.errors(), strict=False):
        if err.get("type") != "extra_forbidden":
            continue
        loc = tuple(err["loc"])
        model = _model_at(Facility, loc[:-1])
        if model is None:
            continue
        known = list(model.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        problem.message = "unknown field"
        problem.hint = f"did you mean `{close[0]}`?" if close else f"allowed here: {', '.join(known)}"
    return problems


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that sits at ``loc`` inside ``model`` (lists and optionals unwrapped)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[part].annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return inner[0] if len(inner) == 1 else annotation
    return annotation


def _duplicates(names: list[tuple[str, tuple[Any, ...]]], what: str, source: SpecSource) -> list[SpecProblem]:
    """One problem per repeat, located at the repeat and naming the line of the first use."""
    first: dict[str, tuple[Any, ...]] = {}
    seen = Counter(name for name, _ in names)
    out = []
    for name, path in names:
        if name not in first:
            first[name] = path
            continue
        line, _ = source.locate(first[name])
        where = f" (first at line {line})" if line else ""
        out.append(
            source.problem(
                path, f"{what} name {name!r} is used {seen[name]} times{where}", f"give each {what} a unique name"
            )
        )
    return out


def cross_check(facility: Facility, source: SpecSource) -> list[SpecProblem]:
    """Checks that need the whole document: references resolve and names are unique."""
    problems: list[SpecProblem] = []
    racks = [
        (r.name, ("halls", h, "racks", i, "name"))
        for h, hall in enumerate(facility.halls)
        for i, r in enumerate(hall.racks)
    ]
    problems += _duplicates(racks, "rack", source)
    problems += _duplicates([(n.name, ("nodes", i, "name")) for i, n in enumerate(facility.nodes)], "node", source)
    problems += _duplicates(
        [(f.name, ("fabrics", i, "name")) for i, f in enumerate(facility.fabrics)], "fabric", source
    )
    problems += _duplicates([(h.name, ("halls", i, "name")) for i, h in enumerate(facility.halls)], "hall", source)
    # Two paths both called `A`, or two UPS groups with one name, would be counted twice by every rule that
    # pools or expands the power chain: a name is an identity here, so a repeat is an error, not a second unit.
    power_sections = {
        "paths": "power path",
        "utility_feeds": "utility feed",
        "transformers": "transformer",
        "ups": "UPS",
        "generators": "generator",
        "pdus": "PDU",
    }
    for section, what in power_sections.items():
        items = getattr(facility.power, section)
        problems += _duplicates([(x.name, ("power", section, i, "name")) for i, x in enumerate(items)], what, source)
    problems += _duplicates(
        [(u.name, ("cooling", "units", i, "name")) for i, u in enumerate(facility.cooling.units)],
        "cooling unit",
        source,
    )
    problems += _duplicates(
        [(x.name, ("cooling", "liquid_loops", i, "name")) for i, x in enumerate(facility.cooling.liquid_loops)],
        "liquid loop",
        source,
    )
    problems += _duplicates(
        [(e.name, ("telemetry", "endpoints", i, "name")) for i, e in enumerate(facility.telemetry.endpoints)],
        "telemetry endpoint",
        source,
    )
    rack_names = {name for name, _ in racks}
    fabric_names = {f.name for f in facility.fabrics}
    path_names = {p.name for p in facility.power.paths}

    def unknown(value: str, known: set[str], path: tuple[Any, ...], what: str) -> None:
        close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.5)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else (f"declare it under {what}" if not known else f"known: {', '.join(sorted(known)[:8])}")
        )
        problems.append(source.problem(path, f"no {what.split('.')[-1].rstrip('s')} named {value!r}", hint))

    for i, node in enumerate(facility.nodes):
        if node.rack is not None and node.rack not in rack_names:
            unknown(node.rack, rack_names, ("nodes", i, "rack"), "halls[].racks")
        for j, rack_name in enumerate(node.racks):
            if rack_name not in rack_names:
                unknown(rack_name, rack_names, ("nodes", i, "racks", j), "halls[].racks")
        for j, nic in enumerate(node.nics):
            if nic.fabric not in fabric_names:
                unknown(nic.fabric, fabric_names, ("nodes", i, "nics", j, "fabric"), "fabrics")
    for h, hall in enumerate(facility.halls):
        for r, rack in enumerate(hall.racks):
            for k, p in enumerate(rack.power_paths):
                if p not in path_names:
                    unknown(p, path_names, ("halls", h, "racks", r, "power_paths", k), "power.paths")
    components = facility.power.components
    problems += _duplicates(
        [(c.name, ("power", "components", i, "name")) for i, c in enumerate(components)], "power component", source
    )
    component_names = {c.name for c in components}
    for i, c in enumerate(components):
        for j, up in enumerate(c.fed_by):
            if up not in component_names:
                unknown(up, component_names, ("power", "components", i, "fed_by", j), "power.components")
            elif up == c.name:
                problems.append(
                    source.problem(("power", "components", i, "fed_by", j), f"{c.name!r} feeds itself", "remove it")
                )
    if components:
        for h, hall in enumerate(facility.halls):
            for r, rack in enumerate(hall.racks):
                if not rack.feeds:
                    problems.append(
                        source.problem(
                            ("halls", h, "racks", r, "name"),
                            f"rack {rack.name!r} has no feeds",
                            "with power.components, name the components each rack is corded to (feeds: [...])",
                        )
                    )
                for k, feed in enumerate(rack.feeds):
                    if feed not in component_names:
                        unknown(feed, component_names, ("halls", h, "racks", r, "feeds", k), "power.components")
    unit_names = {u.name for u in facility.cooling.units}
    for i, u in enumerate(facility.cooling.units):
        for j, up in enumerate(u.fed_by):
            if up not in unit_names or up == u.name:
                unknown(up, unit_names - {u.name}, ("cooling", "units", i, "fed_by", j), "cooling.units")
    for h, hall in enumerate(facility.halls):
        for j, name in enumerate(hall.cooled_by):
            if name not in unit_names:
                unknown(name, unit_names, ("halls", h, "cooled_by", j), "cooling.units")
    for i, fab in enumerate(facility.fabrics):
        for j, name in enumerate(fab.switch_racks):
            if name not in rack_names:
                unknown(name, rack_names, ("fabrics", i, "switch_racks", j), "halls[].racks")
    problems += _duplicates(
        [(x.name, ("telecom_spaces", i, "name")) for i, x in enumerate(facility.telecom_spaces)],
        "telecom space",
        source,
    )
    for i, space in enumerate(facility.telecom_spaces):
        if space.rack is not None and space.rack not in rack_names:
            unknown(space.rack, rack_names, ("telecom_spaces", i, "rack"), "halls[].racks")
        for j, name in enumerate(space.serves):
            if name not in rack_names:
                unknown(name, rack_names, ("telecom_spaces", i, "serves", j), "halls[].racks")
    for section in ("utility_feeds", "transformers", "ups", "generators", "pdus"):
        for i, item in enumerate(getattr(facility.power, section)):
            if item.path is not None and item.path not in path_names:
                unknown(item.path, path_names, ("power", section, i, "path"), "power.paths")
    return problems
