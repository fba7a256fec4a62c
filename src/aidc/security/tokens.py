"""API tokens: 256-bit random secrets, shown once, kept only as argon2 hashes behind a short non-secret id."""

from __future__ import annotations

import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from aidc.errors import InvalidInput

_AIDC_TOKEN = re.compile(r"aidc_([0-9a-f]{8})_[A-Za-z0-9_-]{43}")
MIN_FOREIGN_TOKEN_CHARS = 32
# OWASP's argon2id floor (19 MiB, 2 passes): a token is 256 random bits, so the hash guards against a stolen
# database, not against guessing; heavier settings would only slow every server start and first request.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def new_token() -> tuple[str, str]:
    """A fresh token and its lookup id: ``aidc_<id>_<43 chars = 256 random bits>``."""
    token_id = secrets.token_hex(4)
    return token_id, f"aidc_{token_id}_{secrets.token_urlsafe(32)}"


def token_id_of(token: str) -> str:
    """The non-secret id a token is found by: the 8 hex digits an aidc token carries, or, for a token the
    operator chose (AIDC_ADMIN_TOKEN), ``x`` + a digest prefix — which says nothing about a long random secret."""
    match = _AIDC_TOKEN.fullmatch(token)
    return match.group(1) if match else "x" + hashlib.sha256(token.encode()).hexdigest()[:11]


def check_foreign_token(token: str) -> None:
    if _AIDC_TOKEN.fullmatch(token) is None and len(token) < MIN_FOREIGN_TOKEN_CHARS:
        raise InvalidInput(
            f"AIDC_ADMIN_TOKEN is shorter than {MIN_FOREIGN_TOKEN_CHARS} characters",
            hint="use a long random value, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        )


def hash_token(token: str) -> str:
    return _HASHER.hash(token)


def token_matches(secret_hash: str, token: str) -> bool:
    try:
        return _HASHER.verify(secret_hash, token)
    except (VerificationError, InvalidHashError):
        return False
