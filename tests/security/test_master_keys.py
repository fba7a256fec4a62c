"""Master keys as an operator meets them: the key file's permissions, AIDC_MASTER_KEY, `aidc keys`, the
server-mode default, and an encrypted artifact read by a pipeline stage on a Ray worker."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aidc.cli.app import app
from aidc.errors import MasterKeyUnavailable
from aidc.platform import Platform
from aidc.security.keys import artifact_codec, prepare_server
from aidc.settings import Settings
from aidc.store.artifacts import EnvelopeCodec, FileArtifactStore
from aidc.store.artifacts.envelope import MAGIC
from aidc.store.artifacts.keyring import MasterKey, MasterKeyRing, write_key_file

runner = CliRunner()


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("AIDC_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    for var in (
        "AIDC_SERVER",
        "AIDC_TOKEN",
        "AIDC_METADATA_URL",
        "AIDC_ARTIFACT_URL",
        "AIDC_MASTER_KEY",
        "AIDC_MASTER_KEY_FILE",
        "AIDC_ENCRYPTION",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


def test_a_group_or_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    write_key_file(path, [MasterKey.generate()])
    assert MasterKeyRing.load(path).active is not None
    path.chmod(0o644)
    with pytest.raises(MasterKeyUnavailable) as exc:
        MasterKeyRing.load(path)
    assert "readable or writable by group or others (mode 0644)" in str(exc.value)
    assert f"chmod 600 {path}" in str(exc.value)


def test_key_from_the_environment_and_a_malformed_one(home: Path) -> None:
    key = MasterKey.generate()
    settings = Settings(master_key=key.to_text())
    codec = artifact_codec(settings)  # auto: a configured key switches encryption on
    assert codec.encrypt and codec.ring.active == key
    with pytest.raises(MasterKeyUnavailable, match="AIDC_MASTER_KEY does not hold a base64 256-bit key"):
        artifact_codec(Settings(master_key=base64.b64encode(b"short").decode()))


def test_a_ring_shipped_to_a_worker_keeps_the_environments_keys_when_the_key_file_changes(tmp_path: Path) -> None:
    """A ring travels to Ray workers with its keys' material, not AIDC_MASTER_KEY itself; when the key file
    changes there (a rotation), the ring it reads again still holds the environment's keys, so artifacts wrapped
    under them stay readable."""
    import pickle

    from_env, in_file, rotated_in = MasterKey.generate(), MasterKey.generate(), MasterKey.generate()
    path = tmp_path / "master.key"
    write_key_file(path, [in_file])
    on_worker = pickle.loads(pickle.dumps(MasterKeyRing.load(path, from_env.to_text())))
    assert on_worker.env_value == ""  # (the variable does not travel)
    write_key_file(path, [rotated_in, in_file])
    refreshed = on_worker.refreshed()
    assert [k.key_id for k in refreshed.keys] == [from_env.key_id, rotated_in.key_id, in_file.key_id]
    assert refreshed.get(from_env.key_id) == from_env


def test_embedded_default_is_plaintext_and_server_mode_creates_a_private_key(home: Path) -> None:
    settings = Settings()
    assert not artifact_codec(settings).encrypt  # no key anywhere: a laptop's store stays plaintext
    notice = prepare_server(settings)
    key_file = home / "master.key"
    assert notice is not None and str(key_file) in notice and key_file.stat().st_mode & 0o777 == 0o600
    assert settings.encryption == "on" and artifact_codec(settings).encrypt
    assert prepare_server(Settings()) is None  # the key exists now: nothing new
    assert artifact_codec(Settings()).encrypt  # and a local command on that home encrypts too
    off = Settings(encryption="off")
    assert prepare_server(off) is None and not artifact_codec(off).encrypt


def test_keys_status_and_rotate_commands(home: Path) -> None:
    settings = Settings()
    plain = Platform(settings)
    plain.artifacts.put_bytes(b"from before encryption")
    plain.close()
    prepare_server(settings)
    platform = Platform(settings)
    ref = platform.artifacts.put_bytes(b"encrypted weights")
    platform.close()

    status = runner.invoke(app, ["keys", "status", "--json"])
    assert status.exit_code == 0, status.output
    found = json.loads(status.stdout)
    first = found["keys"][0]["key_id"]
    assert found["encryption"] == "on" and (found["encrypted"], found["plaintext"]) == (1, 1)
    assert found["keys"] == [{"key_id": first, "active": True, "source": "file", "artifacts": 1}]

    rotated = runner.invoke(app, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert "1 data keys re-wrapped" in rotated.output and f"removed old keys {first}" in rotated.output
    after = json.loads(runner.invoke(app, ["keys", "status", "--json"]).stdout)
    assert [k["key_id"] for k in after["keys"]] != [first] and after["keys"][0]["artifacts"] == 1
    assert Platform(Settings()).artifacts.get_bytes(ref.digest) == b"encrypted weights"
    audit = json.loads(runner.invoke(app, ["audit", "list", "--action", "keys.rotate", "--json"]).stdout)
    assert len(audit) == 1 and audit[0]["details"]["previous"] == [first]

    new_key = home.parent / "new.key"
    write_key_file(new_key, [MasterKey.generate()])
    new_key.chmod(0o640)
    refused = runner.invoke(app, ["keys", "rotate", "--new-key-file", str(new_key)])
    assert refused.exit_code == 1 and "chmod 600" in refused.output


def _read_in_stage(ctx: object, value: dict[str, object]) -> dict[str, object]:
    """A stage body on a Ray worker: read an encrypted artifact, write a derived one."""
    data = ctx.get_artifact(value)  # type: ignore[attr-defined]
    return ctx.put_artifact(data.upper(), kind="dataset", name="upper")  # type: ignore[attr-defined,no-any-return]


def test_a_stage_on_a_ray_worker_reads_and_writes_encrypted_artifacts(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from aidc.cluster.compute import ray_cluster
    from aidc.pipeline.stage import StageContext

    key_file = tmp_path / "master.key"
    write_key_file(key_file, [MasterKey.generate()])
    ring = MasterKeyRing.load(key_file)
    store = FileArtifactStore(tmp_path / "artifacts", codec=EnvelopeCodec(ring, encrypt=True))
    store.ensure_ready()
    ref = store.put_bytes(b"rows of a private dataset")
    # The worker gets the key only inside the pickled codec: no key file to read, no AIDC_MASTER_KEY.
    key_file.rename(tmp_path / "elsewhere.key")
    assert "AIDC_MASTER_KEY" not in os.environ
    ctx = StageContext("run-1", "read", store, None, str(tmp_path / "stage.log"), str(tmp_path))
    with ray_cluster(num_cpus=1):
        out = ray.get(ray.remote(_read_in_stage).remote(ctx, {"artifact": ref.digest}))
    assert store.get_bytes(out["artifact"]) == b"ROWS OF A PRIVATE DATASET"
    assert Path(out["uri"].removeprefix("file://")).read_bytes().startswith(MAGIC)
    assert "material" not in repr(store._codec) and ring.active is not None  # type: ignore[attr-defined]
    assert ring.active.to_text() not in repr(store._codec)  # type: ignore[attr-defined]
