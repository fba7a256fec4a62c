"""Security rules: MLPS level 3 (GB/T 22239), ISO/IEC 27001:2022 and SOC 2 essentials, GB 50174 fire protection."""

from __future__ import annotations

from typing import Any

from aidc.standards.rule import Context, Outcome, rule

MLPS = "GB/T 22239-2019 (MLPS 2.0, level 3) / ISO/IEC 27001:2022 Annex A / AICPA SOC 2 TSC (2017, rev. 2022)"
GB = "GB 50174-2017"


def _applies(ctx: Context) -> bool:
    """Security essentials are judged when the facility targets MLPS ≥ 3, ISO 27001 or SOC 2."""
    t = ctx.targets
    return (t.mlps or 0) >= 3 or t.iso27001 or t.soc2


def _flag(ctx: Context, field: str, want: str) -> Outcome | None:
    if not _applies(ctx):
        return None
    value = getattr(ctx.facility.security, field)
    return Outcome(bool(value), "yes" if value else "no", want, ("security", field))


@rule(
    "SEC-MFA",
    "Multi-factor authentication with a cryptographic factor",
    family="security",
    standard=MLPS,
    clause="§8.1.4.1 d) (inf clause); PCI DSS v4.0 8.4.2 (inf); SOC 2 CC6.1/CC6.2",
    thresholds={"min_factors": 2},
    inferred=("clause numbers",),
    remediation="Require two factors for administrators, one of them cryptographic (FIDO2 key, smart card, "
    "certificate).",
)
def mfa(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _applies(ctx):
        return None
    s = ctx.facility.security
    ok = s.mfa and s.mfa_factors >= t["min_factors"] and s.mfa_cryptographic
    measured = f"{s.mfa_factors if s.mfa else 1} factor(s){', cryptographic' if s.mfa_cryptographic else ''}"
    return Outcome(ok, measured, f"≥ {t['min_factors']} factors, one cryptographic", ("security", "mfa"))


@rule(
    "SEC-LOG",
    "Audit log retention",
    family="security",
    standard="Cybersecurity Law of the People's Republic of China (2016, in force 2017-06-01)",
    clause="Art. 21(3): network operators keep network logs for no less than six months "
    "(binds every operator in China, whatever its MLPS level)",
    read=True,
    thresholds={"min_days": 180},
    remediation="Keep audit logs at least the required days (365 if cardholder data is in scope).",
)
def log_retention(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    # Art. 21 is law for every network operator, not an MLPS level-3 control: any site in China, or any MLPS
    # target (levels 1–5 all sit under the same law), is judged, as are ISO 27001 / SOC 2 targets.
    if not (_applies(ctx) or ctx.in_china or ctx.targets.mlps is not None):
        return None
    days = ctx.facility.security.audit_log_retention_days
    return Outcome(
        days >= t["min_days"], f"{days} days", f"≥ {t['min_days']:g} days", ("security", "audit_log_retention_days")
    )


@rule(
    "SEC-LOG-PROTECT",
    "Audit records protected and backed up",
    family="security",
    standard=MLPS,
    clause="§8.1.4.3 security audit: protect and back up audit records; ISO 27001 A.8.15",
    remediation="Ship audit logs to append-only (WORM or hash-chained) storage with a backup copy.",
)
def log_protected(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    return _flag(ctx, "audit_log_protected", "protected and backed up")


@rule(
    "SEC-CRYPTO-REST",
    "Encryption at rest",
    family="security",
    standard=MLPS,
    clause="§8.1.4.8 (inf); ISO 27001 A.8.24; SOC 2 CC6.7",
    inferred=("MLPS clause",),
    remediation="Encrypt datasets, checkpoints and model artifacts at rest (e.g. AES-256-GCM with managed keys).",
)
def crypto_rest(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    return _flag(ctx, "encryption_at_rest", "encrypted")


@rule(
    "SEC-CRYPTO-TRANSIT",
    "Encryption in transit",
    family="security",
    standard=MLPS,
    clause="§8.1.2.2 (inf); ISO 27001 A.8.24; SOC 2 CC6.7",
    inferred=("MLPS clause",),
    remediation="Use TLS for every API, console and replication link carrying important data.",
)
def crypto_transit(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    return _flag(ctx, "encryption_in_transit", "encrypted")


@rule(
    "SEC-PHYS",
    "Electronic access control with logged entry and zones",
    family="security",
    standard=MLPS,
    clause="§8.1.1.2 physical access control; ISO 27001 A.7.1/A.7.2; SOC 2 CC6.4",
    thresholds={"min_zones": 2},
    remediation="Fit electronic access control with logged entry at the machine rooms and split the site into "
    "zones (public, office, white space).",
)
def physical_access(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _applies(ctx):
        return None
    s = ctx.facility.security
    ok = s.access_control and s.access_logged and s.access_zones >= t["min_zones"]
    measured = (
        f"control={'yes' if s.access_control else 'no'}, logged={'yes' if s.access_logged else 'no'}, "
        f"{s.access_zones} zones"
    )
    return Outcome(ok, measured, f"controlled, logged, ≥ {t['min_zones']} zones", ("security", "access_control"))


@rule(
    "SEC-CCTV",
    "CCTV monitoring of machine rooms",
    family="security",
    standard=MLPS,
    clause="§8.1.1.3 physical security (anti-theft, monitoring); ISO 27001 A.7.4",
    thresholds={"min_retention_days": 30},
    inferred=("min_retention_days",),
    remediation="Cover entrances and machine rooms with CCTV and keep recordings for the required days.",
)
def cctv(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _applies(ctx):
        return None
    s = ctx.facility.security
    days = s.cctv_retention_days or 0
    ok = s.cctv and days >= t["min_retention_days"]
    return Outcome(
        ok,
        f"{'yes' if s.cctv else 'no'}, {days} days kept",
        f"yes, ≥ {t['min_retention_days']} days",
        ("security", "cctv"),
    )


@rule(
    "SEC-AVAIL",
    "Redundant communication lines and off-site backup",
    family="security",
    standard=MLPS,
    clause="§8.1.4.11 (inf): redundant lines and devices, real-time off-site backup; ISO 27001 A.8.13/A.8.14",
    inferred=("clause",),
    remediation="Add a second carrier line and replicate important data off-site in near real time.",
)
def availability(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    if not _applies(ctx):
        return None
    return [
        o
        for o in (
            _flag(ctx, "redundant_comm_lines", "redundant lines"),
            _flag(ctx, "offsite_backup", "off-site backup"),
        )
        if o is not None
    ]


@rule(
    "SEC-FIRE",
    "Automatic fire suppression",
    family="security",
    standard=GB,
    clause="§13.1 fire protection of the main machine room (gas, water mist or pre-action)",
    remediation="Install gas, water-mist or pre-action suppression in the white space.",
)
def fire_suppression(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _applies(ctx) and ctx.targets.gb50174 is None:
        return None
    kind = ctx.facility.security.fire_suppression
    return Outcome(
        kind in ("gas", "water_mist", "pre_action", "aerosol"),
        kind,
        "gas, water_mist or pre_action",
        ("security", "fire_suppression"),
    )


def _gas(ctx: Context) -> bool:
    return ctx.facility.security.fire_suppression in ("gas", "water_mist", "aerosol")


@rule(
    "SEC-FIRE-DETECT",
    "Two independent detector groups for gas/water-mist release",
    family="security",
    standard=GB,
    clause="§13 mandatory clause: release needs 2 independent detector groups, linked to CCTV",
    read=True,
    thresholds={"min_groups": 2},
    remediation="Wire two independent detector groups (e.g. smoke + heat) to the release panel and link it to CCTV.",
)
def fire_detection(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _gas(ctx):
        return None
    s = ctx.facility.security
    ok = s.fire_detector_groups >= t["min_groups"] and s.fire_linked_cctv
    return Outcome(
        ok,
        f"{s.fire_detector_groups} group(s), CCTV link {'yes' if s.fire_linked_cctv else 'no'}",
        f"≥ {t['min_groups']} groups, CCTV linked",
        ("security", "fire_detector_groups"),
    )


@rule(
    "SEC-FIRE-BA",
    "Breathing apparatus where gas suppression is used",
    family="security",
    standard=GB,
    clause="§13 mandatory clause: gas-protected rooms keep breathing apparatus",
    read=True,
    remediation="Keep self-contained breathing apparatus at the entrances of gas-protected rooms.",
)
def breathing_apparatus(ctx: Context, t: dict[str, Any]) -> Outcome | None:
    if not _gas(ctx):
        return None
    ok = ctx.facility.security.breathing_apparatus
    return Outcome(ok, "yes" if ok else "no", "provided", ("security", "breathing_apparatus"))


@rule(
    "SEC-FIRE-RESIST",
    "Fire resistance of machine-room walls and floors",
    family="security",
    standard=GB,
    clause="§6 and §13 mandatory clauses: fire grade ≥ II; walls to other uses ≥ 2.0 h, floors ≥ 1.5 h, Class-A doors",
    read=True,
    thresholds={"walls_h": 2.0, "floors_h": 1.5},
    remediation="Build the machine-room enclosure to the required fire-resistance ratings.",
)
def fire_resistance(ctx: Context, t: dict[str, Any]) -> list[Outcome] | None:
    if ctx.targets.gb50174 is None and not ctx.in_china:
        return None
    s = ctx.facility.security
    out = []
    for field, key in (("fire_resistance_walls_h", "walls_h"), ("fire_resistance_floors_h", "floors_h")):
        value = getattr(s, field)
        out.append(
            Outcome(
                value is not None and value >= t[key],
                "not declared" if value is None else f"{value:g} h",
                f"≥ {t[key]:g} h",
                ("security", field),
                key[:-2],
            )
        )
    return out
