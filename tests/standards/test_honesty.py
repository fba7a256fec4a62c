"""Sanity and honesty: repeated names, implausible values, JSON that parses, citations that say where they come from."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.errors import InvalidSpec
from aidc.facility import load_facility
from aidc.standards import builtin_rules
from aidc.standards.checker import Report, run_check
from aidc.standards.report import render_json, render_sarif

LAB = "lab-two-servers.yaml"
DGX = "dgx-h100-tier3.yaml"


def check(path: Path, **kw: Any) -> Report:
    return run_check(load_facility(path), **kw)


def statuses(report: Report, rule_id: str) -> set[str]:
    return {f.status for f in report.findings if f.rule.id == rule_id}


# ---------------------------------------------------------------- repeated names are errors, located


@pytest.mark.parametrize(
    "section,what",
    [("paths", "power path"), ("ups", "UPS"), ("generators", "generator"), ("pdus", "PDU")],
)
def test_a_repeated_power_name_is_a_located_error(variant: Callable[..., Path], section: str, what: str) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["power"][section].append(dict(d["power"][section][0]))

    path = variant(DGX, edit)
    with pytest.raises(InvalidSpec) as err:
        load_facility(path)
    problems = [p for p in err.value.problems if what in p.message]
    assert len(problems) == 1, str(err.value)
    p = problems[0]
    index = len(load_facility_raw(path)["power"][section]) - 1
    assert p.field == f"power.{section}[{index}].name" and p.line is not None and p.col is not None
    assert "used 2 times (first at line" in p.message


def load_facility_raw(path: Path) -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def test_two_paths_named_a_are_not_counted_as_two(variant: Callable[..., Path]) -> None:
    # Before: two `A` paths made a one-path design look dual-path to AV-UT-PATHS; now the spec is refused.
    path = variant(LAB, lambda d: d["power"]["paths"].append({"name": "A"}))
    with pytest.raises(InvalidSpec, match="power path name 'A' is used 2 times"):
        load_facility(path)


# ---------------------------------------------------------------- numbers: finite, plausible


def test_an_infinite_rating_is_a_spec_error_not_json_infinity(variant: Callable[..., Path]) -> None:
    path = variant(LAB, lambda d: d["power"]["ups"][0].update(module_kw=float("inf")))
    with pytest.raises(InvalidSpec) as err:
        load_facility(path)
    assert "power.ups[0].module_kw" in str(err.value)


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-finite number {name} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_and_sarif_never_contain_non_finite_numbers(variant: Callable[..., Path]) -> None:
    # A leaf with no uplinks is infinitely oversubscribed: the derived figure is inf, the JSON says "inf".
    def edit(d: dict[str, Any]) -> None:
        d["fabrics"][0].update(tiers=2, leaf_uplinks=0)

    report = check(variant(LAB, edit))
    data = _strict(render_json(report))
    assert data["derived"]["fabrics"][0]["oversubscription"]["leaf"] == "inf"
    _strict(render_sarif(report))


@pytest.mark.parametrize("max_kw,status", [(249.9, "pass"), (250.0, "pass"), (250.1, "warn"), (10200.0, "warn")])
def test_watts_typed_into_a_kw_field_get_a_plausibility_warning(
    variant: Callable[..., Path], max_kw: float, status: str
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["nodes"][0].update(max_kw=max_kw, nominal_kw=2.2)
        d["halls"][0]["racks"][0]["power_budget_kw"] = 10

    report = check(variant(LAB, edit))
    assert statuses(report, "PLAUS-NODE-KW") == {status}
    if status == "warn":
        f = next(f for f in report.findings if f.rule.id == "PLAUS-NODE-KW")
        assert "watts" in f.note and f.subject == "gpu" and f.line is not None


def test_a_facility_without_load_warns_and_keeps_its_cooling(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["nodes"] = []
        d["fabrics"] = []
        d["targets"] = {"uptime": "II"}
        d["checks"] = {}

    report = check(variant(LAB, edit))
    assert statuses(report, "PLAUS-LOAD") == {"warn"}
    # Two 8 kW in-row units with no load are N+1: the zero load must not make the cooling vanish.
    assert report.ratings["uptime"]["mechanical"] == "II"
    cool = next(f for f in report.findings if f.rule.id == "AV-UT-COOL")
    assert cool.status == "pass" and "no cooling units" not in str(cool.measured)


# ---------------------------------------------------------------- law: six months of logs for every operator


@pytest.mark.parametrize("days,status", [(179, "fail"), (180, "pass"), (181, "pass")])
@pytest.mark.parametrize("mlps", [None, 1, 2, 3])
def test_china_keeps_six_months_of_logs_at_every_mlps_level(
    variant: Callable[..., Path], days: int, status: str, mlps: int | None
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["site"]["country"] = "CN"
        d["targets"]["mlps"] = mlps
        d["security"] = {"audit_log_retention_days": days}

    report = check(variant(LAB, edit))
    assert statuses(report, "SEC-LOG") == {status}


def test_log_retention_does_not_apply_outside_china_without_a_security_target(variant: Callable[..., Path]) -> None:
    report = check(variant(LAB))
    assert "SEC-LOG" in report.skipped


# ---------------------------------------------------------------- citations


_EDITION = re.compile(r"\b(19|20)\d{2}\b|\bed\.|edition")
_LOCATOR = re.compile(r"§|Table|Annex|Art\.|\bA\.\d|\bCC\d")
_NOT_STANDARDS = ("Reference §", "reference sheet", "Trade guidance", "Regional policy")


@pytest.mark.parametrize("r", builtin_rules(), ids=lambda r: r.id)
def test_every_citation_names_standard_edition_and_clause(r: Any) -> None:
    if r.standard.startswith("none"):
        assert r.family in ("plausibility", "power", "physical"), r.id  # screens, statics: never called a standard
        return
    assert _EDITION.search(r.standard), f"{r.id}: no edition or year in {r.standard!r}"
    assert _LOCATOR.search(r.clause), f"{r.id}: no clause, table or article in {r.clause!r}"
    assert not any(word in r.standard for word in _NOT_STANDARDS), r.id
    if not r.read:
        assert "text not read" in r.citation(), r.id
    else:
        assert "text not read" not in r.citation(), r.id


# ---------------------------------------------------------------- SARIF


def test_sarif_lists_the_whole_catalog_with_relative_uris(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = Path(__file__).parents[2] / "examples" / "facilities"
    monkeypatch.chdir(examples.parent.parent)
    report = check(examples / LAB)
    sarif = json.loads(render_sarif(report))
    run = sarif["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert ids == sorted(r.id for r in report.rules)
    assert set(report.skipped) <= set(ids)  # rules that did not apply are still listed
    for result in run["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
        artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert artifact == {"uri": "examples/facilities/lab-two-servers.yaml", "uriBaseId": "%SRCROOT%"}


def test_a_spec_outside_the_directory_checked_from_gets_its_absolute_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SARIF's %SRCROOT% is where `aidc check` ran; a spec above it is not under it, so no `../` URI."""
    examples = Path(__file__).parents[2] / "examples" / "facilities"
    elsewhere = tmp_path / "checked-from"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for given in (examples / LAB, Path(os.path.relpath(examples / LAB, elsewhere))):
        sarif = json.loads(render_sarif(check(given)))
        artifact = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        assert artifact == {"uri": (examples / LAB).resolve().as_uri()}
