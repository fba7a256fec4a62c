"""The control plane's HTTP API: FastAPI routes over Platform, authorized by aidc.security's policy — thin."""

from __future__ import annotations

from aidc.api.app import create_app

__all__ = ["create_app"]
