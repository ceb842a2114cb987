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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.store.models import InstructionScan, IntrospectionAttempt, Server, ServerInstructions, Tool, utcnow

if TYPE_CHECKING:  # repository imports this module
    from catalog.store.repository import ToolView


def text_hash(text: str, length: int | None = None) -> str:
    """The key of one instructions text (lone surrogates, which JSON can carry, hash too).  A
    text kept only in part is keyed by what was kept and the length sent: a payload appended
    past the cap makes another text, scanned anew (it was the same prefix, never re-read)."""
    h = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    if length is not None and length > len(text):
        h.update(f"\x00{length}".encode())
    return h.hexdigest()


def _kept(text: Any) -> str | None:
    """The text as the store keeps it (without NULs), None when it says nothing."""
    if not isinstance(text, str):
        return None
    text = text.replace("\x00", "")
    return text if text.strip() else None


def record_instructions(
    session: Session, server: Server, text: Any, length: Any = None, now: datetime | None = None
) -> str | None:
    """Keep what a successful introspection said (``text`` None or blank: it said nothing) as
    the server's current instructions; returns their hash.  ``length`` is what the server sent
    when the introspection kept only the start of it."""
    # One writer per server at a time (`catalog introspect` beside a crawl): the second waits for
    # the first's commit, then sees its row; both marked theirs current, or failed on the key.
    session.execute(select(Server.id).where(Server.id == server.id).with_for_update())
    kept = _kept(text)
    if kept is None:
        _no_longer_current(session, server, None)
        return None
    sent = length if isinstance(length, int) and length > len(kept) else len(kept)
    digest = text_hash(kept, sent)
    now = now or utcnow()
    _no_longer_current(session, server, digest)

    def stored() -> ServerInstructions | None:
        return session.scalar(
            select(ServerInstructions).where(
                ServerInstructions.server_id == server.id, ServerInstructions.hash == digest
            )
        )

    row = stored()
    if row is None:
        try:
            with session.begin_nested():  # `catalog introspect` beside a crawl may store it first
                session.add(
                    ServerInstructions(
                        server_id=server.id,
                        hash=digest,
                        text=kept,
                        length=sent,
                        current=True,
                        current_since=now,
                        first_seen=now,
                        last_seen=now,
                    )
                )
            return digest
        except IntegrityError:
            row = stored()
            if row is None:
                raise
    if not row.current:
        row.current, row.current_since = True, now  # (back) in use since now: a change seen now
    row.last_seen = now
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
    #: Since when the server has said this (the crawl that first saw it, or saw it come back).
    since: datetime | None = None
    #: When a scan first found poisoning in it against the server's current tools: a person's
    #: decision made before that was made without knowing it.
    poisoned_since: datetime | None = None

    @property
    def poisoned(self) -> bool:
        return _poisoned(self.findings or [])


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


def _of_servers(session: Session, q: Any, servers: Iterable[str] | None) -> list[Any]:
    """The rows of ``q`` (a query joined to ``Server``), for the named servers only when given,
    asked 500 names at a time; each server's rows come in one chunk, in ``q``'s order."""
    if servers is None:
        return list(session.execute(q).all())
    names = sorted(set(servers))
    rows: list[Any] = []
    for i in range(0, len(names), 500):
        rows += session.execute(q.where(Server.name.in_(names[i : i + 500]))).all()
    return rows


def _current(session: Session, servers: Iterable[str] | None, text: bool) -> list[Any]:
    """(server id, name, hash, length, text or "", since) of listed servers' current
    instructions: one per server (two writers at once could each mark one; the later stands)."""
    body = ServerInstructions.text if text else literal("")
    q = (
        select(
            Server.id,
            Server.name,
            ServerInstructions.hash,
            ServerInstructions.length,
            body,
            ServerInstructions.current_since,
        )
        .join(
            ServerInstructions,
            (ServerInstructions.server_id == Server.id) & ServerInstructions.current.is_(True),
        )
        .where(Server.removed_at.is_(None))
        .order_by(ServerInstructions.current_since, ServerInstructions.id)
    )
    rows = _of_servers(session, q, servers)
    return list({row[0]: row for row in rows}.values())  # the latest of a server's wins


def _scans(
    session: Session, hashes: Iterable[str]
) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], dict[tuple[str, str], datetime]]:
    """(hash, tools context) -> the latest scan's findings, and -> when a scan first found
    poisoning there (by any classifier version, as a tool's latest verdict is read)."""
    wanted = sorted(set(hashes))
    latest: dict[tuple[str, str], list[dict[str, Any]]] = {}
    first_poisoned: dict[tuple[str, str], datetime] = {}
    for i in range(0, len(wanted), 500):
        q = (
            select(
                InstructionScan.hash, InstructionScan.context_hash, InstructionScan.findings, InstructionScan.created_at
            )
            .where(InstructionScan.hash.in_(wanted[i : i + 500]))
            .order_by(InstructionScan.created_at, InstructionScan.id)
        )
        for h, context, findings, made in session.execute(q):  # oldest first: the latest wins
            latest[(h, context)] = list(findings or [])
            if _poisoned(latest[(h, context)]):
                first_poisoned.setdefault((h, context), made)
    return latest, first_poisoned


