"""Telemetry sources: psutil (always), RAPL, NVML and Redfish where present, and modelled power where no sensor is.

Each source turns what it reads into Samples named as Prometheus names them (base units in the name: ``_bytes``,
``_watts``, ``_celsius``, ``_joules_total``, ``_ratio``), each flagged measured or modelled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aidc.store.metadata.records import Sample, label_text

log = logging.getLogger("aidc.monitoring")

POWER = "node_power_watts"  # the node's whole draw: a BMC's chassis power, else modelled
FACILITY_POWER = "facility_power_watts"  # a facility meter's reading: the whole site's draw (series named by meter)
CPU = "node_cpu_utilisation_ratio"
GPU_UTIL = "gpu_utilisation_ratio"


class Source(Protocol):
    name: str

    def read(self, node: str, now: float) -> list[Sample]: ...


def _sample(
    node: str, metric: str, value: float, now: float, source: str, measured: bool = True, **labels: Any
) -> Sample:
    return Sample(node, metric, float(value), now, label_text({k: str(v) for k, v in labels.items()}), measured, source)


class PsutilSource:
    """CPU, memory, disk and network of this host."""

    name = "psutil"

    def __init__(self, disk_path: str = "/") -> None:
        import psutil

        self._psutil = psutil
        self.disk_path = disk_path
        psutil.cpu_percent(None)  # the first call starts the interval the next one measures

    def read(self, node: str, now: float) -> list[Sample]:
        ps = self._psutil
        mem = ps.virtual_memory()
        disk = ps.disk_usage(self.disk_path)
        net = ps.net_io_counters()
        s = self.name
        return [
            _sample(node, CPU, ps.cpu_percent(None) / 100.0, now, s),
            _sample(node, "node_cpu_count", ps.cpu_count() or 1, now, s),
            _sample(node, "node_memory_used_bytes", mem.total - mem.available, now, s),
            _sample(node, "node_memory_total_bytes", mem.total, now, s),
            _sample(node, "node_disk_used_bytes", disk.used, now, s, mount=self.disk_path),
            _sample(node, "node_disk_total_bytes", disk.total, now, s, mount=self.disk_path),
            _sample(node, "node_network_receive_bytes_total", net.bytes_recv, now, s),
            _sample(node, "node_network_transmit_bytes_total", net.bytes_sent, now, s),
        ]


class RaplSource:
    """CPU package and DRAM power from Intel/AMD RAPL counters under /sys/class/powercap (energy in µJ, wrapping
    at max_energy_range_uj): watts from two successive readings, and the counter itself as joules."""

    name = "rapl"

    def __init__(self, root: str | Path = "/sys/class/powercap") -> None:
        self.root = Path(root)
        self._last: dict[str, tuple[float, int]] = {}

    def zones(self) -> list[Path]:
        try:
            return sorted(p for p in self.root.glob("intel-rapl:*") if (p / "energy_uj").is_file())
        except OSError:
            return []

    def available(self) -> bool:
        for zone in self.zones():
            try:
                int((zone / "energy_uj").read_text())
                return True
            except (OSError, ValueError):  # present but unreadable (root-only since CVE-2020-8694)
                continue
        return False

    def read(self, node: str, now: float) -> list[Sample]:
        out = []
        for zone in self.zones():
            try:
                energy = int((zone / "energy_uj").read_text())
                domain = (zone / "name").read_text().strip() if (zone / "name").is_file() else zone.name
                wrap = (
                    int((zone / "max_energy_range_uj").read_text()) if (zone / "max_energy_range_uj").is_file() else 0
                )
            except (OSError, ValueError):
                continue
            out.append(
                _sample(
                    node, "node_rapl_energy_joules_total", energy / 1e6, now, self.name, zone=zone.name, domain=domain
                )
            )
            before = self._last.get(zone.name)
            self._last[zone.name] = (now, energy)
            if before is not None and now > before[0]:
                delta = energy - before[1]
                if delta < 0 and wrap:
                    delta += wrap
                if delta >= 0:
                    watts = delta / 1e6 / (now - before[0])
                    out.append(
                        _sample(node, "node_rapl_power_watts", watts, now, self.name, zone=zone.name, domain=domain)
                    )
        return out


class NvmlSource:
    """GPU utilisation, memory, power, temperature, ECC and XID errors through NVML (nvidia-ml-py), when a GPU is
    here.

    ``NvmlSource.open()`` is None where the library or the driver is missing: the collector goes on without it.
    XID errors (the driver's critical GPU faults: 48 double-bit ECC, 79 fallen off the bus…) arrive as NVML events,
    not as a counter: the source registers for them on every GPU that supports them and, at each reading, drains
    what arrived since (a wait of 0 ms), counting them per GPU (``gpu_xid_errors_total``, with the last XID seen
    as ``gpu_xid_last``). A GPU or driver without the event API simply has no XID series.
    """

    name = "nvml"

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        self.xids: dict[int, int] = {}  # GPU index → XID events counted
        self.last_xid: dict[int, int] = {}
        self._events: Any = None
        try:
            events = nvml.nvmlEventSetCreate()
        except Exception as exc:  # no event API in this driver: no XID series
            log.debug("no NVML events: %s", exc)
            return
        for i, handle in enumerate(self.handles):
            try:
                if nvml.nvmlDeviceGetSupportedEventTypes(handle) & nvml.nvmlEventTypeXidCriticalError:
                    nvml.nvmlDeviceRegisterEvents(handle, nvml.nvmlEventTypeXidCriticalError, events)
                    self.xids[i] = 0
            except Exception as exc:  # NOT_SUPPORTED (a vGPU, MIG slices), NO_PERMISSION
                log.debug("no XID events on GPU %d: %s", i, exc)
        if self.xids:
            self._events = events
        else:
            nvml.nvmlEventSetFree(events)

    def close(self) -> None:
        if self._events is not None:
            self.nvml.nvmlEventSetFree(self._events)
            self._events = None

    def _drain_xids(self) -> None:
        """Count the XID events that arrived since the last reading, without waiting for more."""
        n = self.nvml
        for _ in range(10_000):  # a storm of events is counted over several readings, never a stuck collector
            try:
                event = n.nvmlEventSetWait_v2(self._events, 0)
            except n.NVMLError as exc:
                if getattr(exc, "value", None) != n.NVML_ERROR_TIMEOUT:  # timeout: nothing more for now
                    log.warning("reading NVML XID events failed: %s", exc)
                return
            if not event.eventType & n.nvmlEventTypeXidCriticalError:
                continue
            try:
                gpu = n.nvmlDeviceGetIndex(event.device)
            except n.NVMLError:
                continue
            self.xids[gpu] = self.xids.get(gpu, 0) + 1
            self.last_xid[gpu] = int(event.eventData)
            log.warning("GPU %d reported XID %d", gpu, int(event.eventData))

    @classmethod
    def open(cls) -> NvmlSource | None:
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            source = cls(pynvml)
        except Exception as exc:  # ImportError, NVMLError (no driver, no device): no GPU telemetry here
            log.debug("no NVML: %s", exc)
            return None
        return source if source.handles else None

    def read(self, node: str, now: float) -> list[Sample]:
        n, out = self.nvml, []
        reads: list[tuple[str, Callable[[Any], float]]] = [
            (GPU_UTIL, lambda h: n.nvmlDeviceGetUtilizationRates(h).gpu / 100.0),
            ("gpu_memory_used_bytes", lambda h: n.nvmlDeviceGetMemoryInfo(h).used),
            ("gpu_memory_total_bytes", lambda h: n.nvmlDeviceGetMemoryInfo(h).total),
            ("gpu_power_watts", lambda h: n.nvmlDeviceGetPowerUsage(h) / 1000.0),
            ("gpu_temperature_celsius", lambda h: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            (
                "gpu_ecc_uncorrected_errors_total",
                lambda h: n.nvmlDeviceGetTotalEccErrors(h, n.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, n.NVML_VOLATILE_ECC),
            ),
        ]
        for i, handle in enumerate(self.handles):
            for metric, get in reads:
                try:
                    out.append(_sample(node, metric, get(handle), now, self.name, gpu=i))
                except Exception:  # a query this GPU or driver does not support (ECC off, no power sensor)
                    continue
        if self._events is not None:
            self._drain_xids()
            for i, count in sorted(self.xids.items()):
                out.append(_sample(node, "gpu_xid_errors_total", count, now, self.name, gpu=i))
                out.append(_sample(node, "gpu_xid_last", self.last_xid.get(i, 0), now, self.name, gpu=i))
        return out


class RedfishSource:
    """A BMC over Redfish (DMTF): chassis power and PSU output (Power), inlet temperature and fans (Thermal)."""

    name = "redfish"

    def __init__(
        self,
        base_url: str,
        *,
        chassis: str | None = None,
        username: str = "",
        password: str = "",
        timeout_s: float = 5.0,
        verify: bool | str = True,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.chassis = chassis
        auth = (username, password) if username else None
        self._http = httpx.Client(base_url=self.base_url, auth=auth, timeout=timeout_s, verify=verify)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str) -> dict[str, Any]:
        response = self._http.get(path)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def _chassis(self) -> list[str]:
        if self.chassis:
            return [f"/redfish/v1/Chassis/{self.chassis}"]
        return [m["@odata.id"].rstrip("/") for m in self._get("/redfish/v1/Chassis").get("Members", [])]

    def read(self, node: str, now: float) -> list[Sample]:
        out: list[Sample] = []
        s = self.name
        for chassis in self._chassis():
            body = self._get(chassis)
            power_link = body.get("Power", {}).get("@odata.id")
            thermal_link = body.get("Thermal", {}).get("@odata.id")
            if power_link:
                power = self._get(power_link)
                for control in power.get("PowerControl", [])[:1]:
                    if control.get("PowerConsumedWatts") is not None:
                        out.append(_sample(node, POWER, control["PowerConsumedWatts"], now, s))
                for psu in power.get("PowerSupplies", []):
                    if psu.get("LastPowerOutputWatts") is not None:
                        out.append(
                            _sample(
                                node,
                                "node_psu_output_watts",
                                psu["LastPowerOutputWatts"],
                                now,
                                s,
                                psu=psu.get("Name") or psu.get("MemberId", ""),
                            )
                        )
            if thermal_link:
                thermal = self._get(thermal_link)
                for t in thermal.get("Temperatures", []):
                    if t.get("PhysicalContext") == "Intake" and t.get("ReadingCelsius") is not None:
                        out.append(
                            _sample(
                                node,
                                "node_inlet_temperature_celsius",
                                t["ReadingCelsius"],
                                now,
                                s,
                                sensor=t.get("Name", ""),
                            )
                        )
                for fan in thermal.get("Fans", []):
                    if fan.get("Reading") is not None:
                        unit = "rpm" if fan.get("ReadingUnits", "RPM") == "RPM" else "ratio"
                        value = fan["Reading"] if unit == "rpm" else fan["Reading"] / 100.0
                        out.append(
                            _sample(
                                node,
                                f"node_fan_speed_{unit}",
                                value,
                                now,
                                s,
                                fan=fan.get("Name") or fan.get("MemberId", ""),
                            )
                        )
        return out


class RedfishMeterSource:
    """A facility power meter behind Redfish (a metered PDU or the site's intake meter modelled as a Chassis):
    the sum of its chassis' ``PowerControl[0].PowerConsumedWatts``, as ``facility_power_watts`` of the meter."""

    def __init__(self, meter: str, base_url: str, *, resource: str | None = None, timeout_s: float = 5.0) -> None:
        self.name = f"meter {meter} (redfish)"
        chassis = resource.rstrip("/").rsplit("/", 1)[-1] if resource else None
        self.meter, self._redfish = meter, RedfishSource(base_url, chassis=chassis, timeout_s=timeout_s)

    def close(self) -> None:
        self._redfish.close()

    def read(self, node: str, now: float) -> list[Sample]:
        watts = [s.value for s in self._redfish.read(self.meter, now) if s.metric == POWER]
        if not watts:
            raise ValueError(
                f"meter {self.meter}: no PowerControl reading (PowerConsumedWatts) at {self._redfish.base_url}"
            )
        return [_sample(self.meter, FACILITY_POWER, sum(watts), now, "redfish")]


class PrometheusMeterSource:
    """A facility power meter whose readings Prometheus already scrapes: one instant PromQL query (its value in
    watts; a vector is summed), as ``facility_power_watts`` of the meter."""

    def __init__(self, meter: str, base_url: str, query: str, *, timeout_s: float = 5.0) -> None:
        import httpx

        self.name = f"meter {meter} (prometheus)"
        self.meter, self.query = meter, query
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def read(self, node: str, now: float) -> list[Sample]:
        import httpx

        try:
            response = self._http.get("/api/v1/query", params={"query": self.query})
        except httpx.TransportError as exc:  # not there (yet), or gone: a connection error like any other source's
            raise ConnectionError(
                f"meter {self.meter}: Prometheus at {self._http.base_url} unreachable: {exc}"
            ) from None
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or body.get("status") != "success":
            raise ValueError(
                f"meter {self.meter}: Prometheus answered {response.status_code}: {body.get('error', response.text[:200])}"
            )
        data = body["data"]
        if data["resultType"] == "scalar":
            values = [float(data["result"][1])]
        elif data["resultType"] == "vector":
            values = [float(r["value"][1]) for r in data["result"]]
        else:
            raise ValueError(f"meter {self.meter}: the query gives a {data['resultType']}, not an instant value")
        if not values:
            raise ValueError(f"meter {self.meter}: the query {self.query!r} returned no series (is the meter scraped?)")
        return [_sample(self.meter, FACILITY_POWER, sum(values), now, "prometheus")]


def meter_from_url(url: str, *, where: str = "AIDC_FACILITY_METER") -> Source:
    """A facility meter named by one URL (the server setting, for a site whose spec declares none):
    ``redfish+https://HOST[/redfish/v1/Chassis/ID]`` or ``prometheus+http://HOST:PORT?query=PROMQL``."""
    from urllib.parse import parse_qs, urlsplit

    from aidc.errors import InvalidInput

    scheme, _, rest = url.partition("+")
    parts = urlsplit(rest)
    if scheme not in ("redfish", "prometheus") or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            f"facility meter {url!r} is not a meter URL",
            where=where,
            hint="write redfish+https://HOST[/redfish/v1/Chassis/ID] or prometheus+http://HOST:9090?query=PROMQL",
        )
    base = f"{parts.scheme}://{parts.netloc}"
    if scheme == "redfish":
        path = parts.path.rstrip("/")
        return RedfishMeterSource("facility-meter", base, resource=path if "/Chassis/" in path else None)
    query = parse_qs(parts.query).get("query", [""])[0]
    if not query:
        raise InvalidInput(
            f"facility meter {url!r} names no query",
            where=where,
            hint="add ?query=PROMQL whose value is the site's draw in watts (URL-encoded), e.g. "
            "?query=sum(pdu_input_power_watts)",
        )
    return PrometheusMeterSource("facility-meter", base + parts.path.rstrip("/"), query)


def facility_meters(facility: Any, url: str = "") -> list[Source]:
    """The facility spec's meters of the whole site's power (telemetry endpoints measuring ``power_kw`` with no
    target), as sources the server's collector reads; else the one ``url`` names (the server setting)."""
    out: list[Source] = []
    for endpoint in facility.telemetry.endpoints if facility is not None else []:
        if not endpoint.facility_meter:
            continue
        if endpoint.protocol == "redfish":
            out.append(RedfishMeterSource(endpoint.name, endpoint.address, resource=endpoint.resource))
        else:
            out.append(PrometheusMeterSource(endpoint.name, endpoint.address, endpoint.query or ""))
    if not out and url:
        out.append(meter_from_url(url))
    return out


@dataclass
class PowerModel:
    """Power where no sensor reads it: linear in utilisation between idle and the spec's maximum, with the spec's
    nominal power at half load (idle = 2·nominal − max, at least 30 % of max — servers rarely idle lower).
    Utilisation is the GPUs' where the node has GPUs and NVML reads them, else the CPUs'."""

    nominal_w: float
    max_w: float
    idle_w: float = field(init=False)

    def __post_init__(self) -> None:
        self.idle_w = min(self.nominal_w, max(2 * self.nominal_w - self.max_w, 0.3 * self.max_w))

    def watts(self, utilisation: float) -> float:
        u = min(1.0, max(0.0, utilisation))
        return self.idle_w + (self.max_w - self.idle_w) * u

    def modelled(self, node: str, readings: list[Sample], now: float) -> Sample | None:
        """A modelled ``node_power_watts`` from these readings' utilisation; None when a sensor measured it."""
        if any(r.metric == POWER and r.measured for r in readings):
            return None
        gpus = [r.value for r in readings if r.metric == GPU_UTIL]
        cpus = [r.value for r in readings if r.metric == CPU]
        if gpus:
            u = sum(gpus) / len(gpus)
        elif cpus:
            u = cpus[0]
        else:
            return None
        return _sample(node, POWER, self.watts(u), now, "model", measured=False)


def now_s() -> float:
    return time.time()
