"""The facility spec: the data center as designed, from site to telemetry endpoints, as pydantic models.

This is the data center's source of truth: `aidc check` judges it against the standards, `aidc plan
--emit-facility` writes it, and the control plane loads it to judge live telemetry against the design.
Units are explicit in field names (``_kw``, ``_c``, ``_pct``, ``_m``, ``_h``); every model forbids unknown keys
so a typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

UptimeTier = Literal["I", "II", "III", "IV"]
AshraeClass = Literal["A1", "A2", "A3", "A4", "H1"]
WClass = Literal["W17", "W27", "W32", "W40", "W45", "W+"]
GbClass = Literal["A", "B", "C"]
RackCooling = Literal["air", "rear_door", "direct_liquid"]
NodeRole = Literal["compute", "storage", "network", "management"]
FabricKind = Literal["compute", "storage", "in_band", "out_of_band"]
UpsServes = Literal["it", "cooling", "mixed"]
GeneratorRating = Literal["standby", "prime", "continuous", "data_center"]
PowerKind = Literal[
    "utility", "generator", "transformer", "switchgear", "ats", "sts", "ups", "pdu", "busway", "rpp", "bus", "load"
]
CoolingKind = Literal["crah", "crac", "chiller", "cdu", "rdhx", "dry_cooler", "cooling_tower", "pump", "inrow"]
HeatServed = Literal["all", "air", "liquid"]
CableMedia = Literal["dac", "aec", "aoc", "mmf", "smf"]
TelecomSpaceKind = Literal["entrance_room", "mda", "sda", "ida", "hda", "zda", "eda"]
RiskCategory = Literal["I", "II", "III", "IV"]
FireSuppression = Literal["none", "sprinkler", "pre_action", "gas", "water_mist", "aerosol"]
TelemetryProtocol = Literal["redfish", "ipmi", "snmp", "modbus", "bacnet", "prometheus"]
Measure = Literal[
    "facility_kwh",
    "it_kwh",
    "cooling_kwh",
    "water_l",
    "renewable_kwh",
    "reused_kwh",
    "power_kw",
    "inlet_c",
    "rh_pct",
    "dew_point_c",
    "supply_c",
    "return_c",
    "flow_lpm",
]


class Spec(BaseModel):
    """Base of every spec model: unknown keys are errors (typos must not pass silently)."""

    # allow_inf_nan=False: YAML reads `1e400` or `.inf` as a float infinity, which no rating can be and which
    # would reach `--format json` as `Infinity` (not JSON); it is a located spec error instead.
    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=True, allow_inf_nan=False)


class Range(Spec):
    """A closed interval, inclusive at both ends (units come from the field name that holds it)."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class PercentRange(Range):
    """A relative-humidity interval: 0–100 %."""

    min: float = Field(ge=0, le=100)
    max: float = Field(ge=0, le=100)


# ---------------------------------------------------------------- site and targets


class Hazards(Spec):
    """Distances from the building to siting hazards (GB 50174 Annex A); omit what is not nearby."""

    parking_m: float | None = Field(None, ge=0)
    railway_m: float | None = Field(None, ge=0)
    highway_m: float | None = Field(None, ge=0)
    airport_m: float | None = Field(None, ge=0)
    flammable_plant_m: float | None = Field(None, ge=0)
    explosives_m: float | None = Field(None, ge=0)
    nuclear_km: float | None = Field(None, ge=0)


class GridHour(Spec):
    """The grid's carbon intensity over one dated hour (measured, or a forecast), from ``hour`` to an hour later."""

    hour: datetime = Field(
        description="the hour's start, e.g. 2026-12-05T10:00:00+01:00 (no offset: the profile's zone)"
    )
    g_per_kwh: float = Field(ge=0)

    @field_validator("hour")
    @classmethod
    def _on_the_hour(cls, value: datetime) -> datetime:
        if (value.minute, value.second, value.microsecond) != (0, 0, 0):
            raise ValueError(f"{value.isoformat()} is not on the hour: give the hour's start, e.g. HH:00:00")
        return value


