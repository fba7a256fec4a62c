"""The Ray aidc starts for itself listens on 127.0.0.1 only and wants a token (issue 13, item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, os, psutil
from aidc.cluster.compute import ray_cluster
with ray_cluster("", num_cpus=1):
    me = psutil.Process()
    ours = {p.pid for p in me.children(recursive=True)} | {me.pid}
    listening = [
        [c.laddr.ip, c.laddr.port, psutil.Process(c.pid).name()]
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in ours
    ]
    print("PROBE " + json.dumps({"listening": listening, "auth": os.environ.get("RAY_AUTH_MODE")}))
"""
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def test_a_local_ray_listens_on_loopback_only_with_token_auth(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AIDC_"))} | {"HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    [line] = [x for x in done.stdout.splitlines() if x.startswith("PROBE ")]
    probe = json.loads(line.removeprefix("PROBE "))
    names = {name for _, _, name in probe["listening"]}
    assert "gcs_server" in names and "raylet" in names  # the probe saw Ray's listeners at all
    exposed = [x for x in probe["listening"] if x[0] not in LOOPBACK]
    assert exposed == [], f"Ray listens beyond this host: {exposed}"
    assert probe["auth"] == "token"
    assert not (tmp_path / ".ray" / "auth_token").exists()  # Ray's own 0644 token file is never written
