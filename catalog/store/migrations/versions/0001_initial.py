"""Initial schema: servers, tools, definitions, classifications, crawl runs, attempts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(400), nullable=False, unique=True),
        sa.Column("title", sa.String(400)),
        sa.Column("description", sa.Text),
        sa.Column("version", sa.String(100)),
        sa.Column("repository_url", sa.Text),
        sa.Column("website_url", sa.Text),
        sa.Column("packages", sa.JSON, nullable=False),
        sa.Column("remotes", sa.JSON, nullable=False),
        sa.Column("sources", sa.JSON, nullable=False),
        sa.Column("published_at", sa.String(64)),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
    )
    op.create_table(
        "tools",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("server_id", sa.Integer, sa.ForeignKey("servers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("current_hash", sa.String(64), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("removed_at", TS),
        sa.UniqueConstraint("server_id", "name", name="uq_tools_server_name"),
    )
    op.create_index("ix_tools_server_id", "tools", ["server_id"])
    op.create_index("ix_tools_name", "tools", ["name"])
    op.create_table(
        "tool_definitions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tool_id", sa.Integer, sa.ForeignKey("tools.id", ondelete="CASCADE"), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.UniqueConstraint("tool_id", "hash", name="uq_tool_definitions_tool_hash"),
    )
    op.create_index("ix_tool_definitions_tool_id", "tool_definitions", ["tool_id"])
    op.create_index("ix_tool_definitions_hash", "tool_definitions", ["hash"])
    op.create_table(
        "classifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("definition_hash", sa.String(64), nullable=False),
        sa.Column("classifier_version", sa.String(64), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("risk", sa.String(20), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("risk_rule", sa.String(80), nullable=False),
        sa.Column("rationale", sa.Text, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("definition_hash", "classifier_version", name="uq_classifications_hash_version"),
    )
    op.create_index("ix_classifications_definition_hash", "classifications", ["definition_hash"])
    op.create_table(
        "crawl_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("counters", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "introspection_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("server_id", sa.Integer, sa.ForeignKey("servers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("crawl_run_id", sa.Integer, sa.ForeignKey("crawl_runs.id", ondelete="SET NULL")),
        sa.Column("transport", sa.String(20), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("tools_count", sa.Integer, nullable=False),
        sa.Column("protocol_version", sa.String(40)),
        sa.Column("server_info", sa.JSON, nullable=False),
        sa.Column("started_at", TS, nullable=False),
    )
    op.create_index("ix_introspection_attempts_server_id", "introspection_attempts", ["server_id"])


def downgrade() -> None:
    for table in ("introspection_attempts", "crawl_runs", "classifications", "tool_definitions", "tools", "servers"):
        op.drop_table(table)
