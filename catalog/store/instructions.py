"""Servers' instructions in the store: what each server's ``initialize`` told the model.

MCP lets a server send ``instructions`` with its ``initialize`` result; clients put them in
the model's context (Claude Code and others add them to the system prompt) beside the
server's tools.  A payload there reaches the model as surely as one in a tool description,
and it reaches it for every tool of the server, so the text is kept (each distinct text once
per server, the old ones as history) and scanned like a description
(:mod:`catalog.verdicts`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import literal, select, true, update
from sqlalchemy.orm import Session

from catalog.store.models import InstructionScan, Server, ServerInstructions, Tool, utcnow

if TYPE_CHECKING:  # repository imports this module
    from catalog.store.repository import ToolView


def text_hash(text: str) -> str:
    """The key of one instructions text (lone surrogates, which JSON can carry, hash too)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def record_instructions(
    session: Session, server: Server, text: Any, length: Any = None, now: datetime | None = None
) -> str | None:
    """Keep what a successful introspection said (``text`` None or empty: it said nothing) as
    the server's current instructions; returns the text's hash.  ``length`` is what the server
    sent when the introspection kept only the start of it."""
    if not isinstance(text, str) or not text.replace("\x00", "").strip():
        _no_longer_current(session, server, None)
        return None
    text = text.replace("\x00", "")  # as StoredText stores it: the hash is of what is kept
    digest = text_hash(text)
    now = now or utcnow()
    sent = length if isinstance(length, int) and length > len(text) else len(text)
    row = session.scalar(
        select(ServerInstructions).where(ServerInstructions.server_id == server.id, ServerInstructions.hash == digest)
    )
    _no_longer_current(session, server, digest)
    if row is None:
        session.add(
            ServerInstructions(
                server_id=server.id, hash=digest, text=text, length=sent, current=True, first_seen=now, last_seen=now
            )
        )
    else:
        row.last_seen = now
        row.length = max(row.length, sent)
        row.current = True
    return digest


def _no_longer_current(session: Session, server: Server, keep: str | None) -> None:
    session.execute(
        update(ServerInstructions)
        .where(ServerInstructions.server_id == server.id, ServerInstructions.current.is_(True))
        .where(ServerInstructions.hash != keep if keep is not None else true())
        .values(current=False)
    )


@dataclass(frozen=True)
class CurrentInstructions:
    """A listed server's current instructions and what their latest scan found."""

    server: str
    hash: str
    text: str
    length: int
    #: The latest scan's findings (dicts of ``Finding``); None: not scanned yet.
    findings: list[dict[str, Any]] | None

    @property
    def poisoned(self) -> bool:
        return any(isinstance(f, dict) and f.get("id") == "tool_poisoning" for f in self.findings or [])


