"""The rule catalog as a user meets it: which rules fire on each example, and how overrides change verdicts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.errors import InvalidInput, InvalidSpec
from aidc.facility import load_facility
from aidc.standards import builtin_rules
from aidc.standards.checker import Report, run_check
from aidc.standards.report import render_markdown
from aidc.standards.rule import FAMILIES

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"


def check(path: Path, **kw: Any) -> Report:
    return run_check(load_facility(path), **kw)


def failing(report: Report) -> set[str]:
    return {f.rule.id for f in report.findings if f.status in ("fail", "warn")}


def finding(report: Report, rule_id: str) -> Any:
    return next(f for f in report.findings if f.rule.id == rule_id)


def test_catalog_has_at_least_40_rules_in_every_family() -> None:
    rules = builtin_rules()
    assert len(rules) >= 40
    per_family = Counter(r.family for r in rules)
    assert set(per_family) == set(FAMILIES)
    assert len({r.id for r in rules}) == len(rules)
    for r in rules:
        assert r.standard and r.clause and r.remediation.endswith("."), r.id


def test_inferred_thresholds_say_so_in_the_citation() -> None:
    density = next(r for r in builtin_rules() if r.id == "ENV-DENSITY")
    assert "(inf)" in density.citation() and "air_max_kw" in density.citation()
    fuel = next(r for r in builtin_rules() if r.id == "AV-UT-FUEL")
    assert "(inf)" not in fuel.citation()


@pytest.mark.parametrize("example", ["dgx-h100-tier3.yaml", "gb200-nvl72-china.yaml", "lab-two-servers.yaml"])
def test_compliant_examples_pass_every_applicable_rule(example: str) -> None:
    report = check(EXAMPLES / example)
    assert failing(report) == set(), [f.message for f in report.findings if f.status != "pass"]
    assert report.counts["pass"] >= 10


def test_tier3_example_achieves_tier3_ratings() -> None:
    r = check(EXAMPLES / "dgx-h100-tier3.yaml")
    assert r.ratings["uptime"]["overall"] == "III"
    assert r.ratings["tia942"]["overall"] == 3
    assert r.ratings["en50600"]["overall"] == 3


def test_noncompliant_h100_fires_the_expected_rules_and_not_others() -> None:
    report = check(EXAMPLES / "dgx-h100-noncompliant.yaml")
    fired = failing(report)
    must = {
        "AV-UT-OVERALL",
        "AV-UT-UPS",
        "AV-UT-GEN",
        "AV-UT-FUEL",
        "AV-UT-PATHS",
        "AV-UT-RACKFEED",
        "AV-UT-COOL",
        "AV-TIA-OVERALL",
        "AV-TIA-TEL",
        "AV-EN-CLASS",
        "KPI-PUE-TARGET",
        "ENV-ASHRAE-REC",
        "ENV-DENSITY",
        "NET-NONBLOCK",
        "NET-NIC-PER-GPU",
        "NET-NIC-SPEED",
        "NET-TP",
        "NET-FATTREE",
        "NET-FABRICS",
        "PWR-UPS-SPLIT",
        "PWR-RACK-BUDGET",
        "PWR-UPS-MULT",
        "SEC-MFA",
        "SEC-LOG",
        "SEC-CRYPTO-REST",
        "SEC-CCTV",
        "SEC-FIRE-DETECT",
    }
    assert must <= fired, must - fired
    must_not = {"PWR-UPS-CAP", "ENV-ASHRAE-ALLOW", "SEC-CRYPTO-TRANSIT", "KPI-PUE-VALID", "NET-RADIX"}
    assert not (must_not & fired)
    assert report.ratings["uptime"]["overall"] == "none"
    fuel = finding(report, "AV-UT-FUEL")
    assert (fuel.measured, fuel.expected) == ("8 h", "≥ 12 h")
    assert fuel.line is not None  # points at power.generators in the spec


def test_noncompliant_lab_fires_the_expected_rules_with_their_clauses() -> None:
    report = check(EXAMPLES / "lab-two-servers-noncompliant.yaml")
    must = {
        "PWR-RACK-BUDGET",
        "PWR-UPS-CAP",
        "PWR-UPS-SPLIT",
        "ENV-COOL-CAP",
        "ENV-ASHRAE-REC",
        "NET-NIC-PER-GPU",
        "NET-NIC-SPEED",
        "NET-TP",
        "SEC-MFA",
        "SEC-LOG",
        "SEC-CRYPTO-REST",
        "SEC-PHYS",
        "SEC-CCTV",
        "SEC-FIRE",
    }
    fired = failing(report)
    assert must <= fired, must - fired
    assert not fired & {"ENV-ASHRAE-ALLOW", "ENV-DENSITY", "NET-BMC", "NET-FATTREE", "SEC-CRYPTO-TRANSIT"}
    assert not any(f.rule.family == "availability" for f in report.findings)  # a lab targets no tier
    text = render_markdown(report)
    for f in report.findings:
        if f.rule.id in must:
            assert f.rule.standard in f.citation and f.rule.clause in f.citation, f.rule.id
            assert f.rule.id in text and f.citation in text and f.line is not None
    ups = finding(report, "PWR-UPS-CAP")
    assert "GB 50174-2017 §8.1 UPS basic capacity E ≥ 1.1 P" in ups.citation
    assert (ups.measured, ups.expected) == ("10 kW usable (below N)", "≥ 15 kW")


def test_2n_ups_passes_tier4_ups_rule_and_n_fails_it_with_measure_and_clause(variant: Callable[..., Path]) -> None:
    report = check(variant("dgx-h100-tier3.yaml"), targets={"uptime": "IV"})
    ups = finding(report, "AV-UT-UPS")
    assert ups.status == "pass" and ups.measured.startswith("2N")

    def single_path(d: dict[str, Any]) -> None:
        d["power"]["ups"] = [{"name": "ups-A", "path": "A", "module_kw": 400, "modules": 1, "battery_minutes": 10}]

    report = check(variant("dgx-h100-tier3.yaml", single_path), targets={"uptime": "IV"})
    ups = finding(report, "AV-UT-UPS")
    assert ups.status == "fail"
    assert ups.measured.startswith("N (1 unit,") and ups.expected == "2N"
    assert "Tier IV fault tolerant (2N)" in ups.citation
    assert ups.rule.remediation


def test_ups_capacity_counts_every_module_the_11_margin_needs(variant: Callable[..., Path]) -> None:
    """GB 50174 §8.1 E ≥ 1.1·P: a module is redundant only if 1.1·P is carried without it (lab IT = 6.0 kW)."""

    def modules(n: int) -> Callable[[dict[str, Any]], None]:
        def edit(d: dict[str, Any]) -> None:
            d["power"]["ups"] = [{"name": "ups", "path": "A", "module_kw": 1, "modules": n, "battery_minutes": 10}]

        return edit

    enough = finding(check(variant("lab-two-servers.yaml", modules(7))), "PWR-UPS-CAP")
    assert enough.status == "pass" and enough.measured == "7 kW usable (N)"
    short = finding(check(variant("lab-two-servers.yaml", modules(6))), "PWR-UPS-CAP")
    assert short.status == "fail" and short.expected == "≥ 7 kW"


def test_threshold_override_changes_the_verdict(variant: Callable[..., Path]) -> None:
    path = EXAMPLES / "dgx-h100-noncompliant.yaml"
    assert finding(check(path), "ENV-DENSITY").status == "fail"

    def allow_45kw(d: dict[str, Any]) -> None:
        d["checks"] = {"thresholds": {"ENV-DENSITY": {"air_max_kw": 45}}}

    report = check(variant("dgx-h100-noncompliant.yaml", allow_45kw))
    density = finding(report, "ENV-DENSITY")
    assert density.status == "pass"
    assert "overridden in the spec (air_max_kw)" in density.citation


def test_disabling_a_rule_removes_it(variant: Callable[..., Path]) -> None:
    def disable(d: dict[str, Any]) -> None:
        d["checks"] = {"disable": ["SEC-CCTV"]}

    report = check(variant("dgx-h100-noncompliant.yaml", disable), disable=["NET-TP"])
    ids = {f.rule.id for f in report.findings}
    assert "SEC-CCTV" not in ids and "NET-TP" not in ids
    assert "SEC-MFA" in ids


def test_unknown_rule_in_checks_is_a_located_spec_error(variant: Callable[..., Path]) -> None:
    def typo(d: dict[str, Any]) -> None:
        d["checks"] = {"disable": ["SEC-CCTVV"], "thresholds": {"ENV-DENSITY": {"air_kw": 40}}}

    with pytest.raises(InvalidSpec) as info:
        check(variant("dgx-h100-tier3.yaml", typo))
    problems = info.value.problems
    assert problems[0].field == "checks.disable[0]" and problems[0].line is not None
    assert "SEC-CCTV" in (problems[0].hint or "")
    assert "air_max_kw" in (problems[1].hint or "")
    with pytest.raises(InvalidInput):
        check(EXAMPLES / "dgx-h100-tier3.yaml", disable=["NOPE-1"])


USER_RULE = """
from aidc.standards import rule, Outcome

