"""Render a check Report as JSON, Markdown, a self-contained HTML report (power chain, rack heat map) or SARIF 2.1.0."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from aidc.specfile import format_path
from aidc.standards.checker import Report
from aidc.standards.diagram import draw
from aidc.standards.rule import Finding, count, fmt

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"fail": "error", "warn": "warning", "info": "note", "pass": "none"}
_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "info": "ℹ️"}


def finite(value: Any) -> Any:
    """``value`` with every non-finite float written as a string ("inf", "-inf", "nan"): JSON has no Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _dumps(data: Any) -> str:
    # allow_nan=False: a non-finite number that slipped past finite() is a bug to see, not `Infinity` to ship.
    return json.dumps(finite(data), indent=2, default=str, allow_nan=False)


def render_json(report: Report) -> str:
    return _dumps(report.to_dict())


def render_markdown(report: Report) -> str:
    c = report.counts
    lines = [
        f"# Compliance report — {report.facility.name}",
        "",
        f"**{c['pass']} pass · {c['warn']} warn · {c['fail']} fail**",
        "",
        "## Ratings achieved",
        "",
        "| standard | " + " | ".join(["subsystems", "overall"]) + " |",
        "| --- | --- | --- |",
    ]
    for std, levels in report.ratings.items():
        sub = ", ".join(f"{k} {v}" for k, v in levels.items() if k != "overall")
        lines.append(f"| {std} | {sub} | **{levels['overall']}** |")
    for family, findings in report.by_family().items():
        lines += [
            "",
            f"## {family.capitalize()}",
            "",
            "| | rule | subject | measured | required | citation |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for f in findings:
            lines.append(
                f"| {_ICON[f.status]} | {f.rule.id} {_md(f.rule.title)} | {_md(f.subject)} | "
                f"{_md(fmt(f.measured))} | {_md(fmt(f.expected))} | {_md(f.citation)} |"
            )
        todo = [f for f in findings if f.status != "pass"]
        if todo:
            lines += ["", "**What to change**", ""]
            lines += [f"- `{f.rule.id}` {_where(f)}: {f.rule.remediation}" for f in todo]
    lines += ["", "## Derived quantities", ""] + [f"- {k}: {v}" for k, v in _derived_lines(report)]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def _where(f: Finding) -> str:
    field = format_path(f.path)
    pos = f" (line {f.line})" if f.line else ""
    return f"`{field}`{pos}" if field else pos


def _derived_lines(report: Report) -> list[tuple[str, str]]:
    d = report.derived
    out = [
        ("IT load", f"{d.it_load_kw:,.1f} kW max ({d.it_nominal_kw:,.1f} kW nominal)"),
        (
            "facility load",
            f"{d.facility_load_kw:,.1f} kW at PUE {d.design_pue}"
            + ("" if d.design_pue_declared else " (assumed, inf)"),
        ),
        ("nodes / GPUs / racks", f"{d.nodes} / {d.gpus} / {d.racks}"),
    ]
    for name, r in d.systems.items():
        if r.present:
            out.append(
                (
                    f"redundancy {name}",
                    f"{r.scheme} — {count(r.units, 'unit')}, {r.capacity_kw:,.0f} kW for "
                    f"{r.load_kw:,.0f} kW (headroom {r.headroom_kw:,.0f} kW)",
                )
            )
    for title, a in (("power one-line", d.power), ("cooling chain", d.cooling)):
        if a is None or not a.oneline.elements:
            continue
        verdicts = [
            "carries N" if not a.normal else f"short in service ({len(a.normal)} source state(s))",
            "concurrently maintainable"
            if a.concurrently_maintainable
            else f"not concurrently maintainable ({len(a.maintenance)} element(s))",
            "fault tolerant" if a.fault_tolerant else f"not fault tolerant ({len(a.faults)} element(s))",
        ]
        out.append((title, f"{len(a.oneline.elements)} elements on {', '.join(a.states)}: " + "; ".join(verdicts)))
    for s in d.fabrics:
        over = ", ".join(f"{k} {v:g}:1" for k, v in s.oversubscription.items()) or "single tier"
        out.append(
            (
                f"fabric {s.fabric.name}",
                f"{s.endpoints} endpoints, oversubscription {over}, "
                f"switches {s.declared} (fat tree needs {s.required})",
            )
        )
    return out


def _chain(report: Report) -> list[dict[str, Any]]:
    """The one-line power chain: utility → transformers → generators → UPS → PDUs → racks, with redundancy."""
    d, p = report.derived, report.facility.power
    steps = [
        ("Utility", "utility_feeds", len(p.utility_feeds)),
        ("Transformers", "transformers", None),
        ("Generators", "generators", None),
        ("UPS (IT)", "ups", None),
        ("PDUs", "pdus", None),
    ]
    out = []
    for label, key, _ in steps:
        r = d.systems.get(key)
        if r is None:
            continue
        ok = r.meets("N+1") or r.fault_tolerant
        out.append(
            {
                "label": label,
                "scheme": r.scheme,
                "detail": f"{r.units} × · {r.capacity_kw:,.0f} kW",
                "colour": "#2e7d32" if ok else ("#f9a825" if r.meets("N") else "#c62828"),
            }
        )
    out.append(
        {"label": "Racks", "scheme": f"{d.racks} racks", "detail": f"{d.it_load_kw:,.0f} kW IT", "colour": "#455a64"}
    )
    return out


def _racks(report: Report) -> list[dict[str, Any]]:
    out = []
    for hall, rack in report.facility.racks():
        kw = report.derived.rack_load_kw.get(rack.name, 0.0)
        ratio = kw / rack.power_budget_kw
        colour = "#c62828" if ratio > 1 else ("#f9a825" if ratio > 0.85 else "#2e7d32")
        out.append(
            {
                "hall": hall.name,
                "name": rack.name,
                "kw": kw,
                "budget": rack.power_budget_kw,
                "ratio": ratio,
                "pct": min(ratio, 1.0) * 100,
                "colour": colour,
                "cooling": rack.cooling,
                "heat": f"hsl({int(120 - min(ratio, 1.2) / 1.2 * 120)}, 70%, 45%)",
            }
        )
    return out


def _diagrams(report: Report) -> list[tuple[str, Any]]:
    """The power one-line and (when drawn) the cooling chain, with what failing rules blame in red."""
    failed = {f.rule.id for f in report.findings if f.status == "fail"}
    out = []
    chains = (
        ("Power one-line", report.derived.power, "AV-TIA-ELEC"),
        ("Cooling chain", report.derived.cooling, "AV-TIA-MECH"),
    )
    for title, analysis, tia in chains:
        if analysis is not None and analysis.oneline.elements:
            here = {r for r in failed if not r.startswith("AV-TIA-")}
            for f in report.findings:
                if f.rule.id == tia and f.status == "fail":
                    # the TIA rows the failure analysis decides, by the scenarios they take
                    if f.subject.endswith("concurrently maintainable"):
                        here.add(f"{tia}:maintenance")
                    elif f.subject.endswith("fault tolerant"):
                        here.add(f"{tia}:faults")
            out.append((title, draw(analysis, here, title)))
    return out


def render_html(report: Report) -> str:
    """One self-contained page (inline CSS/SVG, no network): what an architect hands on."""
    env = Environment(
        loader=FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=select_autoescape(["html", "j2"])
    )
    template = env.get_template("report.html.j2")
    return template.render(
        report=report,
        counts=report.counts,
        families=report.by_family(),
        chain=_chain(report),
        diagrams=_diagrams(report),
        racks=_racks(report),
        derived=_derived_lines(report),
        fmt=fmt,
        icon=_ICON,
        where=_where,
    )


def render_sarif(report: Report, tool_version: str = "0.1.0") -> str:
    """SARIF 2.1.0: one rule per catalog entry, one result per finding with the spec region when known."""
    # The whole catalog that ran, not only the rules with results: a viewer shows what was checked and passed
    # silently (or did not apply), and ruleIndex stays stable across runs of the same catalog.
    catalog = {r.id: r for r in report.rules} | {f.rule.id: f.rule for f in report.findings}
    rules = sorted(catalog.values(), key=lambda r: r.id)
    index = {r.id: i for i, r in enumerate(rules)}
    file = getattr(report.facility.source, "file", None) or "facility.yaml"
    results = []
    for f in report.findings:
        location: dict[str, Any] = {"physicalLocation": {"artifactLocation": _artifact(file)}}
        if f.line:
            location["physicalLocation"]["region"] = {"startLine": f.line, "startColumn": f.col or 1}
        field = format_path(f.path)
        if field:
            location["logicalLocations"] = [{"fullyQualifiedName": field, "kind": "member"}]
        result: dict[str, Any] = {
            "ruleId": f.rule.id,
            "ruleIndex": index[f.rule.id],
            "level": _LEVEL[f.status],
            "kind": "pass" if f.status == "pass" else "fail",
            "message": {
                "text": f"{f.rule.title}: {f.message}. {f.citation}."
                + (f" Fix: {f.rule.remediation}" if f.status != "pass" else "")
            },
            "locations": [location],
            "properties": {
                "family": f.rule.family,
                "measured": str(f.measured),
                "expected": str(f.expected),
                "subject": f.subject,
            },
        }
        results.append(result)
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "aidc check",
                        "version": tool_version,
                        "informationUri": "https://github.com/aidc/aidc",
                        "rules": [
                            {
                                "id": r.id,
                                "name": r.id.replace("-", ""),
                                "shortDescription": {"text": r.title},
                                "fullDescription": {"text": r.citation()},
                                "help": {"text": r.remediation},
                                "defaultConfiguration": {
                                    "level": {"error": "error", "warning": "warning", "info": "note"}[r.severity]
                                },
                                "properties": {"family": r.family, "standard": r.standard, "clause": r.clause},
                            }
                            for r in rules
                        ],
                    }
                },
                "artifacts": [{"location": _artifact(file)}],
                "results": results,
            }
        ],
    }
    return _dumps(sarif)


def _artifact(file: str) -> dict[str, str]:
    """A relative URI against %SRCROOT% (the directory `aidc check` ran in), as code-scanning uploads expect.

    An absolute path would name the CI runner's checkout and never match the repository's file. A spec outside
    that directory is not under %SRCROOT% at all: it gets its absolute file URI rather than a ``../`` climbing out.
    """
    path = Path(file)
    try:
        rel = Path(os.path.relpath(path.absolute(), Path.cwd()))
    except ValueError:  # another drive on Windows: no relative form exists
        return {"uri": path.absolute().as_uri()}
    if rel.parts[:1] == ("..",):
        return {"uri": Path(os.path.normpath(path.absolute())).as_uri()}
    return {"uri": quote(rel.as_posix()), "uriBaseId": "%SRCROOT%"}
