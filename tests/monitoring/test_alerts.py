"""Alert rules judged on stored telemetry: the facility spec's envelope (rack budget, ASHRAE inlet with altitude
derating, room cooling with a unit failed, UPS rating, PUE), the shipped platform rules (heartbeat, ECC, disk),
pending → firing → resolved in the store's history, silences, and a site's rules file with located errors.

Readings are injected into a real SQLite sample store; the Redfish path reads a real emulator (sushy-static)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.monitoring.conftest import replace_json

from aidc.errors import InvalidSpec
from aidc.facility.loader import load_facility
from aidc.facility.model import Facility
from aidc.monitoring.alerts.derived import facility_rules
from aidc.monitoring.alerts.notify import Dispatcher, Notification, Route
from aidc.monitoring.alerts.rules import load_rules
from aidc.monitoring.alerts.runner import AlertRunner, AlertSite, build_runner, load_site
from aidc.store.metadata import MetadataStore, open_metadata_store
from aidc.store.metadata.records import Sample

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "examples" / "facilities" / "lab-two-servers.yaml"
T0 = 1_800_000_000.0
LAB_NODES = ("gpu-001", "gpu-002", "switch-001")


class Outbox:
    """A notifier that keeps what it was sent (the real notifiers are tested against real servers below)."""

    name = "outbox"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)


@pytest.fixture()
def store(tmp_path: Path) -> MetadataStore:
    return open_metadata_store(f"sqlite:///{tmp_path / 'aidc.db'}")


def lab(**changes: object) -> Facility:
    facility = load_facility(LAB)
    return facility.model_copy(update=changes) if changes else facility


def runner_for(
    store: MetadataStore, facility: Facility | None, site: AlertSite | None = None
) -> tuple[AlertRunner, Outbox]:
    outbox = Outbox()
    runner = build_runner(store, facility, site or AlertSite(routes=[Route(notify=["log"])]))
    runner.dispatcher = Dispatcher({"outbox": outbox}, [Route(notify=["outbox"], group_by=["alertname", "rack"])])
    runner.dispatcher.silenced = runner.silenced
    return runner, outbox


def power(store: MetadataStore, at: float, watts: dict[str, float]) -> None:
    store.add_samples([Sample(node, "node_power_watts", w, at, source="redfish") for node, w in watts.items()])


def test_a_rack_over_its_designed_budget_goes_pending_then_fires_then_resolves(store: MetadataStore) -> None:
    runner, outbox = runner_for(store, lab())
    over = {"gpu-001": 5200.0, "gpu-002": 5100.0, "switch-001": 300.0}  # 10.6 kW in a 10 kW rack
    for i in range(0, 13):  # two minutes of readings every 10 s: the rule's `for: 2m`
        at = T0 + 10 * i
        power(store, at, over)
        changes = runner.round(at)
        if i == 0:
            # 10.6 kW is also past the room's 8 kW of cooling with one unit failed, and the 10 kW UPS
            assert {(c["rule"], c["event"]) for c in changes} == {
                ("RackPowerOverBudget:lab-rack", "pending"),
                ("RoomHeatOverCoolingCapacity:room-214", "pending"),
                ("UpsLoadOverRating:rack-ups", "pending"),
            }
    history = store.list_alerts()
    budget = [a for a in history if a.rule == "RackPowerOverBudget:lab-rack"]
    assert [a.state for a in budget] == ["firing"]
    assert budget[0].value == pytest.approx(10_600.0) and budget[0].threshold == 10_000.0
    assert budget[0].fired_at == budget[0].started_at + timedelta(minutes=2)
    assert "lab-rack draws 10600 W" in budget[0].summary and budget[0].labels["rack"] == "lab-rack"
    power(store, T0 + 130, {"gpu-001": 3000.0, "gpu-002": 3000.0, "switch-001": 300.0})
    runner.round(T0 + 130)
    resolved = store.get_alert(budget[0].id)
    assert resolved.state == "resolved" and resolved.resolved_at == datetime.fromtimestamp(T0 + 130, UTC)
    assert resolved.value == pytest.approx(10_600.0)  # the value that fired it, not the one that cleared it
    runner.dispatcher.close()
    sent = [(n.status, n.alerts[0]["labels"]["alertname"]) for n in outbox.sent]
    assert ("firing", "RackPowerOverBudget") in sent and ("resolved", "RackPowerOverBudget") in sent


def test_inlet_limits_come_from_ashrae_with_the_altitude_derating() -> None:
    high = lab(site=lab().site.model_copy(update={"altitude_m": 2100.0}))  # A2: 35 °C − 1200 m / 300 m = 31 °C
    rules = {r.name: r for r in facility_rules(high)}
    assert rules["InletTemperatureAboveAllowable"].expr.value == pytest.approx(31.0)
    assert rules["InletTemperatureAboveRecommended"].expr.value == 27.0
    assert rules["InletTemperatureBelowAllowable"].expr.value == 10.0
    assert {r.name: r.expr.value for r in facility_rules(lab())}["InletTemperatureAboveAllowable"] == 35.0


def test_room_cooling_ups_and_pue_rules_are_derived_from_the_spec() -> None:
    facility = lab(targets=lab().targets.model_copy(update={"pue_target": 1.4}))
    by_id = {r.id: r for r in facility_rules(facility)}
    # two 8 kW in-row units for a 6 kW design load (N+1): with one failed the room carries 8 kW
    assert by_id["RoomHeatOverCoolingCapacity:room-214"].expr.value == 8_000.0
    assert by_id["UpsLoadOverRating:rack-ups"].expr.value == 10_000.0
    assert by_id["PueOverTarget"].expr.value == 1.4


def test_pue_over_the_period_fires_when_facility_power_over_it_power_exceeds_the_target(store: MetadataStore) -> None:
    facility = lab(targets=lab().targets.model_copy(update={"pue_target": 1.4}))
    runner, _ = runner_for(store, facility)
    judged = []
    for i, facility_w in enumerate((4800.0, 7200.0)):  # PUE 1.2, then 1.8: over the period 1.5
        at = T0 + 600 * i
        power(store, at, {"gpu-001": 2000.0, "gpu-002": 2000.0})
        store.add_samples([Sample("facility-meter", "facility_power_watts", facility_w, at)])
        judged.append([(c["event"], c["value"]) for c in runner.round(at + 1) if c["rule"] == "PueOverTarget"])
    assert judged[0] == []  # 1.2 alone is under the target
    assert [e for e, _ in judged[1]] == ["firing"] and judged[1][0][1] == pytest.approx(1.5)


def test_many_nodes_of_one_rack_too_hot_are_one_notification(store: MetadataStore) -> None:
    runner, outbox = runner_for(store, lab())
    hot = [Sample(n, "node_inlet_temperature_celsius", 36.0, T0 + t) for n in LAB_NODES for t in (0, 30, 60)]
    store.add_samples(hot)
    for t in (0, 30, 60):
        runner.round(T0 + t)
    runner.dispatcher.close()
    firing = [
        a for a in store.list_alerts(states=("firing",)) if a.labels["alertname"] == "InletTemperatureAboveAllowable"
    ]
    assert len(firing) == 3  # one alert per node…
    notes = [n for n in outbox.sent if n.alerts[0]["labels"]["alertname"] == "InletTemperatureAboveAllowable"]
    assert len(notes) == 1 and len(notes[0].alerts) == 3  # …one notification for the rack
    assert notes[0].group == {"alertname": "InletTemperatureAboveAllowable", "rack": "lab-rack"}


def test_heartbeat_lost_ecc_errors_and_a_nearly_full_disk(store: MetadataStore) -> None:
    runner, _ = runner_for(store, None)
    store.add_samples(
        [Sample("n1", "node_cpu_utilisation_ratio", 0.5, T0), Sample("n2", "node_cpu_utilisation_ratio", 0.5, T0)]
    )
    store.add_samples([Sample("n2", "node_cpu_utilisation_ratio", 0.5, T0 + 60)])
    ecc = [
        Sample("n2", "gpu_ecc_uncorrected_errors_total", v, T0 + t, labels="gpu=3")
        for t, v in ((0, 4), (30, 4), (60, 6))
    ]
    disk = [
        Sample("n2", "node_disk_used_bytes", 95.0, T0 + 60, labels="mount=/"),
        Sample("n2", "node_disk_total_bytes", 100.0, T0 + 60, labels="mount=/"),
        Sample("n2", "node_disk_used_bytes", 10.0, T0 + 60, labels="mount=/data"),
        Sample("n2", "node_disk_total_bytes", 100.0, T0 + 60, labels="mount=/data"),
    ]
    store.add_samples(ecc + disk)
    changes = {(c["rule"], c["event"]): c for c in runner.round(T0 + 75)}
    lost = changes[("NodeHeartbeatLost", "firing")]
    assert lost["labels"]["node"] == "n1" and lost["value"] == pytest.approx(75.0)
    assert ("NodeHeartbeatLost", "pending") not in changes  # n2 still reports
    assert (
        changes[("GpuEccErrors", "firing")]["value"] == 2.0
        and changes[("GpuEccErrors", "firing")]["labels"]["gpu"] == "3"
    )
    full = changes[("DiskNearlyFull", "pending")]
    assert full["labels"]["mount"] == "/" and full["value"] == pytest.approx(0.95)


def test_a_silenced_alert_is_recorded_but_notifies_no_one(store: MetadataStore) -> None:
    runner, outbox = runner_for(store, None)
    store.add_silence(
        {
            "id": "s1",
            "matchers": {"node": "=~n[12]"},
            "created_by": "alice",
            "expires_at": datetime.fromtimestamp(T0 + 3600, UTC),
        }
    )
    store.add_samples([Sample(n, "node_cpu_utilisation_ratio", 0.5, T0) for n in ("n1", "n3")])
    runner.round(T0 + 10)  # the silences are read as each round changes something
    runner.round(T0 + 120)
    runner.dispatcher.close()
    assert {a.labels["node"] for a in store.list_alerts(states=("firing",))} == {"n1", "n3"}
    assert [a["labels"]["node"] for n in outbox.sent for a in n.alerts] == ["n3"]


def test_a_restarted_evaluator_takes_up_the_firing_alerts_and_resolves_them(store: MetadataStore) -> None:
    first, _ = runner_for(store, None)
    store.add_samples([Sample("n1", "node_cpu_utilisation_ratio", 0.5, T0)])
    first.round(T0 + 100)
    (alert,) = store.open_alerts()
    second, _ = runner_for(store, None)  # a new server process over the same store
    store.add_samples([Sample("n1", "node_cpu_utilisation_ratio", 0.5, T0 + 110)])
    second.round(T0 + 115)
    assert store.get_alert(alert.id).state == "resolved" and store.open_alerts() == []


def test_a_site_rules_file_adds_and_replaces_rules_and_names_the_line_of_a_mistake(tmp_path: Path) -> None:
    good = tmp_path / "site.yaml"
    good.write_text(
        "rules:\n"
        "  - name: GpuTemperatureHigh\n"
        "    severity: critical\n"
        "    for: 1m\n"
        "    expr: {metric: gpu_temperature_celsius, by: [node, gpu], op: '>', value: 80}\n"
        "  - name: FanSlow\n"
        "    expr: {metric: node_fan_speed_rpm, by: [node, fan], op: '<', value: 1000}\n"
        "    runbook: replace the fan\n"
    )
    site = load_site(good)
    from aidc.monitoring.alerts.runner import all_rules

    rules = {r.id: r for r in all_rules(None, site)}
    assert rules["GpuTemperatureHigh"].expr.value == 80 and rules["GpuTemperatureHigh"].origin == "site"
    assert rules["FanSlow"].runbook == "replace the fan" and "NodeHeartbeatLost" in rules
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: Hot\n    for: 5 minutes\n    expr: {metric: gpu_temperature_celsius}\n")
    with pytest.raises(InvalidSpec) as err:
        load_rules(bad)
    assert "bad.yaml:3" in str(err.value) and "5 minutes" in str(err.value)


def test_a_route_to_an_undefined_notifier_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("routes:\n  - {notify: [pager]}\n")
    with pytest.raises(InvalidSpec, match="pager"):
        load_site(path)


# ---------------------------------------------------------------- Redfish emulator → inlet alert


def set_inlet(tree: Path, celsius: float) -> None:
    path = tree / "Chassis" / "1U" / "Thermal" / "index.json"
    doc = json.loads(path.read_text())
    for t in doc["Temperatures"]:
        if t.get("PhysicalContext") == "Intake":
            t["ReadingCelsius"] = celsius
    replace_json(path, doc)


def test_a_bmc_inlet_raised_past_the_ashrae_limit_fires_and_resolves_when_lowered(
    store: MetadataStore, bmc: tuple[str, Path]
) -> None:
    from aidc.monitoring.collector import NodeCollector
    from aidc.monitoring.sources import RedfishSource

    url, tree = bmc
    clock = [T0]
    collector = NodeCollector("gpu-001", [RedfishSource(url)], store.add_samples, clock=lambda: clock[0])
    runner, outbox = runner_for(store, lab())

    def tick(seconds: float) -> list[str]:
        clock[0] += seconds
        collector.collect_once()
        return [f"{c['rule']}:{c['event']}" for c in runner.round(clock[0])]

    assert tick(0) == []  # 25 °C: inside A2
    set_inlet(tree, 37.0)  # past A2's allowable 35 °C
    assert "InletTemperatureAboveAllowable:pending" in tick(10)
    assert "InletTemperatureAboveAllowable:firing" in tick(60)  # `for: 1m`
    set_inlet(tree, 24.0)
    assert "InletTemperatureAboveAllowable:resolved" in tick(10)
    runner.dispatcher.close()
    (alert,) = [a for a in store.list_alerts() if a.rule == "InletTemperatureAboveAllowable"]
    assert (alert.state, alert.value, alert.labels["node"], alert.labels["rack"]) == (
        "resolved",
        37.0,
        "gpu-001",
        "lab-rack",
    )
    assert [n.status for n in outbox.sent if n.alerts[0]["rule_name"] == "InletTemperatureAboveAllowable"] == [
        "firing",
        "resolved",
    ]
