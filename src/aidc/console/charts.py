"""Small charts as inline SVG, drawn here: no chart library to ship, no script, nothing from a CDN; colours are
attributes (never inline styles), so the console's strict Content-Security-Policy holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00")  # ≥ 4.5:1 against white


def line_chart(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    width: int = 420,
    height: int = 200,
    x_label: str = "",
) -> Markup:
    """A titled chart of named (x, y) series with its axes' ranges, ``x_label`` under the x axis, and a legend
    that gives each series' latest value; empty series say so."""
    points = [p for values in series.values() for p in values]
    label = escape(title)
    if not points:
        return Markup(
            f'<figure class="chart"><figcaption>{label}</figcaption><p class="muted">no data yet</p></figure>'
        )
    left, right, top, bottom = 44, 10, 10, 28
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def xy(x: float, y: float) -> str:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)
        return f"{px:.1f},{py:.1f}"

    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{label}">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#555"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#555"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="10" fill="#333">{_num(y1)}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" font-size="10" fill="#333">{_num(y0)}</text>',
        f'<text x="{left}" y="{height - 8}" font-size="10" fill="#333">{_num(x0)}</text>',
        f'<text x="{width - right}" y="{height - 8}" text-anchor="end" font-size="10" fill="#333">{_num(x1)}</text>',
    ]
    if x_label:
        parts.append(
            f'<text x="{(left + width - right) / 2:.0f}" y="{height - 8}" text-anchor="middle" font-size="10" '
            f'fill="#333">{escape(x_label)}</text>'
        )
    legend = []
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        if values:
            line = " ".join(xy(x, y) for x, y in sorted(values))
            parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        latest = f' <span class="latest">{_num(max(values)[1])}</span>' if values else ""
        legend.append(
            f'<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{colour}"/></svg> '
            f"{escape(name)}{latest}</li>"
        )
    parts.append("</svg>")
    return Markup(
        f'<figure class="chart"><figcaption>{label}</figcaption>{"".join(parts)}'
        f'<ul class="legend">{"".join(legend)}</ul></figure>'
    )


def _num(value: float) -> str:
    return f"{value:.3g}"


def split_bar(parts: Sequence[tuple[str, float]], *, width: int = 420, height: int = 22) -> Markup:
    """A deployment's traffic split: one bar, a segment per version in percent, with a legend that says the numbers."""
    shown = [(name, share) for name, share in parts if share > 0]
    label = escape(", ".join(f"{name} {share:g}%" for name, share in shown) or "no traffic")
    rects, legend, x = [], [], 0.0
    for i, (name, share) in enumerate(shown):
        colour = COLOURS[i % len(COLOURS)]
        w = width * share / 100
        rects.append(f'<rect x="{x:.1f}" width="{w:.1f}" height="{height}" fill="{colour}"/>')
        legend.append(
            f'<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{colour}"/></svg> '
            f"{escape(name)} {share:g}%</li>"
        )
        x += w
    return Markup(
        f'<figure class="chart"><figcaption>Traffic split</figcaption><svg width="{width}" height="{height}" '
        f'role="img" aria-label="{label}"><rect width="{width}" height="{height}" fill="#eeeeee"/>{"".join(rects)}'
        f'</svg><ul class="legend">{"".join(legend)}</ul></figure>'
    )


def sparkline(values: Sequence[float], label: str, *, width: int = 120, height: int = 24) -> Markup:
    """A small line of the newest readings (oldest left), labelled with its range for those who do not see it."""
    if len(values) < 2:
        return Markup("")
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    step = (width - 2) / (len(values) - 1)
    line = " ".join(
        f"{1 + i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}" for i, v in enumerate(values)
    )
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}: {_num(lo)} to {_num(hi)}"><polyline points="{line}" fill="none" '
        f'stroke="{COLOURS[0]}" stroke-width="1.5"/></svg>'
    )
