"""The collector: samples one node's sources every N seconds into the store, models power where nothing measures
it, and counts the node's energy. In-process on the embedded default; one Ray actor per node on a cluster."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from aidc.monitoring.sources import POWER, PowerModel, Source
from aidc.store.metadata.records import Sample

log = logging.getLogger("aidc.monitoring")
ENERGY = "node_energy_joules_total"
FOLD_EVERY_S = 3600.0  # how often the collector that owns retention folds old samples


class NodeCollector:
    """Reads ``sources`` for ``node`` and writes what they read (plus modelled power and the energy counter) to
    ``write`` (the store's add_samples, or anything that takes a list of Samples)."""

    def __init__(
        self,
        node: str,
        sources: Sequence[Source],
        write: Callable[[list[Sample]], Any],
        *,
        power_model: PowerModel | None = None,
        interval_s: float = 10.0,
        fold: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node, self.sources, self.write = node, list(sources), write
        self.power_model, self.interval_s, self.fold, self.clock = power_model, interval_s, fold, clock
        self.energy_j = 0.0
        self.energy_measured = True
        self._last_power: tuple[float, float] | None = None
        self._last_fold = 0.0
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: dict[str, str] = {}  # source → its last error (a BMC that stopped answering…)

    def collect_once(self) -> list[Sample]:
        now = self.clock()
        readings: list[Sample] = []
        for source in self.sources:
            try:
                readings += source.read(self.node, now)
                self.errors.pop(source.name, None)
            except Exception as exc:  # one broken source must not stop the others
                if self.errors.get(source.name) != str(exc):
                    log.warning("telemetry source %s on %s failed: %s", source.name, self.node, exc)
                self.errors[source.name] = str(exc)
        if self.power_model is not None:
            modelled = self.power_model.modelled(self.node, readings, now)
            if modelled is not None:
                readings.append(modelled)
        power = next((r for r in readings if r.metric == POWER), None)
        if power is not None:
            if self._last_power is not None and now > self._last_power[0]:
                # trapezoid between the two readings: what the node drew since the last one
                self.energy_j += (power.value + self._last_power[1]) / 2 * (now - self._last_power[0])
            self._last_power = (now, power.value)
            self.energy_measured = self.energy_measured and power.measured
            readings.append(Sample(self.node, ENERGY, self.energy_j, now, "", self.energy_measured, power.source))
        self.write(readings)
        if self.fold is not None and now - self._last_fold >= FOLD_EVERY_S:
            self._last_fold = now
            try:
                self.fold()
            except Exception:
                log.exception("telemetry retention failed")
        return readings

    # -- in the background
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"aidc-collector-{self.node}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._halt.is_set():
            started = time.monotonic()
            try:
                self.collect_once()
            except Exception:  # the store away for a moment: the next round retries
                log.exception("telemetry collection on %s failed", self.node)
            self._halt.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


def local_sources(*, redfish: str | None = None, rapl_root: str = "/sys/class/powercap") -> list[Source]:
    """What this host can read: psutil always; RAPL, NVML and a BMC's Redfish where present."""
    from aidc.monitoring.sources import NvmlSource, PsutilSource, RaplSource, RedfishSource

    sources: list[Source] = [PsutilSource()]
    rapl = RaplSource(rapl_root)
    if rapl.available():
        sources.append(rapl)
    nvml = NvmlSource.open()
    if nvml is not None:
        sources.append(nvml)
    if redfish:
        sources.append(RedfishSource(redfish))
    return sources


def start_node_actors(metadata_url: str, nodes: Sequence[dict[str, Any]], *, interval_s: float = 10.0) -> list[Any]:
    """One collector actor per Ray node, pinned to it by node id (0 CPUs: it takes no job's room).

    ``nodes``: dicts with ``ray_node_id``, ``name``, and optionally ``nominal_w``/``max_w`` (modelled power) and
    ``redfish`` (the BMC's URL). Each actor samples its own host and writes to the store at ``metadata_url``.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    actor_class = ray.remote(num_cpus=0, max_restarts=-1)(CollectorActor)
    actors = []
    for node in nodes:
        strategy = NodeAffinitySchedulingStrategy(node_id=node["ray_node_id"], soft=False)
        actor = actor_class.options(
            scheduling_strategy=strategy,
            name=f"aidc-collector-{node['name']}",
            get_if_exists=True,
            namespace="aidc",
            lifetime="detached",
        ).remote(metadata_url, node, interval_s)
        actors.append(actor)
    return actors


class CollectorActor:
    """The collector inside a Ray actor on the node it samples (see start_node_actors)."""

    def __init__(self, metadata_url: str, node: dict[str, Any], interval_s: float) -> None:
        from aidc.store.metadata import open_metadata_store

        self.store = open_metadata_store(metadata_url)
        model = PowerModel(node["nominal_w"], node["max_w"]) if node.get("max_w") else None
        self.collector = NodeCollector(
            node["name"],
            local_sources(redfish=node.get("redfish")),
            self.store.add_samples,
            power_model=model,
            interval_s=interval_s,
        )
        self.collector.start()

    def where(self) -> dict[str, Any]:
        import socket

        import ray

        return {
            "node": self.collector.node,
            "host": socket.gethostname(),
            "ray_node_id": ray.get_runtime_context().get_node_id(),
        }

    def stop(self) -> None:
        self.collector.stop()
