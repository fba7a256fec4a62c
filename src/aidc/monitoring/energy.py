"""Energy accounting: a node's power integrated over a time window, a job's share of it, facility energy through
PUE, carbon through the site's grid intensity, and the ISO/IEC 30134 KPIs (PUE, REF, CUE, WUE) where inputs exist.

Power readings are integrated piecewise-linearly between samples (trapezoids); the ends of the window take the
nearest reading for at most ``hold_s``. An answer is ``measured`` only if every reading in it was. Energy is kept
in quarter-hour slices of the clock (every time zone's hours start on a quarter hour), so carbon can weigh each
slice by the grid's intensity in its hour.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aidc.store.metadata.records import Sample

if TYPE_CHECKING:
    from aidc.facility.model import Facility

J_PER_KWH = 3.6e6
SLICE_S = 900.0  # a quarter hour: every zone's hour boundary falls on one (UTC offsets are multiples of 15 min)


@dataclass(frozen=True)
class Energy:
    joules: float
    measured: bool
    covered_s: float  # how much of the window had readings
    window_s: float
    slices: tuple[tuple[float, float], ...] = field(default=(), compare=False)  # (slice start, joules in it)

    @property
    def kwh(self) -> float:
        return self.joules / J_PER_KWH

    def __add__(self, other: Energy) -> Energy:
        return Energy(
            self.joules + other.joules,
            self.measured and other.measured,
            self.covered_s + other.covered_s,
            self.window_s + other.window_s,
            _merged(self.slices, other.slices),
        )

    def scaled(self, share: float) -> Energy:
        return Energy(
            self.joules * share,
            self.measured,
            self.covered_s,
            self.window_s,
            tuple((at, j * share) for at, j in self.slices),
        )


def _merged(a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    """Two energies' slices, one per clock slice: a sum over many nodes stays as long as the period has slices."""
    if not a or not b:
        return a or b
    merged = dict(a)
    for at, joules in b:
        merged[at] = merged.get(at, 0.0) + joules
    return tuple(merged.items())


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


def integrate_slices(
    samples: list[Sample], start: float, end: float, *, hold_s: float = 30.0, slice_s: float = SLICE_S
) -> Energy:
    """As ``integrate``, with the joules of each clock slice of ``slice_s`` kept (for carbon by the hour)."""
    if end <= start or not samples:
        return integrate(samples, start, end, hold_s=hold_s)
    ats = [s.at for s in samples]
    joules, covered, measured, slices = 0.0, 0.0, True, []
    # outside [first reading - hold, last reading + hold] a slice has no energy, no coverage and nothing unmeasured:
    # only the slices the readings reach are walked (a month's window of a node that reported for an hour: 5, not 2,880)
    a, reach = max(start, ats[0] - hold_s), min(end, ats[-1] + hold_s)
    while a < end and a <= reach:  # (<=: the slice that holds a reading at ``reach`` itself is walked too)
        b = min(end, (math.floor(a / slice_s) + 1) * slice_s)
        # the readings either side of the slice draw the same line through it as the whole series; where the
        # slice is at the series' edge the sub-list keeps the true first/last reading, so edge holds match too
        lo, hi = bisect.bisect_left(ats, a), bisect.bisect_left(ats, b)
        part = integrate(samples[max(0, lo - 1) : hi + 1], a, b, hold_s=hold_s)
        joules, covered, measured = joules + part.joules, covered + part.covered_s, measured and part.measured
        if part.joules:
            slices.append((max(start, math.floor(a / slice_s) * slice_s), part.joules))  # the slice's start
        a = b
    return Energy(joules, measured, covered, end - start, tuple(slices))


def job_share(job_cpus: float, job_gpus: float, node_cpus: float | None, node_gpus: float | None) -> float:
    """A job's share of a node: of its GPUs where it holds GPUs and the node has them, else of its CPUs."""
    if job_gpus > 0 and node_gpus:
        return min(1.0, job_gpus / node_gpus)
    if node_cpus:
        return min(1.0, job_cpus / node_cpus)
    return 1.0