class GridProfile(Spec):
    """The grid's carbon intensity through time: a typical day (24 hourly values, local to ``timezone``) and/or
    dated hours, which take precedence over the day; an hour neither gives falls back to
    ``site.grid_carbon_g_per_kwh``."""

    timezone: str = Field("UTC", description="IANA zone the daily hours and offset-less dated hours are in")
    daily: list[float] | None = Field(
        None, min_length=24, max_length=24, description="gCO2e/kWh for the hours 00:00-01:00 … 23:00-24:00"
    )
    hours: list[GridHour] = Field(default_factory=list, description="dated hours (measured or forecast intensity)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: give an IANA name such as UTC or Europe/Berlin") from None
        return value

    @field_validator("daily")
    @classmethod
    def _not_negative(cls, value: list[float] | None) -> list[float] | None:
        for hour, g in enumerate(value or []):
            if g < 0:
                raise ValueError(f"hour {hour:02d}:00 has a negative intensity ({g:g}); intensities are ≥ 0")
        return value

    @model_validator(mode="after")
    def _dated_hours(self) -> GridProfile:
        zone = ZoneInfo(self.timezone)
        seen: set[float] = set()
        for h in self.hours:
            if h.hour.tzinfo is None:
                h.hour = h.hour.replace(tzinfo=zone)
            at = h.hour.timestamp()
            if at in seen:
                raise ValueError(f"the hour {h.hour.isoformat()} is given twice in grid_carbon_profile.hours")
            seen.add(at)
        return self


class Site(Spec):
    """Where the data center stands and what feeds it from outside."""

    name: str
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. US, DE, CN")
    region: str | None = Field(None, description="e.g. beijing, yangtze-delta, shanghai; drives regional policy")
    hub_node: bool = Field(False, description="China: inside a national computing hub node (东数西算)")
    new_build: bool = True
    altitude_m: float = Field(0, ge=-500, le=6000)
    grid_carbon_g_per_kwh: float | None = Field(None, ge=0)
    grid_carbon_profile: GridProfile | None = Field(
        None, description="intensity per hour of the day and/or per dated hour; carbon integrates energy over it"
    )
    renewable_share: float = Field(0, ge=0, le=1)
    hazards: Hazards = Hazards()
    access_providers: int = Field(1, ge=0, description="independent telecom carriers entering the site")
    diverse_entrances: bool = False
    maintenance_hole_separation_m: float | None = Field(None, ge=0)
    seismic_sds_g: float | None = Field(
        None, ge=0, le=5, description="ASCE 7 design spectral response acceleration at short periods, S_DS (g)"
    )
    risk_category: RiskCategory = Field("II", description="ASCE 7 risk category of the building (IV: essential)")
    tia942_architectural: int | None = Field(
        None,
        ge=1,
        le=4,
        description="TIA-942 architectural rating as assessed on site (construction type, flood plain …): caps the "
        "rating computed from floors, fire protection, security and siting",
    )

    @model_validator(mode="after")
    def _upper_country(self) -> Site:
        self.country = self.country.upper()
        profile = self.grid_carbon_profile
        if profile is not None and profile.daily is None and self.grid_carbon_g_per_kwh is None:
            raise ValueError(
                "grid_carbon_profile lists dated hours only: give its `daily` 24 values or "
                "site.grid_carbon_g_per_kwh for the hours it does not list"
            )
        return self


