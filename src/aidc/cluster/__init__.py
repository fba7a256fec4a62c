"""Compute for stages and deployments: a Ray cluster joined at an address or started locally (docs/architecture.md)."""
