"""`mutmut`, made to mutate the standards rules' own bodies too: ``python tools/mutate.py run 'aidc.standards.power*'``.

mutmut 3.8.1 leaves out every decorated function (mutmut/mutation/file_mutation.py, "ignore decorated functions":
copying one for its trampoline would run its decorator once per copy). A standards rule is a function under
``@rule(...)``, so with plain mutmut no rule's body — none of the threshold comparisons — is ever mutated; only the
undecorated helpers are (``_above``, ``_flag``...). ``@rule`` only registers the function under its id, so it is safe to
trampoline: the trampoline keeps the decorator (the registry holds the trampoline, which runs the original or the
mutant under test), and the original and the mutated copies lose it (each would otherwise register itself in the
trampoline's place, the last mutant winning). Any other decorated function is still left out, as mutmut does.

Everything else is mutmut's own command line (``run``, ``results``, ``show``...), version 3.8.1 (the ``mutate``
extra pins it; the two functions patched here are internal to it).
"""

from __future__ import annotations

import sys
from typing import Any

import libcst as cst
import libcst.matchers as m
from mutmut.mutation import file_mutation


def is_rule(node: cst.CSTNode) -> bool:
    """A function whose one decorator is ``@rule(...)``."""
    return (
        isinstance(node, cst.FunctionDef)
        and len(node.decorators) == 1
        and m.matches(node.decorators[0].decorator, m.Call(func=m.Name("rule")))
    )


_skip = file_mutation.MutationVisitor._skip_node_and_children
_arrange = file_mutation.function_trampoline_arrangement


def _skip_unless_rule(self: Any, node: cst.CSTNode) -> bool:
    if is_rule(node):
        position = self.get_metadata(file_mutation.PositionProvider, node, None)
        return bool(position and position.start.line in self._ignored_node_lines)  # `# pragma: no mutate` still holds
    return bool(_skip(self, node))


def _arrange_rule(function: cst.FunctionDef, mutants: Any, class_name: str | None) -> Any:
    declarations, methods, assignments, names = _arrange(function, mutants, class_name)
    if is_rule(function):
        trampoline, *copies = methods
        methods = [trampoline, *(copy.with_changes(decorators=[]) for copy in copies)]
    return declarations, methods, assignments, names


file_mutation.MutationVisitor._skip_node_and_children = _skip_unless_rule  # type: ignore[method-assign]
file_mutation.function_trampoline_arrangement = _arrange_rule

if __name__ == "__main__":
    from mutmut.__main__ import cli

    sys.exit(cli())
