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
