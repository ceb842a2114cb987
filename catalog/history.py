"""What changed in the catalogue: new and removed servers and tools, changed definitions.

Everything is derived from timestamps the store already keeps (first/last seen, removed
at) and from ``definition_changes`` rows written when a tool's hash changes, so a diff can
be asked for any point in time, not only the last crawl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.errors import CatalogError, NotFound, UsageError
from catalog.store.instructions import instruction_changes
from catalog.store.models import CrawlRun, DefinitionChange, Server, Tool, as_utc, utcnow


@dataclass
class Change:
    server: str
    tool: str
    old_hash: str
    new_hash: str
    detected_at: datetime
    severe: bool | None
    summary: dict[str, Any]


@dataclass
class Diff:
    since: datetime
    new_servers: list[str] = field(default_factory=list)
    removed_servers: list[str] = field(default_factory=list)
    new_tools: list[tuple[str, str]] = field(default_factory=list)
    removed_tools: list[tuple[str, str]] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    @property
    def severe(self) -> list[Change]:
        """The changes a CI gate stops on: severe ones, and ones not judged yet (a crawl
        stopped between storing and classifying), which are not known to be mild."""
        return [c for c in self.changed if c.severe is not False]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "new_servers": self.new_servers,
            "removed_servers": self.removed_servers,
            "new_tools": [{"server": s, "tool": t} for s, t in self.new_tools],
            "removed_tools": [{"server": s, "tool": t} for s, t in self.removed_tools],
            "changed": [
                {
                    "server": c.server,
                    "tool": c.tool,
                    "old_hash": c.old_hash,
                    "new_hash": c.new_hash,
                    "detected_at": c.detected_at.isoformat(),
                    "severe": c.severe,
                    "summary": c.summary,
                }
                for c in self.changed
            ],
        }


def resolve_since(session: Session, value: str | None) -> datetime:
    """A crawl run id, an ISO date/time, or (default) the start of the latest crawl job."""
    if value is None:
        last = session.scalars(
            select(CrawlRun).where(CrawlRun.source != "introspect").order_by(CrawlRun.id.desc()).limit(1)
        ).first()
        if last is None:
            raise CatalogError("no crawl has run yet: nothing to compare")
        if last.job:
            start = session.scalar(select(func.min(CrawlRun.started_at)).where(CrawlRun.job == last.job))
            return start or last.started_at  # the store gives times in UTC (UTCDateTime)
        return last.started_at
    if re.fullmatch("[0-9]+", value):  # not str.isdigit(): "²" is a digit that int() refuses
        run = session.get(CrawlRun, int(value)) if int(value) < 2**31 else None  # an id column's range
        if run is None:
            raise NotFound(f"no crawl run {value}")
        return run.started_at
    try:
        # In UTC, as every time the store gives back is (a date without a zone is read as UTC).
        return as_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError) as exc:  # OverflowError: 9999-12-31T23:59-05:00 is past year 9999 in UTC
        # Exit 2, not 1: `diff --severe` exits 1 for a severe change, and a typo must not read as one.
        raise UsageError(f"--since takes a run id or an ISO date, not {value!r}") from exc


def diff_since(session: Session, since: datetime) -> Diff:
    d = Diff(since=since)
    d.new_servers = list(session.scalars(select(Server.name).where(Server.first_seen >= since).order_by(Server.name)))
    d.removed_servers = list(
        session.scalars(select(Server.name).where(Server.removed_at >= since).order_by(Server.name))
    )
    rows = session.execute(
        select(Server.name, Tool.name)
        .join(Tool, Tool.server_id == Server.id)
        .where(Tool.first_seen >= since)
        .order_by(Server.name, Tool.name)
    )
    d.new_tools = [(s, t) for s, t in rows]
    rows = session.execute(
        select(Server.name, Tool.name)
        .join(Tool, Tool.server_id == Server.id)
        .where(Tool.removed_at >= since)
        .order_by(Server.name, Tool.name)
    )
    d.removed_tools = [(s, t) for s, t in rows]
    changes = session.execute(
        select(DefinitionChange, Tool.name, Server.name)
        .join(Tool, Tool.id == DefinitionChange.tool_id)
        .join(Server, Server.id == Tool.server_id)
        .where(DefinitionChange.detected_at >= since)
        .order_by(Server.name, Tool.name, DefinitionChange.id)
    )
    d.changed = [
        Change(server, tool, c.old_hash, c.new_hash, c.detected_at, c.severe, c.summary or {})
        for c, tool, server in changes
    ]
    # A server's instructions reach the model with every tool: their change is one too (tool "").
    d.changed += [
        Change(
            c.server,
            "",
            c.old_hash,
            c.new_hash,
            c.detected_at,
            c.severe,
            {"instructions": [c.old_length, c.new_length], "poisoning_added": c.poisoning_added},
        )
        for c in instruction_changes(session, since=since)
    ]
    d.changed.sort(key=lambda c: (c.server, c.tool))
    return d


#: The source `catalog introspect --name` records: a person's doing, which no crawl lists.
MANUAL_SOURCE = "introspect"


def mark_removed_servers(session: Session, source: str, complete_since: datetime) -> int:
    """After a complete crawl of ``source`` that started at ``complete_since``: a server it no
    longer lists is no longer one of ``source``'s, and is marked removed once no source lists
    it (one catalogue dropping a server another still lists, in a crawl of its own, removed
    it from every command until that other catalogue was crawled again)."""
    now = utcnow()
    count = 0
    for server in session.scalars(select(Server).where(Server.removed_at.is_(None))):
        sources = list(server.sources or [])
        if source in sources and server.last_seen < complete_since:
            others = [s for s in sources if s != source]
            server.sources = others
            # "introspect" (a server a person introspected by hand) is no catalogue listing it.
            if not [s for s in others if s != MANUAL_SOURCE]:
                server.removed_at = now
                count += 1
    return count


def changes_of(session: Session, server: str, tool: str) -> list[Change]:
    """Every recorded definition change of one tool, oldest first (for ``show`` and ``recommend``)."""
    rows = session.execute(
        select(DefinitionChange)
        .join(Tool, Tool.id == DefinitionChange.tool_id)
        .join(Server, Server.id == Tool.server_id)
        .where(Server.name == server, Tool.name == tool)
        .order_by(DefinitionChange.id)
    )
    return [Change(server, tool, c.old_hash, c.new_hash, c.detected_at, c.severe, c.summary or {}) for (c,) in rows]
