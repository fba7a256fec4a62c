"""Network rules at the edges their @rule bodies decide (found by ``make mutate-rules``, which flips the
comparisons and and/or chains mutmut cannot reach)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.standards.checker import run_check

LAB = "lab-two-servers.yaml"  # one radix-32 leaf (lab-net), no port plan declared


# NET-PORTS (Al-Fares et al., SIGCOMM 2008, §2.2: downlinks + uplinks ≤ radix): a tier with only one side declared
# is judged with the other side at half the radix (k/2); a tier with neither is not judged.
@pytest.mark.parametrize(
    ("declared", "status", "measured"),
    [({"leaf_downlinks": 17}, "fail", "33 ports"), ({"leaf_uplinks": 16}, "pass", "32 ports")],
)
def test_a_port_plan_with_one_side_declared_is_judged_against_the_radix(
    variant: Callable[..., Path], declared: dict[str, int], status: str, measured: str
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["fabrics"][0].update(declared)

    report = run_check(load_facility(variant(LAB, edit)))
    found = [(f.subject, f.status, f.measured) for f in report.findings if f.rule.id == "NET-PORTS"]
    assert found == [("lab-net leaf", status, measured)]
