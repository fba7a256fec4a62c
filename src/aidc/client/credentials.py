"""What `aidc login` saves — the server's URL and a token, readable by this OS user only — and which server the
commands go through."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aidc.errors import InvalidInput
from aidc.settings import Settings

CREDENTIALS = "credentials.json"


def credentials_path(home: Path) -> Path:
    return home / CREDENTIALS


def save_credentials(home: Path, server: str, token: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = credentials_path(home)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT: set it
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"server": server, "token": token}, f)
    return path


def load_credentials(home: Path) -> dict[str, str] | None:
    path = credentials_path(home)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {"server": str(data["server"]), "token": str(data["token"])}
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"{path} is not what `aidc login` writes", hint="run `aidc login URL` again") from None


def forget_credentials(home: Path) -> bool:
    path = credentials_path(home)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def server_of(settings: Settings | None = None) -> str | None:
    """The server the commands would go through (AIDC_SERVER, else what `aidc login` saved), or None: local."""
    settings = settings or Settings()
    saved = None if settings.server else load_credentials(settings.home)
    return settings.server or (saved["server"] if saved else None)