@dataclass(frozen=True)
class GridIntensity:
    """The site's grid carbon intensity (gCO2e/kWh) at a time: a dated hour of the spec's profile, else its typical
    day's hour (local to the profile's zone), else the site's flat value; None where the spec gives none."""

    flat: float | None = None
    daily: tuple[float, ...] | None = None
    zone: str = "UTC"
    dated: tuple[tuple[float, float], ...] = ()  # (hour start, g/kWh), sorted

    @property
    def varies(self) -> bool:
        return self.daily is not None or bool(self.dated)

    @classmethod
    def of(cls, site: Any) -> GridIntensity:
        profile = site.grid_carbon_profile
        if profile is None:
            return cls(site.grid_carbon_g_per_kwh)
        dated = tuple(sorted((h.hour.timestamp(), h.g_per_kwh) for h in profile.hours))
        daily = tuple(profile.daily) if profile.daily is not None else None
        return cls(site.grid_carbon_g_per_kwh, daily, profile.timezone, dated)

    def at(self, t: float) -> float | None:
        if self.dated:
            i = bisect.bisect_right(self.dated, (t, math.inf)) - 1
            if i >= 0 and t < self.dated[i][0] + 3600:
                return self.dated[i][1]
        if self.daily is not None:
            return self.daily[_local_hour(t, self.zone)]
        return self.flat

    def grams(self, energy: Energy) -> float | None:
        """gCO2e of ``energy`` (its kWh, each slice at its hour's intensity); None if some hour has no intensity."""
        if not self.varies:
            return energy.kwh * self.flat if self.flat is not None else None
        if not energy.slices:  # not kept by slice: the flat value, if any, is all we can use
            return energy.kwh * self.flat if self.flat is not None else None
        total = 0.0
        for at, joules in energy.slices:
            g = self.at(at)
            if g is None:
                return None
            total += joules / J_PER_KWH * g
        return total


@lru_cache(maxsize=65536)
def _local_hour_cached(slot: int, zone: str) -> int:
    return datetime.fromtimestamp(slot * SLICE_S, ZoneInfo(zone)).hour


def _local_hour(t: float, zone: str) -> int:
    return _local_hour_cached(int(t // SLICE_S), zone)


def _sig(x: float) -> float:
    """Six significant figures: a one-minute run's 0.00004 kWh keeps its digits, a year's MWh no false ones."""
    return float(f"{x:.6g}")


@dataclass(frozen=True)
class Site:
    """What turns IT energy into facility energy and carbon: from the facility spec, or defaults without one."""

    pue: float
    pue_declared: bool
    grid: GridIntensity
    renewable_share: float
    water_l_per_it_kwh: float | None  # WUE from the spec's metered year, where it gives water and IT energy

    @property
    def grid_g_per_kwh(self) -> float | None:
        return self.grid.flat

    @classmethod
    def of(cls, facility: Facility | None) -> Site:
        if facility is None:
            return cls(1.5, False, GridIntensity(), 0.0, None)
        from aidc.facility.derived import derive

        d = derive(facility)
        e = facility.energy
        wue = e.water_l / e.it_kwh if e.water_l is not None and e.it_kwh else None
        return cls(
            d.design_pue, d.design_pue_declared, GridIntensity.of(facility.site), facility.site.renewable_share, wue
        )

    def account(self, it: Energy, *, pue: float | None = None) -> dict[str, Any]:
        """IT energy → facility energy (through ``pue`` where a facility meter measured it, else the design PUE),
        carbon (each quarter hour at its hour's grid intensity where the spec gives a profile) and the flags."""
        it_kwh = it.kwh
        factor = pue if pue is not None else self.pue
        total = it_kwh * factor
        it_g = self.grid.grams(it)
        carbon = it_g * factor if it_g is not None else None
        mean_g = carbon / total if carbon is not None and total > 0 else self.grid.flat
        return {
            "it_kwh": _sig(it_kwh),
            "facility_kwh": _sig(total),
            "measured": it.measured,
            "pue": round(factor, 4),
            "pue_source": "meter" if pue is not None else ("design" if self.pue_declared else "default"),
            "grid_g_per_kwh": round(mean_g, 3) if mean_g is not None else None,
            "grid_source": "profile" if self.grid.varies else ("flat" if self.grid.flat is not None else None),
            "gco2e": _sig(carbon) if carbon is not None else None,
        }

    def kpis(self, it_kwh: float, facility_kwh: float, gco2e: float | None) -> dict[str, Any]:
        """ISO/IEC 30134-2 PUE, -3 REF, -8 CUE (kgCO2e per IT kWh) and -9 WUE (L per IT kWh); None without input."""
        return {
            "PUE": round(facility_kwh / it_kwh, 4) if it_kwh > 0 else None,
            "REF": self.renewable_share if facility_kwh > 0 else None,
            "CUE": round(gco2e / 1000 / it_kwh, 4) if gco2e is not None and it_kwh > 0 else None,
            "WUE": round(self.water_l_per_it_kwh, 4) if self.water_l_per_it_kwh is not None else None,
        }
