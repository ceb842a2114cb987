"""A tool's title and outputSchema count in its definition hash: rehash the definitions that have them.

Before, the hash covered name, description, inputSchema and annotations only, so a poisoned
title added later kept the hash: no change was recorded, and the verdict keyed by the hash
stood for a definition it had never read.  Definitions without a title or outputSchema keep
their hash; the others are rehashed everywhere a hash is kept (tool rows, definition history,
changes, verdicts with the server context they were made in, and the definitions a person's
override was decided on), so nothing is reclassified or flagged for review by the upgrade.

The hash functions are copied here, not imported: a migration must mean the same thing when
the project's code has moved on.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OPTIONAL = ("title", "outputSchema")
SERVERS_DIGEST = "all:"

definitions = sa.table(
    "tool_definitions",
    sa.column("id", sa.Integer),
    sa.column("tool_id", sa.Integer),
    sa.column("hash", sa.String),
    sa.column("definition", sa.JSON),
    sa.column("first_seen", sa.DateTime),
    sa.column("last_seen", sa.DateTime),
)
tools = sa.table(
    "tools",
    sa.column("id", sa.Integer),
    sa.column("server_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("current_hash", sa.String),
    sa.column("removed_at", sa.DateTime),
)
servers = sa.table(
    "servers", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("removed_at", sa.DateTime)
)
changes = sa.table(
    "definition_changes",
    sa.column("tool_id", sa.Integer),
    sa.column("old_hash", sa.String),
    sa.column("new_hash", sa.String),
)
verdicts = sa.table(
    "classifications",
    sa.column("id", sa.Integer),
    sa.column("definition_hash", sa.String),
    sa.column("context_hash", sa.String),
)
overrides = sa.table(
    "overrides",
    sa.column("id", sa.Integer),
    sa.column("tool", sa.String),
    sa.column("server", sa.String),
    sa.column("definition_hash", sa.String),
)


def _digest(body: Mapping[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_v1(definition: Mapping[str, Any]) -> str:
    """The hash up to revision 0006: name, description, inputSchema, annotations."""
    return _digest(
        {
            "name": definition.get("name"),
            "description": definition.get("description") or "",
            "inputSchema": definition.get("inputSchema") or {},
            "annotations": definition.get("annotations") or {},
        }
    )


def hash_v2(definition: Mapping[str, Any]) -> str:
    """From revision 0007: the same, plus title and outputSchema where a definition has them."""
    body = {
        "name": definition.get("name"),
        "description": definition.get("description") or "",
        "inputSchema": definition.get("inputSchema") or {},
        "annotations": definition.get("annotations") or {},
    }
    for key in OPTIONAL:
        if definition.get(key):
            body[key] = definition[key]
    return _digest(body)


def context_hash(server: str, hashes: list[str]) -> str:
    """catalog.store.repository.context_hash as of this revision."""
    h = hashlib.sha256(server.encode("utf-8"))
    for digest in sorted(set(hashes)):
        h.update(b"\n" + digest.encode("ascii"))
    return h.hexdigest()


def servers_digest(pairs: list[tuple[str, str]]) -> str:
    """catalog.store.overrides.servers_digest as of this revision."""
    body = "\n".join(sorted({f"{server}\0{digest}" for server, digest in pairs}))
    return SERVERS_DIGEST + hashlib.sha256(body.encode("utf-8")).hexdigest()[:60]


def _current(conn: sa.Connection, server_ids: set[int]) -> dict[int, tuple[str, list[str]]]:
    """Server id -> (name, its current tools' hashes), as verdict contexts are made."""
    out: dict[int, tuple[str, list[str]]] = {}
    ids = sorted(server_ids)
    for i in range(0, len(ids), 500):
        q = (
            sa.select(tools.c.server_id, servers.c.name, tools.c.current_hash)
            .join(servers, servers.c.id == tools.c.server_id)
            .where(
                tools.c.removed_at.is_(None), servers.c.removed_at.is_(None), tools.c.server_id.in_(ids[i : i + 500])
            )
        )
        for sid, name, digest in conn.execute(q):
            out.setdefault(sid, (name, []))[1].append(digest)
    return out


def _covered(conn: sa.Connection, tool: str) -> list[tuple[str, str]]:
    """(server, hash) of the definitions an override of ``tool`` for every server covers."""
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
    return [(name, digest) for name, digest in conn.execute(q)]


def rehash(new_hash: Callable[[Mapping[str, Any]], str], *, keep_verdicts: bool) -> None:
    conn = op.get_bind()
    # Only a definition with a title or outputSchema hashes differently (the text filter is a
    # superset: a description may quote the words too).
    text = sa.cast(definitions.c.definition, sa.Text)
    candidates = conn.execute(
        sa.select(definitions.c.id, definitions.c.tool_id, definitions.c.hash, definitions.c.definition).where(
            sa.or_(text.like('%"title"%'), text.like('%"outputSchema"%'))
        )
    ).all()
    moves: dict[tuple[int, str], str] = {}  # (tool id, old hash) -> new hash
    rows: dict[tuple[int, str], int] = {}  # (tool id, new hash) -> the row kept
    for row_id, tool_id, old, definition in candidates:
        if isinstance(definition, str):  # a backend that hands back the text
            definition = json.loads(definition)
        if not isinstance(definition, Mapping):
            continue
        new = new_hash(definition)
        if new == old:
            continue
        moves[(tool_id, old)] = new
        kept = rows.get((tool_id, new))
        if kept is None:
            existing = conn.execute(
                sa.select(definitions.c.id).where(definitions.c.tool_id == tool_id, definitions.c.hash == new)
            ).scalar()
            kept = rows[(tool_id, new)] = existing if existing is not None else row_id
        if kept == row_id:
            conn.execute(sa.update(definitions).where(definitions.c.id == row_id).values(hash=new))
        else:
            # Going down, two definitions told apart only by their title are one again: one row,
            # seen from the first sighting of either to the last.
            both = sa.select(definitions.c.first_seen, definitions.c.last_seen).where(
                definitions.c.id.in_((row_id, kept))
            )
            seen = conn.execute(both).all()
            conn.execute(
                sa.update(definitions)
                .where(definitions.c.id == kept)
                .values(first_seen=min(s[0] for s in seen), last_seen=max(s[1] for s in seen))
            )
            conn.execute(sa.delete(definitions).where(definitions.c.id == row_id))
    if not moves:
        return
    moved_tools = sorted({tool_id for tool_id, _ in moves})
    owners: dict[int, int] = {}
    names: dict[int, str] = {}
    for i in range(0, len(moved_tools), 500):  # (PostgreSQL takes 65,535 parameters at most)
        q = sa.select(tools.c.id, tools.c.server_id, tools.c.name).where(tools.c.id.in_(moved_tools[i : i + 500]))
        for tool_id, server_id, name in conn.execute(q):
            owners[tool_id], names[tool_id] = server_id, name
    affected = set(owners.values())
    before = _current(conn, affected)
    tool_names = sorted(set(names.values()))
    # Overrides for every server exposing a moved tool, with the digest each would hold if it
    # were up to date now (before the move).
    every_server: set[str] = set()
    for i in range(0, len(tool_names), 500):
        chunk = tool_names[i : i + 500]
        q = sa.select(overrides.c.tool).where(overrides.c.tool.in_(chunk), overrides.c.server == "")
        every_server.update(conn.execute(q).scalars())
    up_to_date = {tool: servers_digest(_covered(conn, tool)) for tool in every_server}

    for (tool_id, old), new in moves.items():
        conn.execute(
            sa.update(tools).where(tools.c.id == tool_id, tools.c.current_hash == old).values(current_hash=new)
        )
        conn.execute(
            sa.update(changes).where(changes.c.tool_id == tool_id, changes.c.old_hash == old).values(old_hash=new)
        )
        conn.execute(
            sa.update(changes).where(changes.c.tool_id == tool_id, changes.c.new_hash == old).values(new_hash=new)
        )

    # A person's decision about one server's definition follows that definition.
    server_ids = sorted(affected)
    server_names: dict[int, str] = {}
    for i in range(0, len(server_ids), 500):
        q = sa.select(servers.c.id, servers.c.name).where(servers.c.id.in_(server_ids[i : i + 500]))
        server_names.update({int(row[0]): str(row[1]) for row in conn.execute(q)})
    for (tool_id, old), new in moves.items():
        conn.execute(
            sa.update(overrides)
            .where(
                overrides.c.tool == names[tool_id],
                overrides.c.server == server_names[owners[tool_id]],
                overrides.c.definition_hash == old,
            )
            .values(definition_hash=new)
        )
    # One for every server decided when a single server exposed the tool holds that
    # definition's hash (before digests were kept): it follows the definition where the hash
    # meant one definition only.
    by_name: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (tool_id, old), new in moves.items():
        by_name[(names[tool_id], old)].add(new)
    for (tool, old), news in by_name.items():
        if len(news) == 1:
            conn.execute(
                sa.update(overrides)
                .where(overrides.c.tool == tool, overrides.c.server == "", overrides.c.definition_hash == old)
                .values(definition_hash=next(iter(news)))
            )
    # One for every server holds a digest of the definitions it covers: re-digested where it
    # was up to date, so the upgrade alone asks nobody to review it again.
    for tool, digest in up_to_date.items():
        conn.execute(
            sa.update(overrides)
            .where(overrides.c.tool == tool, overrides.c.server == "", overrides.c.definition_hash == digest)
            .values(definition_hash=servers_digest(_covered(conn, tool)))
        )

    after = _current(conn, affected)
    if not keep_verdicts:
        # Going down, verdicts under the hashes that are gone go too (those of a server whose
        # definition kept its hash stay); a change that was only a title is no change.
        gone = sorted({old for _, old in moves} - set(moves.values()))
        for i in range(0, len(gone), 500):
            conn.execute(sa.delete(verdicts).where(verdicts.c.definition_hash.in_(gone[i : i + 500])))
        for i in range(0, len(moved_tools), 500):
            conn.execute(
                sa.delete(changes).where(
                    changes.c.tool_id.in_(moved_tools[i : i + 500]), changes.c.old_hash == changes.c.new_hash
                )
            )
        return
    # A verdict made in a server's current context moves with it: the same definitions, read
    # the same way, now under their new hashes.
    by_server: dict[int, dict[str, str]] = defaultdict(dict)
    for (tool_id, old), new in moves.items():
        by_server[owners[tool_id]][old] = new
    for sid, (name, old_hashes) in before.items():
        old_ctx = context_hash(name, old_hashes)
        new_ctx = context_hash(name, after.get(sid, (name, []))[1])
        if old_ctx == new_ctx:
            continue
        for old in set(old_hashes):
            conn.execute(
                sa.update(verdicts)
                .where(verdicts.c.definition_hash == old, verdicts.c.context_hash == old_ctx)
                .values(definition_hash=by_server[sid].get(old, old), context_hash=new_ctx)
            )
    # A definition classified on its own (an old one, or from a file) follows its hash where
    # the hash meant one definition only.
    targets: dict[str, set[str]] = defaultdict(set)
    for (_, old), new in moves.items():
        targets[old].add(new)
    for old, news in targets.items():
        still = conn.execute(sa.select(definitions.c.id).where(definitions.c.hash == old).limit(1)).first()
        if len(news) == 1 and still is None:
            conn.execute(
                sa.update(verdicts)
                .where(verdicts.c.definition_hash == old, verdicts.c.context_hash == "")
                .values(definition_hash=news.pop())
            )


def upgrade() -> None:
    rehash(hash_v2, keep_verdicts=True)


def downgrade() -> None:
    rehash(hash_v1, keep_verdicts=False)
