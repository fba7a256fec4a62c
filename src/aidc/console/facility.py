"""The facility page's view: the spec the server runs, checked as `aidc check` checks it, and each rack's power now
(its nodes' latest readings) against the budget the design gave it."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

# (share of budget at or above which, fill) — the heat map's steps; text stays dark on each (contrast ≥ 4.5:1)
HEAT = ((1.0, "#ef9a9a"), (0.8, "#ffcc80"), (0.5, "#fff59d"), (0.0, "#c8e6c9"))


@dataclass(frozen=True)
class Checked:
    """A spec as `aidc check` judged it, with its power one-line and cooling chain drawn: (title, SVG, the names
    of what failing rules blame, drawn in red)."""

    report: Any
    diagrams: list[tuple[str, Markup, list[str]]]


_checked: dict[str, tuple[tuple[float, int], Checked]] = {}  # spec path → ((mtime, size), its check)
_checking = threading.Lock()


def checked(spec: str) -> Checked:
    """The spec checked and drawn, again only when the file changes: a check takes ~100 ms, which every visit to
    the page would otherwise spend."""
    stat = os.stat(spec)
    key = (stat.st_mtime, stat.st_size)
    with _checking:
        known = _checked.get(spec)
        if known is None or known[0] != key:
            known = _checked[spec] = (key, _check(spec))
        return known[1]


def _check(spec: str) -> Checked:
    from aidc.facility.loader import load_facility
    from aidc.standards.checker import run_check
    from aidc.standards.diagram import blame, draw

    report = run_check(load_facility(spec), {}, ())
    failed = {f.rule.id for f in report.findings if f.status == "fail"}
    drawn = []
    for title, analysis in (("Power one-line", report.derived.power), ("Cooling chain", report.derived.cooling)):
        if analysis is not None and analysis.oneline.elements:
            drawn.append((title, draw(analysis, failed, title), sorted(blame(analysis, failed))))
    return Checked(report, drawn)


def facility_view(spec: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The check, its one-lines drawn, and each rack's power now against its budget."""
    known = checked(spec)
    report = known.report
    facility = report.facility
    now = rack_power_kw(nodes)
    racks = []
    for hall, rack in facility.racks():
        kw = now.get(rack.name)
        share = kw / rack.power_budget_kw if kw is not None else None
        racks.append(
            {
                "hall": hall.name,
                "name": rack.name,
                "row": rack.row or "",
                "budget_kw": rack.power_budget_kw,
                "kw": kw,
                "share": share,
                "bar": _bar(share),
            }
        )
    findings = sorted(report.findings, key=lambda f: ({"fail": 0, "warn": 1}.get(f.status, 2), f.rule.id))
    return {"report": report, "racks": racks, "findings": findings, "spec": spec, "diagrams": known.diagrams}


def rack_power_kw(nodes: list[dict[str, Any]]) -> dict[str, float]:
    """Each rack's power now, kW: the sum of its nodes' latest readings (racks with no reading are left out)."""
    racks: dict[str, float] = {}
    for node in nodes:
        watts = node.get("telemetry", {}).get("power_watts")
        if node.get("rack") and watts is not None:
            racks[node["rack"]] = racks.get(node["rack"], 0.0) + watts / 1000
    return racks


def _bar(share: float | None, width: int = 160, height: int = 14) -> Markup:
    """A rack's power against its budget, as a bar filled in the heat map's colour (the number is beside it)."""
    if share is None:
        return Markup("")
    fill = next(colour for floor, colour in HEAT if share >= floor)
    filled = min(share, 1.0) * width
    return Markup(
        f'<svg width="{width}" height="{height}" role="img" aria-label="{share:.0%} of budget">'
        f'<rect width="{width}" height="{height}" fill="#eeeeee" stroke="#767676"/>'
        f'<rect width="{filled:.1f}" height="{height}" fill="{fill}" stroke="#767676"/></svg>'
    )
