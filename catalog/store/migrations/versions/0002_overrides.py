"""Overrides: a person's allow / deny / custom rule for a tool, kept apart from generated rules.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tool", sa.String(400), nullable=False),
        sa.Column("server", sa.String(400), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("rule", sa.JSON),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("definition_hash", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tool", "server", name="uq_overrides_tool_server"),
    )
    op.create_index("ix_overrides_tool", "overrides", ["tool"])


def downgrade() -> None:
    op.drop_table("overrides")