class Targets(Spec):
    """The ratings and KPIs the facility is meant to meet; unset targets are not checked."""

    uptime: UptimeTier | None = None
    tia942: int | None = Field(None, ge=1, le=4)
    en50600: int | None = Field(None, ge=1, le=4)
    en50600_protection: int | None = Field(
        None, ge=1, le=4, description="EN 50600 protection class of the computer room against unauthorised access"
    )
    en50600_fire: int | None = Field(
        None, ge=1, le=4, description="EN 50600 protection class of the computer room against internal fire events"
    )
    en50600_granularity: int | None = Field(
        None, ge=1, le=3, description="EN 50600 energy-efficiency enablement granularity level (1-3)"
    )
    gb50174: GbClass | None = None
    ashrae: AshraeClass | None = None
    pue_target: float | None = Field(None, ge=1)
    wue_target_l_per_kwh: float | None = Field(None, ge=0)
    cue_target_kg_per_kwh: float | None = Field(None, ge=0)
    ref_target: float | None = Field(None, ge=0, le=1)
    erf_target: float | None = Field(None, ge=0, le=1)
    gb40879_grade: int | None = Field(None, ge=1, le=3)
    green_dc_list: bool = Field(False, description="China: apply for the national green data-center list")
    mlps: int | None = Field(None, ge=1, le=5, description="China MLPS (等保) level")
    iso27001: bool = False
    soc2: bool = False
    tensor_parallel: int | None = Field(None, ge=1, description="largest TP degree the halls must carry")
    gpu_nic_gbps: float = Field(400, gt=0, description="target NIC speed per GPU on the compute fabric")


# ---------------------------------------------------------------- halls, racks, nodes


class BMC(Spec):
    """How a node's baseboard controller is reached; ``{name}``/``{index}``/``{rack}`` expand per node."""

    protocol: Literal["redfish", "ipmi"] = "redfish"
    address: str | None = Field(None, description="e.g. https://{name}-bmc.oob.example")


class NodeNIC(Spec):
    fabric: str
    count: int = Field(ge=1)
    gbps: float = Field(gt=0)


class Node(Spec):
    """A group of identical servers; ``count`` of them sit in each rack listed."""

    name: str
    model: str
    role: NodeRole = "compute"
    count: int = Field(1, ge=1, description="nodes in each listed rack")
    rack: str | None = None
    racks: list[str] = Field(default_factory=list)
    gpus: int = Field(0, ge=0, description="GPUs per node")
    gpu_type: str | None = None
    nvlink_domain_gpus: int | None = Field(None, ge=1, description="GPUs sharing one NVLink domain (72 for NVL72)")
    cpu: str | None = None
    cpu_cores: int | None = Field(None, ge=1)
    memory_gb: float | None = Field(None, ge=0)
    storage_tb: float | None = Field(None, ge=0)
    nominal_kw: float = Field(ge=0)
    max_kw: float = Field(ge=0)
    nics: list[NodeNIC] = Field(default_factory=list)
    bmc: BMC | None = BMC()
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="placement labels of these servers, e.g. {workload: training} (GPU nodes) or {workload: "
        "preprocessing} (CPU nodes): a pipeline stage that asks for them, or whose kind implies them, runs only here",
    )

    @model_validator(mode="after")
    def _placed_and_sane(self) -> Node:
        if self.max_kw < self.nominal_kw:
            raise ValueError(f"max_kw ({self.max_kw}) is below nominal_kw ({self.nominal_kw})")
        if (self.rack is None) == (not self.racks):
            raise ValueError("give exactly one of `rack` or `racks`")
        return self

    @property
    def placement(self) -> list[str]:
        return [self.rack] if self.rack is not None else list(self.racks)

    @property
    def total(self) -> int:
        return self.count * len(self.placement)

    @property
    def nvlink_domain(self) -> int:
        return self.nvlink_domain_gpus or self.gpus