def current_instructions(
    session: Session, servers: Iterable[str] | None = None, *, text: bool = True
) -> dict[str, CurrentInstructions]:
    """Server name -> its current instructions and their latest scan against its current tools
    (None: not scanned against them yet; a scan against other tools, another server's or its
    own before they changed, does not stand in), for servers still listed (only ``servers``
    when given); ``text=False`` leaves the texts unread."""
    rows = _current(session, servers, text)
    names = _tool_names(session, (sid for sid, *_ in rows))
    contexts = {sid: tools_context(names[sid]) for sid, *_ in rows}
    latest, first_poisoned = _scans(session, (row[2] for row in rows))
    return {
        name: CurrentInstructions(
            name,
            h,
            t,
            n,
            latest.get((h, contexts[sid])),
            since,
            first_poisoned.get((h, contexts[sid])),
        )
        for sid, name, h, n, t, since in rows
    }


def unscanned(session: Session, version: str) -> list[tuple[str, str, int, list[str], str]]:
    """(hash, text, length sent, the server's tool names, their context) of every listed
    server's current instructions that classifier ``version`` has not scanned against that
    server's tools, each (text, tool set) once."""
    rows = _current(session, None, text=False)
    names = _tool_names(session, (sid for sid, *_ in rows))
    done: set[tuple[str, str]] = set()
    hashes = sorted({row[2] for row in rows})
    for i in range(0, len(hashes), 500):
        q = select(InstructionScan.hash, InstructionScan.context_hash).where(
            InstructionScan.classifier_version == version, InstructionScan.hash.in_(hashes[i : i + 500])
        )
        done.update((h, c) for h, c in session.execute(q))
    pending: dict[tuple[str, str], tuple[str, int, list[str]]] = {}
    for sid, _, h, n, _, _ in rows:
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
    """A server's current instructions replaced other text seen by an earlier crawl, or came
    where its earlier successful listings said nothing (``old_hash`` "")."""

    server: str
    old_hash: str
    new_hash: str
    old_length: int
    new_length: int
    #: The crawl that saw the current text first, or saw it come back.
    detected_at: datetime
    #: The latest scan of the old text (by any server: None, never scanned or no old text) and
    #: of the new one against the server's current tools (None: not scanned against them yet).
    old_findings: list[dict[str, Any]] | None
    new_findings: list[dict[str, Any]] | None

    @property
    def severe(self) -> bool | None:
        """The new text carries poisoning (None: not scanned yet).  Still poisoned after an
        edit counts too: a CI gate on the changes since a date must not lose a rug pull
        because the text changed again after it."""
        return None if self.new_findings is None else _poisoned(self.new_findings)

    @property
    def poisoning_added(self) -> bool:
        return bool(self.severe) and not _poisoned(self.old_findings or [])


def _poisoned(findings: list[dict[str, Any]]) -> bool:
    return any(isinstance(f, dict) and f.get("id") == "tool_poisoning" for f in findings)


def instruction_changes(
    session: Session, servers: Iterable[str] | None = None, since: datetime | None = None
) -> list[InstructionsChange]:
    """For each listed server (only ``servers`` when given) whose current instructions replaced
    another text, or came after successful listings that said nothing, that change (only those
    seen since ``since`` when given)."""
    q = (
        select(Server.id, Server.name, ServerInstructions)
        .join(ServerInstructions, ServerInstructions.server_id == Server.id)
        .where(Server.removed_at.is_(None))
        .order_by(ServerInstructions.last_seen, ServerInstructions.id)
    )
    rows = _of_servers(session, q, servers)
    kept: dict[int, tuple[str, ServerInstructions | None, ServerInstructions | None]] = {}
    for sid, name, row in rows:
        _, now, before = kept.get(sid, (name, None, None))
        if row.current and (now is None or (row.current_since, row.id) >= (now.current_since, now.id)):
            now = row
        elif not row.current:
            before = row  # ordered by last sighting: the last one wins
        kept[sid] = (name, now, before)
    found = [
        (sid, name, now, before)
        for sid, (name, now, before) in kept.items()
        if now is not None and (since is None or now.current_since >= since)
    ]
    # A first text is a change only where an earlier successful listing said nothing.
    firsts = [(sid, now) for sid, _, now, before in found if before is None]
    said_nothing = {sid for sid, now in firsts if _listed_before(session, sid, now.current_since)}
    found = [f for f in found if f[3] is not None or f[0] in said_nothing]
    names_of = _tool_names(session, (sid for sid, *_ in found))
    latest, _ = _scans(session, [h for *_, now, before in found for h in (now.hash, before.hash if before else "")])
    old_scans: dict[str, list[dict[str, Any]]] = {h: v for (h, _), v in latest.items()}
    return sorted(
        (
            InstructionsChange(
                server=name,
                old_hash=before.hash if before else "",
                new_hash=now.hash,
                old_length=before.length if before else 0,
                new_length=now.length,
                detected_at=now.current_since,
                old_findings=old_scans.get(before.hash) if before else None,
                new_findings=latest.get((now.hash, tools_context(names_of[sid]))),
            )
            for sid, name, now, before in found
        ),
        key=lambda c: c.server,
    )


def _listed_before(session: Session, server_id: int, when: datetime) -> bool:
    """Whether a successful introspection of the server came before ``when`` (it said nothing)."""
    q = (
        select(IntrospectionAttempt.id)
        .where(
            IntrospectionAttempt.server_id == server_id,
            IntrospectionAttempt.outcome == "ok",
            IntrospectionAttempt.started_at < when,
        )
        .limit(1)
    )
    return session.scalar(q) is not None


def with_instructions(session: Session, views: Sequence[ToolView]) -> list[ToolView]:
    """The views with their servers' current instructions and scan (``ToolView.instructions``,
    without the text): a policy hides a tool whose server's instructions are poisoned, and
    does not let one run unattended while they are not scanned."""
    said = current_instructions(session, {v.server for v in views}, text=False) if views else {}
    return [replace(v, instructions=said[v.server]) if v.server in said else v for v in views]
