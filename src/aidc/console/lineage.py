"""A run's lineage drawn as inline SVG: dataset → run → checkpoint → ONNX → model version → deployment, left to right,
each node in the column of its longest path from a source; colours are attributes (the console's CSP holds)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from markupsafe import Markup

_W, _H, _DX, _DY, _PAD = 170, 44, 210, 58, 8
# fills with white text ≥ 4.5:1
FILL = {
    "dataset_version": "#6a1b9a",
    "run": "#0d47a1",
    "checkpoint": "#37474f",
    "onnx": "#4e342e",
    "model_version": "#1b5e20",
    "deployment": "#bf360c",
}
KIND = {
    "dataset_version": "dataset",
    "run": "run",
    "checkpoint": "checkpoint",
    "onnx": "ONNX",
    "model_version": "model version",
    "deployment": "deployment",
}


def lineage_graph(lineage: Mapping[str, Any], current: str) -> Markup:
    """The graph of ``lineage`` (``run_details``' "lineage": nodes and edges), ``current`` ("kind:id") outlined."""
    nodes = {f"{n['kind']}:{n['id']}": n for n in lineage.get("nodes", [])}
    edges = [e for e in lineage.get("edges", []) if e["src"] in nodes and e["dst"] in nodes]
    if len(nodes) < 2:
        return Markup('<p class="muted">no lineage recorded yet (it is written as the run makes its outputs)</p>')
    depth = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):  # longest path from a source; a cycle is cut by the bound
        changed = False
        for e in edges:
            if depth[e["dst"]] < depth[e["src"]] + 1:
                depth[e["dst"]], changed = depth[e["src"]] + 1, True
        if not changed:
            break
    place: dict[str, tuple[float, float]] = {}
    rows: dict[int, int] = {}
    for key in sorted(nodes, key=lambda k: (depth[k], nodes[k]["kind"], nodes[k]["label"])):
        col = depth[key]
        place[key] = (_PAD + col * _DX, _PAD + rows.get(col, 0) * _DY)
        rows[col] = rows.get(col, 0) + 1
    width = int((max(depth.values()) + 1) * _DX + _PAD)
    height = int(max(rows.values()) * _DY + _PAD)
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Lineage of {escape(current)}" font-size="11">'
    ]
    for e in edges:
        (x1, y1), (x2, y2) = place[e["src"]], place[e["dst"]]
        parts.append(
            f'<line x1="{x1 + _W:.0f}" y1="{y1 + _H / 2:.0f}" x2="{x2:.0f}" y2="{y2 + _H / 2:.0f}" stroke="#616161" '
            f'stroke-width="1.5"><title>{escape(e["relation"])}</title></line>'
            f'<circle cx="{x2:.0f}" cy="{y2 + _H / 2:.0f}" r="3" fill="#616161"/>'
        )
    for key, node in nodes.items():
        x, y = place[key]
        outline = ' stroke="#ff9800" stroke-width="4"' if key == current else ""
        label = str(node["label"])
        parts.append(
            f'<g class="node k-{escape(node["kind"])}"><title>{escape(KIND.get(node["kind"], node["kind"]))} '
            f"{escape(label)}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{_W}" height="{_H}" rx="6" '
            f'fill="{FILL.get(node["kind"], "#424242")}"{outline}/>'
            f'<text x="{x + _W / 2:.0f}" y="{y + 17:.0f}" fill="#fff" text-anchor="middle" font-weight="600">'
            f"{escape(KIND.get(node['kind'], node['kind']))}</text>"
            f'<text x="{x + _W / 2:.0f}" y="{y + 33:.0f}" fill="#fff" text-anchor="middle">'
            f"{escape(label if len(label) <= 27 else label[:26] + '…')}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def lineage_rows(lineage: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The edges as text, (from, relation, to), for those who do not see the picture (and for search)."""
    nodes = {f"{n['kind']}:{n['id']}": n for n in lineage.get("nodes", [])}

    def name(key: str) -> str:
        node = nodes.get(key)
        return f"{KIND.get(node['kind'], node['kind'])} {node['label']}" if node else key

    return [(name(e["src"]), e["relation"].replace("_", " "), name(e["dst"])) for e in lineage.get("edges", [])]
