"""Fixtures shared by the whole suite: an isolated AIDC_HOME and a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# CI sets this to the local server; on a machine without PostgreSQL the tests that need it skip with a line
# saying how to enable them.
PG_ADMIN_URL = os.environ.get("AIDC_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
PG_HINT = (
    "PostgreSQL not reachable at {url}: start it (see .ci/run) or point AIDC_TEST_POSTGRES_URL "
    "at a server where you may create databases"
)


@pytest.fixture()
def aidc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty AIDC_HOME for one test, so nothing leaks between tests or from the user's ~/.aidc."""
    home = tmp_path / "aidc-home"
    monkeypatch.setenv("AIDC_HOME", str(home))
    for var in ("AIDC_METADATA_URL", "AIDC_ARTIFACT_URL", "AIDC_RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"aidc_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        if os.environ.get("CI"):
            raise
        pytest.skip(PG_HINT.format(url=PG_ADMIN_URL))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
