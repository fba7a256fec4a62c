"""Upgrading a store that has data in it, from each earlier schema revision, on SQLite and PostgreSQL.

A store made by an older aidc is taken to that revision by its own migrations, every table that exists then gets
a row (values by column type, foreign keys pointing at the rows of the tables they refer to), and the store is
upgraded the way aidc opens it (``upgrade_to_head``). Nothing may be lost — each row is still there, with the
values it had — and the rows made before projects existed (0003) belong to the project ``default``. The SQLite
rebuilds (0009, 0012 re-create a table to change a constraint) are where rows and the change feed's triggers could
be lost, so the test also checks that a change to a rebuilt table still reaches the change feed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Boolean, DateTime, Engine, Float, Integer, LargeBinary, MetaData, create_engine, select
from sqlalchemy import Table as SqlTable
from tests.conftest import fresh_postgres

from aidc.store.metadata.migrate import alembic_config, upgrade_to_head

_SCRIPTS = ScriptDirectory.from_config(alembic_config())
HEAD = _SCRIPTS.get_current_head()
EARLIER = sorted(rev.revision for rev in _SCRIPTS.walk_revisions() if rev.revision != HEAD)
NOT_DATA = {"alembic_version"}
AT = dt.datetime(2026, 1, 2, 3, 4, 5)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = create_engine(f"sqlite:///{tmp_path / 'metadata.db'}")
        yield made
        made.dispose()
    else:
        with fresh_postgres("aidc_migrate") as url:
            made = create_engine(url)
            yield made
            made.dispose()


def upgrade_to(engine: Engine, revision: str) -> None:
    """What an aidc of that revision left: its migrations applied to an empty store."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def value_for(table: SqlTable, column: Any, n: int) -> Any:
    kind = column.type
    if isinstance(kind, Boolean):
        return True
    if isinstance(kind, Integer):
        return n
    if isinstance(kind, Float):
        return n + 0.5
    if isinstance(kind, DateTime):
        return AT
    if isinstance(kind, JSON):
        return {"from": table.name}
    if isinstance(kind, LargeBinary):
        return b"\x00\x01"
    length = getattr(kind, "length", None) or 64
    return f"{table.name[:4]}-{column.name}"[:length]


def fill(engine: Engine) -> dict[str, dict[str, Any]]:
    """One row in every table that has none yet, in foreign-key order; the rows, by table."""
    meta = MetaData()
    meta.reflect(engine)
    rows: dict[str, dict[str, Any]] = {}
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            if table.name in NOT_DATA or conn.execute(select(table).limit(1)).first() is not None:
                continue  # (the migrations' own rows: the default project, the change feed's counters)
            row: dict[str, Any] = {}
            for n, column in enumerate(table.columns, start=1):
                refs = [fk for fk in column.foreign_keys if fk.column.table.name in rows]
                if refs:
                    row[column.name] = rows[refs[0].column.table.name][refs[0].column.name]
                elif column.foreign_keys:
                    assert column.nullable, f"{table.name}.{column.name} refers to a table filled later"
                elif column.name == "project":
                    row[column.name] = "default"
                else:
                    row[column.name] = value_for(table, column, n)
            conn.execute(table.insert().values(row))
            rows[table.name] = row
    return rows


def as_stored(value: Any) -> Any:
    return value.replace(tzinfo=None) if isinstance(value, dt.datetime) else value


@pytest.mark.parametrize("revision", EARLIER)
def test_a_store_with_data_upgrades_from_each_earlier_revision_and_loses_nothing(engine: Engine, revision: str) -> None:
    upgrade_to(engine, revision)
    written = fill(engine)
    assert written, f"revision {revision} made no table to fill"
    before = MetaData()
    before.reflect(engine)

    upgrade_to_head(engine)

    now = MetaData()
    now.reflect(engine)
    with engine.connect() as conn:
        for name, row in written.items():
            assert name in now.tables, f"table {name} is gone after upgrading from {revision}"
            stored = conn.execute(select(now.tables[name])).mappings().all()
            assert len(stored) == 1, f"{name}: {len(stored)} rows after upgrading from {revision}"
            kept = {key: as_stored(stored[0][key]) for key in row if key in stored[0]}
            assert kept == {key: as_stored(value) for key, value in row.items() if key in kept}, name
            if "project" in now.tables[name].columns and "project" not in before.tables[name].columns:
                # a record made before projects existed belongs to the default project
                assert stored[0]["project"] == "default", f"{name} after upgrading from {revision}"
        if revision < "0003":
            assert {"pipeline_runs", "model_versions", "deployments", "dataset_versions"} <= set(written)
            assert conn.execute(select(now.tables["projects"].c.name)).scalars().all() == ["default"]


@pytest.mark.parametrize("revision", [r for r in EARLIER if r >= "0007"])
def test_tables_rebuilt_by_an_upgrade_on_sqlite_still_feed_the_change_feed(tmp_path: Path, revision: str) -> None:
    """(On PostgreSQL the feed is LISTEN/NOTIFY on the security tables, which no migration rebuilds.)"""
    engine = create_engine(f"sqlite:///{tmp_path / 'metadata.db'}")
    upgrade_to(engine, revision)
    written = fill(engine)
    upgrade_to_head(engine)
    meta = MetaData()
    meta.reflect(engine)
    changes = meta.tables["table_changes"]
    for name in ("model_versions", "dataset_versions"):
        table = meta.tables[name]

        def generation(conn: Any, name: str = name) -> int:
            return int(conn.execute(select(changes.c.generation).where(changes.c.name == name)).scalar_one())

        with engine.begin() as conn:
            was = generation(conn)
            key = next(iter(table.primary_key.columns))
            conn.execute(table.update().where(key == written[name][key.name]).values(project="moved"))
        with engine.connect() as conn:
            assert generation(conn) > was, f"a change to {name} after upgrading from {revision} was not fed"
    engine.dispose()
