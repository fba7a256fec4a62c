"""Alerts over HTTP: list and show (the data center's and the caller's projects'), acknowledge, silences, and the
rules as a Prometheus rule file."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field, field_validator

from aidc.api.auth import authorize, get_services
from aidc.api.schemas import Body
from aidc.security.roles import Access
from aidc.services import Services
from aidc.services.alerts import LABEL, MAX_SILENCE_S

router = APIRouter(prefix="/api/v1")
JSON = dict[str, Any]


class SilenceBody(Body):
    matchers: dict[str, str] = Field(
        ...,
        min_length=1,
        json_schema_extra={"propertyNames": {"pattern": LABEL.pattern, "maxLength": 100}},
        description='label → value; "=~REGEX" or "!=VALUE" as the value for a regex or a negation',
    )
    duration_s: float = Field(..., gt=0, le=MAX_SILENCE_S, description="how long, in seconds (at most 90 days)")
    comment: str = Field("", max_length=1000)

    @field_validator("matchers")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not LABEL.match(k) or len(k) > 100]
        if bad:
            raise ValueError(f"not a label name: {bad[0]!r} (letters, digits and _, not starting with a digit)")
        return value


@router.get("/alerts", tags=["alerts"])
def list_alerts(
    state: Literal["pending", "firing", "resolved", "inactive"] | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    access: Access = Depends(authorize),
    services: Services = Depends(get_services),
) -> list[JSON]:
    """Alerts, newest first: the data center's and those of the caller's projects."""
    return services.alerts.list(access, state=state, limit=limit)


@router.get("/alerts/{alert_id}", tags=["alerts"])
def show_alert(alert_id: str, access: Access = Depends(authorize), services: Services = Depends(get_services)) -> JSON:
    """One alert by id (or a unique prefix): its rule, labels, value, times, runbook and acknowledgement."""
    return services.alerts.show(access, alert_id)


@router.post("/alerts/{alert_id}/ack", tags=["alerts"])
def ack_alert(alert_id: str, access: Access = Depends(authorize), services: Services = Depends(get_services)) -> JSON:
    """Acknowledge an alert (someone is on it); the first acknowledgement is kept."""
    return services.alerts.ack(access, alert_id)


@router.get("/silences", tags=["alerts"])
def list_silences(
    include_ended: bool = False, access: Access = Depends(authorize), services: Services = Depends(get_services)
) -> list[JSON]:
    """The silences in force (or all of them, with include_ended)."""
    return services.alerts.silences(access, active=not include_ended)


@router.post("/silences", tags=["alerts"])
def silence(body: SilenceBody, access: Access = Depends(authorize), services: Services = Depends(get_services)) -> JSON:
    """Alerts whose labels match every matcher notify no one until the silence expires (they are still recorded)."""
    return services.alerts.silence(access, body.matchers, duration_s=body.duration_s, comment=body.comment)


@router.delete("/silences/{silence_id}", tags=["alerts"])
def unsilence(silence_id: str, access: Access = Depends(authorize), services: Services = Depends(get_services)) -> JSON:
    """End a silence now."""
    return services.alerts.unsilence(access, silence_id)


@router.get(
    "/alert-rules/prometheus",
    tags=["alerts"],
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}, "description": "a Prometheus rule file"}},
)
def prometheus_rules(access: Access = Depends(authorize), services: Services = Depends(get_services)) -> Response:
    """Every rule this server judges — shipped, site and derived from its facility spec — as a Prometheus rule file."""
    return Response(services.alerts.prometheus_rules(access), media_type="application/yaml")
