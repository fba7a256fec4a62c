"""Mutation testing of the standards rules' own bodies, which mutmut cannot reach: ``make mutate-rules``.

mutmut 3.8.1 never mutates a decorated function (``mutmut/mutation/file_mutation.py`` skips every decorator but
``staticmethod``/``classmethod``), and every standards rule is an ``@rule(...)`` function, so ``make mutate`` only
ever changed the modules' undecorated helpers. This script makes the mutants mutmut leaves out, one at a time,
inside the ``@rule`` bodies only:

- each comparison operator flipped: ``>=``↔``>``, ``<=``↔``<``, ``==``↔``!=``, ``is``↔``is not``, ``in``↔``not in``;
- each ``and``/``or`` chain flipped (every operator of one chain, one mutant).

Each mutant is written into a copy of ``src/`` in a temporary directory, which goes first on ``PYTHONPATH``; the
working tree is never edited, so there is nothing to restore. A mutant is killed when the standards suites fail
with it (``pytest -x``); in ``test_thresholds.py`` the per-rule parametrized cases of other rules are deselected
(a flip in one rule cannot change another's verdict), every other test runs.

    python tests/mutation/rule_bodies.py                      # every module with @rule functions
    python tests/mutation/rule_bodies.py power network --json
    python tests/mutation/rule_bodies.py --list power         # the mutants, without running anything

The file is not named ``test_*.py``: pytest does not collect it. Progress goes to stderr, the table (or JSON) to
stdout; the exit status is 1 when a mutant survived. Survivors and why some are equivalent: docs/testing.md,
"Rule bodies".
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STANDARDS = ROOT / "src" / "aidc" / "standards"
# The suites that check rules in this process, the threshold suite first: its per-rule cases kill most mutants, and
# with -x the run stops at the first failure.
SUITES = sorted(
    (str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "standards").glob("test_*.py")),
    key=lambda name: (not name.endswith("test_thresholds.py"), name),
)
# test_thresholds.py's cases parametrized by rule id: only the mutated rule's are run.
PER_RULE = ("test_the_rule_at_below_and_above_its_threshold", "test_the_rule_fires_on_a_design_that_breaks_it")

COMPARE = {
    ast.GtE: (r">=", ">"),
    ast.Gt: (r">(?!=)", ">="),
    ast.LtE: (r"<=", "<"),
    ast.Lt: (r"<(?!=)", "<="),
    ast.Eq: (r"==", "!="),
    ast.NotEq: (r"!=", "=="),
    ast.IsNot: (r"\bis\s+not\b", "is"),
    ast.Is: (r"\bis\b", "is not"),
    ast.NotIn: (r"\bnot\s+in\b", "in"),
    ast.In: (r"\bin\b", "not in"),
}
BOOL = {ast.And: (r"\band\b", "or"), ast.Or: (r"\bor\b", "and")}
# What may stand between two operands besides the operator: brackets closing/opening them, blanks, line joins.
FILLER = re.compile(r"[\s()\\]*")


@dataclass(frozen=True)
class Mutant:
    module: str
    rule: str
    line: int
    old: str  # the source line as it is
    new: str  # the line as the mutant has it (first line of a multi-line expression)
    spans: tuple[tuple[int, int], ...]  # offsets into the module's source of the operator(s) replaced
    text: str  # what replaces each


def _offsets(source: str) -> list[int]:
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _rule_id(fn: ast.FunctionDef) -> str | None:
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, "id", getattr(dec.func, "attr", "")) == "rule":
            if dec.args and isinstance(dec.args[0], ast.Constant):
                return str(dec.args[0].value)
            for kw in dec.keywords:
                if kw.arg == "id" and isinstance(kw.value, ast.Constant):
                    return str(kw.value.value)
    return None


def _between(source: str, starts: list[int], a: ast.expr, b: ast.expr, pattern: str) -> tuple[int, int] | None:
    """Where the operator between operands ``a`` and ``b`` sits, if nothing but brackets and blanks surround it."""
    lo = starts[a.end_lineno - 1] + a.end_col_offset  # type: ignore[operator]
    hi = starts[b.lineno - 1] + b.col_offset
    gap = source[lo:hi]
    found = re.search(pattern, gap)
    if found is None or not FILLER.fullmatch(gap[: found.start()]) or not FILLER.fullmatch(gap[found.end() :]):
        return None  # a comment or something unexpected in between: leave this one alone
    return lo + found.start(), lo + found.end()


def mutants_of(module: str) -> list[Mutant]:
    path = STANDARDS / f"{module}.py"
    source = path.read_text()
    lines = source.splitlines()
    starts = _offsets(source)
    out: list[Mutant] = []

    def add(rule: str, spans: list[tuple[int, int]], text: str) -> None:
        mutated = _mutated_source(source, Mutant(module, rule, 0, "", "", tuple(spans), text))
        line = source.count("\n", 0, spans[0][0]) + 1
        new_line = mutated.splitlines()[line - 1]
        out.append(Mutant(module, rule, line, lines[line - 1].strip(), new_line.strip(), tuple(spans), text))

    for fn in ast.parse(source).body:
        if not isinstance(fn, ast.FunctionDef) or (rule := _rule_id(fn)) is None:
            continue
        for stmt in fn.body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Compare):
                    operands = [node.left, *node.comparators]
                    for i, op in enumerate(node.ops):
                        pattern, flipped = COMPARE[type(op)]
                        span = _between(source, starts, operands[i], operands[i + 1], pattern)
                        if span is not None:
                            add(rule, [span], flipped)
                elif isinstance(node, ast.BoolOp):
                    pattern, flipped = BOOL[type(node.op)]
                    spans = [_between(source, starts, a, b, pattern) for a, b in pairwise(node.values)]
                    if all(s is not None for s in spans):
                        add(rule, [s for s in spans if s is not None], flipped)
    return out


def _mutated_source(source: str, mutant: Mutant) -> str:
    mutated = source
    for lo, hi in sorted(mutant.spans, reverse=True):
        mutated = mutated[:lo] + mutant.text + mutated[hi:]
    return mutated


def rule_modules() -> list[str]:
    found = []
    for path in sorted(STANDARDS.glob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and _rule_id(n) for n in tree.body):
            found.append(path.stem)
    # smallest first: a run cut short has finished whole modules
    return sorted(found, key=lambda m: len(mutants_of(m)))


def _pytest(tree: Path, rule: str | None, python: str) -> subprocess.CompletedProcess[str]:
    args = [python, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *SUITES]
    if rule is not None:
        args += ["-k", f"not ({' or '.join(PER_RULE)}) or {rule}"]
    # no bytecode: an `==`→`!=` mutant has the original's size, and a .pyc of the same second would be taken for it
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)


def run(modules: list[str], python: str) -> tuple[dict[str, list[Mutant]], dict[Mutant, str]]:
    every = {m: mutants_of(m) for m in modules}
    verdicts: dict[Mutant, str] = {}
    with tempfile.TemporaryDirectory(prefix="rule-bodies-") as tmp:
        tree = Path(tmp)
        shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        where = subprocess.run(
            [python, "-c", "import aidc.standards; print(aidc.standards.__file__)"],
            env={**os.environ, "PYTHONPATH": str(tree / "src")},
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not where.startswith(str(tree)):
            sys.exit(f"the tests would import aidc from {where or '?'}, not from the copy under {tree}")
        print("clean run of the standards suites …", file=sys.stderr)
        clean = _pytest(tree, None, python)
        if clean.returncode != 0:
            sys.exit("the standards suites fail without any mutant; fix that first:\n" + clean.stdout[-3000:])
        total = sum(len(v) for v in every.values())
        done = 0
        for module, mutants in every.items():
            target = tree / "src" / "aidc" / "standards" / f"{module}.py"
            source = (STANDARDS / f"{module}.py").read_text()
            for mutant in mutants:
                done += 1
                began = time.monotonic()
                target.write_text(_mutated_source(source, mutant))
                try:
                    result = _pytest(tree, mutant.rule, python)
                finally:
                    target.write_text(source)
                # 1: a test failed (killed); 0: all passed (survived); anything else (an import error, a crash,
                # no test collected) is reported as it is
                verdicts[mutant] = {0: "survived", 1: "killed"}.get(result.returncode, f"error {result.returncode}")
                print(
                    f"[{done}/{total}] {verdicts[mutant]:8} {module}:{mutant.line} {mutant.rule} | {mutant.new}"
                    f"  ({time.monotonic() - began:.0f} s)",
                    file=sys.stderr,
                )
    return every, verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("modules", nargs="*", help="standards modules (default: every one with @rule functions)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--list", action="store_true", help="only list the mutants")
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose pytest runs the suites")
    args = parser.parse_args(argv)
    known = rule_modules()
    modules = args.modules or known
    unknown = [m for m in modules if m not in known]
    if unknown:
        parser.error(f"no @rule functions in {', '.join(unknown)} (modules with rules: {', '.join(known)})")
    if args.list:
        listed = [asdict(m) for mod in modules for m in mutants_of(mod)]
        if args.json:
            print(json.dumps(listed, indent=1))
        else:
            for m in listed:
                print(f"{m['module']}:{m['line']}\t{m['rule']}\t{m['new']}")
        return 0
    started = time.monotonic()
    every, verdicts = run(modules, args.python)
    table: list[dict[str, Any]] = []
    for module, mutants in every.items():
        survivors = [m for m in mutants if verdicts[m] != "killed"]
        table.append(
            {
                "module": module,
                "mutants": len(mutants),
                "killed": len(mutants) - len(survivors),
                "survived": [
                    {"rule": m.rule, "line": m.line, "old": m.old, "new": m.new, "verdict": verdicts[m]}
                    for m in survivors
                ],
            }
        )
    if args.json:
        print(json.dumps({"modules": table, "seconds": round(time.monotonic() - started)}, indent=1))
    else:
        print(f"{'module':14} {'mutants':>7} {'killed':>7} {'survived':>8}")
        for row in table:
            print(f"{row['module']:14} {row['mutants']:7} {row['killed']:7} {len(row['survived']):8}")
        for row in table:
            for s in row["survived"]:
                print(f"  {s['verdict']}: {row['module']}:{s['line']} {s['rule']} | {s['new']}   (was: {s['old']})")
        print(f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    return 1 if any(row["survived"] for row in table) else 0


if __name__ == "__main__":
    sys.exit(main())
