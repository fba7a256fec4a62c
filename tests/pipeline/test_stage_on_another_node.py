"""A stage that fails on a node without the run's folder (another node of a multi-node cluster) fails with its own
error, and its traceback still reaches the stage log the runner writes — not a FileNotFoundError about the log.

Real StageContext and runner code; no Ray is needed to stand for "another node": the run's folder is simply absent
where the stage runs, which is what that node sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aidc.errors import InvalidInput
from aidc.pipeline.runner import _execute_stage
from aidc.pipeline.stage import Stage, StageContext


class Failing(Stage):
    kind = "failing"

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        ctx.log("reading the data")
        raise InvalidInput("column 'label' is missing", hint="name the label column")


class Events:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def put(self, event: dict[str, Any]) -> None:
        self.seen.append(event)


def test_a_failure_on_a_node_without_the_run_folder_keeps_its_own_error_and_traceback(tmp_path: Path) -> None:
    events = Events()
    absent = tmp_path / "home" / "runs" / "run-1" / "prep.log"  # the runner's host has it; this node does not
    ctx = StageContext("run-1", "prep", None, events, str(absent), str(tmp_path / "home"))
    with pytest.raises(InvalidInput, match="column 'label' is missing"):
        _execute_stage(Failing, ctx, None, {})
    assert not absent.parent.exists()
    travelled = [e for e in events.seen if e["type"] == "log" and e.get("written") is False]
    assert [e["message"] for e in travelled][0] == "reading the data"
    traceback = travelled[-1]
    assert "Traceback (most recent call last)" in traceback["line"] and "raise InvalidInput" in traceback["line"]
    assert traceback["message"].startswith("InvalidInput: column 'label' is missing")
