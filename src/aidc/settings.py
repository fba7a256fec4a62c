"""Settings, read in one place: arguments > AIDC_* environment > ./aidc.toml > defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


class Settings(BaseSettings):
    """Where aidc keeps its state and which backends it talks to.

    ``metadata_url`` and ``artifact_url`` default to files under ``home``; ``ray_address`` empty means
    "start a local Ray on demand and stop it when the command ends".
    """

    model_config = SettingsConfigDict(env_prefix="AIDC_", toml_file="aidc.toml", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".aidc", description="state directory")
    metadata_url: str = Field("", description="SQLAlchemy URL; default sqlite:///$AIDC_HOME/aidc.db")
    artifact_url: str = Field("", description="fsspec URL; default file://$AIDC_HOME/artifacts")
    ray_address: str = Field("", description="Ray cluster address; empty starts a local Ray per command")
    ray_num_cpus: int | None = Field(None, description="CPUs for a local Ray (default: all of this host)")
    s3_endpoint_url: str = Field("", description="S3 endpoint for s3:// artifact URLs (MinIO, Ceph, moto…)")
    catalog: str = Field("", description="extra GPU/node catalog files for `aidc plan`, separated like PATH")
    debug: bool = False
    # the data center the server runs (docs/operations.md)
    facility: str = Field(
        "", description="facility spec (YAML) the server lays its nodes out by: racks, feeds, power, grid carbon"
    )
    node_names: dict[str, str] = Field(
        default_factory=dict,
        description='hostname → the spec\'s name for that server, as JSON: {"lab-box-7": "gpu-001"} (else a Ray '
        "label aidc.node, or the hostname itself, names it)",
    )
    node_failure_limit: int = Field(
        3,
        ge=0,
        description="a node where training failed this many times within node_failure_window_s is cordoned "
        "automatically (0: never)",
    )
    node_failure_window_s: float = Field(
        3600.0, gt=0, description="the window node_failure_limit counts a node's failures in (seconds)"
    )
    telemetry_interval_s: float = Field(10.0, ge=0.5, le=3600, description="how often the collector samples each node")
    redfish_url: str = Field("", description="this host's BMC (Redfish) the server's collector reads, if any")
    facility_meter: str = Field(
        "",
        description="the site's power meter, where the facility spec declares none: redfish+https://HOST[/redfish/v1/"
        "Chassis/ID] or prometheus+http://HOST:9090?query=PROMQL (in watts); PUE is measured with it",
    )
    alert_rules: str = Field(
        "",
        description="a site's alerts file (YAML): rules added to the shipped and facility-derived ones, notifiers, routes",
    )
    alerts_interval_s: float = Field(10.0, ge=0.5, le=3600, description="how often the server judges the alert rules")
    stop_checkpoint_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="on Ctrl-C or preemption, how long a train stage "
        "may take to checkpoint where it is before it is stopped outright (it then resumes "
        "from its latest checkpoint); 0 = stop at once",
    )
    project_data_roots: dict[str, list[str]] = Field(
        default_factory=dict,
        description="folders (beyond $AIDC_HOME/projects/P/data) a project's jobs may read file sources from, as "
        'JSON: {"alpha": ["/data/alpha"]}',
    )
    job_user: str = Field(
        "",
        description="the OS user the server's job processes run as (a server run as root only; e.g. nobody): they "
        "cannot read AIDC_HOME, and each runs its own local Ray under that user",
    )
    job_scratch: str = Field(
        "", description="where a job run as AIDC_JOB_USER gets its own folder (default: <system temp>/aidc-jobs)"
    )
    # control plane and security (docs/control-plane.md)
    server: str = Field("", description="control-plane URL for the security commands (else the one `aidc login` saved)")
    token: SecretStr = Field(SecretStr(""), description="API token for `server`")
    admin_token: SecretStr = Field(SecretStr(""), description="the first admin's token when `aidc server` bootstraps")
    token_ttl_days: int = Field(
        30, ge=0, description="default lifetime of a new API token (a child token never outlives its parent); 0 = none"
    )
    max_body_mb: float = Field(
        16.0, gt=0, description="largest request body the server reads (413 above it; only after the token is checked)"
    )
    trusted_proxies: str = Field(
        "",
        description="comma-separated addresses or networks of reverse proxies whose X-Forwarded-For/-Proto "
        "the server believes (default: none; the peer's own address is the caller's)",
    )
    audit_hmac_key: SecretStr = Field(
        SecretStr(""),
        description="key (any long random string) that anchors the audit chain: each entry's hash is also "
        "signed with it, so whoever can write the database but lacks it cannot re-hash the chain unnoticed",
    )
    audit_sink: str = Field(
        "", description="JSON-lines file every audit entry is also appended to (ship it off the host: fluent-bit…)"
    )
    allow_public_serving: bool = Field(
        False, description="allow deployments to listen on all interfaces (host 0.0.0.0 / ::); off: 127.0.0.1 only"
    )
    audit_retention_days: int = Field(180, ge=1, description="audit entries older than this are pruned")
    auth_cache_seconds: float = Field(
        10.0,
        ge=0,
        le=300,
        description="how long the server trusts a token it has "
        "verified before asking the store again (a server following the store's change "
        "feed sees revocations made elsewhere at once; without it they take effect "
        "within this); 0 = every request",
    )
    read_cache_mb: float = Field(
        64.0,
        ge=0,
        description="memory for the read answers the server keeps while the "
        "store says nothing they were read from changed (docs/control-plane.md); 0 = none",
    )
    # encryption at rest, TLS and single sign-on (docs/control-plane.md)
    encryption: Literal["auto", "on", "off"] = Field(
        "auto", description="encrypt new artifacts: auto = on in `aidc server` and wherever a master key is configured"
    )
    master_key_file: str = Field("", description="master key file (mode 0600); default $AIDC_HOME/master.key")
    master_key: SecretStr = Field(SecretStr(""), description="master key(s) in base64, comma-separated, active first")
    ca_file: str = Field("", description="CA bundle the remote client verifies an HTTPS server against")
    oidc_issuer: str = Field("", description="OIDC issuer URL whose JWTs the server accepts as bearer tokens")
    oidc_audience: str = Field("", description="the `aud` an OIDC token must carry (the client id of aidc)")
    oidc_jwks_url: str = Field(
        "", description="the issuer's JWKS URL; default: from its /.well-known/openid-configuration"
    )
    oidc_principal_claim: str = Field(
        "sub", description="the token claim naming the aidc user (sub, preferred_username, email…)"
    )

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.home = Path(self.home).expanduser()
        if not self.metadata_url:
            self.metadata_url = f"sqlite:///{self.home / 'aidc.db'}"
        if not self.artifact_url:
            self.artifact_url = f"file://{self.home / 'artifacts'}"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def make_home(self) -> Path:
        """``home``, made if missing, owner-only (0700): it holds the master key, the database and the jobs'
        logs. An existing one others can enter is tightened, if it is ours."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self.home.stat()
        if info.st_mode & 0o077 and info.st_uid == os.getuid():
            self.home.chmod(0o700)
        return self.home

    def public(self) -> dict[str, Any]:
        """Settings as shown to users (`aidc doctor`)."""
        return {k: str(v) for k, v in self.model_dump().items()}
