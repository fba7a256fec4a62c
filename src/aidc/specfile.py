"""Load a YAML spec into a pydantic model, reporting every problem as file:line:col plus field path.

Shared by every spec aidc reads (pipelines, facilities, workloads), so all of them point at the same
place the same way: ``pipeline.yaml:12:7: stages[1].with.epochs: Input should be a valid integer``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from aidc.errors import InvalidSpec, SpecProblem

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[str | int, ...]


class SpecSource:
    """A parsed YAML document plus the line:col of every node, addressable by field path."""

    def __init__(
        self,
        data: Any,
        positions: dict[Path_, tuple[int, int]],
        file: str,
        key_positions: dict[Path_, tuple[int, int]] | None = None,
    ) -> None:
        self.data, self.positions, self.file = data, positions, file
        self.key_positions = key_positions or {}  # where a mapping's key is written (positions: its value)

    def locate(self, path: Path_) -> tuple[int | None, int | None]:
        """Line and column (1-based) of the node at ``path``, or of its nearest existing ancestor."""
        for cut in range(len(path), -1, -1):
            hit = self.positions.get(tuple(path[:cut]))
            if hit:
                return hit
        return None, None

    def problem(self, path: Path_, message: str, hint: str | None = None) -> SpecProblem:
        line, col = self.locate(path)
        return SpecProblem(self.file, line, col, format_path(path), message, hint)

    def key_problem(self, path: Path_, message: str, hint: str | None = None) -> SpecProblem:
        """A problem with the key itself (unknown field): points at the key, not at its value."""
        line, col = self.key_positions.get(tuple(path)) or self.locate(path)
        return SpecProblem(self.file, line, col, format_path(path), message, hint)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONSTRUCTOR = yaml.SafeLoader("")  # resolves one scalar node at a time (ints, floats, bools, dates, null)


def _scalar(node: yaml.Node) -> Any:
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    return _CONSTRUCTOR.construct_object(node, deep=True)


def _walk(
    node: yaml.Node, path: Path_, positions: dict[Path_, tuple[int, int]], keys: dict[Path_, tuple[int, int]], file: str
) -> Any:
    positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if key_node.tag == "tag:yaml.org,2002:str" else _scalar(key_node)
            here = path + (key,)
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            keys[here] = (line, col)
            if key in out:
                problem = SpecProblem(
                    file,
                    line,
                    col,
                    format_path(here),
                    "duplicate key",
                    "each key may appear once in a mapping; remove or rename one",
                )
                raise InvalidSpec.from_problems([problem])
            out[key] = _walk(value_node, here, positions, keys, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(child, path + (i,), positions, keys, file) for i, child in enumerate(node.value)]
    return _scalar(node)


# How far aliases may multiply a document: each alias repeats its anchor's whole subtree, so a few hundred bytes of
# nested aliases expand to billions of values (the "billion laughs"). Anchors that save typing stay well inside this.
EXPANSION_LIMIT = 10
EXPANSION_FLOOR = 10_000


def _bound_aliases(root: yaml.Node | None, file: str) -> None:
    """Refuse a document whose aliases expand it beyond ``EXPANSION_LIMIT`` × its own nodes (and a floor), or that
    refers to itself. Sizes are counted per distinct node (an alias is the same node object), so the check is linear
    in the text whatever the expansion would be; it points at the first alias of the largest expanding anchor."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    worst: list[yaml.Node] = []

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            worst.append(node)
            return sizes[key]
        if key in in_progress:
            raise _too_large(node, file, "refers to itself")
        in_progress.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        total = 1 + sum(size(child) for child in children)
        in_progress.discard(key)
        sizes[key] = total
        return total

    if root is None:
        return
    expanded = size(root)
    if expanded > max(EXPANSION_FLOOR, EXPANSION_LIMIT * len(sizes)):
        node = max(worst, key=lambda n: sizes[id(n)])
        raise _too_large(node, file, f"expands to {expanded:,} values from {len(sizes):,} written")


def _too_large(node: yaml.Node, file: str, what: str) -> InvalidSpec:
    mark = node.start_mark
    problem = SpecProblem(
        file,
        mark.line + 1,
        mark.column + 1,
        "",
        f"YAML aliases: the document {what}",
        "write the values out instead of repeating anchors (&name / *name) inside one another",
    )
    return InvalidSpec.from_problems([problem])


def parse_yaml(text: str, file: str = "<string>") -> SpecSource:
    """Parse YAML text keeping node positions; syntax errors and alias bombs become InvalidSpec with line:col."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = SpecProblem(
            file,
            line,
            col,
            "",
            f"YAML syntax error: {exc.problem}",
            "check indentation, colons and quotes on this line",
        )
        raise InvalidSpec.from_problems([problem]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (control characters): no mark
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        problem = SpecProblem(
            file,
            line,
            col,
            "",
            f"YAML cannot contain character #x{exc.character:04x}"
            if isinstance(exc.character, int)
            else f"YAML syntax error: {exc.reason}",
            "remove control characters; save the file as plain UTF-8 text",
        )
        raise InvalidSpec.from_problems([problem]) from None
    _bound_aliases(root, file)
    positions: dict[Path_, tuple[int, int]] = {}
    keys: dict[Path_, tuple[int, int]] = {}
    data = _walk(root, (), positions, keys, file) if root is not None else None
    return SpecSource(data, positions, file, keys)


def read_yaml(path: str | Path) -> SpecSource:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidSpec(
            f"no such file: {p}", hint="check the path; it is relative to the current directory"
        ) from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise InvalidSpec(f"cannot read {p}: {exc}", hint="give the path of a UTF-8 YAML file") from None
    return parse_yaml(text, str(p))


def _hint_for(err: ErrorDetails) -> str | None:
    kind = err.get("type", "")
    if kind == "missing":
        return "add this field"
    if kind == "extra_forbidden":
        return "remove it, or check its spelling against `aidc schema`"
    if kind.startswith(("int_", "float_")):
        return "give a number"
    if kind == "literal_error" or kind == "enum":
        return "use one of the allowed values"
    return None


def problems_from(exc: ValidationError, source: SpecSource, prefix: Path_ = ()) -> list[SpecProblem]:
    """Turn a pydantic ValidationError into located SpecProblems (prefix = where the model sits)."""
    problems = []
    for err in exc.errors():
        loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"]
        if err.get("type") not in ("missing",) and "input" in err and not isinstance(err["input"], (dict, list)):
            msg = f"{msg} (got {err['input']!r})"
        where = source.key_problem if err.get("type") == "extra_forbidden" else source.problem
        problems.append(where(loc, msg, _hint_for(err)))
    return problems


def raise_problems(problems: list[SpecProblem]) -> None:
    if problems:
        raise InvalidSpec.from_problems(problems)


def validate(model: type[M], source: SpecSource, data: Any = None, prefix: Path_ = ()) -> M:
    """Validate ``data`` (default: the whole document) against ``model``; located errors on failure."""
    payload = source.data if data is None and not prefix else data
    if payload is None:
        raise_problems(
            [source.problem(prefix, "the document is empty", "see the examples/ folder for a spec to start from")]
        )
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise_problems(problems_from(exc, source, prefix))
    raise AssertionError("unreachable")


def load_spec(model: type[M], path: str | Path) -> M:
    """Read and validate a YAML spec file in one call."""
    return validate(model, read_yaml(path))
