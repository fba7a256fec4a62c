"""`aidc check` and `aidc schema facility` as a user runs them: exit codes, formats, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aidc.cli.app import app

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"
GOOD = str(EXAMPLES / "dgx-h100-tier3.yaml")
BAD = str(EXAMPLES / "dgx-h100-noncompliant.yaml")
runner = CliRunner()


def test_compliant_facility_exits_0_with_ratings_and_counts() -> None:
    result = runner.invoke(app, ["check", GOOD])
    assert result.exit_code == 0, result.output
    assert "0 fail" in result.output and "Ratings achieved" in result.output
    assert "Derived quantities" in result.output


def test_findings_exit_1_and_say_what_to_change() -> None:
    result = runner.invoke(app, ["check", BAD])
    assert result.exit_code == 1
    assert "AV-UT-FUEL" in result.output and "→ Add fuel storage" in result.output


def test_target_override_on_the_command_line() -> None:
    result = runner.invoke(app, ["check", GOOD, "--target", "uptime:IV", "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["targets"]["uptime"] == "IV"
    assert {f["rule"] for f in data["findings"] if f["status"] == "fail"} >= {"AV-UT-OVERALL", "AV-UT-CC"}


def test_fail_on_warning(tmp_path: Path) -> None:
    spec = tmp_path / "warm.yaml"
    spec.write_text(Path(GOOD).read_text().replace("inlet_c: {min: 18, max: 27}", "inlet_c: {min: 18, max: 30}"))
    assert runner.invoke(app, ["check", str(spec)]).exit_code == 0
    result = runner.invoke(app, ["check", str(spec), "--fail-on", "warning"])
    assert result.exit_code == 1 and "ENV-ASHRAE-REC" in result.output


def test_bad_spec_exits_2_with_location_and_no_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "typo.yaml"
    spec.write_text(Path(GOOD).read_text().replace("compartmentalized: true", "compartmentalised: true"))
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 2
    assert f"{spec}:" in result.output and "power.compartmentalised" in result.output
    assert "did you mean `compartmentalized`" in result.output
    assert "Traceback" not in result.output


def test_a_location_on_line_100_prints_as_written(tmp_path: Path) -> None:
    """`spec.yaml:100:3` must not reach the terminal as `spec.yaml💯3` (Rich reads ":100:" as an emoji code)."""
    spec = tmp_path / "long.yaml"
    text = Path(GOOD).read_text().replace("compartmentalized: true", "compartmentalised: true")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]  # room above the typo
    row = next(i for i, line in enumerate(lines) if "compartmentalised" in line)
    lines[row:row] = ["#"] * (99 - row)  # push the typo onto line 100
    spec.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 2
    assert f"{spec}:100:" in result.output, result.output


def test_missing_file_and_bad_target_exit_2() -> None:
    assert runner.invoke(app, ["check", "nope.yaml"]).exit_code == 2
    result = runner.invoke(app, ["check", GOOD, "--target", "uptme:III"])
    assert result.exit_code == 2 and "did you mean `uptime`" in result.output
    assert runner.invoke(app, ["check", GOOD, "--target", "uptime:V"]).exit_code == 2


def test_formats_write_files(tmp_path: Path) -> None:
    for fmt in ("sarif", "html", "markdown", "json"):
        out = tmp_path / f"report.{fmt}"
        result = runner.invoke(app, ["check", BAD, "--format", fmt, "--output", str(out)])
        assert result.exit_code == 1, result.output
        assert out.stat().st_size > 1000
    assert json.loads((tmp_path / "report.sarif").read_text())["version"] == "2.1.0"
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")


def test_disable_on_the_command_line() -> None:
    result = runner.invoke(app, ["check", BAD, "--json", "--disable", "SEC-MFA"])
    assert "SEC-MFA" not in {f["rule"] for f in json.loads(result.stdout)["findings"]}


def test_list_rules() -> None:
    result = runner.invoke(app, ["check", "--list-rules"])
    assert result.exit_code == 0 and "AV-UT-UPS" in result.output and "SEC-MFA" in result.output


def test_schema_facility_is_a_json_schema_editors_can_use() -> None:
    result = runner.invoke(app, ["schema", "facility"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"site", "halls", "nodes", "power", "cooling", "fabrics", "security"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    unknown = runner.invoke(app, ["schema", "nope"])
    assert unknown.exit_code == 2 and "facility" in unknown.output
