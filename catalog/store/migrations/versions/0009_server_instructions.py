"""Servers' instructions: what a server's ``initialize`` tells the model, kept and scanned.

A client puts a server's ``instructions`` in the model's context beside its tools, so they
can carry the same poisoning as a tool description.  Each distinct text is kept once per
server (history, for the rug-pull watch), the current one marked, and scans are keyed by text
hash, classifier version and the server's tool set, as verdicts are.  Catalogues introspected
before this revision kept the text in their attempts' ``server_info``: each server's latest
successful attempt gives its current text.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

attempts = sa.table(
    "introspection_attempts",
    sa.column("id", sa.Integer),
    sa.column("server_id", sa.Integer),
    sa.column("outcome", sa.String),
    sa.column("server_info", sa.JSON),
    sa.column("started_at", sa.DateTime(timezone=True)),
)


def text_hash(text: str) -> str:
    """catalog.store.instructions.text_hash as of this revision."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def upgrade() -> None:
    kept = op.create_table(
        "server_instructions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("server_id", sa.Integer, sa.ForeignKey("servers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("length", sa.Integer, nullable=False),
        sa.Column("current", sa.Boolean, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("server_id", "hash", name="uq_server_instructions_server_hash"),
    )
    op.create_index("ix_server_instructions_server_id", "server_instructions", ["server_id"])
    op.create_index("ix_server_instructions_hash", "server_instructions", ["hash"])
    op.create_index("ix_server_instructions_current", "server_instructions", ["current"])
    op.create_table(
        "instruction_scans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("classifier_version", sa.String(64), nullable=False),
        sa.Column("context_hash", sa.String(64), nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "hash", "classifier_version", "context_hash", name="uq_instruction_scans_hash_version_context"
        ),
    )
    op.create_index("ix_instruction_scans_hash", "instruction_scans", ["hash"])
    conn = op.get_bind()
    latest = (
        sa.select(attempts.c.server_id, sa.func.max(attempts.c.id).label("id"))
        .where(attempts.c.outcome == "ok")
        .group_by(attempts.c.server_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(attempts.c.server_id, attempts.c.server_info, attempts.c.started_at).join(
            latest, latest.c.id == attempts.c.id
        )
    ).all()
    for server_id, info, seen in rows:
        text = info.get("instructions") if isinstance(info, dict) else None
        if not isinstance(text, str) or not text:
            continue
        text = text.replace("\x00", "")
        digest = text_hash(text)
        conn.execute(
            kept.insert().values(
                server_id=server_id,
                hash=digest,
                text=text,
                length=len(text),
                current=True,
                first_seen=seen,
                last_seen=seen,
            )
        )


def downgrade() -> None:
    op.drop_table("instruction_scans")
    op.drop_table("server_instructions")
