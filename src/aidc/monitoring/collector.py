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


def power_model_for(facility: Any, name: str) -> PowerModel | None:
    """The spec's nominal and maximum power of server ``name`` as a power model (None if the spec lacks it)."""
    if facility is None:
        return None
    for inst in facility.node_instances():
        if inst.name == name and inst.group.max_kw > 0:
            return PowerModel(inst.group.nominal_kw * 1000, inst.group.max_kw * 1000)
    return None


def local_collector(store: Any, settings: Any, facility: Any) -> NodeCollector:
    """The server's in-process collector for this host (the embedded default): named and power-modelled as the
    facility spec has it, writing to ``store``, and the one that applies sample retention. It also reads the
    spec's facility meters (the site's whole draw, for a measured PUE), or the one the settings name."""
    from aidc.cluster.inventory import node_name, this_host
    from aidc.monitoring.sources import facility_meters

    name = node_name(this_host(), settings.node_names, facility)
    return NodeCollector(
        name,
        local_sources(redfish=settings.redfish_url or None) + facility_meters(facility, settings.facility_meter),
        store.add_samples,
        power_model=power_model_for(facility, name),
        interval_s=settings.telemetry_interval_s,
        fold=store.fold_samples,
    )


def start_cluster_collectors(ray_address: str, store: Any, settings: Any, facility: Any) -> list[Any]:
    """On a Ray cluster (``aidc server --ray-address``): a collector actor on every other alive node, named and
    power-modelled as the spec has it (this host is the server's in-process collector's)."""
    import ray

    from aidc.cluster.compute import ray_cluster
    from aidc.cluster.inventory import node_name, ray_nodes, this_host

    if not ray.is_initialized():
        ray_cluster(ray_address).__enter__()  # joined for the server's life, as the scheduler joins it
    here = this_host().host
    nodes = []
    for node in ray_nodes():
        if not node.alive or node.host == here:
            continue
        name = node_name(node, settings.node_names, facility)
        model = power_model_for(facility, name)
        nodes.append(
            {"ray_node_id": node.ray_node_id, "name": name}
            | ({"nominal_w": model.nominal_w, "max_w": model.max_w} if model else {})
        )
    return start_node_actors(store.url, nodes, interval_s=settings.telemetry_interval_s) if nodes else []
