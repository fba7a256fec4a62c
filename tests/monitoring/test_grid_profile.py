"""Carbon by the hour: the facility spec's grid-intensity profile (a typical day and dated hours), checked by the
loader with file:line:col errors, and a job's gCO2e integrating its energy over the hours it ran."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from tests.api.conftest import JOB_SPEC

from aidc.client.local import LocalClient
from aidc.errors import InvalidSpec
from aidc.facility import parse_facility
from aidc.platform import Platform
from aidc.settings import Settings
from aidc.store.metadata.records import Sample

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
HOST = socket.gethostname()


def lab_with(site: dict[str, object]) -> str:
    doc = yaml.safe_load(LAB.read_text())
    doc["site"] |= site
    doc["energy"] = {"design_pue": 1.25}
    return yaml.safe_dump(doc, sort_keys=False)


def a_job_over(platform: Platform, start: datetime, end: datetime, watts: float) -> None:
    """A job that held all 8 CPUs of gpu-001 from ``start`` to ``end`` while its BMC read ``watts`` every minute."""
    store = platform.metadata
    t0, minutes = start.timestamp(), int((end - start).total_seconds() // 60)
    store.add_samples(
        [Sample("gpu-001", "node_power_watts", watts, t0 + i * 60, source="redfish") for i in range(minutes + 1)]
    )
    store.add_samples([Sample("gpu-001", "node_cpu_count", 8.0, t0)])
    store.create_run("run-h", "digits", {}, None)
    store.submit_job(
        {
            "id": "job-h",
            "project": "default",
            "submitter": "t",
            "idempotency_key": "h",
            "pipeline": "digits",
            "path_name": "p.yaml",
            "spec_text": JOB_SPEC,
            "priority": 0,
            "workers": 1,
            "cpus": 8.0,
            "gpus": 0.0,
        }
    )
    store.transition_job("job-h", ("queued",), "running", run_id="run-h", started_at=start, worker=f"{HOST}:1:0")
    store.transition_job("job-h", ("running",), "succeeded", finished_at=end)


def platform_for(tmp_path: Path, spec_text: str) -> Platform:
    spec = tmp_path / "lab.yaml"
    spec.write_text(spec_text)
    return Platform(Settings(home=tmp_path / "home", facility=str(spec), node_names={HOST: "gpu-001"}))


def test_a_job_spanning_two_hours_is_charged_each_hours_grid_intensity(tmp_path: Path) -> None:
    # from half past one hour to half past the next, two hours ago and more (UTC): 30 minutes in each hour
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    start, end = hour + timedelta(minutes=30), hour + timedelta(minutes=90)
    daily = [300.0] * 24
    daily[hour.hour], daily[(hour.hour + 1) % 24] = 100.0, 700.0
    platform = platform_for(tmp_path, lab_with({"grid_carbon_g_per_kwh": 300, "grid_carbon_profile": {"daily": daily}}))
    try:
        a_job_over(platform, start, end, 2000.0)
        energy = LocalClient(platform).run_details("run-h")["energy"]
    finally:
        platform.close()
    # 2 kW for 30 min in each hour: 1 kWh IT in each, × PUE 1.25, at 100 then 700 g/kWh (the flat 300 would give 750)
    assert energy["it_kwh"] == pytest.approx(2.0, rel=1e-3) and energy["kwh"] == pytest.approx(2.5, rel=1e-3)
    assert energy["gco2e"] == pytest.approx(1.25 * (1.0 * 100 + 1.0 * 700), rel=1e-3)
    assert energy["grid_source"] == "profile" and energy["grid_g_per_kwh"] == pytest.approx(400.0, rel=1e-3)


def test_dated_hours_override_the_typical_day_and_uneven_halves_weigh_by_their_energy(tmp_path: Path) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    start, end = hour + timedelta(minutes=45), hour + timedelta(minutes=90)  # 15 min in the first hour, 30 in the next
    profile = {
        "timezone": "Europe/Berlin",
        "hours": [
            {"hour": hour.isoformat(), "g_per_kwh": 80.0},
            {"hour": (hour + timedelta(hours=1)).isoformat(), "g_per_kwh": 680.0},
        ],
    }
    platform = platform_for(tmp_path, lab_with({"grid_carbon_g_per_kwh": 300, "grid_carbon_profile": profile}))
    try:
        a_job_over(platform, start, end, 4000.0)
        energy = LocalClient(platform).run_details("run-h")["energy"]
        report = LocalClient(platform).energy_report(period_days=1)
    finally:
        platform.close()
    # 4 kW: 1 kWh in the first hour's last quarter, 2 kWh in the next half hour; × PUE 1.25
    assert energy["it_kwh"] == pytest.approx(3.0, rel=1e-3)
    assert energy["gco2e"] == pytest.approx(1.25 * (1.0 * 80 + 2.0 * 680), rel=1e-3)  # a flat 300 would give 1125
    assert report["grid_source"] == "profile"
    # the report's whole-node energy includes the end readings held 30 s each, at their hours' intensities
    held = 4000 * 30 / 3.6e6
    assert report["gco2e"] == pytest.approx(1.25 * ((1.0 + held) * 80 + (2.0 + held) * 680), rel=1e-3)


def test_a_daily_profile_follows_the_sites_time_zone(tmp_path: Path) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    local = (hour.hour + 9) % 24  # Asia/Tokyo: UTC+9 all year
    daily = [1000.0] * 24
    daily[local] = 50.0
    platform = platform_for(tmp_path, lab_with({"grid_carbon_profile": {"timezone": "Asia/Tokyo", "daily": daily}}))
    try:
        a_job_over(platform, hour + timedelta(minutes=10), hour + timedelta(minutes=50), 3000.0)
        energy = LocalClient(platform).run_details("run-h")["energy"]
    finally:
        platform.close()
    assert energy["gco2e"] == pytest.approx(2.0 * 1.25 * 50, rel=1e-3)  # 3 kW × 40 min = 2 kWh IT


PROFILE_SITE = """\
name: lab
site:
  name: lab
  country: de
  grid_carbon_profile:
    timezone: Europe/Berlin
    daily: [300, 290, 280]
    hours:
      - {hour: "2026-12-05T10:30:00+01:00", g_per_kwh: 120}
