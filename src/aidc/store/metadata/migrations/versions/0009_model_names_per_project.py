"""model names are per project: a version is unique by (project, name, version), not (name, version)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 07:00:00.000000

Two projects may each have a model ``digits-cnn`` with its own version numbers; before, the second project's
registration took the next number of the first's and its promotion archived the first's production version.
Existing rows keep their numbers (they were unique across projects, so they stay unique within each). On SQLite
the table is rebuilt, which drops its change-feed triggers (0007): they are made again.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = "uq_model_versions_project_name_version"
# 0001 made the old constraint without a name: PostgreSQL calls it this; on SQLite a naming convention finds it.
OLD_POSTGRES = "model_versions_name_version_key"
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _change_triggers() -> None:
    """0007's triggers on model_versions, which a SQLite rebuild drops with the old table."""
    for i, event in enumerate(("INSERT", "UPDATE", "DELETE")):
        op.execute(
            f"CREATE TRIGGER aidc_change_model_versions_{i} AFTER {event} ON model_versions "
            "BEGIN UPDATE table_changes SET generation = generation + 1 WHERE name = 'model_versions'; END"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("model_versions", naming_convention=SQLITE_NAMES) as batch:
            batch.drop_constraint("uq_model_versions_name", type_="unique")
            batch.create_unique_constraint(NEW, ["project", "name", "version"])
        _change_triggers()
    else:
        op.drop_constraint(OLD_POSTGRES, "model_versions", type_="unique")
        op.create_unique_constraint(NEW, "model_versions", ["project", "name", "version"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("model_versions") as batch:
            batch.drop_constraint(NEW, type_="unique")
            batch.create_unique_constraint("uq_model_versions_name", ["name", "version"])
        _change_triggers()
    else:
        op.drop_constraint(NEW, "model_versions", type_="unique")
        op.create_unique_constraint(OLD_POSTGRES, "model_versions", ["name", "version"])
