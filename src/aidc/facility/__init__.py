"""The data center as designed: spec models, the YAML loader with located errors, derived quantities."""

from __future__ import annotations

from aidc.facility.derived import Derived, FabricShape, Redundancy, derive, fat_tree, redundancy
from aidc.facility.loader import facility_from_source, load_facility, parse_facility
from aidc.facility.model import (
    BMC, PDU, UPS, Checks, Cooling, CoolingUnit, Energy, Fabric, Facility, Generator, Hall, Hazards,
    LiquidLoop, Node, NodeInstance, NodeNIC, PowerChain, PowerPath, Rack, Range, SecurityControls, Site,
    Targets, Telemetry, TelemetryEndpoint, Transformer, UtilityFeed,
)

__all__ = [
    "BMC", "PDU", "UPS", "Checks", "Cooling", "CoolingUnit", "Derived", "Energy", "Fabric", "FabricShape",
    "Facility", "Generator", "Hall", "Hazards", "LiquidLoop", "Node", "NodeInstance", "NodeNIC", "PowerChain",
    "PowerPath", "Rack", "Range", "Redundancy", "SecurityControls", "Site", "Targets", "Telemetry",
    "TelemetryEndpoint", "Transformer", "UtilityFeed", "derive", "facility_from_source", "fat_tree",
    "load_facility", "parse_facility", "redundancy",
]