@rule("SITE-ROOF", "Roof load rating for rooftop chillers", family="power", standard="house rules",
      clause="§1", remediation="Reinforce the roof.", thresholds={"max_kw": 100.0})
def roof(ctx, t):
    return Outcome(ctx.derived.it_load_kw <= t["max_kw"], ctx.derived.it_load_kw, t["max_kw"], ("site",))
"""


def test_user_rule_module_from_a_path_in_the_spec_runs(variant: Callable[..., Path]) -> None:
    def add(d: dict[str, Any]) -> None:
        d["checks"] = {"rule_modules": ["house_rules.py"]}

    path = variant("dgx-h100-tier3.yaml", add)
    (path.parent / "house_rules.py").write_text(USER_RULE)
    report = check(path)
    roof = finding(report, "SITE-ROOF")
    assert roof.status == "fail" and roof.rule.family == "power"
    assert roof.line is not None


def test_missing_user_rule_module_is_a_spec_error(variant: Callable[..., Path]) -> None:
    path = variant("dgx-h100-tier3.yaml", lambda d: d.update(checks={"rule_modules": ["nope.py"]}))
    with pytest.raises(InvalidSpec, match="rule module not found"):
        check(path)


def test_china_site_is_judged_by_gb40879_grade(variant: Callable[..., Path]) -> None:
    report = check(EXAMPLES / "gb200-nvl72-china.yaml")
    assert finding(report, "KPI-CN-GB40879").status == "pass"
    assert report.ratings["gb50174"]["overall"] == "A"

    def worse_pue(d: dict[str, Any]) -> None:
        d["energy"]["facility_kwh"] = 7800000 * 1.28

    report = check(variant("gb200-nvl72-china.yaml", worse_pue))
    fired = failing(report)
    assert {"KPI-CN-GB40879", "KPI-CN-HUB", "KPI-CN-REGION", "KPI-PUE-TARGET"} <= fired
    grade = finding(report, "KPI-CN-GB40879")
    assert grade.expected == "≤ 1.2" and grade.measured.startswith("1.28")


def test_china_noncompliant_fires_gb50174_rules() -> None:
    report = check(EXAMPLES / "gb200-nvl72-china-noncompliant.yaml")
    fired = failing(report)
    assert {
        "AV-GB-UPS",
        "AV-GB-BATT",
        "AV-GB-SITE",
        "AV-GB-XFMR",
        "AV-GB-FEED",
        "ENV-GB-RH",
        "ENV-LIQ-W",
        "ENV-LIQ-REQUIRED",
        "SEC-FIRE-RESIST",
        "KPI-CN-GB40879",
    } <= fired
    # its shortcuts are in power, cooling, siting and energy; its fabric, racks and security stay sound
    assert not fired & {
        "AV-GB-GEN",
        "NET-NIC-PER-GPU",
        "NET-NONBLOCK",
        "NET-TP",
        "PWR-RACK-BUDGET",
        "PWR-UPS-CAP",
        "ENV-ASHRAE-ALLOW",
        "SEC-MFA",
        "SEC-CRYPTO-REST",
    }
    site = [f for f in report.findings if f.rule.id == "AV-GB-SITE" and f.status == "fail"]
    assert {f.subject for f in site} == {"airport", "railway"}


def test_entry_point_rules_are_added_to_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    from aidc.standards import Outcome, checker, rule

    @rule(
        "EP-DEMO",
        "Entry-point demo rule",
        family="network",
        standard="vendor pack",
        clause="§2",
        remediation="Nothing to do.",
    )
    def demo(ctx: Any, t: dict[str, Any]) -> Outcome:
        return Outcome(True, "ok", "ok")

    class FakeEntryPoint:
        value = "vendor_pack:RULES"

        def load(self) -> list[Any]:
            return [demo]

    monkeypatch.setattr(checker, "entry_points", lambda group: [FakeEntryPoint()] if group == "aidc.rules" else [])
    report = check(EXAMPLES / "dgx-h100-tier3.yaml")
    assert finding(report, "EP-DEMO").status == "pass"
