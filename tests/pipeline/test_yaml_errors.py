"""A spec with a character YAML forbids is a located InvalidSpec, not a traceback (found by API fuzzing)."""

from __future__ import annotations

import pytest

from aidc.errors import InvalidSpec
from aidc.specfile import parse_yaml


def test_a_control_character_is_reported_with_its_line_and_column() -> None:
    with pytest.raises(InvalidSpec) as exc:
        parse_yaml("pipeline: x\nstages: \x07\n", "p.yaml")
    assert str(exc.value).startswith("p.yaml:2:9: YAML cannot contain character #x0007")


def test_a_located_problem_fills_each_part_of_the_error_once() -> None:
    """The API's error body and the CLI line both come from it: the hint must not hide in the message too."""
    with pytest.raises(InvalidSpec) as exc:
        parse_yaml("a: 1\na: 2\n", "p.yaml")
    assert exc.value.to_dict() == {
        "code": "invalid_spec",
        "message": "p.yaml:2:1: a: duplicate key",
        "where": None,
        "hint": "each key may appear once in a mapping; remove or rename one",
    }
    assert str(exc.value) == f"p.yaml:2:1: a: duplicate key (hint: {exc.value.hint})"


def test_an_alias_bomb_is_refused_at_the_anchor_it_multiplies() -> None:
    from aidc.specfile import parse_yaml

    bomb = "\n".join(["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 30)]) + "\n"
    with pytest.raises(InvalidSpec) as caught:  # 2^31 values if it were built; refused before anything is
        parse_yaml(bomb, "pipeline.yaml")
    assert "pipeline.yaml:29:" in str(caught.value) and "expands to 4,294,967,293 values" in str(caught.value)


def test_anchors_that_save_typing_are_still_welcome() -> None:
    from aidc.specfile import parse_yaml

    spec = "base: &b {x: 1, y: 2}\nracks:\n" + "".join("  - cfg: *b\n" for _ in range(50))
    assert parse_yaml(spec).data["racks"][49] == {"cfg": {"x": 1, "y": 2}}


def test_a_document_that_refers_to_itself_is_refused() -> None:
    from aidc.specfile import parse_yaml

    with pytest.raises(InvalidSpec, match="refers to itself"):
        parse_yaml("a: &a [1, *a]\n")
