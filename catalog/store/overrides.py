"""Reading and writing overrides: a person's decisions, which no crawl or re-classification touches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
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
) -> OverrideRow:
    where = (OverrideRow.tool == tool, OverrideRow.server == (server or ""))
    row = session.scalar(select(OverrideRow).where(*where))
    if row is None:
        try:
            with session.begin_nested():  # a savepoint: a concurrent first decision may win the insert
                row = OverrideRow(tool=tool, server=server or "", author=author, decision=decision)
                session.add(row)
        except IntegrityError:
            row = session.scalar(select(OverrideRow).where(*where))  # theirs, now ours to update
            assert row is not None
    row.decision, row.rule, row.reason, row.author = decision, rule, reason, author
    row.definition_hash, row.created_at = definition_hash, utcnow()
    session.flush()
    return row


def clear_override(session: Session, tool: str, server: str | None) -> int:
    result = session.execute(delete(OverrideRow).where(OverrideRow.tool == tool, OverrideRow.server == (server or "")))
    return int(getattr(result, "rowcount", 0) or 0)


def all_overrides(session: Session) -> list[OverrideRow]:
    return list(session.scalars(select(OverrideRow).order_by(OverrideRow.tool, OverrideRow.server)))


def override_for(rows: list[OverrideRow], tool: str, server: str) -> OverrideRow | None:
    """A server-specific override beats one for every server."""
    specific = next((r for r in rows if r.tool == tool and r.server == server), None)
    return specific or next((r for r in rows if r.tool == tool and r.server == ""), None)
