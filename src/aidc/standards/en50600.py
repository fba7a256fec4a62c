"""EN 50600 in its own terms: availability classes per infrastructure, protection classes (access, fire), granularity.

EN 50600-1 grades a data centre by the class each infrastructure reaches (power supply and power
distribution in EN 50600-2-2, environmental control in 2-3, telecommunications cabling in 2-4); the
facility's availability class is the lowest of them. Protection classes (EN 50600-1 §6.3, applied to
security in 2-5) and the granularity of energy metering (2-2, for the KPIs of EN 50600-4-x) are graded
separately. How each class is reached is computed in ratings.py; these rules compare it to the targets.
"""

from __future__ import annotations

from typing import Any

from aidc.standards.rule import Context, Outcome, rule

EN1 = "EN 50600-1:2019"
EN22 = "EN 50600-2-2:2019"
EN23 = "EN 50600-2-3:2019"
EN24 = "EN 50600-2-4:2023"
EN25 = "EN 50600-2-5:2021"

_SUBSYSTEMS = {  # rating key → (subject, spec path to change)
    "power_supply": ("power supply (EN 50600-2-2)", ("power", "generators")),
    "power_distribution": ("power distribution (EN 50600-2-2)", ("power",)),
    "environmental_control": ("environmental control (EN 50600-2-3)", ("cooling",)),
    "telecommunications_cabling": ("telecommunications cabling (EN 50600-2-4)", ("fabrics",)),
}


@rule(
    "AV-EN-CLASS",
    "EN 50600 availability class of each infrastructure (the facility's class is the lowest)",
    family="availability",
    standard=f"{EN1}; {EN22}; {EN23}; {EN24}",
    clause="EN 50600-1 §6.2 Table 2 availability classes 1–4 (1 single path; 2 single path, redundant "
    "components; 3 multi-path, concurrent repair/operate; 4 multi-path, fault tolerant), applied to power "
    "supply and distribution (2-2 §5), environmental control (2-3 §5) and telecom cabling (2-4 §5)",
    inferred=("class definitions",),
    remediation="Raise the infrastructure named: power supply — add a secondary supply (generators) and "
    "N+1 sets or a second independent utility supply; distribution — N+1 UPS, then a second path that can "
    "be maintained (class 3) and survives a fault (class 4); environmental control — N+1 units, a second "
    "distribution path; cabling — a redundant backbone, two providers through diverse entrances, two "
    "entrance rooms.",
)
def en_class(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    target = ctx.targets.en50600
    if target is None:
        return None
    r = ctx.ratings["en50600"]
    out = []
    for key, (subject, path) in _SUBSYSTEMS.items():
        out.append(Outcome(r[key] >= target, f"Class {r[key]}", f"Class {target}", path, subject))
    return out


@rule(
    "SEC-EN-PROTECT",
    "EN 50600 protection class of the computer room against unauthorised access",
    family="security",
    standard=f"{EN1}; {EN25}",
    clause="EN 50600-1 §6.3 protection classes 1–4 against unauthorised access (1 public/semi-public; 2 "
    "authorised persons; 3 restricted, entry recorded; 4 restricted to named persons, identified), "
    "entered through the classes below (EN 50600-2-5 §5, shell principle)",
    inferred=("class definitions",),
    remediation="Class 2: electronic access control; class 3: log every entry, watch the doors by CCTV and put "
    "the room inside a second controlled zone; class 4: two-factor identification (card + PIN or "
    "biometric) and a third zone.",
)
def en_protection(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    target = ctx.targets.en50600_protection
    if target is None:
        return None
    got = ctx.ratings["en50600"]["protection_class"]
    s = ctx.facility.security
    measured = (
        f"Class {got} (access control {'yes' if s.access_control else 'no'}, {s.access_zones} zone(s), "
        f"logged {'yes' if s.access_logged else 'no'}, CCTV {'yes' if s.cctv else 'no'}, "
        f"two-factor {'yes' if s.access_two_factor else 'no'})"
    )
    return Outcome(got >= target, measured, f"Class {target}", ("security", "access_zones"), "computer room")


@rule(
    "KPI-EN-GRAN",
    "EN 50600 granularity level of energy metering",
    family="energy",
    standard=f"{EN22}; EN 50600-4-2:2016",
    clause="EN 50600-2-2 §7 energy efficiency enablement, granularity levels 1–3 (1 facility input and IT "
    "(UPS output); 2 also each distribution output; 3 also each rack / IT equipment input); EN 50600-4-2 "
    "PUE categories 1–3 measure IT energy at those points",
    inferred=("level definitions",),
    remediation="Add telemetry endpoints: facility_kwh at the incomer and it_kwh at each UPS output (level 1), "
    "power_kw on every PDU/busway/RPP (level 2), on every rack or a BMC address for every node (level 3).",
)
def en_granularity(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    target = ctx.targets.en50600_granularity
    if target is None:
        return None
    got = ctx.ratings["en50600"]["granularity_level"]
    return Outcome(got >= target, f"level {got}", f"level {target}", ("telemetry", "endpoints"), "energy metering")


@rule(
    "SEC-EN-FIRE",
    "EN 50600 protection class of the computer room against internal fire events",
    family="security",
    standard=f"{EN1}; {EN25}",
    clause="EN 50600-1 §6.3 protection classes against fire events, applied by EN 50600-2-5 §6 (fire "
    "prevention, detection, suppression): 1 fire detection and alarm; 2 also automatic suppression; 3 also "
    "early fire detection (aspirating); 4 also suppression that keeps the IT dry, released by two detector "
    "groups",
    inferred=("class definitions",),
    remediation="Class 1: fire detection and alarm (fire_detector_groups); class 2: automatic suppression; "
    "class 3: early fire detection by aspirating smoke detection (fire_early_detection); class 4: gas, "
    "water mist or aerosol released by two independent detector groups.",
)
def en_fire(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    target = ctx.targets.en50600_fire
    if target is None:
        return None
    got = ctx.ratings["en50600"]["fire_protection_class"]
    s = ctx.facility.security
    measured = (
        f"Class {got} ({s.fire_detector_groups} detector group(s), suppression {s.fire_suppression}, "
        f"early detection {'yes' if s.fire_early_detection else 'no'})"
    )
    return Outcome(got >= target, measured, f"Class {target}", ("security", "fire_suppression"), "computer room")
