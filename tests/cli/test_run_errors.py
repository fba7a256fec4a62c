"""`aidc run` on bad input: one located message (file:line:col, field, what, hint), exit 2, no traceback, no run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aidc.cli.app import app

GOOD = Path(__file__).resolve().parents[2] / "examples" / "digits" / "pipeline.yaml"


def run(tmp_path: Path, text: str) -> tuple[int, str]:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(app, ["run", str(spec)])
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _home(aidc_home: Path) -> None:
    pass


def test_an_unknown_stage_kind_is_located_and_gets_a_suggestion(tmp_path: Path) -> None:
    code, out = run(tmp_path, GOOD.read_text().replace("uses: evaluate", "uses: evaluat"))
    assert code == 2
    assert "pipeline.yaml:" in out and "stages[2].uses" in out and "unknown stage kind 'evaluat'" in out
    assert "did you mean 'evaluate'" in out and "Traceback" not in out


def test_a_mistyped_field_names_its_line_and_what_was_expected(tmp_path: Path) -> None:
    code, out = run(tmp_path, GOOD.read_text().replace("epochs: 12", "epochs: twelve"))
    line = next(i for i, l in enumerate(GOOD.read_text().splitlines(), 1) if "epochs: 12" in l)
    assert code == 2
    assert f"pipeline.yaml:{line}:" in out and "stages[1].with.epochs" in out and "integer" in out
    assert "Traceback" not in out


def test_an_input_that_names_no_earlier_output_is_refused(tmp_path: Path) -> None:
    code, out = run(tmp_path, GOOD.read_text().replace("{data: data.splits}", "{data: data.split}", 1))
    assert code == 2
    assert "stage 'data' has no output 'split'" in out and "did you mean 'splits'" in out


def test_malformed_yaml_is_a_located_error(tmp_path: Path) -> None:
    code, out = run(tmp_path, "pipeline: digits\nstages:\n  - name: data\n    uses: [data\n")
    assert code == 2
    assert "pipeline.yaml:" in out and "Traceback" not in out


def test_a_missing_file_is_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "nope.yaml" in result.output


def test_resume_and_a_pipeline_together_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(GOOD), "--resume", "x"])
    assert result.exit_code == 2 and "not both" in result.output


def test_resuming_an_unknown_run_says_how_to_find_one() -> None:
    result = CliRunner().invoke(app, ["run", "--resume", "no-such-run"])
    assert result.exit_code != 0 and "no run 'no-such-run'" in result.output and "aidc runs list" in result.output


def test_a_stage_that_refuses_the_users_data_says_it_is_theirs_and_where(tmp_path: Path) -> None:
    """The run starts (the spec is valid) and its data stage finds no file: the user's fault, pointing at the stage
    in their spec, exit 2 — not a crash of aidc."""
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "pipeline: mine\nstages:\n  - name: data\n    uses: data\n    with:\n"
        f"      source: file:{tmp_path / 'absent.npz'}\n"
    )
    result = CliRunner().invoke(app, ["run", str(spec)])
    assert result.exit_code == 2, result.output
    assert "stage 'data' refused its input" in result.output and "absent.npz does not exist" in result.output
    assert f"where:  {spec}:3" in result.output  # the stage's line in their file
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("command", "name", "text"),
    [
        ("run", "pipeline.yaml", GOOD.read_text().replace("uses: evaluate", "uses: evaluat")),
        ("run", "pipeline.yaml", GOOD.read_text().replace("{data: data.splits}", "{data: data.split}", 1)),
        (
            "plan",
            "workload.yaml",
            (GOOD.parents[1] / "workloads" / "chat-inference.yaml").read_text().replace("gpu:", "gpux:"),
        ),
        ("check", "facility.yaml", "a: 1\na: 2\n"),
    ],
)
def test_a_spec_error_says_its_hint_once(tmp_path: Path, command: str, name: str, text: str) -> None:
    spec = tmp_path / name
    spec.write_text(text)
    result = CliRunner().invoke(app, [command, str(spec)])
    assert result.exit_code == 2, result.output
    problems = [line for line in result.output.splitlines() if f"{name}:" in line]
    assert problems and all(line.count("(hint:") <= 1 for line in problems), result.output
    assert "(hint:" in result.output
