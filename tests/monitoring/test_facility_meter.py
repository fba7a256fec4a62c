"""A facility meter in the spec — a Redfish power meter (the sushy emulator) or a Prometheus query (a real
Prometheus scraping the meter's exporter) — read by the server's collector, so PUE is measured (facility kWh ÷ IT
kWh) and flagged so; the spec's design PUE is used, and said to be, only where no meter reads the site."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from tests.api.conftest import JOB_SPEC, free_port
from tests.monitoring.conftest import set_reading
from tests.pace import wait_until
from typer.testing import CliRunner

from aidc.client.local import LocalClient
from aidc.monitoring.collector import local_collector
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings
from aidc.store.metadata.records import Sample

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
HOST = socket.gethostname()
HOUR_START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def lab_with_meters(tmp_path: Path, *endpoints: dict[str, object]) -> Path:
    doc = yaml.safe_load(LAB.read_text())
    doc["site"]["grid_carbon_g_per_kwh"] = 400
    doc["energy"] = {"design_pue": 1.4}
    doc["telemetry"] = {"endpoints": list(endpoints)}
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def an_hours_job(platform: Platform) -> None:
    """A job that held all 8 CPUs of gpu-001 for an hour while its BMC read 2000 W each minute."""
    store = platform.metadata
    t0 = HOUR_START.timestamp()
    store.add_samples([Sample("gpu-001", "node_power_watts", 2000.0, t0 + i * 60, source="redfish") for i in range(61)])
    store.add_samples([Sample("gpu-001", "node_cpu_count", 8.0, t0)])
    store.create_run("run-m", "digits", {}, None)
    store.submit_job(
        {
            "id": "job-m",
            "project": "default",
            "submitter": "t",
            "idempotency_key": "m",
            "pipeline": "digits",
            "path_name": "p.yaml",
            "spec_text": JOB_SPEC,
            "priority": 0,
            "workers": 1,
            "cpus": 8.0,
            "gpus": 0.0,
        }
    )
    store.transition_job("job-m", ("queued",), "running", run_id="run-m", started_at=HOUR_START, worker=f"{HOST}:1:0")
    store.transition_job("job-m", ("running",), "succeeded", finished_at=HOUR_START + timedelta(hours=1))


def meter_over_the_hour(platform: Platform) -> None:
    """The server's collector reads only its facility meters, once a minute over the job's hour (its clock set to
    those minutes: the meter answers now, the test needs an hour of readings)."""
    collector = local_collector(platform.metadata, platform.settings, platform.facility)
    collector.sources = [s for s in collector.sources if s.name.startswith("meter ")]
    collector.power_model = None
    assert collector.sources, "the spec's facility meter is not among the collector's sources"
    minutes = iter(range(61))
    collector.clock = lambda: HOUR_START.timestamp() + next(minutes) * 60
    for _ in range(61):
        collector.collect_once()
    assert not collector.errors, collector.errors


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_a_redfish_facility_meter_measures_pue_for_runs_and_the_report(
    tmp_path: Path, home: Path, bmc: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, tree = bmc
    # the emulator's chassis is the site's intake meter here: it reads 3000 W while IT draws 2000 W
    set_reading(tree, "Chassis/1U/Power", {"PowerConsumedWatts": 3000}, "PowerControl", 0)
    meter = {"name": "intake-meter", "protocol": "redfish", "address": url, "measures": ["power_kw"]}
    settings = Settings(home=home, facility=str(lab_with_meters(tmp_path, meter)), node_names={HOST: "gpu-001"})
    platform = Platform(settings)
    try:
        an_hours_job(platform)
        before = LocalClient(platform).run_details("run-m")["energy"]
        meter_over_the_hour(platform)
        after = LocalClient(platform).run_details("run-m")["energy"]
        report = LocalClient(platform).energy_report(period_days=1)
        exposed = platform.energy.exposition(local_access()).decode()
    finally:
        platform.close()
    # no meter reading yet: the spec's design PUE, said to be the design one
    assert (before["pue"], before["pue_source"], before["kwh"]) == (1.4, "design", pytest.approx(2.8))
    # metered: 3000 W ÷ 2000 W over the hour = 1.5, and the run's facility energy and carbon follow it
    assert (after["pue"], after["pue_source"]) == (1.5, "meter")
    assert after["kwh"] == pytest.approx(3.0, rel=1e-3) and after["gco2e"] == pytest.approx(1200.0, rel=1e-3)
    # Prometheus gets the run's carbon as `aidc runs show` has it: through the metered PUE, not the design 1.4 (1120 g)
    [carbon] = [
        s.value
        for family in text_string_to_metric_families(exposed)
        for s in family.samples
        if s.name == "aidc_run_carbon_grams" and s.labels["run"] == "run-m"
    ]
    assert carbon == pytest.approx(after["gco2e"], rel=1e-6)
    assert (report["pue_source"], report["kpis"]["PUE"]) == ("meter", pytest.approx(1.5, rel=1e-3))
    assert report["meter"]["meters"] == ["intake-meter"] and report["meter"]["note"] is None

    # `aidc energy report` says which PUE it used, and by which meter
    from aidc.cli.app import app

    monkeypatch.setenv("AIDC_HOME", str(home))
    monkeypatch.setenv("AIDC_FACILITY", settings.facility)
    monkeypatch.setenv("AIDC_NODE_NAMES", json.dumps({HOST: "gpu-001"}))
    monkeypatch.setenv("COLUMNS", "200")
    out = CliRunner().invoke(app, ["energy", "report", "--period", "1d"]).output
    assert "PUE 1.5 measured by intake-meter" in out, out
    shown = CliRunner().invoke(app, ["runs", "show", "run-m"]).output
    assert "PUE 1.5 measured by intake-meter" in shown or "PUE 1.5 measured" in shown, shown


def test_without_a_meter_the_report_says_its_pue_is_the_design_one(home: Path, tmp_path: Path) -> None:
    platform = Platform(Settings(home=home, facility=str(lab_with_meters(tmp_path)), node_names={HOST: "gpu-001"}))
    try:
        an_hours_job(platform)
        report = LocalClient(platform).energy_report(period_days=1)
    finally:
        platform.close()
    assert (report["pue"], report["pue_source"], report["meter"]) == (1.4, "design", None)


@pytest.fixture()
def exporter() -> Iterator[tuple[str, Gauge]]:
    """The meter's exporter: what a PDU or BMS exporter serves for Prometheus to scrape."""
    registry = CollectorRegistry()
    gauge = Gauge("site_intake_power_watts", "the site's intake power", ["feed"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", gauge
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture()
def prometheus(tmp_path: Path, exporter: tuple[str, Gauge]) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("needs Debian's prometheus: apt-get install -y --no-install-recommends prometheus (.ci/run does)")
    target, _ = exporter
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        f"global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: meter\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_prometheus_query_is_the_facility_meter(
    tmp_path: Path, home: Path, exporter: tuple[str, Gauge], prometheus: str
) -> None:
    _, gauge = exporter
    gauge.labels(feed="A").set(1700.0)
    gauge.labels(feed="B").set(1100.0)  # two feeds: the query sums them
    meter = {
        "name": "bms",
        "protocol": "prometheus",
        "address": prometheus,
        "measures": ["power_kw"],
        "query": "sum(site_intake_power_watts)",
    }
    settings = Settings(home=home, facility=str(lab_with_meters(tmp_path, meter)), node_names={HOST: "gpu-001"})
    platform = Platform(settings)
    try:
        collector = local_collector(platform.metadata, platform.settings, platform.facility)
        source = next(s for s in collector.sources if s.name == "meter bms (prometheus)")

        def read() -> list[Sample]:
            try:
                return source.read("ignored", 0.0)
            except (ValueError, OSError):  # Prometheus still starting, or not scraped the exporter yet
                return []

        (reading,) = wait_until(read, "Prometheus answering the meter's query")
        assert (reading.node, reading.metric, reading.value) == ("bms", "facility_power_watts", 2800.0)
        an_hours_job(platform)
        meter_over_the_hour(platform)
        energy = LocalClient(platform).run_details("run-m")["energy"]
    finally:
        platform.close()
    assert (energy["pue"], energy["pue_source"]) == (1.4, "meter")  # 2800 W ÷ 2000 W
    assert energy["kwh"] == pytest.approx(2.8, rel=1e-3)


def test_a_meter_query_that_finds_nothing_or_is_not_promql_is_a_clear_error(prometheus: str) -> None:
    from aidc.monitoring.sources import PrometheusMeterSource

    def error(query: str) -> str:
        try:
            PrometheusMeterSource("bms", prometheus, query).read("x", 0.0)
        except ValueError as exc:
            return "" if "answered 503" in str(exc) else str(exc)  # 503: still starting
        except OSError:
            return ""
        return "read a value"

    empty = wait_until(lambda: error("sum(no_such_meter_watts)"), "Prometheus answering")
    assert empty == "meter bms: the query 'sum(no_such_meter_watts)' returned no series (is the meter scraped?)"
    bad = error("sum(")
    assert bad.startswith("meter bms: Prometheus answered 400:") and "parse error" in bad


def test_a_meter_in_the_server_settings_serves_a_spec_that_declares_none(
    tmp_path: Path, home: Path, bmc: tuple[str, Path]
) -> None:
    url, tree = bmc
    set_reading(tree, "Chassis/1U/Power", {"PowerConsumedWatts": 2600}, "PowerControl", 0)
    settings = Settings(
        home=home,
        facility=str(lab_with_meters(tmp_path)),
        node_names={HOST: "gpu-001"},
        facility_meter=f"redfish+{url}/redfish/v1/Chassis/1U",  # AIDC_FACILITY_METER
    )
    platform = Platform(settings)
    try:
        an_hours_job(platform)
        meter_over_the_hour(platform)
        energy = LocalClient(platform).run_details("run-m")["energy"]
    finally:
        platform.close()
    assert (energy["pue"], energy["pue_source"]) == (1.3, "meter")  # 2600 W ÷ 2000 W


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://meter.example", "is not a meter URL"),
        ("modbus+tcp://10.0.0.10:502", "is not a meter URL"),
        ("prometheus+http://prom:9090", "names no query"),
    ],
)
def test_a_bad_meter_setting_is_refused_with_how_to_write_it(url: str, says: str) -> None:
    from aidc.errors import InvalidInput
    from aidc.monitoring.sources import meter_from_url

    with pytest.raises(InvalidInput, match=says) as info:
        meter_from_url(url)
    assert info.value.where == "AIDC_FACILITY_METER" and "?query=" in (info.value.hint or "")
