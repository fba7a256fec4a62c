"""What the power rules' findings say: the usable capacity a report shows, the load it is held against, and the note.

The threshold suite (test_thresholds.py) moves each rule across its number and reads the verdict; these cases read
the finding's text, which is how a user sees *why*: "12 kW usable of 24" for a 2N pair of PDUs is one path's worth,
"10 kW usable of 15" for three pooled 5 kW PDUs is all but the spare. Expected figures are worked out from the
design and the clause (GB 50174-2017 §8.1: E ≥ 1.1 × P), never imported from aidc.standards.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.standards.findings import Spec, findings

LAB = "lab-two-servers.yaml"  # one rack, two GPU servers and a switch, one 10 kW UPS on path A, no tier
TIER4 = "nvl72-tier4-oneline.yaml"  # Uptime IV on a one-line diagram: UPS systems are components there
CAPACITY = ("PWR-GEN-CAP", "PWR-XFMR-CAP", "PWR-FEED-CAP", "PWR-PDU-CAP")


def said(rule: str, example: str, edit: Callable[[Spec], None] | None = None) -> tuple[str, str, str, str]:
    """(status, measured, required, note) of the rule's one finding, as a report prints them."""
    [f] = findings(rule, example, edit)
    return f.status, f.measured, f.expected, f.note


def it_load(kw: float) -> Callable[[Spec], None]:
    """The lab's IT load made exactly ``kw``: its two GPU servers at kw/2 each, the switch taken out."""

    def edit(spec: Spec) -> None:
        spec["nodes"] = [n for n in spec["nodes"] if n["name"] != "switch"]
        spec["nodes"][0].update(max_kw=kw / 2, nominal_kw=min(spec["nodes"][0]["nominal_kw"], kw / 2))

    return edit


def with_pdus(*pdus: tuple[str, float], pue: float | None = None, it_kw: float = 10.0) -> Callable[[Spec], None]:
    """The lab at ``it_kw`` of IT with these (path, kW) PDUs, paths A and B, and a design PUE if given."""

    def edit(spec: Spec) -> None:
        it_load(it_kw)(spec)
        spec["power"]["paths"] = [{"name": "A"}, {"name": "B"}]
        spec["power"]["pdus"] = [{"name": f"pdu-{i}", "path": p, "capacity_kw": kw} for i, (p, kw) in enumerate(pdus)]
        if pue is not None:
            spec["energy"] = {"design_pue": pue}

    return edit


def test_a_2n_pair_of_pdus_offers_one_path_and_pooled_pdus_all_but_the_spare() -> None:
    """Uptime §2.3: each path carries the whole load, so a 2N pair is worth one path (12 of 24 kW); three 5 kW PDUs
    pooled on one path against 10 kW are N+1, worth the two that remain with one out (10 of 15 kW)."""
    assert said("PWR-PDU-CAP", LAB, with_pdus(("A", 12), ("B", 12))) == (
        "pass",
        "12 kW usable of 24",
        "≥ 10 kW IT",
        "",
    )
    assert said("PWR-PDU-CAP", LAB, with_pdus(("A", 5), ("A", 5), ("A", 5))) == (
        "pass",
        "10 kW usable of 15",
        "≥ 10 kW IT",
        "",
    )


def test_a_2n_pair_of_pdu_groups_offers_one_whole_group() -> None:
    """Two paths of 3 × 5 kW PDUs each against 10 kW: either path carries the load alone (2N, with a spare in each),
    so one path's 15 of the 30 kW is usable — not the 10 kW that pooling all six would leave with their spares out."""

    def groups(spec: Spec) -> None:
        with_pdus()(spec)
        spec["power"]["pdus"] = [{"name": f"pdu-{p}", "path": p, "capacity_kw": 5, "count": 3} for p in ("A", "B")]

    assert said("PWR-PDU-CAP", LAB, groups) == ("pass", "15 kW usable of 30", "≥ 10 kW IT", "")


