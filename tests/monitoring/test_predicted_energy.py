"""The planner's prediction beside the measurement: a digits run on this host (real Ray, gloo, torch; power
modelled from the lab spec since no sensor reads it here) reports its kWh and gCO2e and, beside them, the kWh and
seconds the planner predicts for its training stage and those the stage measured — in `runs show`, --json and the
HTML report; a run the planner cannot predict says why."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aidc.client.local import LocalClient
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

pytestmark = pytest.mark.slow

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
HOST = socket.gethostname()
PIPELINE = """pipeline: digits-energy
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits"}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, width: 64, epochs: 2, workers: 2, batch_size: 64, early_stopping: null}
"""


@pytest.fixture()
def platform(tmp_path: Path) -> Platform:
    doc = yaml.safe_load(LAB.read_text())
    doc["site"]["grid_carbon_g_per_kwh"] = 350
    doc["energy"] = {"design_pue": 1.3}
    spec = tmp_path / "lab.yaml"
    spec.write_text(yaml.safe_dump(doc))
    return Platform(
        Settings(
            home=tmp_path / "home",
            facility=str(spec),
            node_names={HOST: "gpu-001"},
            ray_num_cpus=2,
            telemetry_interval_s=1,  # the run's own collector: readings every second through the training
        )
    )


def test_a_digits_run_reports_kwh_gco2e_and_the_planners_prediction_beside_them(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE)
    try:
        run = platform.runs.run_pipeline(local_access(), spec)
        assert run.status == "succeeded"
        energy = LocalClient(platform).run_details(run.run_id)["energy"]
        report = Path(LocalClient(platform).run_report(run.run_id)).read_text()
    finally:
        platform.close()
    assert energy["kwh"] > 0 and energy["gco2e"] == pytest.approx(energy["kwh"] * 350, rel=1e-3)
    assert energy["measured"] is False and energy["pue_source"] == "design"  # modelled power, design PUE
    p = energy["prediction"]
    assert p["stage"] == "train" and p["predicted_seconds"] > 0 and p["predicted_kwh"] > 0
    # measured: the two epochs rank 0 timed (the stage also starts workers and writes checkpoints)
    assert 0 < p["measured_seconds"] <= p["stage_seconds"] and p["measured_kwh"] > 0
    assert p["measured_over_predicted"] == pytest.approx(p["measured_kwh"] / p["predicted_kwh"], rel=1e-2)
    assert p["predicted_gco2e"] == pytest.approx(p["predicted_kwh"] * 350, rel=1e-3)
    assert "2 epoch(s)" in p["basis"] and "2 CPU worker(s)" in p["basis"]
    assert "planner&#39;s prediction" in report or "planner's prediction" in report

    monkeypatch.setenv("AIDC_HOME", str(platform.settings.home))
    monkeypatch.setenv("AIDC_FACILITY", platform.settings.facility)
    monkeypatch.setenv("AIDC_NODE_NAMES", json.dumps({HOST: "gpu-001"}))
    monkeypatch.setenv("COLUMNS", "300")
    from aidc.cli.app import app

    out = CliRunner().invoke(app, ["runs", "show", run.run_id]).output
    assert "energy: " in out and "gCO2e" in out and "planner: stage train's training predicted" in out, out
    shown = json.loads(CliRunner().invoke(app, ["runs", "show", run.run_id, "--json"]).output)
    assert shown["energy"]["prediction"]["predicted_kwh"] == p["predicted_kwh"]


def test_a_run_the_planner_cannot_predict_says_why(platform: Platform) -> None:
    try:
        platform.metadata.create_run("run-data", "digits-data", {"stages": []}, None)
        energy = LocalClient(platform).run_details("run-data")["energy"]
    finally:
        platform.close()
    assert energy["prediction"] == {
        "predicted_kwh": None,
        "why": "the run has no training stage: the planner predicts training only",
    }
