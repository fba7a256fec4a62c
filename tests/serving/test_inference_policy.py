"""Who may reach a deployment: its clients' bearer token when it has one, and only this host unless an operator
allows all interfaces (issue 13, item 11)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from aidc.errors import PermissionDenied
from aidc.platform import Platform
from aidc.serving.deployments import Deployments
from aidc.serving.router import start_router
from aidc.settings import Settings

CLIENT_TOKEN = "client-secret-of-this-deployment"


def test_a_deployment_with_a_client_token_refuses_requests_without_it(tmp_path: Path) -> None:
    digest = hashlib.sha256(CLIENT_TOKEN.encode()).hexdigest()
    router = start_router("guarded", "admin-token", log_path=tmp_path / "router.log", client_token_sha256=digest)
    try:
        infer = f"{router.url}/v2/models/guarded/infer"
        assert httpx.post(infer, content=b"{}").status_code == 401
        wrong = httpx.post(infer, content=b"{}", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        right = httpx.post(infer, content=b"{}", headers={"Authorization": f"Bearer {CLIENT_TOKEN}"})
        assert right.status_code == 503  # past the door: it has no replicas yet
        assert httpx.get(f"{router.url}/v2/health/live").status_code == 200  # probes need no token
    finally:
        router.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_a_deployment_may_not_listen_beyond_this_host_unless_allowed(tmp_path: Path, host: str) -> None:
    platform = Platform(Settings(home=tmp_path / "home"))
    version = SimpleNamespace(name="m", ref="m:1", onnx_digest=None)
    try:
        deployments = Deployments(platform.metadata, platform.artifacts, platform.settings)
        with pytest.raises(PermissionDenied, match="only on this host"):
            deployments.deploy(version, host=host)  # type: ignore[arg-type]
        allowed = Settings(home=tmp_path / "home", allow_public_serving=True)
        open_ = Deployments(platform.metadata, platform.artifacts, allowed)
        with pytest.raises(Exception) as past:  # allowed: it gets as far as looking for the model's ONNX file
            open_.deploy(version, host=host)  # type: ignore[arg-type]
        assert not isinstance(past.value, PermissionDenied)
    finally:
        platform.close()