class Rack(Spec):
    name: str
    row: str | None = None
    position: str | None = None
    power_budget_kw: float = Field(gt=0)
    cooling: RackCooling = "air"
    liquid_fraction: float = Field(0.8, ge=0, le=1, description="share of heat a direct-liquid rack sends to liquid")
    power_paths: list[str] = Field(default_factory=list, description="power paths feeding the rack (default: all)")
    feeds: list[str] = Field(
        default_factory=list, description="one-line form: names of the power.components feeding this rack (its cords)"
    )
    u_height: int = Field(42, ge=1)
    weight_kg: float | None = Field(None, gt=0, description="loaded rack weight (an NVL72 is ≈ 1,360 kg)")
    footprint_m2: float = Field(0.72, gt=0, description="floor area the rack bears on (600 × 1200 mm)")
    cord_amps: float | None = Field(None, gt=0, description="rating of each power cord / busway tap, A")
    cord_volts: float = Field(415.0, gt=0, description="line-to-line voltage of the cord")
    cord_phases: Literal[1, 3] = 3
    anchored: bool = Field(False, description="bolted to the slab or to a seismic frame (ASCE 7 §13 anchorage)")


class Hall(Spec):
    name: str
    area_m2: float | None = Field(None, gt=0)
    containment: Literal["none", "hot_aisle", "cold_aisle"] = "none"
    floor_rating_kpa: float | None = Field(None, gt=0, description="uniform live load the floor is rated for")
    rack_pitch_m: float = Field(0.6, gt=0, description="centre-to-centre distance of racks within a row")
    row_pitch_m: float = Field(2.4, gt=0, description="centre-to-centre distance of rows (rack depth + one aisle)")
    cooled_by: list[str] = Field(
        default_factory=list, description="cooling chain: the terminal units (CRAH, CDU, …) serving this hall"
    )
    racks: list[Rack] = Field(default_factory=list)


# ---------------------------------------------------------------- power chain


class PowerPath(Spec):
    name: str
    active: bool = True


class UtilityFeed(Spec):
    name: str
    capacity_kw: float = Field(gt=0)
    substation: str | None = None
    path: str | None = None


class Transformer(Spec):
    name: str
    capacity_kw: float = Field(gt=0, description="per unit, at the site power factor")
    count: int = Field(1, ge=1)
    path: str | None = None


class UPS(Spec):
    """A UPS group: ``modules`` × ``module_kw`` on one path, serving IT, cooling, or (not advised) both."""

    name: str
    path: str | None = None
    serves: UpsServes = "it"
    module_kw: float = Field(gt=0)
    modules: int = Field(1, ge=1)
    battery_minutes: float = Field(0, ge=0, description="autonomy at full rated load")
    derate: float = Field(1.0, gt=0, le=1, description="altitude/temperature derating factor from the maker's curve")


class Generator(Spec):
    name: str
    capacity_kw: float = Field(gt=0, description="per unit, at the rating below")
    count: int = Field(1, ge=1)
    rating: GeneratorRating = "standby"
    fuel_hours: float = Field(0, ge=0, description="on-site fuel at N load, without the redundant tank")
    derate: float = Field(1.0, gt=0, le=1, description="altitude/temperature derating factor from the maker's curve")
    path: str | None = None


class PDU(Spec):
    name: str
    capacity_kw: float = Field(gt=0)
    count: int = Field(1, ge=1)
    path: str | None = None


