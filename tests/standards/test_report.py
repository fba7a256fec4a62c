"""Report renderers: SARIF 2.1.0 is structurally valid with spec regions; HTML stands alone; Markdown reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

from aidc.facility import load_facility
from aidc.standards.checker import run_check
from aidc.standards.report import render_html, render_json, render_markdown, render_sarif

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"

# The parts of the SARIF 2.1.0 schema a consumer (GitHub code scanning, VS Code SARIF viewer) relies on.
SARIF_SUBSET = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "rules"],
                                "properties": {
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "shortDescription"],
                                            "properties": {
                                                "defaultConfiguration": {
                                                    "properties": {
                                                        "level": {"enum": ["none", "note", "warning", "error"]}
                                                    }
                                                }
                                            },
                                        },
                                    }
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "message", "level"],
                            "properties": {
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "kind": {"enum": ["pass", "fail", "open", "review", "informational", "notApplicable"]},
                                "message": {"type": "object", "required": ["text"]},
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation"],
                                                "properties": {
                                                    "region": {
                                                        "type": "object",
                                                        "required": ["startLine"],
                                                        "properties": {
                                                            "startLine": {"type": "integer", "minimum": 1},
                                                            "startColumn": {"type": "integer", "minimum": 1},
                                                        },
                                                    }
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def _report(name: str = "dgx-h100-noncompliant.yaml"):  # type: ignore[no-untyped-def]
    return run_check(load_facility(EXAMPLES / name))


def test_sarif_is_structurally_valid_and_points_at_spec_lines() -> None:
    sarif = json.loads(render_sarif(_report()))
    jsonschema.validate(sarif, SARIF_SUBSET)
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    fuel = next(r for r in run["results"] if r["ruleId"] == "AV-UT-FUEL")
    assert fuel["level"] == "error" and fuel["kind"] == "fail"
    loc = fuel["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"].endswith("dgx-h100-noncompliant.yaml")
    text = (EXAMPLES / "dgx-h100-noncompliant.yaml").read_text().splitlines()
    assert (
        "fuel_hours" in text[loc["physicalLocation"]["region"]["startLine"] - 1]
        or "generators" in text[loc["physicalLocation"]["region"]["startLine"] - 2]
    )
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "power.generators"


def test_html_report_is_self_contained_with_chain_heat_map_and_citations() -> None:
    html = render_html(_report())
    assert "<svg" in html and "Power chain" in html
    assert all(f"gpu-0{i}" in html for i in range(1, 9))
    assert "GB 50174-2017 §8.1: cooling loads and IT loads must not share one UPS group" in html
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", html)
    assert "<script" not in html


def test_markdown_groups_findings_by_family_with_fixes() -> None:
    md = render_markdown(_report())
    for family in ("Availability", "Environment", "Energy", "Power", "Network", "Security"):
        assert f"## {family}" in md
    assert "**What to change**" in md and "`AV-UT-FUEL`" in md


def test_json_report_has_ratings_counts_derived_and_findings() -> None:
    data = json.loads(render_json(_report("dgx-h100-tier3.yaml")))
    assert data["ratings"]["uptime"]["overall"] == "III"
    assert data["counts"]["fail"] == 0
    assert data["derived"]["redundancy"]["ups"]["scheme"] == "2N"
    assert data["derived"]["fabrics"][0]["oversubscription"] == {"leaf": 1.0}
    assert all({"rule", "status", "citation", "line"} <= set(f) for f in data["findings"])


def test_html_draws_the_one_line_with_the_element_whose_loss_fails_a_rule_in_red() -> None:
    from aidc.facility import load_facility

    bad = run_check(load_facility(EXAMPLES / "dgx-h100-noncompliant.yaml"))
    html = render_html(bad)
    assert "Power one-line" in html
    svg = html[html.index("Power one-line") :]
    # Tier III target, one path: its switchgear and UPS are single points; each is drawn red with the rule.
    blamed = re.findall(r'<g class="blamed"><title>([^<]*)</title>', svg)
    assert any(t.startswith("ups:ups-A") and "AV-UT-CM" in t for t in blamed), blamed
    assert any(t.startswith("switchgear:A") for t in blamed)
    good = render_html(run_check(load_facility(EXAMPLES / "dgx-h100-tier3.yaml")))
    assert 'class="blamed"' not in good and "Power one-line" in good


def test_html_draws_the_cooling_chain_with_the_unit_whose_loss_fails_a_rule_in_red(tmp_path: Path) -> None:
    # The Tier IV one-line example with its CDUs and CRAHs piped to pump-1 alone: losing pump-1 leaves the hall
    # warm. The cooling chain is drawn with pump-1 red, named by the Uptime rule and by TIA-942's mechanical row.
    data = yaml.safe_load((EXAMPLES / "nvl72-tier4-oneline.yaml").read_text())
    data["targets"]["tia942"] = 3
    for u in data["cooling"]["units"]:
        if u.get("fed_by") == ["pump-1", "pump-2"]:
            u["fed_by"] = ["pump-1"]
    spec = tmp_path / "one-pump.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    html = render_html(run_check(load_facility(spec)))
    svg = html[html.index("Cooling chain") :]
    blamed = re.findall(r'<g class="blamed"><title>([^<]*)</title>', svg)
    pump = [t for t in blamed if t.startswith("pump-1")]
    assert pump and "AV-UT-CM" in pump[0] and "AV-TIA-MECH" in pump[0], blamed
    assert not any(t.startswith("pump-2") for t in blamed)  # the spare is not the problem
