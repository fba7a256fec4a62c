"""Telemetry sources against real peers: psutil on this host, a Redfish BMC (sushy-static serving the mockup in
redfish_mockup/ on 127.0.0.1), RAPL, NVML and modelled power; and the collector writing them to a real store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.api.conftest import free_port
from tests.monitoring.conftest import set_reading

from aidc.monitoring.collector import ENERGY, NodeCollector, local_sources
from aidc.monitoring.sources import POWER, NvmlSource, PowerModel, PsutilSource, RaplSource, RedfishSource
from aidc.store.metadata import open_metadata_store
from aidc.store.metadata.records import Sample


def by_metric(samples: list[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.metric, []).append(s)
    return out


def test_redfish_reads_chassis_power_psus_inlet_temperature_and_fans(bmc: tuple[str, Path]) -> None:
    url, tree = bmc
    got = by_metric(RedfishSource(url).read("gpu-001", 1000.0))
    assert [(s.value, s.measured, s.source) for s in got[POWER]] == [(344.0, True, "redfish")]
    assert sorted(s.value for s in got["node_psu_output_watts"]) == [320.0, 325.0]
    assert [(s.value, s.labels) for s in got["node_inlet_temperature_celsius"]] == [
        (25.0, "sensor=Chassis Intake Temp")
    ]
    assert sorted(s.value for s in got["node_fan_speed_rpm"]) == [2050.0, 2100.0]
    # the BMC's next reading is what the next sample says
    set_reading(tree, "Chassis/1U/Thermal", {"ReadingCelsius": 31}, "Temperatures", 1)
    set_reading(tree, "Chassis/1U/Power", {"PowerConsumedWatts": 777}, "PowerControl", 0)
    again = by_metric(RedfishSource(url, chassis="1U").read("gpu-001", 1010.0))
    assert again["node_inlet_temperature_celsius"][0].value == 31.0 and again[POWER][0].value == 777.0


def test_a_measured_bmc_power_is_not_modelled_and_the_energy_counter_integrates_it(
    bmc: tuple[str, Path], tmp_path: Path
) -> None:
    url, tree = bmc
    store = open_metadata_store(f"sqlite:///{tmp_path / 'aidc.db'}")
    clock = iter([100.0, 110.0, 120.0])
    collector = NodeCollector(
        "gpu-001",
        [RedfishSource(url)],
        store.add_samples,
        power_model=PowerModel(2200, 2800),
        clock=lambda: next(clock),
    )
    collector.collect_once()
    set_reading(tree, "Chassis/1U/Power", {"PowerConsumedWatts": 444}, "PowerControl", 0)
    collector.collect_once()
    collector.collect_once()
    power = store.query_samples(metric=POWER, node="gpu-001")
    assert [(s.value, s.measured) for s in power] == [(344.0, True), (444.0, True), (444.0, True)]
    energy = store.query_samples(metric=ENERGY)
    # trapezoids: (344+444)/2·10 + 444·10
    assert [s.value for s in energy] == [0.0, 3940.0, 8380.0] and all(s.measured for s in energy)


def test_a_bmc_that_stops_answering_is_reported_and_the_other_sources_go_on(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    written: list[list[Sample]] = []
    collector = NodeCollector("n", [RedfishSource(dead, timeout_s=1), PsutilSource()], written.append)
    collector.collect_once()
    assert "redfish" in collector.errors
    assert any(s.metric == "node_cpu_utilisation_ratio" for s in written[0])


def test_psutil_reads_this_host() -> None:
    got = by_metric(PsutilSource().read("here", time.time()))
    import psutil

    assert got["node_memory_total_bytes"][0].value == psutil.virtual_memory().total
    assert 0.0 <= got["node_cpu_utilisation_ratio"][0].value <= 1.0
    assert got["node_disk_used_bytes"][0].labels == "mount=/"


def test_without_a_power_sensor_power_is_modelled_from_utilisation_and_flagged() -> None:
    model = PowerModel(nominal_w=2200, max_w=2800)  # the lab spec's 4×L40S server
    assert model.idle_w == 1600 and model.watts(0.5) == 2200 and model.watts(1.0) == 2800
    written: list[list[Sample]] = []

    class Busy:
        name = "fake-utilisation"  # stands in for psutil at a chosen load (psutil's own reading is tested above)

        def read(self, node: str, now: float) -> list[Sample]:
            return [Sample(node, "node_cpu_utilisation_ratio", 0.25, now)]

    clock = iter([0.0, 60.0])
    collector = NodeCollector("gpu-001", [Busy()], written.append, power_model=model, clock=lambda: next(clock))
    collector.collect_once()
    collector.collect_once()
    power = [s for s in written[1] if s.metric == POWER][0]
    assert (power.value, power.measured, power.source) == (1900.0, False, "model")
    energy = [s for s in written[1] if s.metric == ENERGY][0]
    assert (energy.value, energy.measured) == (1900.0 * 60, False)


def test_rapl_reads_powercap_counters_with_wraparound(tmp_path: Path) -> None:
    real = RaplSource()
    if real.available():  # a host whose RAPL counters we may read: the real tree first
        first = real.read("here", time.time())
        assert any(s.metric == "node_rapl_energy_joules_total" for s in first)
    # This build machine is a VM with no /sys/class/powercap (so the real path cannot be read here): the counter
    # files are laid out as the kernel lays them out, and the source reads them the same way.
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    (zone / "energy_uj").write_text("262143000000\n")
    rapl = RaplSource(tmp_path)
    assert rapl.available()
    assert [s.metric for s in rapl.read("n", 10.0)] == ["node_rapl_energy_joules_total"]
    (zone / "energy_uj").write_text("1671150\n")  # wrapped: 2 J later (328850 + 1671150 µJ)
    got = by_metric(rapl.read("n", 12.0))
    watts = got["node_rapl_power_watts"][0]
    assert watts.value == pytest.approx(1.0) and watts.labels == "domain=package-0,zone=intel-rapl:0"
    assert not RaplSource(tmp_path / "missing").available()


def test_without_nvml_there_is_no_gpu_source_and_collection_goes_on() -> None:
    try:
        import pynvml  # noqa: F401

        pytest.skip("nvidia-ml-py is installed here: this test is for hosts without it")
    except ImportError:
        pass
    assert NvmlSource.open() is None
    names = [s.name for s in local_sources(rapl_root="/nonexistent")]
    assert names == ["psutil"]


class StandInNvml:
    """No GPU or driver here, so a stand-in for pynvml (nvidia-ml-py 13.x): the names and behaviour of the calls
    NvmlSource makes — device handles, the event set (register, wait with NVML_ERROR_TIMEOUT when empty, free) —
    and nothing else. The path runs against the real library on a host with a GPU."""

    NVML_ERROR_TIMEOUT = 10
    NVML_ERROR_NOT_SUPPORTED = 3
    nvmlEventTypeXidCriticalError = 0x8
    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        def __init__(self, value: int) -> None:
            super().__init__(f"NVML error {value}")
            self.value = value

    def __init__(self, gpus: int, xid_gpus: set[int], events: bool = True) -> None:
        self.gpus, self.xid_gpus, self.has_events = gpus, xid_gpus, events
        self.pending: list[tuple[int, int]] = []  # (gpu, xid) the driver has queued
        self.registered: set[int] = set()
        self.freed = False

    def nvmlDeviceGetCount(self) -> int:
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, i: int) -> object:
        return ("handle", i)

    def nvmlDeviceGetIndex(self, handle: tuple[str, int]) -> int:
        return handle[1]

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> object:
        return type("Rates", (), {"gpu": 50})()

    def nvmlEventSetCreate(self) -> object:
        if not self.has_events:
            raise self.NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return "event-set"

    def nvmlDeviceGetSupportedEventTypes(self, handle: tuple[str, int]) -> int:
        return self.nvmlEventTypeXidCriticalError if handle[1] in self.xid_gpus else 0

    def nvmlDeviceRegisterEvents(self, handle: tuple[str, int], types: int, events: object) -> None:
        self.registered.add(handle[1])

    def nvmlEventSetWait_v2(self, events: object, timeout_ms: int) -> object:
        assert timeout_ms == 0  # a reading never waits for the driver
        if not self.pending:
            raise self.NVMLError(self.NVML_ERROR_TIMEOUT)
        gpu, xid = self.pending.pop(0)
        return type("Event", (), {"device": ("handle", gpu), "eventType": 0x8, "eventData": xid})()

    def nvmlEventSetFree(self, events: object) -> None:
        self.freed = True

    def __getattr__(self, name: str) -> object:  # the other queries: not supported by this stand-in's "GPU"
        def unsupported(*args: object) -> object:
            raise self.NVMLError(self.NVML_ERROR_NOT_SUPPORTED)

        return unsupported


def test_xid_errors_are_counted_per_gpu_from_nvml_events() -> None:
    nvml = StandInNvml(gpus=2, xid_gpus={1})
    source = NvmlSource(nvml)
    assert nvml.registered == {1}  # GPU 0 does not offer XID events: it gets no XID series
    first = source.read("gpu-001", 1.0)
    xids = {(s.metric, s.labels): s.value for s in first if "xid" in s.metric}
    assert xids == {("gpu_xid_errors_total", "gpu=1"): 0.0, ("gpu_xid_last", "gpu=1"): 0.0}
    assert [s.value for s in first if s.metric == "gpu_utilisation_ratio"] == [0.5, 0.5]  # the rest still reads
    nvml.pending += [(1, 79), (1, 48)]  # fell off the bus, then a double-bit ECC error
    xids = {(s.metric, s.labels): s.value for s in source.read("gpu-001", 2.0) if "xid" in s.metric}
    assert xids == {("gpu_xid_errors_total", "gpu=1"): 2.0, ("gpu_xid_last", "gpu=1"): 48.0}
    again = {(s.metric, s.labels): s.value for s in source.read("gpu-001", 3.0) if "xid" in s.metric}
    assert again[("gpu_xid_errors_total", "gpu=1")] == 2.0  # a counter: nothing new, the same total
    source.close()
    assert nvml.freed


def test_a_driver_without_nvml_events_reads_the_gpus_without_xid_series() -> None:
    source = NvmlSource(StandInNvml(gpus=1, xid_gpus={0}, events=False))
    readings = source.read("gpu-001", 1.0)
    assert [s.metric for s in readings] == ["gpu_utilisation_ratio"]
