"""Master keys for artifact encryption: loaded from a 0600 key file or AIDC_MASTER_KEY, named by a derived id."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aidc.errors import MasterKeyUnavailable

KEY_BYTES = 32  # AES-256
ENV_VAR = "AIDC_MASTER_KEY"


def key_id_of(material: bytes) -> str:
    """A master key's public name: 16 hex of a domain-separated SHA-256 of it.

    Derived, not chosen, so a key file holds nothing but keys and a wrong key is told apart from the
    right one without trying it (a SHA-256 of 256 random bits says nothing usable about them).
    """
    return hashlib.sha256(b"aidc master key id\x00" + material).hexdigest()[:16]


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    material: bytes = field(repr=False)  # never in a repr, a log line or an error message

    @classmethod
    def generate(cls) -> MasterKey:
        material = secrets.token_bytes(KEY_BYTES)
        return cls(key_id_of(material), material)

    @classmethod
    def from_text(cls, text: str, where: str) -> MasterKey:
        try:
            material = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            material = b""
        if len(material) != KEY_BYTES:
            raise MasterKeyUnavailable(
                f"{where} does not hold a base64 {KEY_BYTES * 8}-bit key",
                hint="each key is 32 random bytes in base64: "
                "`python -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())'`",
            )
        return cls(key_id_of(material), material)

    def to_text(self) -> str:
        return base64.b64encode(self.material).decode()


class MasterKeyRing:
    """The master keys this process may use: the first is the *active* one (wraps new data keys); the
    others only unwrap data keys wrapped before a rotation finished.

    ``sources`` says where keys were looked for, for error hints. A ring read from a file re-reads it when
    it changes (``refreshed``), so a running server, and a job's process, pick up ``aidc keys rotate``
    without a restart.
    """

    def __init__(
        self,
        keys: list[MasterKey] | tuple[MasterKey, ...] = (),
        *,
        key_file: Path | None = None,
        env_value: str = "",
        file_stamp: tuple[int, int, int] | None = None,
        env_keys: tuple[MasterKey, ...] = (),
    ) -> None:
        """``env_keys``: those of ``keys`` that did not come from the key file (kept when it is read again)."""
        unique: dict[str, MasterKey] = {}
        for key in keys:
            unique.setdefault(key.key_id, key)
        self.keys = tuple(unique.values())
        self.key_file = key_file
        self.env_value = env_value
        self._file_stamp = file_stamp
        self._env_keys = env_keys

    def __repr__(self) -> str:
        return f"MasterKeyRing(ids={[k.key_id for k in self.keys]}, key_file={self.key_file})"

    @property
    def active(self) -> MasterKey | None:
        return self.keys[0] if self.keys else None

    def get(self, key_id: str) -> MasterKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    @property
    def sources(self) -> str:
        places = []
        if self.key_file is not None:
            state = "present" if self.key_file.exists() else "absent"
            places.append(f"key file {self.key_file} ({state})")
        places.append(f"{ENV_VAR} ({'set' if self.env_value else 'unset'})")
        return ", ".join(places)

    @classmethod
    def load(cls, key_file: Path | None, env_value: str = "") -> MasterKeyRing:
        """Keys from ``env_value`` (comma-separated base64, active first), then from ``key_file`` if it exists."""
        env_keys = tuple(MasterKey.from_text(part, ENV_VAR) for part in env_value.split(",") if part.strip())
        return cls._with_file(env_keys, key_file, env_value)

    @classmethod
    def _with_file(cls, env_keys: tuple[MasterKey, ...], key_file: Path | None, env_value: str) -> MasterKeyRing:
        keys, stamp = list(env_keys), None
        if key_file is not None and key_file.exists():
            file_keys, stamp = read_key_file(key_file)
            keys += file_keys
        return cls(keys, key_file=key_file, env_value=env_value, file_stamp=stamp, env_keys=env_keys)

    def refreshed(self, *, force: bool = False) -> MasterKeyRing:
        """This ring, or a new one if its key file changed since it was read (a rotation happened), or
        appeared since; ``force`` re-reads it even if it looks unchanged (a key id this ring lacks was met)."""
        if self.key_file is None:
            return self
        try:
            now = _stamp(self.key_file.stat())
        except OSError:  # e.g. on a Ray worker of another host: keep the keys that travelled with the codec
            return self
        if now == self._file_stamp and not force:
            return self
        # the environment's keys as this ring holds them: a ring shipped to a Ray worker has their material, not
        # the variable (which stays with the process that read it)
        return MasterKeyRing._with_file(self._env_keys, self.key_file, self.env_value)

    # The keys travel with pickled stores to Ray workers (see docs/control-plane.md, "Encryption at rest").
    def __getstate__(self) -> dict[str, object]:
        return {
            "keys": [(k.key_id, k.material) for k in self.keys],
            "key_file": self.key_file,
            "env_value": "",
            "file_stamp": self._file_stamp,
            "env_keys": [(k.key_id, k.material) for k in self._env_keys],
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.keys = tuple(MasterKey(i, m) for i, m in state["keys"])  # type: ignore[attr-defined]
        self.key_file = state["key_file"]  # type: ignore[assignment]
        self.env_value = ""
        self._file_stamp = state["file_stamp"]  # type: ignore[assignment]
        self._env_keys = tuple(MasterKey(i, m) for i, m in state.get("env_keys", ()))  # type: ignore[attr-defined]


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    # The inode too: every write is a rename of a new file, so two rotations within one mtime tick (coarse
    # clocks, network file systems) that leave files of the same size still differ.
    return st.st_mtime_ns, st.st_size, st.st_ino


def read_key_file(path: Path) -> tuple[list[MasterKey], tuple[int, int, int]]:
    """The keys in a key file (one base64 key a line, active first, ``#`` comments); refuses an unsafe file."""
    try:
        st = path.stat()
        if st.st_mode & 0o077:
            raise MasterKeyUnavailable(
                f"refusing master key file {path}: it is readable or writable by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o})",
                where=str(path),
                hint=f"make it private to this user: chmod 600 {path}",
            )
        text = path.read_text(encoding="ascii")
    except PermissionError as exc:
        raise MasterKeyUnavailable(
            f"cannot read master key file {path}: {exc}",
            where=str(path),
            hint="run aidc as the user that owns the key file",
        ) from None
    except UnicodeDecodeError:
        raise MasterKeyUnavailable(
            f"master key file {path} is not text",
            where=str(path),
            hint="it holds one base64 key a line; `aidc keys rotate` writes it",
        ) from None
    keys = [
        MasterKey.from_text(line, f"line {n} of {path}")
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return keys, _stamp(st)


def write_key_file(path: Path, keys: list[MasterKey], comment: str = "") -> None:
    """Write the key file atomically with mode 0600 (temp file in the same directory, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    lines = [
        "# aidc master keys: the first wraps new data keys; the others are kept to read older ones.",
        "# Back this file up apart from the artifacts: without it encrypted artifacts cannot be read.",
    ]
    lines += [f"# {line}" for line in comment.splitlines()]
    lines += [k.to_text() for k in keys]
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write("\n".join(lines) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
