"""The master keys of artifact encryption over HTTP: status and rotation, for admins on every project."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from aidc.api.auth import authorize, get_services
from aidc.api.schemas import KeyRotateRequest, KeyStatusOut, RotationOut
from aidc.security.roles import Access
from aidc.services import Services

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


# Plain `def` routes: FastAPI runs them in its thread pool, so reading or re-wrapping every key record of a
# big store never holds up the event loop (other requests, the scheduler, audit retention).
@router.get("", response_model=KeyStatusOut)
def status(services: Services = Depends(get_services)) -> dict[str, Any]:
    """Master key ids, the artifacts wrapped under each, plaintext artifacts (as `aidc keys status --json`)."""
    return services.keys.status()


@router.post("/rotate", response_model=RotationOut)
def rotate_keys(
    body: KeyRotateRequest, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> dict[str, Any]:
    """Make a new master key active and re-wrap every artifact's data key under it; answers when done, with
    what it did (as `aidc keys rotate --json`). Audited as ``keys.rotate`` with key ids, never keys. Jobs
    running meanwhile go on: their artifacts are wrapped under the new key once they see the key file change."""
    return services.keys.rotate(access, new_key=body.new_key, keep_old=body.keep_old)
