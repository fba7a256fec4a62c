"""list indexes: each project's runs and model versions in the API's list order

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 11:20:00.000000

The list routes filter by project and order by (created_at, id) / (name, version); without these the database
sorted all of a project's rows on every request to return the first 50. Dataset versions are ordered by the
dataset's name, a column of another table, so no index on dataset_versions saves their (small) sort.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_pipeline_runs_project_list", "pipeline_runs", ["project", "created_at", "id"])
    op.create_index("ix_model_versions_project_list", "model_versions", ["project", "name", "version"])


def downgrade() -> None:
    op.drop_index("ix_model_versions_project_list", table_name="model_versions")
    op.drop_index("ix_pipeline_runs_project_list", table_name="pipeline_runs")
