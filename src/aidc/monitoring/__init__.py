"""Operate: telemetry sources and the collector, energy and carbon accounting, Prometheus metrics."""
