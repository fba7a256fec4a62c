"""`aidc keys status|rotate` through `aidc server` print what they print on the server's host, and no key
material ever leaves the key file: not in an answer, the CLI's output, the server's log or the audit chain."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import LiveServer, start_server, stop
from tests.api.test_remote_parity import _local, _remote

from aidc.errors import PermissionDenied
from aidc.platform import Platform
from aidc.settings import Settings
from aidc.store.artifacts.keyring import MasterKey, read_key_file, write_key_file

KEY_ID = re.compile(r"\b[0-9a-f]{16}\b")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`aidc server` (which makes the first master key) on a store with two encrypted artifacts and one
    stored before encryption was on."""
    home = tmp_path_factory.mktemp("keys") / "home"
    proc, server = start_server(home, secrets.token_urlsafe(32))
    Platform(Settings(home=home, encryption="off")).artifacts.put_bytes(b"from before encryption")
    encrypted = Platform(Settings(home=home))  # the server's key file is there: auto means encrypted
    encrypted.artifacts.put_bytes(b"weights")
    encrypted.artifacts.put_bytes(b"a dataset")
    encrypted.close()
    yield server
    stop(proc)


def _keys_seen(served: LiveServer, seen: set[str]) -> set[str]:
    """Every key the key file has held so far (base64), to look for where it must never be."""
    seen |= {k.to_text() for k in read_key_file(served.home / "master.key")[0]}
    return seen


def test_status_prints_the_same_locally_and_through_the_server(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_code, local_json, _ = _local(served, monkeypatch, "keys", "status", "--json")
    remote_code, remote_json, _ = _remote(served, monkeypatch, tmp_path, "keys", "status", "--json")
    assert local_code == remote_code == 0
    found = json.loads(remote_json)
    assert found == json.loads(local_json)
    assert (found["encryption"], found["encrypted"], found["plaintext"]) == ("on", 2, 1)
    assert found["key_file"] == str(served.home / "master.key")
    assert (
        _remote(served, monkeypatch, tmp_path, "keys", "status")[1].splitlines()
        == _local(served, monkeypatch, "keys", "status")[1].splitlines()
    )


def test_rotate_through_the_server_does_what_it_does_locally(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = _keys_seen(served, set())
    before = json.loads(_local(served, monkeypatch, "keys", "status", "--json")[1])["keys"][0]["key_id"]
    code, remote_out, _ = _remote(served, monkeypatch, tmp_path, "keys", "rotate")
    assert code == 0
    seen = _keys_seen(served, seen)
    code, local_out, _ = _local(served, monkeypatch, "keys", "rotate")
    assert code == 0
    seen = _keys_seen(served, seen)
    # the same sentence both ways, but for the key ids (each rotation makes a new key)
    assert KEY_ID.sub("ID", remote_out) == KEY_ID.sub("ID", local_out)
    assert f"removed old keys {before}" in remote_out and "2 data keys re-wrapped" in remote_out

    new = MasterKey.generate()
    key_file = tmp_path / "new.key"
    write_key_file(key_file, [new])
    code, out, _ = _remote(
        served, monkeypatch, tmp_path, "keys", "rotate", "--new-key-file", str(key_file), "--keep-old", "--json"
    )
    seen = _keys_seen(served, seen | {new.to_text()})
    done = json.loads(out)
    assert code == 0 and done["master_key_id"] == new.key_id and done["retired"] == [] and len(done["kept"]) == 1
    assert (done["rewrapped"], done["failed"]) == (2, [])
    status = json.loads(_remote(served, monkeypatch, tmp_path, "keys", "status", "--json")[1])
    assert [(k["key_id"], k["active"], k["artifacts"]) for k in status["keys"]] == [
        (new.key_id, True, 2),
        (done["kept"][0], False, 0),
    ]

    audit = httpx.get(
        f"{served.url}/api/v1/audit",
        params={"action": "keys.rotate"},
        headers={"Authorization": f"Bearer {served.admin_token}"},
    ).json()
    assert [(e["actor"], e["result"]) for e in audit] == [("admin", "ok"), (audit[1]["actor"], "ok"), ("admin", "ok")]
    assert audit[0]["details"]["master_key_id"] == new.key_id
    assert audit[1]["actor"].startswith("local:")  # the rotation on the host itself

    # no key, old or new, in anything the server said, wrote to its log, or put in the audit chain
    export = httpx.get(f"{served.url}/api/v1/audit/export", headers={"Authorization": f"Bearer {served.admin_token}"})
    said = remote_out + local_out + out + json.dumps(status) + export.text + served.log.read_text()
    assert len(seen) == 4 and not [k for k in seen if k in said]


def test_only_an_admin_on_every_project_may_see_or_rotate_the_keys(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {served.admin_token}"}
    httpx.post(f"{served.url}/api/v1/principals", headers=admin, json={"name": "pat"}).raise_for_status()
    httpx.post(
        f"{served.url}/api/v1/principals/pat/roles", headers=admin, json={"role": "admin", "project": "default"}
    ).raise_for_status()
    token = httpx.post(f"{served.url}/api/v1/principals/pat/tokens", headers=admin, json={"name": "t"}).json()["token"]
    key_file_before = (served.home / "master.key").read_bytes()
    for command in (("keys", "status"), ("keys", "rotate")):
        code, out, err = _remote(served, monkeypatch, tmp_path, *command, token=token)
        assert code == PermissionDenied.exit_code and out == ""
        assert err.startswith("error: pat may not keys:admin")
    assert (served.home / "master.key").read_bytes() == key_file_before


def test_a_new_key_that_is_not_a_key_is_refused_before_it_is_sent(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    bad.chmod(0o600)
    local = _local(served, monkeypatch, "keys", "rotate", "--new-key-file", str(bad))
    remote = _remote(served, monkeypatch, tmp_path, "keys", "rotate", "--new-key-file", str(bad))
    assert remote == local and local[0] == 1 and "does not hold a base64 256-bit key" in local[2]
    answer = httpx.post(
        f"{served.url}/api/v1/keys/rotate",
        json={"new_key": "not a key"},
        headers={"Authorization": f"Bearer {served.admin_token}"},
    )
    assert answer.status_code == 422 and "not a key" not in answer.text
