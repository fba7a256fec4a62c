"""`aidc plan` from the command line: exit codes, formats, located errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aidc.cli.app import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"
runner = CliRunner()


def test_feasible_plan_json_exit_0() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLES / "gpt3-175b.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["feasible"] and data["training"][0]["compute"]["flops_6nd"] > 3e23


def test_infeasible_plan_exit_1_with_verdict() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLES / "impossible.yaml")])
    assert result.exit_code == 1
    assert "INFEASIBLE" in result.output and "binding constraint" in result.output


def test_malformed_yaml_exit_2_located(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("training:\n  - name: x\n    model: {params: 7.0e9}\n    tokens: lots\n    gpus: 8\n")
    result = runner.invoke(app, ["plan", str(spec)])
    assert result.exit_code == 2
    assert "bad.yaml:4:13" in result.output and "training[0].tokens" in result.output


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    out = tmp_path / "plan.html"
    result = runner.invoke(app, ["plan", str(EXAMPLES / "llama-70b-deadline.yaml"), "-f", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "<svg" in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_emitted_facility_passes_aidc_check(tmp_path: Path) -> None:
    facility = tmp_path / "facility.yaml"
    result = runner.invoke(app, ["plan", str(EXAMPLES / "gpt3-175b.yaml"), "--emit-facility", str(facility)])
    assert result.exit_code == 0, result.output
    checked = runner.invoke(app, ["check", str(facility), "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["ratings"]["uptime"]["overall"] == "III"


@pytest.mark.parametrize("fmt", [["-f", "json"], ["--json"]])
def test_json_on_stdout_parses_when_files_are_written_too(tmp_path: Path, fmt: list[str]) -> None:
    """Saying "wrote F" is a message for the person: it goes to stderr, and stdout stays one JSON document."""
    facility = tmp_path / "facility.yaml"
    result = runner.invoke(app, ["plan", str(EXAMPLES / "gpt3-175b.yaml"), *fmt, "--emit-facility", str(facility)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["feasible"] and facility.exists()
    assert f"wrote {facility}" in result.stderr


@pytest.mark.parametrize("command", ["plan", "check"])
def test_a_report_written_to_a_file_leaves_stdout_empty(tmp_path: Path, command: str) -> None:
    spec = EXAMPLES / "gpt3-175b.yaml" if command == "plan" else EXAMPLES.parent / "facilities" / "lab-two-servers.yaml"
    out = tmp_path / "report.json"
    result = runner.invoke(app, [command, str(spec), "-f", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"wrote {out}" in result.stderr
    assert json.loads(out.read_text())


def test_aidc_catalog_setting_adds_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = tmp_path / "gpus.yaml"
    cat.write_text(
        "gpus:\n  X1:\n    peak_tflops: {bf16: 500}\n    hbm_gb: 96\n    hbm_tbps: 4\n    nvlink_gbps: 400\n"
        "    nvlink_domain: 8\n    nic_gbps: 400\n    tdp_w: 600\n    node: {name: X1 box, gpus: 8, kw: 8}\n"
        "    sources: [my lab]\n"
    )
    spec = tmp_path / "w.yaml"
    spec.write_text(
        "training:\n  - name: x\n    model: {params: 7.0e9}\n    tokens: 1.0e11\n    gpus: 64\n    gpu: X1\n"
    )
    assert runner.invoke(app, ["plan", str(spec), "--json"]).exit_code == 2  # unknown GPU without the catalog
    monkeypatch.setenv("AIDC_CATALOG", str(cat))
    result = runner.invoke(app, ["plan", str(spec), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["training"][0]["gpu"] == "X1"
