"""`aidc nodes` and `aidc energy` as a person types them, on the local store with the lab spec: tables and --json
say the same, holds are confirmed, and bad input is one clear line."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aidc.cli.app import app

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
runner = CliRunner()


@pytest.fixture(autouse=True)
def lab(aidc_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIDC_FACILITY", str(LAB))
    monkeypatch.setenv("AIDC_NODE_NAMES", json.dumps({socket.gethostname(): "gpu-001"}))
    monkeypatch.setenv("COLUMNS", "200")


def aidc(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_nodes_list_shows_the_spec_servers_in_their_rack_and_json_says_the_same() -> None:
    table = aidc("nodes", "list")
    nodes = json.loads(aidc("nodes", "list", "--json"))
    assert [(n["name"], n["status"], n["rack"]) for n in nodes] == [
        ("gpu-001", "up", "lab-rack"),
        ("gpu-002", "absent", "lab-rack"),
        ("switch-001", "unmonitored", "lab-rack"),
    ]
    for n in nodes:
        assert n["name"] in table and n["status"] in table
    assert "lab-rack" in aidc("nodes", "show", "gpu-001")


def test_cordon_drain_and_uncordon_are_confirmed() -> None:
    assert "cordoned: it takes no new jobs" in aidc("nodes", "cordon", "gpu-001", "--reason", "fan swap")
    assert "cordoned" in aidc("nodes", "list") and "fan swap" in aidc("nodes", "show", "gpu-001")
    assert "no jobs were running there" in aidc("nodes", "drain", "gpu-001")
    assert json.loads(aidc("nodes", "uncordon", "gpu-001", "--json"))["cordoned"] is False
    out = aidc("nodes", "cordon", "gpu-999", code=2)
    assert "no node 'gpu-999'" in out and "aidc nodes list" in out


def test_energy_report_prints_the_kpis_and_refuses_a_bad_period() -> None:
    report = json.loads(aidc("energy", "report", "--period", "12h", "--json"))
    assert report["period_days"] == 0.5 and set(report["kpis"]) == {"PUE", "REF", "CUE", "WUE"}
    assert report["pue_source"] == "default"  # the lab spec declares no PUE: the default 1.5 is said to be one
    assert "ISO/IEC 30134" in aidc("energy", "report")
    out = aidc("energy", "report", "--period", "a month", code=2)
    assert "bad period" in out and "30d" in out


def test_top_shows_each_node_in_its_rack_with_the_power_total() -> None:
    from aidc.monitoring.collector import local_collector
    from aidc.platform import Platform

    platform = Platform()
    local_collector(platform.metadata, platform.settings, platform.facility).collect_once()
    platform.close()
    out = aidc("top", "--once")
    assert "aidc top" in out and "1/3 nodes up" in out and "kW (partly modelled)" in out
    assert "gpu-001" in out and "lab-rack" in out and "(modelled)" in out
