"""Security: who may do what — identities, API tokens, the RBAC policy, project isolation and the audit chain.

The API authenticates and authorizes every request here (``Security.authenticate`` + ``POLICY``); the
CLI's security commands call the same ``Security`` methods locally or through the server.
"""

from __future__ import annotations

from aidc.security.roles import ALL_PROJECTS, AUTHENTICATED, PUBLIC, ROLES, Access

__all__ = ["ALL_PROJECTS", "AUTHENTICATED", "PUBLIC", "ROLES", "Access"]
