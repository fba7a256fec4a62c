"""Alembic environment: runs migrations on the connection aidc hands over (or the configured URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import aidc.security.schema  # noqa: F401 - its tables share Base; autogenerate must see them
from aidc.store.metadata.schema import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic revision --autogenerate` during development
        url = config.get_main_option("sqlalchemy.url")
        if url is None:
            raise RuntimeError("set sqlalchemy.url in alembic.ini (or pass a connection) to autogenerate a revision")
        engine = create_engine(url)
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