class PowerComponent(Spec):
    """One element of the power one-line: a source, a switch, a converter, a board or a mechanical load.

    ``units`` identical units work in parallel on the component's own input and output (UPS modules on one
    output bus, generator sets on one paralleling bus): losing one unit takes ``kw`` away, losing the
    component takes them all. The rating per unit is ``kw``, or ``kva`` × ``power_factor``, whichever is
    lower, times ``derate`` (altitude and temperature, from the maker's curve). No rating: not limiting.
    """

    name: str
    kind: PowerKind
    fed_by: list[str] = Field(default_factory=list, description="names of the components upstream")
    kw: float | None = Field(None, gt=0, description="real-power rating per unit (for `load`: its demand)")
    kva: float | None = Field(None, gt=0, description="apparent-power rating per unit")
    power_factor: float = Field(1.0, gt=0, le=1, description="load power factor the kVA rating is used at")
    units: int = Field(1, ge=1)
    derate: float = Field(1.0, gt=0, le=1, description="altitude/temperature derating factor, 1 = none")
    alternate: bool = Field(
        False, description="energised only by a manual transfer: counts for maintenance, not for faults"
    )
    serves: UpsServes | None = Field(None, description="ups: it, cooling or mixed (default it)")
    battery_minutes: float | None = Field(None, ge=0, description="ups: autonomy at full rated load")
    rating: GeneratorRating | None = Field(None, description="generator: standby, prime, continuous, data_center")
    fuel_hours: float | None = Field(None, ge=0, description="generator: on-site fuel at N load")

    @model_validator(mode="after")
    def _sources_have_no_input(self) -> PowerComponent:
        if self.kind in ("utility", "generator") and self.fed_by:
            raise ValueError(f"a {self.kind} is a source: it has no fed_by")
        if self.kind not in ("utility", "generator") and not self.fed_by:
            raise ValueError(f"a {self.kind} needs fed_by (the components upstream)")
        if self.kind == "load" and self.kw is None:
            raise ValueError("a load needs kw (its demand)")
        return self

    @property
    def unit_kw(self) -> float:
        """Usable kW per unit: the lower of kW and kVA × PF, derated; infinite when nothing limits it."""
        limits = [x for x in (self.kw, None if self.kva is None else self.kva * self.power_factor) if x is not None]
        return (min(limits) if limits else float("inf")) * self.derate


class PowerChain(Spec):
    paths: list[PowerPath] = Field(default_factory=lambda: [PowerPath(name="A")])
    utility_feeds: list[UtilityFeed] = Field(default_factory=list)
    transformers: list[Transformer] = Field(default_factory=list)
    ups: list[UPS] = Field(default_factory=list)
    generators: list[Generator] = Field(default_factory=list)
    pdus: list[PDU] = Field(default_factory=list)
    compartmentalized: bool = Field(False, description="A and B paths in separate fire compartments")
    components: list[PowerComponent] = Field(
        default_factory=list,
        description="the one-line as a graph; when given, failure analysis uses it instead of expanding the paths",
    )


# ---------------------------------------------------------------- cooling


class CoolingUnit(Spec):
    name: str
    kind: CoolingKind
    capacity_kw: float = Field(gt=0, description="heat removed per unit")
    count: int = Field(1, ge=1)
    serves: HeatServed = "all"
    path: str | None = Field(None, description="cooling distribution path (A/B)")
    fed_by: list[str] = Field(
        default_factory=list,
        description="cooling chain: the units upstream that supply this one (a CRAH's pumps, a pump's chillers)",
    )


class LiquidLoop(Spec):
    name: str
    supply_c: float = Field(ge=0, le=90)
    return_c: float | None = Field(None, ge=0, le=95)
    w_class: WClass
    capacity_kw: float | None = Field(None, gt=0)
    flow_lpm: float | None = Field(None, gt=0, description="design flow, litres per minute")


class Cooling(Spec):
    units: list[CoolingUnit] = Field(default_factory=list)
    inlet_c: Range | None = Field(None, description="design IT inlet (cold-aisle) temperature range")
    return_air_c: Range | None = Field(None, description="design return (hot-aisle) air temperature range")
    dew_point_c: Range | None = None
    rh_pct: PercentRange | None = None
    rate_of_change_c_per_h: float | None = Field(None, ge=0)
    tape_storage: bool = False
    corrosion_ag_a_per_month: float | None = Field(None, ge=0)
    corrosion_cu_a_per_month: float | None = Field(None, ge=0)
    liquid_loops: list[LiquidLoop] = Field(default_factory=list)
    distribution_paths: int = Field(1, ge=1)
    continuous_cooling: bool = False
    ride_through_min: float | None = Field(
        None, ge=0, description="minutes stored cooling (chilled-water tank, plant on UPS) carries the design heat"
    )
    restart_min: float | None = Field(
        None, ge=0, description="minutes from a utility loss until the cooling plant delivers again on generators"
    )
    battery_room_c: Range | None = None


# ---------------------------------------------------------------- network


