"""Energy by quarter-hour slice (for carbon by the hour) against the one-piece integral: the same joules, coverage
and measured flag whatever the window, the readings and the hold — and the slices a month's window walks are only
those its readings reach (the energy page sums a month for every node)."""

from __future__ import annotations

import math
import random

from aidc.monitoring.energy import SLICE_S, integrate, integrate_slices
from aidc.store.metadata.records import Sample


def test_slices_add_up_to_the_one_piece_integral() -> None:
    rng = random.Random(7)
    for _ in range(500):
        base = 1.7e9 + rng.uniform(0, 1e5)
        times = sorted(base + rng.uniform(-5000, 20000) for _ in range(rng.randint(1, 30)))
        samples = [Sample("n", "node_power_watts", rng.uniform(0, 1000), t, measured=rng.random() < 0.8) for t in times]
        start = base + rng.uniform(-8000, 8000)
        end = start + rng.uniform(0, 30000)
        hold = rng.choice([0.0, 30.0, 600.0])
        whole, sliced = integrate(samples, start, end, hold_s=hold), integrate_slices(samples, start, end, hold_s=hold)
        assert math.isclose(sliced.joules, whole.joules, rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(sliced.covered_s, whole.covered_s, abs_tol=1e-6)
        assert sliced.measured == whole.measured and sliced.window_s == whole.window_s
        assert math.isclose(sum(j for _, j in sliced.slices), whole.joules, rel_tol=1e-9, abs_tol=1e-6)
        for at, _ in sliced.slices:  # each slice is keyed by its start on the clock (the window's start for the first)
            assert at == start or at % SLICE_S == 0


def test_a_month_window_of_an_hour_of_readings_keeps_only_the_hours_slices() -> None:
    end = 1.7e9 // SLICE_S * SLICE_S
    samples = [Sample("n", "node_power_watts", 1000.0, end - 3600 + 10 * k, measured=True) for k in range(360)]
    energy = integrate_slices(samples, end - 30 * 86400, end, hold_s=30.0)
    assert math.isclose(energy.kwh, 1.0, rel_tol=0.01)  # 1 kW for an hour (and a 30 s hold after the last reading)
    assert 4 <= len(energy.slices) <= 5
