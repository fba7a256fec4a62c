"""Where racks stand on the floor (hall, row, place in the row) and how long a cable between two of them runs.

A rack's row is its ``row`` label (rows are numbered in the order the hall first lists them); its place in
the row is the number at the end of its ``position`` (``A07`` → 7), or its order among the row's racks when
the position has no number. Cables run up out of one rack, along the overhead tray (across the row, then
across rows: a Manhattan route) and down into the other; inside one rack they run its height.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aidc.facility.model import Facility, Hall, Rack

U_M = 0.04445  # one rack unit, metres
_TRAILING_NUMBER = re.compile(r"(\d+)\s*$")


@dataclass(frozen=True)
class Place:
    hall: Hall
    rack: Rack
    row: int
    slot: int

    @property
    def height_m(self) -> float:
        return self.rack.u_height * U_M


def places(f: Facility) -> dict[str, Place]:
    """Every rack that has a row, with its row number and its slot in the row."""
    out: dict[str, Place] = {}
    for hall in f.halls:
        rows: dict[str, int] = {}
        seen: dict[str, int] = {}
        for rack in hall.racks:
            if rack.row is None:
                continue
            row = rows.setdefault(rack.row, len(rows))
            seen[rack.row] = seen.get(rack.row, 0) + 1
            match = _TRAILING_NUMBER.search(rack.position or "")
            slot = int(match.group(1)) if match else seen[rack.row]
            out[rack.name] = Place(hall, rack, row, slot)
    return out


def route_m(a: Place, b: Place, drop_m: float) -> float:
    """Cable route between two racks: in-rack, the rack's height; else a drop at each end plus the tray run.

    Racks in different halls have no route the layout can measure: infinite (the caller says so).
    """
    if a.rack.name == b.rack.name:
        return a.height_m
    if a.hall.name != b.hall.name:
        return float("inf")
    across = abs(a.slot - b.slot) * a.hall.rack_pitch_m
    between = abs(a.row - b.row) * a.hall.row_pitch_m
    return across + between + 2 * drop_m


def nearest(a: Place, candidates: list[Place], drop_m: float) -> tuple[Place | None, float]:
    best: tuple[Place | None, float] = (None, float("inf"))
    for c in candidates:
        d = route_m(a, c, drop_m)
        if d < best[1]:
            best = (c, d)
    return best
