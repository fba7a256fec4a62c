"""drop the single-column project indexes of runs and model versions: 0005's list indexes begin with project

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 23:15:00.000000

``(project, created_at, id)`` and ``(project, name, version)`` answer every lookup by project that the one-column
indexes of 0003 did; those were one more index to write on every insert and project assignment.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_pipeline_runs_project", table_name="pipeline_runs")
    op.drop_index("ix_model_versions_project", table_name="model_versions")


def downgrade() -> None:
    op.create_index("ix_model_versions_project", "model_versions", ["project"])
    op.create_index("ix_pipeline_runs_project", "pipeline_runs", ["project"])
