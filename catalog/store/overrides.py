"""Reading and writing overrides: a person's decisions, which no crawl or re-classification touches."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog.store.models import OverrideRow, utcnow


def set_override(
    session: Session,
    tool: str,
    server: str | None,
    decision: str,
    *,
    reason: str,
    author: str,
    rule: dict[str, Any] | None = None,
    definition_hash: str | None = None,
    covered: list[tuple[str, str]] | None = None,
) -> OverrideRow:
    where = (OverrideRow.tool == tool, OverrideRow.server == (server or ""))
    row = session.scalar(select(OverrideRow).where(*where))
    if row is None:
        # Two first decisions about one tool at once: the row is inserted unless the other
        # got there first, then updated either way, inside the caller's transaction (a
        # savepoint would be the outermost transaction on SQLite, and commit early).
        values = {"tool": tool, "server": server or "", "author": author, "decision": decision, "reason": ""}
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            session.execute(
                postgresql.insert(OverrideRow).values(**values, created_at=utcnow()).on_conflict_do_nothing()
            )
        elif dialect == "sqlite":
            session.execute(sqlite.insert(OverrideRow).values(**values, created_at=utcnow()).on_conflict_do_nothing())
        else:
            session.add(OverrideRow(**values))
            session.flush()
        row = session.scalar(select(OverrideRow).where(*where))
        assert row is not None
    row.decision, row.rule, row.reason, row.author = decision, rule, reason, author
    row.definition_hash, row.created_at = definition_hash, utcnow()
    row.covered = [list(pair) for pair in covered] if covered is not None else None
    session.flush()
    return row


#: Marks a stored ``definition_hash`` that is a digest of every server's definition of the
#: tool (an override for all servers exposing a tool defined differently on each), not one hash.
SERVERS_DIGEST = "all:"


def servers_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """One value for the definitions of a tool on several servers: (server, hash) pairs."""
    body = "\n".join(sorted({f"{server}\0{digest}" for server, digest in pairs}))
    return SERVERS_DIGEST + hashlib.sha256(body.encode("utf-8")).hexdigest()[:60]


def covered_now(session: Session, tool: str) -> list[tuple[str, str]]:
    """(server, hash) of the tool's definitions on the servers an override for every server
    covers now: those exposing it, less those with an override of their own (a change there is
    that override's to flag, not this one's)."""
    from catalog.store.models import Server, Tool

    own = select(OverrideRow.server).where(OverrideRow.tool == tool, OverrideRow.server != "")
    rows = session.execute(
        select(Server.name, Tool.current_hash)
        .join(Server, Server.id == Tool.server_id)
        .where(Tool.name == tool, Tool.removed_at.is_(None), Server.removed_at.is_(None), Server.name.not_in(own))
    ).all()
    return sorted((name, digest) for name, digest in rows)


def current_servers_digest(session: Session, tool: str) -> str:
    """:func:`servers_digest` of the definitions an override for every server covers now."""
    return servers_digest(covered_now(session, tool))


def vouches(session: Session, row: OverrideRow) -> bool:
    """Whether an override for every server still stands for every definition it covers now:
    each (server, definition) was one the person decided on.  A server that stops listing the
    tool takes nothing from the decision; a changed definition, or a server that starts
    exposing the tool, asks for review.  (Decided before the pairs were kept: the digest of
    them all must be unchanged, so there a server dropping the tool asks for review too.)"""
    if row.covered is None:
        return current_servers_digest(session, row.tool) == row.definition_hash
    decided = {(str(pair[0]), str(pair[1])) for pair in row.covered if isinstance(pair, list) and len(pair) == 2}
    return set(covered_now(session, row.tool)) <= decided


def keep_servers_digest(session: Session, tool: str, before: str) -> None:
    """After a server-specific override of ``tool`` was set: the override for every server, if
    it was up to date (its digest ``before``), covers one server fewer and is re-digested, so
    that alone does not ask for review.  (Clearing one widens the cover instead: that is left
    to ask for review where the server's definition is not the one decided on.)  One keeping
    the pairs it was decided on needs nothing: covering fewer of them still vouches."""
    row = session.scalar(select(OverrideRow).where(OverrideRow.tool == tool, OverrideRow.server == ""))
    if row is not None and row.definition_hash == before:
        session.flush()
        row.definition_hash = current_servers_digest(session, tool)


def clear_override(session: Session, tool: str, server: str | None) -> int:
    result = session.execute(delete(OverrideRow).where(OverrideRow.tool == tool, OverrideRow.server == (server or "")))
    return int(getattr(result, "rowcount", 0) or 0)


def all_overrides(session: Session) -> list[OverrideRow]:
    return list(session.scalars(select(OverrideRow).order_by(OverrideRow.tool, OverrideRow.server)))


def override_for(rows: list[OverrideRow], tool: str, server: str) -> OverrideRow | None:
    """A server-specific override beats one for every server."""
    specific = next((r for r in rows if r.tool == tool and r.server == server), None)
    return specific or next((r for r in rows if r.tool == tool and r.server == ""), None)
