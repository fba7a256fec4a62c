"""Run the rule catalog on a facility: targets, disabled rules, threshold overrides, user rule modules → a Report."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from aidc.errors import InvalidInput, InvalidSpec, SpecProblem
from aidc.facility.derived import Derived, derive
from aidc.facility.loader import paused_gc
from aidc.facility.model import Facility, Targets
from aidc.specfile import raise_problems
from aidc.standards.ratings import achieved_ratings
from aidc.standards.rule import FAMILIES, REGISTRY, Context, Finding, Outcome, Rule, builtin_rules
from aidc.standards.tia942 import table as tia942_table
from aidc.standards.tia942 import tia942_ratings

ENTRY_POINT_GROUP = "aidc.rules"
_ORDER = {"fail": 0, "warn": 1, "info": 2, "pass": 3}


@dataclass
class Report:
    """The verdict on one facility: ratings, findings (grouped by family), counts and derived quantities."""

    facility: Facility
    derived: Derived
    targets: Targets
    ratings: dict[str, dict[str, Any]]
    findings: list[Finding]
    rules: list[Rule]
    skipped: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(f.status for f in self.findings)
        return {s: c.get(s, 0) for s in ("pass", "warn", "fail", "info")}

    def by_family(self) -> dict[str, list[Finding]]:
        families = list(FAMILIES) + sorted({f.rule.family for f in self.findings} - set(FAMILIES))
        out: dict[str, list[Finding]] = {fam: [] for fam in families}
        for f in sorted(self.findings, key=lambda f: (_ORDER[f.status], f.rule.id)):
            out[f.rule.family].append(f)
        return {k: v for k, v in out.items() if v}

    def failing(self, fail_on: str = "error") -> list[Finding]:
        statuses = {"fail"} if fail_on == "error" else {"fail", "warn"}
        return [f for f in self.findings if f.status in statuses]

    def to_dict(self) -> dict[str, Any]:
        return {
            "facility": self.facility.name,
            "file": getattr(self.facility.source, "file", None),
            "targets": self.targets.model_dump(exclude_none=True),
            "ratings": self.ratings,
            "counts": self.counts,
            "derived": self.derived.as_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "not_applicable": self.skipped,
        }


def parse_targets(items: Iterable[str]) -> dict[str, Any]:
    """``uptime:III``, ``tia942:3``, ``pue_target:1.3`` → a Targets update (bad input is InvalidInput)."""
    update: dict[str, Any] = {}
    fields = Targets.model_fields
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"known targets: {', '.join(fields)}"
            raise InvalidInput(f"bad --target {item!r}: expected NAME:VALUE", hint=hint)
        update[key] = value
    return update


def effective_targets(facility: Facility, overrides: dict[str, Any]) -> Targets:
    if not overrides:
        return facility.targets
    data = facility.targets.model_dump()
    data.update(overrides)
    try:
        return Targets.model_validate(data)
    except Exception as exc:  # pydantic ValidationError: say which target and why, no traceback
        raise InvalidInput(
            f"bad --target value: {exc}".splitlines()[0] + " " + str(exc).splitlines()[-1].strip(),
            hint="e.g. --target uptime:III --target tia942:3 --target ashrae:A2",
        ) from None


def load_rule_module(path: str | Path) -> list[Rule]:
    """Import a user's rule file; the rules its ``@rule`` decorators registered are returned."""
    p = Path(path)
    if not p.is_file():
        raise InvalidSpec(f"rule module not found: {p}", hint="paths in checks.rule_modules are relative to the spec")
    name = "aidc_user_rules_" + hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise InvalidSpec(f"cannot import rule module {p}", hint="give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise InvalidSpec(
            f"rule module {p} failed to import: {type(exc).__name__}: {exc}",
            hint="run it with python to see the full error",
        ) from None
    return [r for r in REGISTRY.values() if r.module == name]


def entry_point_rules() -> list[Rule]:
    """Rules from installed packages that declare an ``aidc.rules`` entry point (a module or a list of rules)."""
    out: list[Rule] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        loaded = ep.load()
        if isinstance(loaded, Rule):
            out.append(loaded)
        elif isinstance(loaded, (list, tuple)):
            out.extend(r for r in loaded if isinstance(r, Rule))
        else:
            module = getattr(loaded, "__name__", ep.value.split(":")[0])
            out.extend(r for r in REGISTRY.values() if r.module == module)
    return out


