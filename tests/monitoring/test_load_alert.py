"""A CPU load on this machine (stress-ng) pushes the lab rack's modelled power over a deliberately small budget and
the derived budget rule fires: psutil → the power model (the spec's idle and maximum) → the sample store → the
rule. The budget sits halfway between the rack's modelled idle and maximum, so it takes a busy CPU to cross it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from aidc.facility.loader import load_facility
from aidc.monitoring.alerts.notify import Dispatcher, Route
from aidc.monitoring.alerts.runner import AlertSite, build_runner
from aidc.monitoring.collector import NodeCollector
from aidc.monitoring.sources import PowerModel, PsutilSource
from aidc.store.metadata import open_metadata_store

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
WAIT_S = 120.0  # a hang detector; the load shows within a couple of samples


def test_a_cpu_load_pushes_the_modelled_rack_power_over_its_budget(tmp_path: Path) -> None:
    stress = shutil.which("stress-ng")
    if stress is None:
        pytest.skip("needs stress-ng (Debian's package; .ci/run installs it)")
    model = PowerModel(2200.0, 2800.0)  # gpu-001 of the lab spec: idle 1600 W, maximum 2800 W
    budget_kw = (model.idle_w + (model.max_w - model.idle_w) * 0.5) / 1000  # 2.2 kW: half way
    spec = load_facility(LAB)
    spec.halls[0].racks[0].power_budget_kw = budget_kw
    store = open_metadata_store(f"sqlite:///{tmp_path / 'aidc.db'}")
    collector = NodeCollector("gpu-001", [PsutilSource()], store.add_samples, power_model=model, interval_s=0.5)
    runner = build_runner(store, spec, AlertSite())
    runner.dispatcher = Dispatcher({}, [Route(notify=["log"])])
    load = subprocess.Popen(
        [stress, "--cpu", "2", "--timeout", "120"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + WAIT_S
        over = None
        while over is None and time.monotonic() < deadline:
            collector.collect_once()
            now = time.time()
            runner.round(now)
            over = runner.evaluator.conditions(
                next(r for r in runner.evaluator.rules if r.id == "RackPowerOverBudget:lab-rack"), now
            ).get(("lab-rack",))
            time.sleep(0.5)
    finally:
        load.terminate()
        load.wait(timeout=10)
    assert over is not None, "the modelled rack power never crossed the budget under load"
    assert over > budget_kw * 1000
    (pending,) = [a for a in store.list_alerts() if a.rule == "RackPowerOverBudget:lab-rack"]
    assert pending.state == "pending" and pending.threshold == pytest.approx(budget_kw * 1000)  # `for: 2m` runs on