class Fabric(Spec):
    """One network fabric; switch counts as declared, checked against fat-tree arithmetic."""

    name: str
    kind: FabricKind
    switch_model: str | None = None
    radix: int = Field(64, ge=2, description="ports per switch")
    port_gbps: float = Field(400, gt=0)
    tiers: int = Field(2, ge=1, le=3)
    leaf_switches: int = Field(0, ge=0)
    spine_switches: int = Field(0, ge=0)
    core_switches: int = Field(0, ge=0)
    leaf_downlinks: int | None = Field(None, ge=0, description="ports per leaf towards endpoints (default radix/2)")
    leaf_uplinks: int | None = Field(None, ge=0, description="ports per leaf towards spines (default radix/2)")
    spine_downlinks: int | None = Field(None, ge=0)
    spine_uplinks: int | None = Field(None, ge=0)
    rail_optimized: bool = False
    redundant_uplinks: bool = True
    cable: CableMedia | None = Field(
        None, description="media of the node-to-leaf links: dac, aec (active copper), aoc, mmf or smf optics"
    )
    switch_racks: list[str] = Field(default_factory=list, description="racks holding this fabric's leaf switches")


class TelecomSpace(Spec):
    """A TIA-942 telecommunications space: entrance room, main/secondary/intermediate/horizontal/zone/equipment
    distribution area, placed at a rack of the layout when its cross-connect sits in the computer room."""

    name: str
    kind: TelecomSpaceKind
    rack: str | None = Field(None, description="rack holding the space's cross-connect (for cable lengths)")
    serves: list[str] = Field(default_factory=list, description="hda/zda/mda: the racks it cables horizontally")
    connections: int | None = Field(None, ge=0, description="zda: horizontal connections it terminates")


# ---------------------------------------------------------------- security, telemetry, energy, checks


class SecurityControls(Spec):
    mfa: bool = False
    mfa_factors: int = Field(1, ge=0)
    mfa_cryptographic: bool = False
    access_control: bool = Field(False, description="electronic access control at machine rooms")
    access_logged: bool = False
    access_zones: int = Field(0, ge=0, description="nested access-controlled zones around the computer room")
    access_two_factor: bool = Field(False, description="two-factor identification (card + PIN/biometric) at the door")
    cctv: bool = False
    cctv_retention_days: int | None = Field(None, ge=0)
    audit_log_retention_days: int = Field(0, ge=0)
    audit_log_protected: bool = False
    encryption_at_rest: bool = False
    encryption_in_transit: bool = False
    offsite_backup: bool = False
    redundant_comm_lines: bool = False
    fire_suppression: FireSuppression = "none"
    fire_detector_groups: int = Field(0, ge=0)
    fire_early_detection: bool = Field(False, description="early fire detection: aspirating smoke detection (VESDA)")
    fire_linked_cctv: bool = False
    breathing_apparatus: bool = False
    fire_resistance_walls_h: float | None = Field(None, ge=0)
    fire_resistance_floors_h: float | None = Field(None, ge=0)


class TelemetryEndpoint(Spec):
    """A meter or controller the control plane reads (facility meters, UPS, CDUs…).

    A facility meter is an endpoint that measures ``power_kw`` with no ``target`` (the whole site's draw): the
    server samples it (protocol ``redfish`` or ``prometheus``) and measures PUE with it."""

    name: str
    protocol: TelemetryProtocol
    address: str
    measures: list[Measure] = Field(default_factory=list)
    target: str | None = Field(None, description="name of the rack, UPS, unit or hall it measures")
    query: str | None = Field(
        None, description="prometheus: the PromQL whose value is the draw in watts, e.g. sum(pdu_input_power_watts)"
    )
    resource: str | None = Field(
        None, description="redfish: the Chassis whose Power it reads, e.g. /redfish/v1/Chassis/Meter (default: all)"
    )

    @model_validator(mode="after")
    def _how_to_read(self) -> TelemetryEndpoint:
        if self.protocol == "prometheus" and "power_kw" in self.measures and not self.query:
            raise ValueError(f"endpoint {self.name!r} reads power from Prometheus: give its `query` (PromQL, in watts)")
        if self.query is not None and self.protocol != "prometheus":
            raise ValueError(f"endpoint {self.name!r}: `query` is for protocol prometheus, not {self.protocol}")
        if self.resource is not None and self.protocol != "redfish":
            raise ValueError(f"endpoint {self.name!r}: `resource` is for protocol redfish, not {self.protocol}")
        return self

    @property
    def facility_meter(self) -> bool:
        """Whether it meters the whole facility's power (what a measured PUE divides by the IT energy)."""
        return "power_kw" in self.measures and self.target is None and self.protocol in ("redfish", "prometheus")


