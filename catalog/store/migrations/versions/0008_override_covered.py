"""An override for every server keeps the definitions it was decided on, not only their digest.

With the digest alone, a server that merely stopped listing the tool changed the digest: the
decision asked for review and, pinned, its rule was left out everywhere.  Kept as (server,
definition hash) pairs, covering fewer of them still stands.  An override up to date when this
runs gets the pairs it covers now; one already asking for review keeps only its digest (and
its question).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SERVERS_DIGEST = "all:"

tools = sa.table(
    "tools",
    sa.column("server_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("current_hash", sa.String),
    sa.column("removed_at", sa.DateTime),
)
servers = sa.table(
    "servers", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("removed_at", sa.DateTime)
)
overrides = sa.table(
    "overrides",
    sa.column("id", sa.Integer),
    sa.column("tool", sa.String),
    sa.column("server", sa.String),
    sa.column("definition_hash", sa.String),
    sa.column("covered", sa.JSON),
)


def servers_digest(pairs: list[tuple[str, str]]) -> str:
    """catalog.store.overrides.servers_digest as of this revision."""
    body = "\n".join(sorted({f"{server}\0{digest}" for server, digest in pairs}))
    return SERVERS_DIGEST + hashlib.sha256(body.encode("utf-8")).hexdigest()[:60]


def covered_now(conn: sa.Connection, tool: str) -> list[tuple[str, str]]:
    own = sa.select(overrides.c.server).where(overrides.c.tool == tool, overrides.c.server != "")
    q = (
        sa.select(servers.c.name, tools.c.current_hash)
        .join(servers, servers.c.id == tools.c.server_id)
        .where(
            tools.c.name == tool,
            tools.c.removed_at.is_(None),
            servers.c.removed_at.is_(None),
            servers.c.name.not_in(own),
        )
    )
    return sorted((name, digest) for name, digest in conn.execute(q))


def upgrade() -> None:
    with op.batch_alter_table("overrides") as batch:
        batch.add_column(sa.Column("covered", sa.JSON))
    conn = op.get_bind()
    every = conn.execute(
        sa.select(overrides.c.id, overrides.c.tool, overrides.c.definition_hash).where(
            overrides.c.server == "", overrides.c.definition_hash.like(SERVERS_DIGEST + "%")
        )
    ).all()
    for row_id, tool, digest in every:
        pairs = covered_now(conn, tool)
        if servers_digest(pairs) == digest:
            covered = [list(pair) for pair in pairs]
            conn.execute(sa.update(overrides).where(overrides.c.id == row_id).values(covered=covered))


def downgrade() -> None:
    with op.batch_alter_table("overrides") as batch:
        batch.drop_column("covered")
