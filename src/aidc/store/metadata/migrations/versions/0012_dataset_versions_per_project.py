"""dataset versions are per project: unique by (dataset, project, version), not (dataset, version)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:10:00.000000

As 0009 did for models: two projects preparing a dataset of the same name each number their own versions, and
"identical data is the same version" holds only within a project (before, project beta's data stage was handed
project alpha's version of identical data). Existing rows keep their numbers (unique across projects, so unique
within each). On SQLite the table is rebuilt, which drops its change-feed triggers (0007): they are made again.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = "uq_dataset_versions_dataset_id_project_version"
# 0001 made the old constraint without a name: PostgreSQL calls it this; on SQLite a naming convention finds it.
OLD_POSTGRES = "dataset_versions_dataset_id_version_key"
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _change_triggers() -> None:
    """0007's triggers on dataset_versions, which a SQLite rebuild drops with the old table."""
    for i, event in enumerate(("INSERT", "UPDATE", "DELETE")):
        op.execute(
            f"CREATE TRIGGER aidc_change_dataset_versions_{i} AFTER {event} ON dataset_versions "
            "BEGIN UPDATE table_changes SET generation = generation + 1 WHERE name = 'dataset_versions'; END"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("dataset_versions", naming_convention=SQLITE_NAMES) as batch:
            batch.drop_constraint("uq_dataset_versions_dataset_id", type_="unique")
            batch.create_unique_constraint(NEW, ["dataset_id", "project", "version"])
        _change_triggers()
    else:
        op.drop_constraint(OLD_POSTGRES, "dataset_versions", type_="unique")
        op.create_unique_constraint(NEW, "dataset_versions", ["dataset_id", "project", "version"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("dataset_versions") as batch:
            batch.drop_constraint(NEW, type_="unique")
            batch.create_unique_constraint("uq_dataset_versions_dataset_id", ["dataset_id", "version"])
        _change_triggers()
    else:
        op.drop_constraint(NEW, "dataset_versions", type_="unique")
        op.create_unique_constraint(OLD_POSTGRES, "dataset_versions", ["dataset_id", "version"])