class Telemetry(Spec):
    endpoints: list[TelemetryEndpoint] = Field(default_factory=list)


class Energy(Spec):
    """Metered energy over ``period_days`` (ISO/IEC 30134 KPIs want a full year) and the design PUE."""

    design_pue: float | None = Field(None, ge=1)
    period_days: int = Field(365, ge=1)
    facility_kwh: float | None = Field(None, ge=0)
    it_kwh: float | None = Field(None, gt=0)
    renewable_kwh: float = Field(0, ge=0)
    reused_kwh: float = Field(0, ge=0)
    water_l: float | None = Field(None, ge=0)
    co2_kg: float | None = Field(None, ge=0)
    diesel_l: float = Field(0, ge=0)
    gas_m3: float = Field(0, ge=0)


class Checks(Spec):
    """How `aidc check` treats this facility: rules switched off, thresholds overridden, extra rules."""

    disable: list[str] = Field(default_factory=list)
    thresholds: dict[str, dict[str, float | str]] = Field(
        default_factory=dict, description="rule id → threshold name → value"
    )
    rule_modules: list[str] = Field(default_factory=list, description="Python files, relative to this spec")


@dataclass(frozen=True)
class NodeInstance:
    """One physical server expanded from a Node group, with where it sits and how it is reached."""

    name: str
    group: Node
    rack: str
    index: int
    bmc: TelemetryEndpoint | None


class Facility(Spec):
    """The whole data center as designed."""

    name: str
    site: Site
    targets: Targets = Targets()
    halls: list[Hall] = Field(default_factory=list)
    nodes: list[Node] = Field(default_factory=list)
    power: PowerChain = PowerChain()
    cooling: Cooling = Cooling()
    fabrics: list[Fabric] = Field(default_factory=list)
    telecom_spaces: list[TelecomSpace] = Field(default_factory=list, description="TIA-942 telecom spaces")
    security: SecurityControls = SecurityControls()
    telemetry: Telemetry = Telemetry()
    energy: Energy = Energy()
    checks: Checks = Checks()

    _source: Any = PrivateAttr(default=None)

    @property
    def source(self) -> Any:
        """The SpecSource this facility was read from (positions for reports), or None if built in code."""
        return self._source

    def racks(self) -> Iterator[tuple[Hall, Rack]]:
        for hall in self.halls:
            for rack in hall.racks:
                yield hall, rack

    def node_instances(self) -> Iterator[NodeInstance]:
        """Every server, one by one, with its BMC endpoint (what the control plane polls)."""
        for group in self.nodes:
            i = 0
            for rack in group.placement:
                for _ in range(group.count):
                    i += 1
                    name = f"{group.name}-{i:03d}"
                    bmc = None
                    if group.bmc is not None and group.bmc.address:
                        address = group.bmc.address.format(name=name, index=i, rack=rack)
                        bmc = TelemetryEndpoint(
                            name=f"{name}-bmc",
                            protocol=group.bmc.protocol,
                            address=address,
                            measures=["power_kw", "inlet_c"],
                            target=name,
                        )
                    yield NodeInstance(name=name, group=group, rack=rack, index=i, bmc=bmc)
