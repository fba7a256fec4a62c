"""deployments: replicas, resources, canary split, controller; replica and event tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 06:38:02.783559

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY_JSON = sa.text("'{}'")  # rows the pipeline wrote before 0002 get an empty object, not NULL


def upgrade() -> None:
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deployment_events_deployment_id"), ["deployment_id"], unique=False)

    op.create_table(
        "deployment_replicas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("node", sa.String(length=200), nullable=True),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "model_version_id", "slot"),
    )
    with op.batch_alter_table("deployment_replicas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deployment_replicas_deployment_id"), ["deployment_id"], unique=False)

    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replicas", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("resources", sa.JSON(), server_default=EMPTY_JSON, nullable=False))
        batch_op.add_column(sa.Column("canary_model_version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("canary_percent", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("canary_policy", sa.JSON(), server_default=EMPTY_JSON, nullable=False))
        batch_op.add_column(sa.Column("previous_model_version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("controller", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_deployments_canary_model_version_id", "model_versions", ["canary_model_version_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_deployments_previous_model_version_id", "model_versions", ["previous_model_version_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_deployments_previous_model_version_id", type_="foreignkey")
        batch_op.drop_constraint("fk_deployments_canary_model_version_id", type_="foreignkey")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("controller")
        batch_op.drop_column("previous_model_version_id")
        batch_op.drop_column("canary_policy")
        batch_op.drop_column("canary_percent")
        batch_op.drop_column("canary_model_version_id")
        batch_op.drop_column("resources")
        batch_op.drop_column("replicas")

    with op.batch_alter_table("deployment_replicas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployment_replicas_deployment_id"))

    op.drop_table("deployment_replicas")
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployment_events_deployment_id"))

    op.drop_table("deployment_events")
