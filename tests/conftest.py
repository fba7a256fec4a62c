"""Fixtures shared by the whole suite: an isolated AIDC_HOME and a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# pytest-xdist's workers start with COLUMNS=80 in their environment, and Rich fixes a console's width from COLUMNS
# when the console is made (aidc.cli.output, at first import): the tests that widen the table with COLUMNS per test
# would then get 80 columns and folded cells in `make stress` only. Without it, as in a serial run, Rich reads
# COLUMNS each time it prints.
os.environ.pop("COLUMNS", None)

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


@contextmanager
def fresh_postgres(prefix: str = "aidc_test") -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards; skips (fails in CI) without a server.

    The one way tests get a throwaway database: the session's shared one (``postgres_url``) and the ones a test
    needs of its own (a server's first start needs an empty store)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(PG_HINT.format(url=PG_ADMIN_URL))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    with fresh_postgres() as url:
        yield url


# Where the suite was when the process ended. A native library may end the interpreter without a word (Ray's
# driver calls _exit(1) when its raylet or GCS is gone), and pytest then prints no summary; `make test` reads this
# file to say which test was running (tools/test_death.py). Removed when the session ends normally.
RUNNING_FILE = os.environ.get("AIDC_TEST_RUNNING")


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    if RUNNING_FILE:
        Path(RUNNING_FILE).write_text(f"{nodeid}\n{os.getpid()}\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if RUNNING_FILE:
        Path(RUNNING_FILE).unlink(missing_ok=True)