"""


def test_a_bad_profile_is_reported_at_its_line_and_column() -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_facility(PROFILE_SITE, "facility.yaml")
    found = {p.field: p for p in info.value.problems}
    lines = PROFILE_SITE.splitlines()
    daily = found["site.grid_carbon_profile.daily"]
    assert (daily.line, daily.col) == (7, lines[6].index("[300") + 1) and "24" in daily.message
    dated = found["site.grid_carbon_profile.hours[0].hour"]
    col = lines[8].index('"2026') + 1
    assert (dated.line, dated.col) == (9, col) and "not on the hour" in dated.message
    assert str(dated).startswith(f"facility.yaml:9:{col}: site.grid_carbon_profile.hours[0].hour")


@pytest.mark.parametrize(
    ("profile", "field", "says"),
    [
        ({"timezone": "Mars/Olympus", "daily": [1] * 24}, "site.grid_carbon_profile.timezone", "unknown time zone"),
        ({"daily": [1] * 23 + [-5]}, "site.grid_carbon_profile.daily", "hour 23:00 has a negative intensity"),
        (
            {"hours": [{"hour": "2026-12-05T10:00:00Z", "g_per_kwh": 1}]},
            "site",
            "dated hours only",
        ),
        (
            {
                "daily": [1] * 24,
                "hours": [
                    {"hour": "2026-12-05T10:00:00Z", "g_per_kwh": 1},
                    {"hour": "2026-12-05T11:00:00+01:00", "g_per_kwh": 2},
                ],
            },
            "site.grid_carbon_profile",
            "given twice",
        ),
    ],
)
def test_profile_mistakes_say_what_and_how_to_fix(profile: dict[str, object], field: str, says: str) -> None:
    text = yaml.safe_dump({"name": "lab", "site": {"name": "lab", "country": "de", "grid_carbon_profile": profile}})
    with pytest.raises(InvalidSpec) as info:
        parse_facility(text, "facility.yaml")
    problem = next(p for p in info.value.problems if says in p.message)
    assert problem.field == field and problem.line is not None
