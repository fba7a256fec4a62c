"""What the API reads and writes beyond the stores' own records: request bodies, token views, the error body."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from aidc.security.records import AuditEntry, PublicApiToken
from aidc.security.roles import NAME_PATTERN, ROLES, SCOPES

if TYPE_CHECKING:
    # A Literal built from the role and scope tables at import time is an enum in the OpenAPI schema and a check in
    # pydantic, but no static type: to the type checker the values are what they are, strings.
    RoleName = str
    ScopeName = str
else:
    RoleName = Literal.__getitem__(tuple(ROLES))
    ScopeName = Literal.__getitem__(SCOPES)


class Body(BaseModel):
    """A request body: exactly the types the schema says (no "1" for 1, no 0 for false)."""

    model_config = ConfigDict(strict=True, extra="forbid")


def _not_a_number(value: Any) -> Any:
    # pydantic would read "1.5" as a Unix time; the schema promises RFC 3339 date-times only.
    if isinstance(value, str | int | float) and str(value).lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("expected an RFC 3339 date-time such as 2026-01-31T12:00:00Z")
    return value


DateTimeParam = Annotated[datetime, BeforeValidator(_not_a_number)]
# JSON Schema counts 3.0 as an integer; strict pydantic would not.
ExpiryDays = Annotated[
    int, Field(ge=0, le=3650), BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
]


class ErrorDetail(BaseModel):
    code: str
    message: str
    where: str | None = None
    hint: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# Every route may answer these; declared once so the OpenAPI schema tells clients (and schemathesis) the truth.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in [
        (400, "bad input"),
        (401, "no valid API token"),
        (403, "the token's principal lacks the permission"),
        (404, "not found, or in a project the caller cannot see"),
        (405, "method not allowed"),
        (409, "conflicts with the current state"),
        (422, "invalid request"),
        (503, "a backend is unavailable"),
    ]
}


class Health(BaseModel):
    status: str
    version: str


class RoleOut(BaseModel):
    role: str
    project: str


class WhoAmI(BaseModel):
    principal: str
    kind: str
    token_id: str | None
    roles: list[RoleOut]
    scopes: list[str]


class TokenOut(PublicApiToken):
    """A token as the API shows it: the stored record's public fields, declared once (security/records.py)."""


class NewToken(TokenOut):
    token: str = Field(description="the token itself: shown this once, stored only as a hash")


class TokenRequest(Body):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[ScopeName] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=20,
        description="permissions the token keeps, e.g. runs:read or models:*; * keeps all",
    )
    expires_days: ExpiryDays | None = Field(None, description="0 = never; default: the server's token_ttl_days")


class PrincipalRequest(Body):
    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["user", "service"] = "user"


class PrincipalPatch(Body):
    disabled: bool


class PrincipalOut(BaseModel):
    name: str
    kind: str
    disabled: bool
    created_at: datetime
    roles: list[RoleOut]


class RoleRequest(Body):
    role: RoleName
    project: str = Field(max_length=200, description="a project's name, or * for every project")


class ProjectRequest(Body):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field("", max_length=1000)


class ProjectOut(BaseModel):
    name: str
    description: str
    created_at: datetime


class AssignRequest(Body):
    kind: Literal["run", "dataset_version", "model_version", "deployment"]
    id: str = Field(min_length=1, max_length=100)


class Assignment(BaseModel):
    kind: str
    id: str
    project: str
    from_: str = Field(alias="from")


class PromoteRequest(Body):
    stage: Literal["staging", "production", "archived"]


# JSON Schema counts 3.0 as an integer; strict pydantic would not.
_WHOLE = BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
WholeNumber = Annotated[int, _WHOLE]
DEPLOYMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class DeployRequest(Body):
    """What `aidc deploy` sends: the options of the command, with its defaults."""

    model: str = Field(min_length=1, max_length=250, description="NAME or NAME:VERSION")
    name: str | None = Field(None, pattern=DEPLOYMENT_NAME, description="deployment name (default: the model's name)")
    project: str | None = Field(None, max_length=200, description="the model's project, when its name is in several")
    replicas: WholeNumber = Field(1, ge=1, le=64)
    canary: float | None = Field(
        None, ge=0, le=100, description="roll into the existing deployment on this % of traffic"
    )
    cpus: float = Field(0.5, gt=0, le=1024)
    gpus: float = Field(0.0, ge=0, le=64)
    host: str = Field("127.0.0.1", max_length=200, description="interface the deployment's URL listens on")
    min_requests: WholeNumber = Field(50, ge=1, le=10**9)
    max_error_rate_increase: float = Field(0.02, ge=0, le=1)
    max_latency_ratio: float = Field(2.0, ge=1, le=1000)
    promote_after: Annotated[int, Field(ge=1, le=10**9), _WHOLE] | None = None
    timeout: float = Field(180.0, gt=0, le=3600, description="seconds to wait for the replicas to be ready")
    auth: bool = Field(False, description="a new deployment answers only with a client token, returned this once")


class ScaleRequest(Body):
    replicas: WholeNumber = Field(ge=1, le=64)


class AuditEntryOut(AuditEntry):
    """An audit entry as the API shows it: the stored record, declared once (security/records.py)."""


class ChainReportOut(BaseModel):
    ok: bool
    checked: int
    first_seq: int | None
    head_seq: int | None
    head_hash: str | None
    bad_seq: int | None
    problem: str | None


MASTER_KEY_TEXT = r"^[A-Za-z0-9+/]{43}=$"  # 32 bytes in base64


class KeyRotateRequest(Body):
    """The options of `aidc keys rotate`."""

    new_key: str | None = Field(
        None,
        pattern=MASTER_KEY_TEXT,
        json_schema_extra={"writeOnly": True},
        description="the new master key (32 bytes, base64); default: the server makes one. "
        "Never shown again: answers and the audit name keys by id only",
    )
    keep_old: bool = Field(False, description="keep the old keys in the key file afterwards")


class MasterKeyOut(BaseModel):
    key_id: str
    active: bool
    source: Literal["file", "env"]
    artifacts: int


class UnknownKeyOut(BaseModel):
    key_id: str
    artifacts: int


class KeyStatusOut(BaseModel):
    """What `aidc keys status --json` prints: key ids, never keys."""

    encryption: Literal["on", "off"]
    artifact_store: str
    key_file: str
    keys: list[MasterKeyOut]
    unknown_keys: list[UnknownKeyOut] = Field(description="key ids artifacts are wrapped under that are not configured")
    encrypted: int
    plaintext: int
    missing_key_record: int
    damaged_key_record: int
    unused_key_records: int


class RewrapFailure(BaseModel):
    digest: str
    record: str
    error: str


class RotationOut(BaseModel):
    """What `aidc keys rotate --json` prints."""

    master_key_id: str = Field(description="the id of the key now active")
    key_file: str | None = Field(description="null when the keys come from AIDC_MASTER_KEY")
    rewrapped: int
    already: int = Field(description="data keys already wrapped under the active key")
    failed: list[RewrapFailure] = Field(description="not re-wrapped (the old keys stay until a rotation finishes)")
    retired: list[str] = Field(description="old key ids removed from the key file")
    kept: list[str] = Field(description="old key ids left in the key file")
