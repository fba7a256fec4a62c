"""Master keys: which codec the artifact store gets and the server's first key (rotation: services/keys.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aidc.store.artifacts.envelope import EnvelopeCodec
from aidc.store.artifacts.keyring import MasterKey, MasterKeyRing, write_key_file

if TYPE_CHECKING:
    from aidc.settings import Settings


def master_key_path(settings: Settings) -> Path:
    return Path(settings.master_key_file).expanduser() if settings.master_key_file else settings.home / "master.key"


def load_ring(settings: Settings) -> MasterKeyRing:
    return MasterKeyRing.load(master_key_path(settings), settings.master_key.get_secret_value())


def artifact_codec(settings: Settings) -> EnvelopeCodec:
    """The artifact store's codec: it always reads encrypted artifacts; it encrypts new ones when
    ``encryption`` is on, or auto with a master key configured (a local store without one stays plaintext)."""
    ring = load_ring(settings)
    encrypt = settings.encryption == "on" or (settings.encryption == "auto" and ring.active is not None)
    return EnvelopeCodec(ring, encrypt=encrypt)


def prepare_server(settings: Settings) -> str | None:
    """Server mode: encryption ``auto`` becomes on, and with no master key anywhere one is created in the key
    file (0600). Returns a line to show the operator when a key was created."""
    if settings.encryption == "off":
        return None
    settings.encryption = "on"
    if load_ring(settings).active is not None:
        return None
    key, path = MasterKey.generate(), master_key_path(settings)
    write_key_file(path, [key], comment="created by the first `aidc server`")
    return (
        f"created master key {key.key_id} in {path} (mode 0600): artifacts are encrypted under it; "
        "back the file up apart from the artifacts — without it they cannot be read"
    )
