"""The run report's pictures as inline SVG made with matplotlib (no pyplot, no display, no network)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "cached": "#78909c",
    "failed": "#c62828",
    "running": "#f9a825",
    "pending": "#bdbdbd",
}


@dataclass(frozen=True)
class TimelineBar:
    name: str
    status: str
    start: float  # seconds since the run began
    seconds: float | None  # None: the stage never started


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96, layout="constrained")


def to_svg(fig: Figure, salt: str) -> str:
    """The figure as an <svg> element; text stays text (searchable, small) and ids are unique per figure."""
    import matplotlib

    buf = io.StringIO()
    # a salt per figure keeps element ids distinct when several SVGs share one HTML page
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE (which names a DTD by URL)
    start, end = text.find("<metadata>"), text.find("</metadata>")
    if start != -1 and end != -1:
        text = text[:start] + text[end + len("</metadata>") :]
    return text


def timeline_svg(bars: Sequence[TimelineBar]) -> str:
    """Gantt chart of the stages, coloured by status; cached stages hatched, stages never started named so."""
    fig = _figure(9, 0.7 + 0.42 * len(bars))
    ax = fig.add_subplot()
    span = max((b.start + (b.seconds or 0.0) for b in bars), default=0.0) or 1.0
    for i, b in enumerate(bars):
        if b.seconds is None:
            ax.text(span * 0.01, i, b.status, va="center", fontsize=8, color="#777")
            continue
        width = max(b.seconds, span * 0.006)  # a cached stage takes ~0 s; keep it visible
        ax.barh(
            i,
            width,
            left=b.start,
            color=STATUS_COLOURS.get(b.status, "#9e9e9e"),
            hatch="//" if b.status == "cached" else None,
            edgecolor="white",
        )
        label = f"{b.seconds:.1f} s" + ("" if b.status == "succeeded" else f" · {b.status}")
        ax.text(b.start + width + span * 0.01, i, label, va="center", fontsize=8)
    ax.set_yticks(range(len(bars)), [b.name for b in bars])
    ax.invert_yaxis()
    ax.set_xlim(0, span * 1.18)
    ax.set_xlabel("seconds since the run started")
    ax.spines[["top", "right"]].set_visible(False)
    return to_svg(fig, "timeline")


def curves_svg(series: Mapping[str, Sequence[tuple[int, float]]], title: str, ylabel: str) -> str:
    """Per-epoch curves, one line per metric name."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(4.6, 3.0)
    ax = fig.add_subplot()
    for name, points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=name)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return to_svg(fig, f"curves-{title}")


def confusion_svg(matrix: Sequence[Sequence[int]], labels: Sequence[Any]) -> str:
    """Heat map of the confusion matrix (rows true, columns predicted) with the count in every cell."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    fig = _figure(5.2, 4.6)
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="Blues")
    top = m.max() if m.size else 0.0
    for (r, c), v in np.ndenumerate(m):
        ax.text(
            c, r, f"{int(v)}", ha="center", va="center", fontsize=8, color="white" if top and v > top / 2 else "black"
        )
    ticks = range(len(labels))
    ax.set_xticks(ticks, [str(x) for x in labels])
    ax.set_yticks(ticks, [str(x) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return to_svg(fig, "confusion")


def class_balance_svg(balance: Mapping[str, Mapping[str, int]]) -> str:
    """Rows per class, one bar group per class, one bar per split."""
    import numpy as np

    classes = sorted({c for split in balance.values() for c in split}, key=lambda c: (len(str(c)), str(c)))
    splits = list(balance)
    fig = _figure(7, 2.8)
    ax = fig.add_subplot()
    x = np.arange(len(classes))
    width = 0.8 / max(len(splits), 1)
    for i, split in enumerate(splits):
        ax.bar(x + i * width, [balance[split].get(c, 0) for c in classes], width, label=split)
    ax.set_xticks(x + width * (len(splits) - 1) / 2, [str(c) for c in classes])
    ax.set_xlabel("class")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8, ncols=len(splits), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return to_svg(fig, "balance")


def tradeoff_svg(points: Sequence[Mapping[str, Any]]) -> str:
    """Accuracy against ONNX Runtime latency (batch 32), each model's marker area proportional to its size on disk:
    the compressed versions beside their parent."""
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot()
    biggest = max((float(p["size_bytes"]) for p in points), default=1.0) or 1.0
    for p in points:
        area = 40 + 600 * float(p["size_bytes"]) / biggest
        ax.scatter(p["latency_ms_b32"], p["accuracy"], s=area, alpha=0.55, edgecolors="black", linewidths=0.6)
        ax.annotate(
            f"{p['label']}\n{p['size_bytes'] / 1024:.0f} KiB",
            (p["latency_ms_b32"], p["accuracy"]),
            textcoords="offset points",
            xytext=(8, 4),
            fontsize=7,
        )
    ax.set_xlabel("ONNX Runtime latency, batch 32 (ms)")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy × latency × size (marker area)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.margins(x=0.35, y=0.25)
    return to_svg(fig, "tradeoff")


def rounds_svg(series: Mapping[str, Sequence[tuple[int, float]]], reference: Mapping[str, float]) -> str:
    """Test accuracy per federated round, with horizontal lines for the references (centralised training)."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(6.4, 3.2)
    ax = fig.add_subplot()
    for name, points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=name)
    for name, value in reference.items():
        ax.axhline(value, linestyle="--", color="#555", linewidth=1)
        ax.annotate(name, (0, value), textcoords="offset points", xytext=(4, 3), fontsize=7, color="#555")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return to_svg(fig, "rounds")
