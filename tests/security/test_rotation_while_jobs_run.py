"""Rotating the master key while jobs run: a job's process started before `aidc keys rotate` writes its next
artifacts under the new key and reads old and new ones; a write in flight when the rotation starts, and one
made meanwhile by a process that cannot see the key file, are not left under the key the rotation retires."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.pace import HANG_S

from aidc.errors import Conflict
from aidc.platform import Platform
from aidc.security.keys import prepare_server
from aidc.security.roles import local_access
from aidc.settings import Settings
from aidc.store.artifacts.keyring import MasterKeyRing

# A long-lived process of the server's own (another server on the same stores, a job of a server that hands out no
# credentials): Platform() from the server's settings, then artifacts. (A job on its credential holds no key: its
# artifacts are the server's to encrypt, tests/security/test_job_tenancy.py.)
JOB = r"""
import json, sys
from aidc.platform import Platform

store = Platform().artifacts
before = store.put_bytes(b"written by the job before the rotation")
print(before.digest, flush=True)
sys.stdin.readline()  # the server rotates the master key meanwhile
after = store.put_bytes(b"written by the job after the rotation")
print(json.dumps({"after": after.digest, "read": [store.get_bytes(d).decode() for d in (before.digest, after.digest)]}),
      flush=True)
"""


@pytest.fixture()
def server_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A server's settings (encryption on, its first master key in $AIDC_HOME/master.key)."""
    for var in (
        "AIDC_SERVER",
        "AIDC_TOKEN",
        "AIDC_METADATA_URL",
        "AIDC_ARTIFACT_URL",
        "AIDC_MASTER_KEY",
        "AIDC_MASTER_KEY_FILE",
        "AIDC_ENCRYPTION",
        "AIDC_HOME",
    ):
        monkeypatch.delenv(var, raising=False)
    settings = Settings(home=tmp_path / "home")
    prepare_server(settings)
    return settings


def store_env(settings: Settings) -> dict[str, str]:
    """The environment of a process that opens the server's stores itself: its settings, the key file's path."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("AIDC_TOKEN", "AIDC_ADMIN_TOKEN", "AIDC_SERVER")}
    env |= {
        "AIDC_HOME": str(settings.home),
        "AIDC_METADATA_URL": settings.metadata_url,
        "AIDC_ARTIFACT_URL": settings.artifact_url,
        "AIDC_ENCRYPTION": settings.encryption,
    }
    if settings.master_key_file:
        env["AIDC_MASTER_KEY_FILE"] = settings.master_key_file
    return env


def _active(settings: Settings) -> str:
    ring = MasterKeyRing.load(settings.home / "master.key")
    assert ring.active is not None
    return ring.active.key_id


def test_a_job_started_before_a_rotation_wraps_new_artifacts_under_the_new_key(
    server_settings: Settings, tmp_path: Path
) -> None:
    old = _active(server_settings)
    job = subprocess.Popen(
        [sys.executable, "-c", JOB],
        env=store_env(server_settings),
        cwd=tmp_path,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert job.stdout is not None and job.stdin is not None
    before = job.stdout.readline().strip()
    assert before.startswith("sha256:"), job.stderr.read() if job.stderr else ""

    server = Platform(server_settings)
    done = server.keys.rotate(local_access())  # no --keep-old: the job's starting key leaves the key file
    assert done["retired"] == [old] and done["failed"] == []
    out, err = job.communicate("go\n", timeout=HANG_S)
    assert job.returncode == 0, err
    answer = json.loads(out)
    assert answer["read"] == ["written by the job before the rotation", "written by the job after the rotation"]

    status = server.keys.status()
    assert status["keys"] == [{"key_id": done["master_key_id"], "active": True, "source": "file", "artifacts": 2}]
    assert status["unknown_keys"] == []  # nothing the job wrote is under the retired key
    fresh = Platform(server_settings).artifacts  # and anyone with the new key file alone reads both
    assert fresh.get_bytes(answer["after"]) == b"written by the job after the rotation"
    assert fresh.get_bytes(before) == b"written by the job before the rotation"
    server.close()


class RotatesMidway:
    """A source still being read when the key is rotated: a big checkpoint streaming in."""

    def __init__(self, data: bytes, rotation: object) -> None:
        self.data, self.at, self.rotation = data, 0, rotation

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        if self.at >= len(self.data) // 2 and self.rotation is not None:
            self.rotation()  # type: ignore[operator]
            self.rotation = None
        n = len(self.data) - self.at if n < 0 else min(n, 64 * 1024)
        chunk = self.data[self.at : self.at + n]
        self.at += len(chunk)
        return chunk


def test_an_artifact_being_written_when_the_rotation_runs_is_not_left_under_the_retired_key(
    server_settings: Settings,
) -> None:
    job, server = Platform(server_settings), Platform(server_settings)
    old = _active(server_settings)
    done: dict[str, object] = {}
    payload = bytes(range(256)) * 4096  # 1 MiB
    source = RotatesMidway(payload, lambda: done.update(server.keys.rotate(local_access())))
    ref = job.artifacts.put_stream(source)  # type: ignore[arg-type]
    assert done["retired"] == [old]
    status = server.keys.status()
    assert [(k["key_id"], k["artifacts"]) for k in status["keys"]] == [(done["master_key_id"], 1)]
    assert Platform(server_settings).artifacts.get_bytes(ref.digest) == payload
    job.close()
    server.close()


# A stage on a Ray worker of another host: the keys it was shipped when it started, no key file to re-read (a ring
# built from keys alone), and the store. It writes a checkpoint when told to, and prints its digest.
REMOTE_WORKER = r"""
import sys
from pathlib import Path
from aidc.store.artifacts import EnvelopeCodec, FileArtifactStore
from aidc.store.artifacts.keyring import MasterKeyRing

