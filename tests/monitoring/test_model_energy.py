"""Energy per model version: `aidc models show NAME:V` (and --json, the client, the API) gives the kWh and gCO2e
of the runs that made it — the run that registered it, and for a compressed child its parent's training run too,
each run counted once."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from tests.api.conftest import JOB_SPEC
from typer.testing import CliRunner

from aidc.client.local import LocalClient
from aidc.platform import Platform
from aidc.settings import Settings
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import Sample

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
HOST = socket.gethostname()
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)


def a_run_on_gpu_001(store: MetadataStore, run_id: str, start: datetime, minutes: int, watts: float) -> None:
    """A run whose job held all of gpu-001 (8 CPUs) for ``minutes`` while its BMC read ``watts`` each minute."""
    t0 = start.timestamp()
    store.add_samples(
        [Sample("gpu-001", "node_power_watts", watts, t0 + i * 60, source="redfish") for i in range(minutes + 1)]
    )
    store.add_samples([Sample("gpu-001", "node_cpu_count", 8.0, t0)])
    store.create_run(run_id, "digits", {}, None)
    store.submit_job(
        {
            "id": f"job-{run_id}",
            "project": "default",
            "submitter": "t",
            "idempotency_key": run_id,
            "pipeline": "digits",
            "path_name": "p.yaml",
            "spec_text": JOB_SPEC,
            "priority": 0,
            "workers": 1,
            "cpus": 8.0,
            "gpus": 0.0,
        }
    )
    worker = f"{HOST}:1:0"
    store.transition_job(f"job-{run_id}", ("queued",), "running", run_id=run_id, started_at=start, worker=worker)
    end = start + timedelta(minutes=minutes)
    store.transition_job(f"job-{run_id}", ("running",), "succeeded", finished_at=end)
    store.finish_run(run_id, "succeeded")


def register_parent_and_int8_child(store: MetadataStore) -> None:
    """As the runner registers them: the trained parent (checkpoint → ONNX), then its INT8 child from a later
    compression run (its own ONNX, derived from the parent version)."""
    parent = store.register_model_version(
        "digits-cnn", onnx_digest="o1", checkpoint_digest="c1", run_id="run-train", dataset_version_id=None, metrics={}
    )
    store.add_lineage(("run", "run-train"), ("checkpoint", "c1"), "produced")
    store.add_lineage(("checkpoint", "c1"), ("onnx", "o1"), "exported_to")
    store.add_lineage(("onnx", "o1"), ("model_version", str(parent.id)), "registered_as")
    child = store.register_model_version(
        "digits-int8", onnx_digest="o2", checkpoint_digest=None, run_id="run-int8", dataset_version_id=None, metrics={}
    )
    store.add_lineage(("run", "run-int8"), ("onnx", "o2"), "produced")
    store.add_lineage(("onnx", "o2"), ("model_version", str(child.id)), "registered_as")
    store.add_lineage(("checkpoint", "c1"), ("model_version", str(child.id)), "quantized_from")
    store.add_lineage(("model_version", str(parent.id)), ("model_version", str(child.id)), "quantized_from")


@pytest.fixture()
def platform(tmp_path: Path) -> Platform:
    doc = yaml.safe_load(LAB.read_text())
    doc["site"]["grid_carbon_g_per_kwh"] = 400
    doc["energy"] = {"design_pue": 1.5}
    spec = tmp_path / "lab.yaml"
    spec.write_text(yaml.safe_dump(doc))
    return Platform(Settings(home=tmp_path / "home", facility=str(spec), node_names={HOST: "gpu-001"}))


def test_a_compressed_child_carries_its_parents_training_energy_and_its_own(platform: Platform) -> None:
    store = platform.metadata
    try:
        a_run_on_gpu_001(store, "run-train", T0, 60, 2000.0)  # training: 2 kWh IT
        a_run_on_gpu_001(store, "run-int8", T0 + timedelta(hours=2), 6, 1000.0)  # quantizing: 0.1 kWh IT
        register_parent_and_int8_child(store)
        client = LocalClient(platform)
        child = client.show_model("digits-int8:1")["energy"]
        parent = client.show_model("digits-cnn:1")["energy"]
    finally:
        platform.close()
    # the parent: its training run alone, 2 kWh IT × PUE 1.5 = 3 kWh, × 400 g/kWh = 1200 g
    assert [r["run"] for r in parent["runs"]] == ["run-train"]
    assert parent["kwh"] == pytest.approx(3.0, rel=1e-3) and parent["gco2e"] == pytest.approx(1200.0, rel=1e-3)
    # the child: its own quantizing run first, then the training it could not exist without
    assert [(r["run"], r["role"]) for r in child["runs"]] == [
        ("run-int8", "registered it"),
        ("run-train", "upstream in its lineage"),
    ]
    assert child["runs"][0]["kwh"] == pytest.approx(0.15, rel=1e-3)
    assert child["kwh"] == pytest.approx(3.15, rel=1e-3) and child["gco2e"] == pytest.approx(1260.0, rel=1e-3)
    assert child["measured"] is True


def test_models_show_prints_the_energy_and_json_carries_it(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aidc.cli.app import app

    store = platform.metadata
    a_run_on_gpu_001(store, "run-train", T0, 60, 2000.0)
    store.create_run("run-int8", "digits-int8", {}, None)  # ran outside the queue while nothing sampled power
    register_parent_and_int8_child(store)
    platform.close()
    monkeypatch.setenv("AIDC_HOME", str(platform.settings.home))
    monkeypatch.setenv("AIDC_FACILITY", platform.settings.facility)
    monkeypatch.setenv("AIDC_NODE_NAMES", json.dumps({HOST: "gpu-001"}))
    monkeypatch.setenv("COLUMNS", "200")
    out = CliRunner().invoke(app, ["models", "show", "digits-cnn:1"]).output
    assert "energy to make it: 3.0000 kWh (measured), 1200.0 gCO2e over 1 run" in out, out
    assert "run run-train (registered it): 3.0000 kWh (PUE 1.5 from the spec's design, no facility meter)" in out
    shown = json.loads(CliRunner().invoke(app, ["models", "show", "digits-int8:1", "--json"]).output)
    energy = shown["energy"]
    # one run has no power readings: no total, and the reason, but the known run is still listed
    assert energy["kwh"] is None and "some runs" in energy["why"]
    assert {r["run"]: r["kwh"] for r in energy["runs"]} == {"run-int8": None, "run-train": pytest.approx(3.0)}
    text = CliRunner().invoke(app, ["models", "show", "digits-int8:1"]).output
    assert "energy to make it: unknown" in text and "no power readings cover the run" in text