def test_generators_name_the_assumed_pue_and_pdus_which_carry_it_only_do_not() -> None:
    """The facility load is IT × design PUE; with none declared the rules assume one and say so — but only where
    the load rests on it (generators, transformers, feeds), not on the PDUs, which carry the IT load alone."""

    def plant(spec: Spec) -> None:
        with_pdus(("A", 12))(spec)
        spec["power"]["generators"] = [{"name": "g", "capacity_kw": 8, "count": 3, "rating": "data_center"}]

    status, measured, required, note = said("PWR-GEN-CAP", LAB, plant)
    # 3 × 8 kW against 10 kW × 1.5 (the assumed PUE) = 15 kW: N+1, two of them usable
    assert (status, measured, required) == ("pass", "16 kW usable of 24", "≥ 15 kW facility")
    assert note == "facility load assumes PUE 1.5 (inf)"
    assert said("PWR-PDU-CAP", LAB, plant) == ("pass", "12 kW usable of 12", "≥ 10 kW IT", "")

    def declared(spec: Spec) -> None:
        plant(spec)
        spec["energy"] = {"design_pue": 1.2}

    # 10 kW × 1.2 = 12 kW: one 8 kW set out still leaves 16 kW, and nothing is assumed
    assert said("PWR-GEN-CAP", LAB, declared) == ("pass", "16 kW usable of 24", "≥ 12 kW facility", "")


def test_a_load_under_one_kilowatt_is_still_held_against_its_pdu() -> None:
    """0.5 kW of IT on a 0.4 kW PDU is short, however small the numbers."""
    [finding] = findings("PWR-PDU-CAP", LAB, with_pdus(("A", 0.4), it_kw=0.5))
    assert finding.status == "fail"
    assert finding.path == ("power", "pdus")


def test_a_design_with_no_it_load_gets_no_capacity_findings() -> None:
    """Nothing to carry: the upstream stages are not rated against a zero load (PLAUS-LOAD says the load is
    missing), even where PDUs and generators are declared."""

    def no_load(spec: Spec) -> None:
        with_pdus(("A", 12))(spec)
        for node in spec["nodes"]:
            node.update(max_kw=0, nominal_kw=0)
        spec["targets"]["uptime"] = "II"
        spec["power"]["generators"] = [{"name": "g", "capacity_kw": 20, "rating": "data_center", "fuel_hours": 24}]

    assert {rule: findings(rule, LAB, no_load) for rule in CAPACITY} == {rule: [] for rule in CAPACITY}


def test_generators_are_required_only_where_a_tier_is_targeted() -> None:
    """Uptime Tier Standard §3.1: engine generators are the primary source. The lab targets no tier and has none:
    no finding. Targeting Tier I, the missing plant fails."""
    assert findings("PWR-GEN-CAP", LAB) == []

    def tier_one(spec: Spec) -> None:
        spec["targets"]["uptime"] = "I"

    [finding] = findings("PWR-GEN-CAP", LAB, tier_one)
    assert (finding.status, finding.measured, finding.expected, finding.path) == (
        "fail",
        "no generators",
        "generators for the facility load",
        ("power", "generators"),
    )


def test_a_one_line_designs_ups_systems_are_the_capacity_the_ups_finding_reports() -> None:
    """The Tier IV example declares its UPS systems as one-line components (two sides of 3 × 500 kW), not under
    power.ups. §8.1 asks 1.1 × 960 kW = 1,056 kW with one UPS system out: one side's 1,500 kW is what is usable."""
    assert said("PWR-UPS-CAP", TIER4) == (
        "pass",
        "1,500 kW usable (2N)",
        "≥ 1,056 kW with any one UPS system out",
        "",
    )


def test_a_2n_ups_pair_with_one_side_too_small_names_the_side_that_is_out() -> None:
    """Uptime IV asks 2N: 1.1 × 10 kW = 11 kW with either UPS out. With the 12 kW side out, the 6 kW side is all
    that is left, and the finding says so."""

    def pair(b_kw: float) -> Callable[[Spec], None]:
        def edit(spec: Spec) -> None:
            it_load(10)(spec)
            spec["targets"]["uptime"] = "IV"
            spec["halls"][0]["racks"][0]["power_budget_kw"] = 12
            spec["power"]["paths"] = [{"name": "A"}, {"name": "B"}]
            spec["power"]["ups"] = [
                {"name": "ups-a", "path": "A", "module_kw": 12, "modules": 1},
                {"name": "ups-b", "path": "B", "module_kw": b_kw, "modules": 1},
            ]

        return edit

    assert said("PWR-UPS-CAP", LAB, pair(12)) == (
        "pass",
        "12 kW usable (2N)",
        "≥ 11 kW with any one UPS system out",
        "",
    )
    status, measured, required, note = said("PWR-UPS-CAP", LAB, pair(6))
    assert (status, measured, required) == (
        "fail",
        "6 kW usable (N, ups:ups-a out)",
        "≥ 11 kW with any one UPS system out",
    )
    assert note.startswith("with ups:ups-a out: 1 rack(s) short (lab-rack)")
