"""History: removed servers, definition changes (rug-pull watch), crawl jobs.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("removed_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("crawl_runs") as batch:
        batch.add_column(sa.Column("job", sa.String(40)))
        batch.create_index("ix_crawl_runs_job", ["job"])
    op.create_table(
        "definition_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tool_id", sa.Integer, sa.ForeignKey("tools.id", ondelete="CASCADE"), nullable=False),
        sa.Column("old_hash", sa.String(64), nullable=False),
        sa.Column("new_hash", sa.String(64), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("crawl_run_id", sa.Integer, sa.ForeignKey("crawl_runs.id", ondelete="SET NULL")),
        sa.Column("severe", sa.Boolean),
        sa.Column("summary", sa.JSON, nullable=False),
    )
    op.create_index("ix_definition_changes_tool_id", "definition_changes", ["tool_id"])
    op.create_index("ix_definition_changes_new_hash", "definition_changes", ["new_hash"])


def downgrade() -> None:
    op.drop_table("definition_changes")
    with op.batch_alter_table("crawl_runs") as batch:
        batch.drop_index("ix_crawl_runs_job")
        batch.drop_column("job")
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("removed_at")