def tools_context(names: Iterable[str]) -> str:
    """The key of a server's tool set a scan was made against (a hook on a tool that is none of
    the server's own is shadowing, so the scan depends on which tools those are)."""
    h = hashlib.sha256()
    for name in sorted(set(names)):
        h.update(name.encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def _tool_names(session: Session, server_ids: Iterable[int]) -> dict[int, list[str]]:
    """Server id -> the names of its current tools."""
    ids = sorted(set(server_ids))
    out: dict[int, list[str]] = {i: [] for i in ids}
    for i in range(0, len(ids), 500):
        q = select(Tool.server_id, Tool.name).where(Tool.server_id.in_(ids[i : i + 500]), Tool.removed_at.is_(None))
        for sid, name in session.execute(q):
            out[sid].append(name)
    return out


def _current(session: Session, servers: Iterable[str] | None, text: bool) -> list[Any]:
    """(server id, name, hash, length, text or "") of listed servers' current instructions."""
    body = ServerInstructions.text if text else literal("")
    q = (
        select(Server.id, Server.name, ServerInstructions.hash, ServerInstructions.length, body)
        .join(
            ServerInstructions,
            (ServerInstructions.server_id == Server.id) & ServerInstructions.current.is_(True),
        )
        .where(Server.removed_at.is_(None))
    )
    if servers is not None:
        names = sorted(set(servers))
        if not names:
            return []
        rows: list[Any] = []
        for i in range(0, len(names), 500):
            rows += session.execute(q.where(Server.name.in_(names[i : i + 500]))).all()
        return rows
    return list(session.execute(q).all())


def current_instructions(
    session: Session, servers: Iterable[str] | None = None, *, text: bool = True
) -> dict[str, CurrentInstructions]:
    """Server name -> its current instructions and their latest scan against its current tools
    (else their latest scan at all: a catalogue not re-scanned yet), by any classifier version
    as a tool's latest verdict is read, for servers still listed (only ``servers`` when given);
    ``text=False`` leaves the texts unread."""
    rows = _current(session, servers, text)
    names = _tool_names(session, (sid for sid, *_ in rows))
    contexts = {sid: tools_context(names[sid]) for sid, *_ in rows}
    exact: dict[tuple[str, str], list[dict[str, Any]]] = {}
    latest: dict[str, list[dict[str, Any]]] = {}
    hashes = sorted({h for _, _, h, _, _ in rows})
    for i in range(0, len(hashes), 500):
        found = (
            select(InstructionScan.hash, InstructionScan.context_hash, InstructionScan.findings)
            .where(InstructionScan.hash.in_(hashes[i : i + 500]))
            .order_by(InstructionScan.created_at, InstructionScan.id)
        )
        for h, context, findings in session.execute(found):  # oldest first: the latest wins
            exact[(h, context)] = latest[h] = list(findings or [])
    return {
        name: CurrentInstructions(name, h, t, n, exact.get((h, contexts[sid]), latest.get(h)))
        for sid, name, h, n, t in rows
    }


def unscanned(session: Session, version: str) -> list[tuple[str, str, int, list[str], str]]:
    """(hash, text, length sent, the server's tool names, their context) of every listed
    server's current instructions that classifier ``version`` has not scanned against that
    server's tools, each (text, tool set) once."""
    rows = _current(session, None, text=False)
    names = _tool_names(session, (sid for sid, *_ in rows))
    done: set[tuple[str, str]] = set()
    hashes = sorted({h for _, _, h, _, _ in rows})
    for i in range(0, len(hashes), 500):
        q = select(InstructionScan.hash, InstructionScan.context_hash).where(
            InstructionScan.classifier_version == version, InstructionScan.hash.in_(hashes[i : i + 500])
        )
        done.update((h, c) for h, c in session.execute(q))
    pending: dict[tuple[str, str], tuple[str, int, list[str]]] = {}
    for sid, _, h, n, _ in rows:
        context = tools_context(names[sid])
        if (h, context) not in done:
            pending.setdefault((h, context), (h, n, sorted(set(names[sid]))))
    texts: dict[str, str] = {}
    wanted = sorted({h for h, _ in pending})
    for i in range(0, len(wanted), 500):
        q2 = select(ServerInstructions.hash, ServerInstructions.text).where(
            ServerInstructions.hash.in_(wanted[i : i + 500])
        )
        texts.update({h: t for h, t in session.execute(q2)})
    return [(h, texts[h], n, tools, context) for (h, context), (_, n, tools) in pending.items()]


@dataclass(frozen=True)
class InstructionsChange:
    """A server's current instructions replaced other text seen by an earlier crawl."""

    server: str
    old_hash: str
    new_hash: str
    old_length: int
    new_length: int
    #: When the old text was last seen or the new one first, whichever is later: the change
    #: happened after it (a text that came back keeps its first sighting).
    detected_at: datetime
    #: The latest scan of the old text (None: never scanned).
    old_findings: list[dict[str, Any]] | None


def instruction_changes(session: Session, servers: Iterable[str]) -> list[InstructionsChange]:
    """For each named server whose current instructions replaced another text: that change."""
    names = sorted(set(servers))
    out: list[InstructionsChange] = []
    for i in range(0, len(names), 500):
        q = (
            select(Server.name, ServerInstructions)
            .join(ServerInstructions, ServerInstructions.server_id == Server.id)
            .where(Server.name.in_(names[i : i + 500]))
            .order_by(ServerInstructions.last_seen, ServerInstructions.id)
        )
        kept: dict[str, tuple[ServerInstructions | None, ServerInstructions | None]] = {}
        for name, row in session.execute(q):
            now, before = kept.get(name, (None, None))
            if row.current:
                now = row
            else:
                before = row  # ordered by last sighting: the last one wins
            kept[name] = (now, before)
        for name, (now, before) in kept.items():
            if now is None or before is None:
                continue
            old = session.scalars(
                select(InstructionScan.findings)
                .where(InstructionScan.hash == before.hash)
                .order_by(InstructionScan.created_at.desc(), InstructionScan.id.desc())
                .limit(1)
            ).first()
            out.append(
                InstructionsChange(
                    server=name,
                    old_hash=before.hash,
                    new_hash=now.hash,
                    old_length=before.length,
                    new_length=now.length,
                    detected_at=max(now.first_seen, before.last_seen),
                    old_findings=None if old is None else list(old),
                )
            )
    return out


def with_server_findings(session: Session, views: Sequence[ToolView]) -> list[ToolView]:
    """The views with their servers' instruction findings (``ToolView.server_findings``): a
    policy made for a tool hides it when its server's instructions are poisoned."""
    said = current_instructions(session, {v.server for v in views}, text=False) if views else {}
    return [
        replace(v, server_findings=tuple(f for f in (said[v.server].findings or []) if isinstance(f, dict)))
        if v.server in said
        else v
        for v in views
    ]
