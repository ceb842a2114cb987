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
    """catalog.store.instructions.text_hash as of this revision (a whole text)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def latest_ok(conn: sa.Connection) -> list[tuple[int, int, object, object]]:
    """(server id, attempt id, server_info, started_at) of each server's latest successful attempt."""
    latest = (
        sa.select(attempts.c.server_id, sa.func.max(attempts.c.id).label("id"))
        .where(attempts.c.outcome == "ok")
        .group_by(attempts.c.server_id)
        .subquery()
    )
    q = sa.select(attempts.c.server_id, attempts.c.id, attempts.c.server_info, attempts.c.started_at).join(
        latest, latest.c.id == attempts.c.id
    )
    return [tuple(row) for row in conn.execute(q)]  # type: ignore[misc]


def upgrade() -> None:
    kept = op.create_table(
        "server_instructions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("server_id", sa.Integer, sa.ForeignKey("servers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("length", sa.Integer, nullable=False),
        sa.Column("current", sa.Boolean, nullable=False),
        sa.Column("current_since", sa.DateTime(timezone=True), nullable=False),
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
    for server_id, _, info, seen in latest_ok(conn):
        said = info.get("instructions") if isinstance(info, dict) else None
        text = said.replace("\x00", "") if isinstance(said, str) else ""
        if not text.strip():  # blank: said nothing, as catalog.store.instructions keeps it
            continue
        conn.execute(
            kept.insert().values(
                server_id=server_id,
                hash=text_hash(text),
                text=text,
                length=len(text),
                current=True,
                current_since=seen,
                first_seen=seen,
                last_seen=seen,
            )
        )


def downgrade() -> None:
    # What later crawls were told goes back where this revision found it: into each server's
    # latest successful attempt (they keep only its hash since), so an upgrade finds it again.
    conn = op.get_bind()
    kept = sa.table(
        "server_instructions",
        sa.column("server_id", sa.Integer),
        sa.column("text", sa.Text),
        sa.column("current", sa.Boolean),
    )
    current = dict(conn.execute(sa.select(kept.c.server_id, kept.c.text).where(kept.c.current.is_(True))).all())
    for server_id, attempt_id, info, _ in latest_ok(conn):
        if server_id in current:
            restored = {k: v for k, v in (info if isinstance(info, dict) else {}).items() if k != "instructions_hash"}
            restored["instructions"] = current[server_id]
            conn.execute(sa.update(attempts).where(attempts.c.id == attempt_id).values(server_info=restored))
    op.drop_table("instruction_scans")
    op.drop_table("server_instructions")
