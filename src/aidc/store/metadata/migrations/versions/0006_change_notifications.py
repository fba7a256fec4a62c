"""change notifications: PostgreSQL tells listeners which table a committed statement changed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 22:20:00.000000

The server's read cache (aidc.api.read_cache) keeps answers while the tables they were read from are unchanged; on
PostgreSQL it learns of changes made by any process through NOTIFY aidc_changes, '<table>' from these statement
triggers (one notification per table per transaction: PostgreSQL folds duplicates). SQLite needs nothing here: its
``PRAGMA data_version`` already moves on every commit.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as aidc.store.metadata.changes had them when this revision was written (a later table needs a later revision)
CHANNEL = "aidc_changes"
WATCHED = ("pipeline_runs", "stage_runs", "metrics", "artifacts", "model_versions", "datasets", "dataset_versions")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE OR REPLACE FUNCTION aidc_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END $$""")
    for table in WATCHED:
        op.execute(
            f"CREATE TRIGGER aidc_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION aidc_notify_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS aidc_notify_change ON {table}")
    op.execute("DROP FUNCTION IF EXISTS aidc_notify_change()")
