"""Energy accounting: a node's power integrated over a time window, a job's share of it, facility energy through
PUE, carbon through the site's grid intensity, and the ISO/IEC 30134 KPIs (PUE, REF, CUE, WUE) where inputs exist.

Power readings are integrated piecewise-linearly between samples (trapezoids); the ends of the window take the
nearest reading for at most ``hold_s``. An answer is ``measured`` only if every reading in it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aidc.store.metadata.records import Sample

if TYPE_CHECKING:
    from aidc.facility.model import Facility

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Energy:
    joules: float
    measured: bool
    covered_s: float  # how much of the window had readings
    window_s: float

    @property
    def kwh(self) -> float:
        return self.joules / J_PER_KWH

    def __add__(self, other: Energy) -> Energy:
        return Energy(
            self.joules + other.joules,
            self.measured and other.measured,
            self.covered_s + other.covered_s,
            self.window_s + other.window_s,
        )

    def scaled(self, share: float) -> Energy:
        return Energy(self.joules * share, self.measured, self.covered_s, self.window_s)


NONE = Energy(0.0, True, 0.0, 0.0)


def integrate(samples: list[Sample], start: float, end: float, *, hold_s: float = 30.0) -> Energy:
    """Joules of one node's power ``samples`` (watts, one series, oldest first) over [start, end)."""
    window = max(0.0, end - start)
    points = [(s.at, s.value, s.measured) for s in samples]
    if not points or window == 0:
        return Energy(0.0, True, 0.0, window)
    joules, covered, measured = 0.0, 0.0, True
    for (t0, p0, m0), (t1, p1, m1) in zip(points, points[1:], strict=False):
        a, b = max(t0, start), min(t1, end)
        if b <= a or t1 <= t0:
            continue
        # the line between the two readings, evaluated at the clipped ends
        pa = p0 + (p1 - p0) * (a - t0) / (t1 - t0)
        pb = p0 + (p1 - p0) * (b - t0) / (t1 - t0)
        joules += (pa + pb) / 2 * (b - a)
        covered += b - a
        measured = measured and m0 and m1
    first_t, first_p, first_m = points[0]
    last_t, last_p, last_m = points[-1]
    if first_t > start:  # before the first reading: hold it back a little
        span = max(0.0, min(first_t, end) - max(start, first_t - hold_s))
        joules, covered, measured = joules + first_p * span, covered + span, measured and (first_m or span == 0)
    if last_t < end:  # after the last reading: hold it forward a little
        span = max(0.0, min(end, last_t + hold_s) - max(start, last_t))
        joules, covered, measured = joules + last_p * span, covered + span, measured and (last_m or span == 0)
    in_window = [m for t, _, m in points if start <= t < end]
    return Energy(joules, measured and all(in_window), min(covered, window), window)


def job_share(job_cpus: float, job_gpus: float, node_cpus: float | None, node_gpus: float | None) -> float:
    """A job's share of a node: of its GPUs where it holds GPUs and the node has them, else of its CPUs."""
    if job_gpus > 0 and node_gpus:
        return min(1.0, job_gpus / node_gpus)
    if node_cpus:
        return min(1.0, job_cpus / node_cpus)
    return 1.0


@dataclass(frozen=True)
class Site:
    """What turns IT energy into facility energy and carbon: from the facility spec, or defaults without one."""

    pue: float
    pue_declared: bool
    grid_g_per_kwh: float | None
    renewable_share: float
    water_l_per_it_kwh: float | None  # WUE from the spec's metered year, where it gives water and IT energy

    @classmethod
    def of(cls, facility: Facility | None) -> Site:
        if facility is None:
            return cls(1.5, False, None, 0.0, None)
        from aidc.facility.derived import derive

        d = derive(facility)
        e = facility.energy
        wue = e.water_l / e.it_kwh if e.water_l is not None and e.it_kwh else None
        return cls(
            d.design_pue, d.design_pue_declared, facility.site.grid_carbon_g_per_kwh, facility.site.renewable_share, wue
        )

    def account(self, it: Energy, *, facility_kwh: float | None = None) -> dict[str, Any]:
        """IT energy → facility energy (metered where a facility meter read it, else through the design PUE),
        carbon and the ISO/IEC 30134 KPIs."""
        it_kwh = it.kwh
        pue = facility_kwh / it_kwh if facility_kwh is not None and it_kwh > 0 else self.pue
        total = facility_kwh if facility_kwh is not None else it_kwh * self.pue
        carbon = total * self.grid_g_per_kwh if self.grid_g_per_kwh is not None else None
        return {
            "it_kwh": round(it_kwh, 6),
            "facility_kwh": round(total, 6),
            "measured": it.measured,
            "pue": round(pue, 4),
            "pue_source": "meter" if facility_kwh is not None else ("design" if self.pue_declared else "default"),
            "grid_g_per_kwh": self.grid_g_per_kwh,
            "gco2e": round(carbon, 3) if carbon is not None else None,
        }

    def kpis(self, it_kwh: float, facility_kwh: float, gco2e: float | None) -> dict[str, Any]:
        """ISO/IEC 30134-2 PUE, -3 REF, -8 CUE (kgCO2e per IT kWh) and -9 WUE (L per IT kWh); None without input."""
        return {
            "PUE": round(facility_kwh / it_kwh, 4) if it_kwh > 0 else None,
            "REF": self.renewable_share if facility_kwh > 0 else None,
            "CUE": round(gco2e / 1000 / it_kwh, 4) if gco2e is not None and it_kwh > 0 else None,
            "WUE": round(self.water_l_per_it_kwh, 4) if self.water_l_per_it_kwh is not None else None,
        }