home = Path(sys.argv[1])
shipped = MasterKeyRing(MasterKeyRing.load(home / "master.key").keys)
store = FileArtifactStore(home / "artifacts", codec=EnvelopeCodec(shipped, encrypt=True))
print(shipped.active.key_id, flush=True)
sys.stdin.readline()
print(store.put_bytes(b"checkpoint written during the rotation").digest, flush=True)
sys.stdin.readline()
"""


def test_records_written_under_the_old_key_during_the_pass_are_rewrapped_before_it_goes(
    server_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = Platform(server_settings)
    first = server.artifacts.put_bytes(b"stored before the rotation")
    worker = subprocess.Popen(
        [sys.executable, "-c", REMOTE_WORKER, str(server_settings.home)],
        env=store_env(server_settings),
        cwd=tmp_path,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert worker.stdin is not None and worker.stdout is not None and worker.stderr is not None
    try:
        started_with = worker.stdout.readline().strip()
        assert started_with == _active(server_settings), worker.stderr.read()
        store = server.artifacts
        real_write, late = store.write_key_record, []  # type: ignore[attr-defined]

        def meanwhile(hexdigest: str, record_id: str, data: bytes) -> None:
            if not late:  # while the rotation re-wraps, the worker stores a checkpoint under its old key
                worker.stdin.write("write\n")  # type: ignore[union-attr]
                worker.stdin.flush()  # type: ignore[union-attr]
                late.append(worker.stdout.readline().strip())  # type: ignore[union-attr]
            real_write(hexdigest, record_id, data)

        monkeypatch.setattr(store, "write_key_record", meanwhile)
        done = server.keys.rotate(local_access())
        monkeypatch.undo()
        assert late and late[0].startswith("sha256:"), worker.stderr.read()
        assert (done["rewrapped"], done["failed"]) == (2, [])
        assert done["retired"] == [started_with]
        fresh = Platform(server_settings).artifacts
        assert fresh.get_bytes(late[0]) == b"checkpoint written during the rotation"
        assert fresh.get_bytes(first.digest) == b"stored before the rotation"
    finally:
        _, err = worker.communicate("done\n", timeout=HANG_S)
        server.close()
    assert worker.returncode == 0, err


def test_two_rotations_at_once_the_second_is_refused(
    server_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = Platform(server_settings), Platform(server_settings)
    first.artifacts.put_bytes(b"something to re-wrap")
    store = first.artifacts
    real_write, refused = store.write_key_record, []  # type: ignore[attr-defined]

    def meanwhile(hexdigest: str, record_id: str, data: bytes) -> None:
        with pytest.raises(Conflict, match="rotation is already running") as exc:
            second.keys.rotate(local_access())
        refused.append(exc.value)
        real_write(hexdigest, record_id, data)

    monkeypatch.setattr(store, "write_key_record", meanwhile)
    done = first.keys.rotate(local_access())
    assert refused and done["failed"] == [] and _active(server_settings) == done["master_key_id"]
    results = [e.result for e in first.security.audit_list(action="keys.rotate")]
    assert sorted(results) == ["failed", "ok"]
    first.close()
    second.close()
