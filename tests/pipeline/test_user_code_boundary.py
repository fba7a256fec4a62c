"""The user-code boundary: a failure in the user's code, data or spec is reported as theirs, with their file and line;
a failure inside aidc says it is ours and how to report it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from aidc.errors import InvalidInput, PlatformFault, StageFailed, UserCodeError
from aidc.pipeline.boundary import classify, from_users_code

USERS_MODEL = """\
import json


def build(shape):
    width = shape[1]
    return json.loads("{" * width)  # their bug raises inside a library they call


def scale(x):
    return x / 0
"""


def users_module(tmp_path: Path) -> ModuleType:
    path = tmp_path / "mymodel.py"
    path.write_text(USERS_MODEL)
    spec = importlib.util.spec_from_file_location("mymodel", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOG = "/dev/null"


def aidc_calls(fn, *args):  # type: ignore[no-untyped-def]
    """aidc calling into the user's code, as a stage does (the frame of an aidc module on the stack)."""
    from aidc.pipeline import runner

    class Stage:
        def run(self, ctx, config, inputs):  # type: ignore[no-untyped-def]
            return fn(*args)

    ctx = type(  # a StageContext's part that _execute_stage uses (the log to /dev/null)
        "Ctx",
        (),
        {
            "log_path": LOG,
            "stage": "train",
            "run_id": "r1",
            "placement": None,
            "flush": lambda self: None,
            "append_log": lambda self, text, message: True,
        },
    )()
    return runner._execute_stage(Stage, ctx, None, {})


def test_an_error_raised_in_the_users_file_points_at_their_line(tmp_path: Path) -> None:
    mine = users_module(tmp_path)
    with pytest.raises(UserCodeError) as caught:
        aidc_calls(mine.scale, 1.0)
    error = caught.value
    assert error.where == f"{tmp_path / 'mymodel.py'}:10"
    assert error.stage == "train" and error.run_id == "r1"
    assert "ZeroDivisionError" in error.message and "in your code" in error.message
    assert "mymodel.py" in error.cause and "return x / 0" in error.cause  # the last frames of their code
    assert error.exit_code == 2


def test_an_error_a_library_raises_for_the_users_code_is_still_theirs(tmp_path: Path) -> None:
    mine = users_module(tmp_path)
    with pytest.raises(UserCodeError) as caught:
        aidc_calls(mine.build, (8, 3))
    assert caught.value.where == f"{tmp_path / 'mymodel.py'}:6"  # their line, not json's
    assert "JSONDecodeError" in caught.value.message


def test_an_error_raised_inside_aidc_is_a_platform_fault_to_report() -> None:
    fault = classify(KeyError("slot"), stage="export", run_id="r2", log_path="/tmp/x.log", spec_at="p.yaml:3")
    assert isinstance(fault, PlatformFault) and "inside aidc" in fault.message
    assert "report it with /tmp/x.log" in (fault.hint or "") and "aidc run --resume r2" in (fault.hint or "")


def test_a_bug_inside_aidc_called_by_the_user_is_not_blamed_on_them() -> None:
    from aidc.pipeline.spec import pipeline_from_json

    with pytest.raises(Exception) as caught:
        pipeline_from_json(None)  # type: ignore[arg-type]  # aidc raises deep inside its own code
    assert from_users_code(caught.value, stage="s", run_id="r", log_path="l") is None


def test_refused_input_is_the_users_and_names_the_stage_in_their_spec() -> None:
    error = classify(
        InvalidInput("no file data/x.npz", hint="check the path"),
        stage="data",
        run_id="r3",
        log_path="l",
        spec_at="p.yaml:6",
    )
    assert isinstance(error, UserCodeError)
    assert (error.where, error.hint) == ("p.yaml:6", "check the path")


def test_an_environment_failure_is_neither_theirs_nor_a_bug() -> None:
    from aidc.errors import BackendUnavailable

    error = classify(BackendUnavailable("S3 is down"), stage="data", run_id="r4", log_path="l", spec_at=None)
    assert type(error) is StageFailed
