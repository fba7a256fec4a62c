"""table changes: which table changed, on SQLite too; and the security changes a verified token depends on

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 22:40:00.000000

SQLite: ``table_changes`` holds a counter per watched table, moved by a trigger on every insert, update and
delete, so the change feed tells which tables a commit touched (``PRAGMA data_version`` only says that something
did: an audit entry would otherwise make every kept answer stale). PostgreSQL: the table exists, empty; its feed
is NOTIFY (0006), which this revision extends.

Both: the security changes that alter who a token stands for — a token revoked, its expiry changed or deleted; a
principal disabled or deleted; any role binding — are watched too, so the server's memory of verified tokens
forgets them at once. A token's ``last_used_at`` (written once a minute per token) is not such a change.

For later revisions: on SQLite, an Alembic batch operation that rebuilds one of these tables drops its triggers;
such a revision must create them again (tests/contract/test_change_feed.py fails until it does).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as aidc.store.metadata.changes had them when this revision was written
RECORDS = ("pipeline_runs", "stage_runs", "metrics", "artifacts", "model_versions", "datasets", "dataset_versions")
# table → the changes to it that count: (event, for SQLite) and the PostgreSQL trigger's event list
SECURITY: dict[str, tuple[tuple[str, ...], str]] = {
    "api_tokens": (("UPDATE OF revoked_at, expires_at", "DELETE"), "UPDATE OF revoked_at, expires_at OR DELETE"),
    "principals": (("UPDATE OF disabled", "DELETE"), "UPDATE OF disabled OR DELETE"),
    "role_bindings": (("INSERT", "UPDATE", "DELETE"), "INSERT OR UPDATE OR DELETE OR TRUNCATE"),
}


def upgrade() -> None:
    op.create_table(
        "table_changes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table, (_, trigger_events) in SECURITY.items():
            op.execute(
                f"CREATE TRIGGER aidc_notify_change AFTER {trigger_events} ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION aidc_notify_change()"
            )
        return
    watched: dict[str, tuple[str, ...]] = {table: ("INSERT", "UPDATE", "DELETE") for table in RECORDS}
    watched |= {table: events for table, (events, _) in SECURITY.items()}
    for table, events in watched.items():
        op.execute(sa.text("INSERT INTO table_changes (name, generation) VALUES (:t, 0)").bindparams(t=table))
        for i, event in enumerate(events):
            op.execute(
                f"CREATE TRIGGER aidc_change_{table}_{i} AFTER {event} ON {table} "
                f"BEGIN UPDATE table_changes SET generation = generation + 1 WHERE name = '{table}'; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in SECURITY:
            op.execute(f"DROP TRIGGER IF EXISTS aidc_notify_change ON {table}")
    else:
        for table, events in (
            {t: ("INSERT", "UPDATE", "DELETE") for t in RECORDS} | {t: e for t, (e, _) in SECURITY.items()}
        ).items():
            for i in range(len(events)):
                op.execute(f"DROP TRIGGER IF EXISTS aidc_change_{table}_{i}")
    op.drop_table("table_changes")
