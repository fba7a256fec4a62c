"""Draw a one-line (power or cooling) as inline SVG, with the elements whose loss fails a rule in red.

Columns follow the flow (sources left, racks or halls right), each element at its longest distance from
a source; no scripts, no external assets, so the HTML report stays one self-contained file.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from aidc.facility.failure import PowerAnalysis
from aidc.standards.rule import fmt

_W, _H, _DX, _DY, _PAD = 150, 44, 190, 56, 10
_OK, _BAD, _LOAD, _DEAD = "#2e7d32", "#c62828", "#455a64", "#8e24aa"


def blame(analysis: PowerAnalysis, failed: set[str]) -> dict[str, list[str]]:
    """Element or load label → the failing rules that name it (by the scenario that took it out).

    ``failed`` holds the failing rule ids, and ``RULE:maintenance`` / ``RULE:faults`` for a TIA-942 row of this
    chain that fails (the one-line's rows belong to AV-TIA-ELEC, the cooling chain's to AV-TIA-MECH)."""
    out: dict[str, list[str]] = {}
    picks = (
        ("PWR-ONELINE-N", analysis.normal),
        ("ENV-COOL-CHAIN", analysis.normal),
        ("AV-UT-CM", analysis.normal + analysis.maintenance),
        ("AV-UT-FT", analysis.normal + analysis.faults),
        # TIA-942's table rows, named ``RULE:maintenance`` / ``RULE:faults`` by the report when that row fails
        ("AV-TIA-ELEC:maintenance", analysis.maintenance),
        ("AV-TIA-ELEC:faults", analysis.faults),
        ("AV-TIA-MECH:maintenance", analysis.maintenance),
        ("AV-TIA-MECH:faults", analysis.faults),
    )
    for key, shortfalls in picks:
        if key not in failed:
            continue
        rule_id = key.split(":")[0]
        for s in shortfalls:
            for name in s.removed or ():
                out.setdefault(name, []).append(f"{rule_id}: {s.describe(limit=3)}")
            if not s.removed:
                for label in s.racks + s.loads:
                    out.setdefault(label, []).append(f"{rule_id}: short with everything in service")
    return out


def _columns(analysis: PowerAnalysis) -> dict[str, int]:
    """Longest distance from a source for each element (cycles, if any, are cut by the iteration bound)."""
    line = analysis.oneline
    depth = {n: 0 for n in line.elements}
    for _ in range(len(line.elements)):
        changed = False
        for n, e in line.elements.items():
            d = max((depth[u] + 1 for u in e.fed_by if u in depth), default=0)
            if d > depth[n]:
                depth[n], changed = d, True
        if not changed:
            break
    return depth


def draw(analysis: PowerAnalysis, failed: set[str], title: str) -> Markup:
    """The chain as an SVG picture; elements (and racks/halls) named by a failing rule are red."""
    line = analysis.oneline
    blamed = blame(analysis, failed)
    depth = _columns(analysis)
    last = max(depth.values(), default=0) + 1
    boxes: dict[str, tuple[int, int]] = {}
    rows: dict[int, int] = {}
    for name in sorted(line.elements, key=lambda n: (depth[n], n)):
        col = depth[name] if line.elements[name].kind != "load" else last
        boxes[name] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    groups = []
    for i, g in enumerate(line.groups):
        label = g.racks[0] if len(g.racks) == 1 else f"{len(g.racks)} racks"
        groups.append((f"group:{i}", label, g))
        boxes[f"group:{i}"] = (last, rows.get(last, 0))
        rows[last] = rows.get(last, 0) + 1
    width = (last + 1) * _DX + _PAD
    height = max(rows.values(), default=1) * _DY + _PAD * 2

    def anchor(name: str, right: bool) -> tuple[int, int]:
        col, row = boxes[name]
        return _PAD + col * _DX + (_W if right else 0), _PAD + row * _DY + _H // 2

    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="11">'
    ]
    for name, e in line.elements.items():
        for up in e.fed_by:
            if up in boxes:
                (x1, y1), (x2, y2) = anchor(up, True), anchor(name, False)
                dash = ' stroke-dasharray="4 3"' if e.alternate else ""
                parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#999"{dash}/>')
    for key, _, g in groups:
        for f in g.feeds:
            if f in boxes:
                (x1, y1), (x2, y2) = anchor(f, True), anchor(key, False)
                parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#999"/>')

    def box(key: str, head: str, sub: str, colour: str, notes: list[str]) -> None:
        col, row = boxes[key]
        x, y = _PAD + col * _DX, _PAD + row * _DY
        tip = escape("\n".join([head, sub, *notes]))
        stroke = ' stroke="#000" stroke-width="3"' if notes else ""
        parts.append(
            f'<g class="{"blamed" if notes else "ok"}"><title>{tip}</title>'
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="{colour}"{stroke}/>'
            f'<text x="{x + _W // 2}" y="{y + 18}" fill="#fff" text-anchor="middle" font-weight="600">'
            f"{escape(head[:24])}</text>"
            f'<text x="{x + _W // 2}" y="{y + 34}" fill="#fff" text-anchor="middle">{escape(sub[:28])}</text></g>'
        )

    for name, e in line.elements.items():
        notes = blamed.get(name, [])
        rating = "" if math.isinf(e.unit_kw) else f"{e.units} × {fmt(e.unit_kw)} kW"
        colour = _BAD if notes else (_LOAD if e.kind == "load" else _OK)
        box(name, name, f"{e.kind} {rating}".strip(), colour, notes)
    for key, label, g in groups:
        notes = sorted({n for r in g.racks for n in blamed.get(r, [])})
        box(key, label, f"{fmt(g.kw)} kW", _BAD if notes else _LOAD, notes)
    parts.append("</svg>")
    return Markup("".join(parts))
