"""One rule's findings on a shipped example facility after an edit: what the *_findings tests read."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from aidc.facility.loader import facility_from_source
from aidc.specfile import SpecSource
from aidc.standards import builtin_rules
from aidc.standards.checker import run_check

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"
RULES = {r.id: r for r in builtin_rules()}

Spec = dict[str, Any]


@cache
def _example(name: str) -> str:
    return (EXAMPLES / name).read_text()


def findings(rule: str, example: str, edit: Callable[[Spec], None] | None = None) -> list[Any]:
    """The findings of ``rule`` alone on ``example`` after ``edit`` (the example's own ``checks`` left out)."""
    spec: Spec = copy.deepcopy(yaml.safe_load(_example(example)))
    spec.pop("checks", None)
    if edit is not None:
        edit(spec)
    return run_check(facility_from_source(SpecSource(spec, {}, example)), rules=[RULES[rule]]).findings


def no_generators(battery_minutes: float) -> Callable[[Spec], None]:
    """An edit: the generators taken out, and every UPS given ``battery_minutes`` of battery."""

    def edit(d: Spec) -> None:
        d["power"]["generators"] = []
        for u in d["power"]["ups"]:
            u["battery_minutes"] = battery_minutes

    return edit


def overriding(rule: str, figures: dict[str, float]) -> Callable[[Spec], None]:
    """An edit: the spec's own ``figures`` for ``rule`` under checks.thresholds."""

    def edit(d: Spec) -> None:
        d.setdefault("checks", {}).setdefault("thresholds", {})[rule] = figures

    return edit
