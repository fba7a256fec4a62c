"""Helpers for rule tests: load an example, change a few fields, write it back as a spec file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"


@pytest.fixture()
def variant(tmp_path: Path) -> Callable[..., Path]:
    """variant("dgx-h100-tier3.yaml", edit) → path of a copy after edit(data) changed it."""

    def make(example: str, edit: Callable[[dict[str, Any]], None] | None = None, name: str = "facility.yaml") -> Path:
        data = yaml.safe_load((EXAMPLES / example).read_text())
        if edit is not None:
            edit(data)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return make
