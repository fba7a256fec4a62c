"""Who is calling: a bearer token — an OIDC JWT where an issuer is configured, else an aidc API token — as an Access.

The API's front door and the web console's session both come here, so a token means the same caller everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aidc.security import oidc
from aidc.security.roles import Access

if TYPE_CHECKING:
    from aidc.services import Services


def authenticate(services: Services, token: str, source: str) -> Access:
    """The caller ``token`` stands for, calling from ``source``; may read the store and the issuer."""
    verifier = services.oidc if oidc.looks_like_jwt(token) else None
    if verifier is not None:
        return verifier.authenticate(token, source, services.security)
    return services.security.authenticate(token, source)