def catalog(facility: Facility | None = None) -> list[Rule]:
    """Built-in rules, then entry-point rules, then the spec's own rule modules (a later id replaces)."""
    rules = {r.id: r for r in builtin_rules()}
    for r in entry_point_rules():
        rules[r.id] = r
    if facility is not None and facility.checks.rule_modules:
        base = Path(facility.source.file).parent if facility.source is not None else Path.cwd()
        for rel in facility.checks.rule_modules:
            for r in load_rule_module(base / rel):
                rules[r.id] = r
    return list(rules.values())


def _settings_problems(facility: Facility, rules: dict[str, Rule]) -> list[SpecProblem]:
    """Unknown rule ids or threshold names in `checks:` are spec errors, with a suggestion."""
    source = facility.source
    problems: list[SpecProblem] = []

    def problem(path: tuple[Any, ...], message: str, hint: str) -> None:
        if source is not None:
            problems.append(source.problem(path, message, hint))
        else:
            problems.append(SpecProblem("<facility>", None, None, ".".join(map(str, path)), message, hint))

    def suggest(word: str, known: Iterable[str]) -> str:
        close = difflib.get_close_matches(word, list(known), n=1)
        return f"did you mean `{close[0]}`?" if close else "see `aidc check --list-rules`"

    for i, rid in enumerate(facility.checks.disable):
        if rid not in rules:
            problem(("checks", "disable", i), f"no rule with id {rid!r}", suggest(rid, rules))
    for rid, values in facility.checks.thresholds.items():
        if rid not in rules:
            problem(("checks", "thresholds", rid), f"no rule with id {rid!r}", suggest(rid, rules))
            continue
        for name, value in values.items():
            default = rules[rid].thresholds.get(name)
            if name not in rules[rid].thresholds:
                known = ", ".join(rules[rid].thresholds) or "none"
                problem(
                    ("checks", "thresholds", rid, name),
                    f"rule {rid} has no threshold {name!r}",
                    f"its thresholds: {known}",
                )
            elif isinstance(default, (int, float)) != isinstance(value, (int, float)):
                problem(
                    ("checks", "thresholds", rid, name),
                    f"threshold {name!r} wants a value like {default!r}",
                    "give the same kind of value as the default",
                )
    return problems


@paused_gc()
def run_check(
    facility: Facility,
    targets: dict[str, Any] | None = None,
    disable: Iterable[str] = (),
    rules: list[Rule] | None = None,
) -> Report:
    """Evaluate every enabled rule; findings point at the spec node to change (line/col when known)."""
    all_rules = rules if rules is not None else catalog(facility)
    by_id = {r.id: r for r in all_rules}
    raise_problems(_settings_problems(facility, by_id))
    disabled = set(facility.checks.disable) | set(disable)
    unknown = sorted(disabled - set(by_id))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(by_id), n=1)
        raise InvalidInput(f"no rule with id {unknown[0]!r}", hint=f"did you mean `{close[0]}`?" if close else None)
    eff = effective_targets(facility, targets or {})
    derived = derive(facility)
    ratings = achieved_ratings(facility, derived)
    tia = tia942_table(facility, derived)
    ratings = {"uptime": ratings["uptime"], "tia942": tia942_ratings(tia), **ratings}
    ctx = Context(facility, derived, eff, ratings, {"tia942": tia})
    findings: list[Finding] = []
    skipped: list[str] = []
    active = [r for r in all_rules if r.id not in disabled]
    for r in active:
        overrides = facility.checks.thresholds.get(r.id, {})
        t = {**r.thresholds, **overrides}
        result = r.fn(ctx, t)
        if result is None:
            skipped.append(r.id)
            continue
        outcomes = [result] if isinstance(result, Outcome) else list(result)
        if not outcomes:
            skipped.append(r.id)
            continue
        findings.extend(_findings(r, outcomes, facility, r.citation(overrides)))
    return Report(facility, derived, eff, ratings, findings, active, skipped)


def _findings(r: Rule, outcomes: list[Outcome], facility: Facility, citation: str) -> list[Finding]:
    """Failures one per subject; passes folded into one line per rule so a big hall stays readable."""
    bad = {"error": "fail", "warning": "warn", "info": "info"}[r.severity]
    source = facility.source
    out = []
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        line, col = source.locate(o.path) if source is not None else (None, None)
        out.append(Finding(r, bad, o.measured, o.expected, o.subject, o.note, o.path, citation, line, col))  # type: ignore[arg-type]
    if not failed:
        o = outcomes[0]
        subject = o.subject if len(outcomes) == 1 else f"all {len(outcomes)} checked"
        line, col = source.locate(o.path) if source is not None else (None, None)
        out.append(Finding(r, "pass", o.measured, o.expected, subject, o.note, o.path, citation, line, col))
    return out
