"""Cabling against the floor plan: TIA-942 telecom spaces, horizontal and zone cabling lengths, and whether the
fabric's copper or optics reach from each rack to its leaf switches along the tray.

Lengths come from the layout (facility/layout.py): a drop at each end plus the tray run across the row and
between rows; inside one rack, the rack's height.
"""

from __future__ import annotations

from typing import Any

from aidc.facility import layout
from aidc.facility.model import Fabric
from aidc.standards import ratings as rt
from aidc.standards.rule import Context, Outcome, rule

TIA = "ANSI/TIA-942-C (2024)"
TIA568 = "ANSI/TIA-568.0-E (2020) / ANSI/TIA-568.2-D (2018)"
IEEE = "IEEE Std 802.3-2022 with 802.3ck-2022 and 802.3db-2022"


@rule(
    "AV-TIA-SPACES",
    "TIA-942 telecommunications spaces for the rating",
    family="availability",
    standard=TIA,
    clause="§5.3 data-centre structure: an entrance room and a main distribution area (required for every "
    "data centre); Annex F telecom table: Rated-3 a second entrance room, Rated-4 a secondary distribution "
    "area",
    inferred=("Rated-3 second entrance room", "Rated-4 secondary distribution area"),
    thresholds={"entrance_rooms_3": 2, "sda_4": 1},
    remediation="Declare the spaces under telecom_spaces (entrance_room, mda, hda, zda, eda) and add the ones "
    "the rating asks for: a second entrance room at Rated-3, a secondary distribution area (sda) at Rated-4.",
)
def tia_spaces(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    target = ctx.targets.tia942
    f = ctx.facility
    if target is None or not f.telecom_spaces:
        return None  # undeclared spaces: the telecom rating is judged from the site's providers alone
    ers, mdas, sdas = rt.spaces(f, "entrance_room"), rt.spaces(f, "mda"), rt.spaces(f, "sda")
    need_er = int(t["entrance_rooms_3"]) if target >= 3 else 1
    out = [
        Outcome(ers >= need_er, f"{ers} entrance room(s)", f"≥ {need_er}", ("telecom_spaces",), "entrance room"),
        Outcome(mdas >= 1, f"{mdas} MDA(s)", "≥ 1", ("telecom_spaces",), "main distribution area"),
    ]
    if target >= 4:
        need = int(t["sda_4"])
        out.append(Outcome(sdas >= need, f"{sdas} SDA(s)", f"≥ {need}", ("telecom_spaces",), "secondary distribution"))
    return out


def _space_routes(ctx: Context, drop_m: float) -> list[tuple[int, Any, str, float]]:
    """(space index, space, served rack, route m) for every horizontal run a placed space declares."""
    if not any(s.rack and s.serves for s in ctx.facility.telecom_spaces):
        return []
    places = layout.places(ctx.facility)
    out = []
    for i, space in enumerate(ctx.facility.telecom_spaces):
        if space.rack is None or space.rack not in places:
            continue
        here = places[space.rack]
        for name in space.serves:
            if name in places:
                out.append((i, space, name, layout.route_m(here, places[name], drop_m)))
    return out


@rule(
    "NET-TIA-HORIZ",
    "Horizontal cabling from its distribution area within the permanent-link length",
    family="network",
    standard=f"{TIA}; {TIA568}",
    clause="TIA-942-C § horizontal cabling, TIA-568.2-D § permanent link and channel: horizontal cable ≤ 90 m (permanent link) from "
    "the HDA (or the MDA, or a ZDA's HDA) to the equipment outlet, 100 m channel with cords",
    thresholds={"max_m": 90.0, "drop_m": 1.0},
    inferred=("drop_m",),
    remediation="Move the HDA closer to the racks it serves (or add an HDA per row group) so every run stays "
    "within 90 m; beyond it, use optical fibre.",
)
def horizontal_length(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    out = []
    for i, space, rack, metres in _space_routes(ctx, t["drop_m"]):
        if space.kind not in ("mda", "hda"):
            continue
        out.append(
            Outcome(
                metres <= t["max_m"],
                f"{metres:.1f} m to {rack}" if metres != float("inf") else f"no route to {rack} (another hall)",
                f"≤ {t['max_m']:g} m",
                ("telecom_spaces", i, "serves"),
                space.name,
            )
        )
    return out or None


@rule(
    "NET-TIA-ZDA",
    "Zone distribution areas: far enough from the HDA, and not overloaded",
    family="network",
    standard=f"{TIA}; {TIA568}",
    clause="TIA-942-C § zone distribution area: ≤ 288 connections per ZDA; a ZDA (consolidation point) at "
    "least 15 m of cable from the HDA (TIA-568.0 § consolidation point)",
    thresholds={"min_m_from_hda": 15.0, "max_connections": 288, "drop_m": 1.0},
    inferred=("drop_m",),
    remediation="Place the ZDA at least 15 m of cable from its HDA (short links between two connections in "
    "close proximity degrade copper); split a ZDA that terminates more than 288 connections.",
)
def zone_distribution(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    f = ctx.facility
    if not any(s.kind == "zda" for s in f.telecom_spaces):
        return None
    places = layout.places(f)
    hdas = [places[s.rack] for s in f.telecom_spaces if s.kind == "hda" and s.rack in places]
    out = []
    for i, space in enumerate(f.telecom_spaces):
        if space.kind != "zda":
            continue
        if space.connections is not None:
            cap = int(t["max_connections"])
            out.append(
                Outcome(
                    space.connections <= cap,
                    f"{space.connections} connections",
                    f"≤ {cap}",
                    ("telecom_spaces", i, "connections"),
                    space.name,
                )
            )
        if space.rack in places and hdas:
            _, metres = layout.nearest(places[space.rack], hdas, t["drop_m"])
            out.append(
                Outcome(
                    metres >= t["min_m_from_hda"],
                    f"{metres:.1f} m from the nearest HDA",
                    f"≥ {t['min_m_from_hda']:g} m",
                    ("telecom_spaces", i, "rack"),
                    space.name,
                )
            )
    return out or None


def reach_key(fab: Fabric) -> str:
    """Threshold name for a fabric's media at its port speed (copper reach falls as the lane rate rises)."""
    media = fab.cable or ""
    if media in ("dac", "mmf"):
        speed = next(s for s in (100, 200, 400, 800, 1600) if fab.port_gbps <= s or s == 1600)
        return f"{media}_{min(speed, 800)}g"
    return media


@rule(
    "NET-CABLE-REACH",
    "Each rack reaches its fabric's leaf switches within the cable's rated length",
    family="network",
    standard=IEEE,
    clause="passive copper: 100GBASE-CR4 5 m (§92), 200GBASE-CR4 3 m (§136), 400GBASE-CR4 / 800G "
    "2 m (802.3ck §162); multimode: 400GBASE-SR8 / SR4 100 m on OM4 (802.3cm §138, 802.3db §167), "
    "800G 50 m (VR); singlemode 400GBASE-DR4 500 m (§124); AEC 7 m and AOC 100 m are vendor ratings",
    thresholds={
        "dac_100g": 5.0,
        "dac_200g": 3.0,
        "dac_400g": 2.0,
        "dac_800g": 2.0,
        "aec": 7.0,
        "aoc": 100.0,
        "mmf_100g": 100.0,
        "mmf_200g": 100.0,
        "mmf_400g": 100.0,
        "mmf_800g": 50.0,
        "smf": 500.0,
        "drop_m": 1.0,
    },
    inferred=("aec", "aoc", "mmf_800g", "drop_m"),
    remediation="Move the leaf switches closer (top-of-row or middle-of-row racks), or use a media that "
    "reaches: active copper to ≈ 7 m, multimode optics to 100 m (50 m at 800G), singlemode (DR4) to 500 m.",
)
def cable_reach(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    f = ctx.facility
    if not any(fab.cable and fab.switch_racks for fab in f.fabrics):
        return None
    places = layout.places(f)
    out = []
    for fi, fab in enumerate(f.fabrics):
        if fab.cable is None or not fab.switch_racks:
            continue
        leaves = [places[r] for r in fab.switch_racks if r in places]
        if not leaves:
            continue
        limit = float(t[reach_key(fab)])
        endpoint_racks = sorted(
            {r for n in f.nodes if any(nic.fabric == fab.name for nic in n.nics) for r in n.placement}
        )
        for name in endpoint_racks:
            if name not in places:
                continue
            leaf, metres = layout.nearest(places[name], leaves, t["drop_m"])
            where = f"{metres:.1f} m to {leaf.rack.name}" if leaf is not None else "no route (another hall)"
            out.append(
                Outcome(
                    metres <= limit,
                    where,
                    f"≤ {limit:g} m ({fab.cable}, {fab.port_gbps:g} Gb/s)",
                    ("fabrics", fi, "cable"),
                    f"{fab.name}: {name}",
                )
            )
    return out or None
