"""A spec with a character YAML forbids is a located InvalidSpec, not a traceback (found by API fuzzing)."""

from __future__ import annotations

import pytest

from aidc.errors import InvalidSpec
from aidc.specfile import parse_yaml


def test_a_control_character_is_reported_with_its_line_and_column() -> None:
    with pytest.raises(InvalidSpec) as exc:
        parse_yaml("pipeline: x\nstages: \x07\n", "p.yaml")
    assert str(exc.value).startswith("p.yaml:2:9: YAML cannot contain character #x0007")
