"""Writing to and reading from the catalogue.

Writers hand in whole units (a server with its complete tool listing) inside the
caller's transaction; nothing here commits.  That is what keeps a crash mid-crawl from
leaving a half-written server behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from catalog.store.changes import describe_change
from catalog.store.instructions import CurrentInstructions, record_instructions
from catalog.store.jsonvalues import finite
from catalog.store.models import (
    Classification,
    CrawlRun,
    DefinitionChange,
    IntrospectionAttempt,
    Server,
    Tool,
    ToolDefinitionRow,
    utcnow,
)
from catalog.store.records import AttemptRecord, ServerRecord
from classifier.definition import canonical_json, definition_hash

#: Fields kept from a tool listing entry (the hash covers only the first four).
KEPT_FIELDS = ("name", "description", "inputSchema", "annotations", "title", "outputSchema")


def normalise_tool(raw: Mapping[str, Any]) -> dict[str, Any]:
    # Non-finite numbers become null before hashing, so the hash is of what is stored.
    tool = {k: finite(raw[k]) for k in KEPT_FIELDS if k in raw and raw[k] is not None}
    tool.setdefault("description", "")
    tool.setdefault("inputSchema", {})
    tool.setdefault("annotations", {})
    return tool


def upsert_server(session: Session, rec: ServerRecord, now: datetime | None = None) -> Server:
    now = now or utcnow()
    server = session.scalar(select(Server).where(Server.name == rec.name))
    if server is None:
        server = Server(name=rec.name, first_seen=now, sources=[], packages=[], remotes=[])
        try:
            with session.begin_nested():
                session.add(server)
        except IntegrityError:
            # Another process stored it between our look and our insert (PostgreSQL refused
            # the second of two `catalog introspect --name X` at once): it is one server.
            server = session.scalars(select(Server).where(Server.name == rec.name)).one()
    server.title = rec.title or server.title
    server.description = rec.description if rec.description is not None else server.description
    server.version = rec.version or server.version
    server.repository_url = rec.repository_url or server.repository_url
    server.website_url = rec.website_url or server.website_url
    server.packages = list(rec.packages) or list(server.packages or [])
    server.remotes = list(rec.remotes) or list(server.remotes or [])
    server.published_at = rec.published_at or server.published_at
    if rec.source not in (server.sources or []):
        server.sources = [*(server.sources or []), rec.source]
    server.last_seen = now
    if server.removed_at is not None:
        # Listed again after it was removed: new again, so `catalog diff` shows it returning
        # (it appeared in no section, whatever it came back with).
        server.first_seen = now
    server.removed_at = None
    session.flush()
    return server


@dataclass
class ToolChanges:
    new_tools: int = 0
    new_definitions: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    #: Listed tools without a usable name, left out.
    nameless: int = 0
    #: Further copies of a name already listed, folded into its first (see :func:`one_per_name`).
    duplicates: int = 0


#: The longest tool name the store keeps (its column's size); MCP names are short identifiers.
MAX_TOOL_NAME = 400


def usable_name(name: Any) -> bool:
    """Whether a listed tool's name can be stored and keyed: nothing can call or recommend a
    blank one, and a name past the column's size or with a NUL (which PostgreSQL refuses)
    made the whole server unstorable there."""
    return isinstance(name, str) and bool(name.strip()) and len(name) <= MAX_TOOL_NAME and "\x00" not in name


def one_per_name(tools: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int, int]:
    """The listing normalised, one definition per usable name, with the counts of tools left
    out for their names and of further copies of a name.

    A client shows the model every copy, so copies that differ are read as one tool (a server
    listing a benign ``get_time`` and then a poisoned one was stored as the benign one alone):
    :func:`_folded`.  Identical copies are one tool."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    unusable = 0
    for raw in tools:
        tool = normalise_tool(raw)
        if not usable_name(tool.get("name")):
            unusable += 1
            continue
        by_name.setdefault(tool["name"], []).append(tool)
    out = [_folded(copies) for copies in by_name.values()]
    return out, unusable, len(tools) - unusable - len(out)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


#: Annotation hints a copy can only make more dangerous: any copy's ``true`` holds.
_ANY_TRUE = ("destructiveHint", "openWorldHint")
#: Claims every copy must make: one copy without them leaves them unclaimed.
_ALL_TRUE = ("readOnlyHint", "idempotentHint")


def _folded(copies: list[dict[str, Any]]) -> dict[str, Any]:
    """Copies of one name as one definition, the same whatever order they were listed in: the
    first in canonical order, its description followed by each other copy's, and by whatever
    else a copy says differently (its parameters, title, annotations) as JSON text, so the
    classifier reads every word a model may read; parameters only a later copy has are added
    as parameters; the annotation hints take the most dangerous reading."""
    distinct = sorted({canonical_json(c): c for c in copies}.items())
    if len(distinct) == 1:
        return copies[0]
    base = dict(distinct[0][1])
    texts = [str(base.get("description") or "")]
    for _, other in distinct[1:]:
        texts.append(str(other.get("description") or ""))
        rest = {k: v for k, v in other.items() if k not in ("name", "description") and v != base.get(k)}
        if rest:
            texts.append("Another copy of this tool declares: " + canonical_json(rest))
    base["description"] = "\n\n".join(t for t in dict.fromkeys(texts) if t)
    schema = base.get("inputSchema")
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if isinstance(props, Mapping):
        merged = dict(props)
        for _, other in distinct[1:]:
            more = other.get("inputSchema")
            more = more.get("properties") if isinstance(more, Mapping) else None
            for key, value in more.items() if isinstance(more, Mapping) else ():
                merged.setdefault(key, value)
        base["inputSchema"] = {**dict(schema), "properties": merged}  # type: ignore[arg-type]
    hints: list[Mapping[str, Any]] = [_mapping(c.get("annotations")) for _, c in distinct]
    annotations = dict(hints[0])
    for key in _ANY_TRUE:
        if any(h.get(key) is True for h in hints):
            annotations[key] = True
    for key in _ALL_TRUE:
        if key in annotations and not all(h.get(key) is True for h in hints):
            annotations[key] = False
    base["annotations"] = annotations
    return base


def record_tools(
    session: Session,
    server: Server,
    tools: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
    *,
    complete: bool = True,
    run_id: int | None = None,
) -> ToolChanges:
    """Store a server's tool listing. A changed definition is a new row, never an overwrite.

    ``complete`` says the listing is the whole truth, so tools missing from it are marked removed.
    """
    now = now or utcnow()
    changes = ToolChanges()
    existing = {t.name: t for t in session.scalars(select(Tool).where(Tool.server_id == server.id))}
    # Each stored tool's current definition row, in one query: a re-crawl that finds most tools
    # unchanged asked for each row (and flushed) once per tool, the bulk of a catalogue crawl.
    current = {
        (row.tool_id, row.hash): row
        for row in session.scalars(
            select(ToolDefinitionRow)
            .join(Tool, (Tool.id == ToolDefinitionRow.tool_id) & (Tool.current_hash == ToolDefinitionRow.hash))
            .where(Tool.server_id == server.id)
            .options(defer(ToolDefinitionRow.definition))  # only its last_seen is touched
        )
    }
    seen: set[str] = set()
    listed, changes.nameless, changes.duplicates = one_per_name(tools)
    for tool_json in listed:
        name = tool_json["name"]
        seen.add(name)
        digest = definition_hash(tool_json)
        tool = existing.get(name)
        if tool is None:
            tool = Tool(server_id=server.id, name=name, current_hash=digest, first_seen=now, last_seen=now)
            session.add(tool)
            session.flush()
            changes.new_tools += 1
        elif tool.current_hash != digest:
            changes.changed += 1
            old = session.scalar(
                select(ToolDefinitionRow.definition).where(
                    ToolDefinitionRow.tool_id == tool.id, ToolDefinitionRow.hash == tool.current_hash
                )
            )
            session.add(
                DefinitionChange(
                    tool_id=tool.id,
                    old_hash=tool.current_hash,
                    new_hash=digest,
                    detected_at=now,
                    crawl_run_id=run_id,
                    summary=describe_change(old or {}, tool_json),
                )
            )
        else:
            changes.unchanged += 1
        row = current.get((tool.id, digest))
        if row is None and tool.current_hash != digest:
            # Changed, perhaps back to a definition it had before: that row is the one to touch.
            row = session.scalar(
                select(ToolDefinitionRow).where(ToolDefinitionRow.tool_id == tool.id, ToolDefinitionRow.hash == digest)
            )
        if row is None:
            session.add(
                ToolDefinitionRow(tool_id=tool.id, hash=digest, definition=tool_json, first_seen=now, last_seen=now)
            )
            changes.new_definitions += 1
        else:
            row.last_seen = now
        tool.current_hash = digest
        tool.last_seen = now
        if tool.removed_at is not None:
            tool.first_seen = now  # returned: new again to `catalog diff`, as a returning server
        tool.removed_at = None
    if complete:
        for name, tool in existing.items():
            if name not in seen and tool.removed_at is None:
                tool.removed_at = now
                changes.removed += 1
    session.flush()
    return changes


def record_attempt(
    session: Session, server: Server, rec: AttemptRecord, run_id: int | None = None, now: datetime | None = None
) -> IntrospectionAttempt:
    """Store one attempt.  A successful one's ``instructions`` become the server's current
    instructions (kept once, :mod:`catalog.store.instructions`); the attempt keeps their hash."""
    info = dict(rec.server_info)
    text, length = info.pop("instructions", None), info.pop("instructions_length", None)
    if rec.outcome == "ok":
        session.flush()  # the server's id, for a server added in this transaction
        if digest := record_instructions(session, server, text, length, now):
            info["instructions_hash"] = digest
    attempt = IntrospectionAttempt(
        server_id=server.id,
        crawl_run_id=run_id,
        transport=rec.transport,
        target=rec.target[:2000],
        outcome=rec.outcome,
        error=(rec.error or None) and rec.error[:4000],
        seconds=round(rec.seconds, 3),
        tools_count=rec.tools_count,
        protocol_version=(rec.protocol_version or None) and rec.protocol_version[:40],
        server_version=server.version,
        server_info=info,
        started_at=now or utcnow(),
    )
    session.add(attempt)
    return attempt


#: The attempt recorded when a catalogue entry's tool list is stored: the tools came from
#: the catalogue, not from the server (no introspection happened).
LISTED = "listed"


def latest_listing(session: Session, server: Server) -> str | None:
    """Who listed the server's stored tools last: ``"server"`` (a successful introspection),
    ``"catalogue"`` (an entry's tool list), or None (neither yet)."""
    outcome = session.scalar(
        select(IntrospectionAttempt.outcome)
        .where(IntrospectionAttempt.server_id == server.id, IntrospectionAttempt.outcome.in_(("ok", LISTED)))
        .order_by(IntrospectionAttempt.id.desc())
        .limit(1)
    )
    if outcome is not None:
        return "server" if outcome == "ok" else "catalogue"
    # Stored before `listed` attempts were recorded: tools that no introspection listed came
    # from a catalogue entry.
    stored = select(Tool.id).where(Tool.server_id == server.id, Tool.removed_at.is_(None)).limit(1)
    return "catalogue" if session.scalar(stored) is not None else None


#: Transports of a remote endpoint (an attempt over one of them asked the server's remote).
REMOTE_TRANSPORTS = ("streamable-http", "sse")


def remote_listed(session: Session, exclude_prefixes: tuple[str, ...] = ()) -> list[Server]:
    """Current servers whose stored tools their remote endpoint listed: the latest attempt
    that listed tools (an introspection, or a catalogue's list) was a successful one over a
    remote transport.  Hosted servers change their tools without a new version; these are the
    ones to ask again."""
    latest = (
        select(func.max(IntrospectionAttempt.id).label("id"))
        .where(IntrospectionAttempt.outcome.in_(("ok", LISTED)))
        .group_by(IntrospectionAttempt.server_id)
        .subquery()
    )
    q = (
        select(Server)
        .join(IntrospectionAttempt, IntrospectionAttempt.server_id == Server.id)
        .join(latest, latest.c.id == IntrospectionAttempt.id)
        .where(
            Server.removed_at.is_(None),
            IntrospectionAttempt.outcome == "ok",
            IntrospectionAttempt.transport.in_(REMOTE_TRANSPORTS),
            # At the version the catalogue lists now: a new version's own introspection decides
            # (its entry may no longer declare that endpoint, which is still stored).  An attempt
            # made before versions were kept (0006) says nothing: the next crawl's will.
            IntrospectionAttempt.server_version.is_not_distinct_from(Server.version),
        )
        .order_by(Server.name)
    )
    return [s for s in session.scalars(q) if not s.name.startswith(exclude_prefixes)]


def start_run(session: Session, source: str, job: str | None = None) -> CrawlRun:
    run = CrawlRun(source=source, job=job, status="running", counters={}, started_at=utcnow())
    session.add(run)
    session.flush()
    return run


def finish_run(
    session: Session, run_id: int, status: str, counters: Mapping[str, Any], error: str | None = None
) -> None:
    session.execute(
        update(CrawlRun)
        .where(CrawlRun.id == run_id)
        .values(status=status, counters=dict(counters), error=error, finished_at=utcnow())
    )


def complete_runs(session: Session, source: str) -> Iterator[CrawlRun]:
    """The runs of ``source`` that ended ``ok`` (complete, clean listings), newest first."""
    return iter(
        session.scalars(
            select(CrawlRun).where(CrawlRun.source == source, CrawlRun.status == "ok").order_by(CrawlRun.id.desc())
        )
    )


def mark_interrupted_runs(session: Session) -> int:
    """Runs still 'running' when a new crawl starts were killed: say so instead of lying."""
    result = session.execute(
        update(CrawlRun)
        .where(CrawlRun.status == "running")
        .values(status="interrupted", finished_at=utcnow(), error="the crawl process ended before finishing")
    )
    return int(getattr(result, "rowcount", 0) or 0)


# ---- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolView:
    """A current tool with its server, definition and (if any) verdict for one classifier version."""

    server: str
    server_title: str | None
    name: str
    hash: str
    definition: dict[str, Any]
    verdict: Classification | None
    #: The server's current instructions and their latest scan (text left out), where a policy
    #: is made (:func:`catalog.store.instructions.with_instructions`): they reach the model with
    #: every tool of the server.
    instructions: CurrentInstructions | None = None


def context_hash(server: str, hashes: Iterable[str]) -> str:
    """The server context a verdict is made in: the server's name and its current tool set.
    A tool's category prior comes from its sibling tools, so a server that gained, lost or
    changed a tool gets new verdicts for all of them."""
    h = hashlib.sha256(server.encode("utf-8"))
    for digest in sorted(set(hashes)):
        h.update(b"\n" + digest.encode("ascii"))
    return h.hexdigest()


def _current_hashes(session: Session, server_ids: Iterable[int] | None = None) -> dict[int, tuple[str, list[str]]]:
    """Server id -> (server name, hashes of its current tools); all servers when ``server_ids`` is None."""
    q = select(Tool.server_id, Server.name, Tool.current_hash).join(Server, Server.id == Tool.server_id)
    q = q.where(Tool.removed_at.is_(None), Server.removed_at.is_(None))
    if server_ids is None:
        chunks: list[list[int] | None] = [None]
    else:
        ids = sorted(set(server_ids))
        chunks = [ids[i : i + 500] for i in range(0, len(ids), 500)]
    out: dict[int, tuple[str, list[str]]] = {}
    for chunk in chunks:
        for sid, name, digest in session.execute(q if chunk is None else q.where(Tool.server_id.in_(chunk))):
            out.setdefault(sid, (name, []))[1].append(digest)
    return out


def server_contexts(session: Session, server_ids: Iterable[int] | None = None) -> dict[int, str]:
    """Server id -> :func:`context_hash` of its current tools (all servers when ``server_ids`` is None)."""
    return {sid: context_hash(name, hashes) for sid, (name, hashes) in _current_hashes(session, server_ids).items()}


def _latest_verdicts(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Classification]:
    """(definition hash, context hash) -> the latest verdict made in that context, else the
    latest verdict of the definition in any context (a catalogue not re-classified yet).
    Only the wanted contexts are read first; older contexts are read only for definitions
    that have no verdict in theirs, so the cost does not grow with every re-classification."""
    wanted = sorted(set(keys))
    out: dict[tuple[str, str], Classification] = {}
    order = (Classification.created_at, Classification.id)
    for i in range(0, len(wanted), 500):
        pairs = tuple_(Classification.definition_hash, Classification.context_hash).in_(wanted[i : i + 500])
        for row in session.scalars(select(Classification).where(pairs).order_by(*order)):
            out[(row.definition_hash, row.context_hash)] = row  # oldest first: the latest wins
    missing = sorted({h for h, c in wanted if (h, c) not in out})
    latest: dict[str, Classification] = {}
    for i in range(0, len(missing), 500):
        rows = session.scalars(
            select(Classification).where(Classification.definition_hash.in_(missing[i : i + 500])).order_by(*order)
        )
        for row in rows:
            latest[row.definition_hash] = row
    for key in wanted:
        if key not in out and key[0] in latest:
            out[key] = latest[key[0]]
    return out


def current_tools(
    session: Session, *, name: str | None = None, server: str | None = None, definitions: bool = True
) -> list[ToolView]:
    """Every current tool (of servers still listed) with its verdict; without ``definitions``
    each view's ``definition`` is left empty and the definitions are not read (a catalogue of
    hostile megabyte descriptions held hundreds of MB for a command that never looks at them)."""
    q = (
        select(Tool, Server, ToolDefinitionRow)
        .join(Server, Tool.server_id == Server.id)
        .join(ToolDefinitionRow, (ToolDefinitionRow.tool_id == Tool.id) & (ToolDefinitionRow.hash == Tool.current_hash))
        # A server the catalogue no longer lists takes its tools with it (until it is listed again).
        .where(Tool.removed_at.is_(None), Server.removed_at.is_(None))
        .order_by(Server.name, Tool.name)
    )
    if name is not None:
        q = q.where(Tool.name == name)
    if server is not None:
        q = q.where(Server.name == server)
    if not definitions:
        q = q.options(defer(ToolDefinitionRow.definition))
    rows = session.execute(q).all()
    contexts = server_contexts(session, {s.id for _, s, _ in rows})
    verdicts = _latest_verdicts(session, ((t.current_hash, contexts.get(s.id, "")) for t, s, _ in rows))
    return [
        ToolView(
            server=s.name,
            server_title=s.title,
            name=t.name,
            hash=t.current_hash,
            definition=d.definition if definitions else {},
            verdict=verdicts.get((t.current_hash, contexts.get(s.id, ""))),
        )
        for t, s, d in rows
    ]


def similar_tool_names(session: Session, name: str, limit: int = 5) -> list[str]:
    """Stored tool names that contain ``name``, case folded; ``_`` and ``%`` in it are
    literal (a tool name is full of underscores, which LIKE reads as "any character")."""
    literal = name.lower()[:40].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = func.lower(Tool.name).like(f"%{literal}%", escape="\\")
    # Only current tools: a removed one was offered as a hint the same command then refused.
    current = (
        select(Tool.name)
        .join(Server, Server.id == Tool.server_id)
        .where(found, Tool.removed_at.is_(None), Server.removed_at.is_(None))
    )
    return list(session.scalars(current.distinct().order_by(Tool.name).limit(limit)))


def unknown_server(session: Session, name: str) -> str:
    """The message for a ``--server`` the catalogue does not list, with the listed names that
    contain it (a newcomer types the short name a client config uses, ``time`` for
    ``io.github.modelcontextprotocol/time``)."""
    folded = name.lower()
    hint = [s for s in server_names(session, removed=False) if folded in s.lower()][:5]
    return f"unknown server {name!r}" + (f"; did you mean: {', '.join(hint)}" if hint else "")


def server_names(session: Session, *, removed: bool = True) -> list[str]:
    """The servers the catalogue knows; with ``removed=False`` only those it lists now.  A
    removed server is still a known one to ``--server``: its export is the empty, default-deny
    policy a scheduled per-server export must write over the old one, not an error that
    leaves the old file (its tools still allowed) in place."""
    q = select(Server.name).order_by(Server.name)
    return list(session.scalars(q if removed else q.where(Server.removed_at.is_(None))))


@dataclass
class PendingServer:
    """A server with tools that have no verdict from a classifier version in its current context."""

    server: str
    context: str
    #: (hash, definition) of every current tool: the siblings the context is built from.
    tools: list[tuple[str, dict[str, Any]]]
    #: Hashes among ``tools`` still to classify.
    pending: set[str]


def unclassified(session: Session, version: str) -> list[PendingServer]:
    """Servers whose current tools lack a verdict from ``version`` in the server's current
    context, each with all its current definitions (the context needs every sibling)."""
    current = _current_hashes(session)
    if not current:
        return []
    contexts = {sid: context_hash(name, hashes) for sid, (name, hashes) in current.items()}
    done = set(
        session.execute(
            select(Classification.definition_hash, Classification.context_hash).where(
                Classification.classifier_version == version
            )
        ).all()
    )
    waiting = {sid for sid, (_, hashes) in current.items() if any((h, contexts[sid]) not in done for h in hashes)}
    out: list[PendingServer] = []
    for chunk in (sorted(waiting)[i : i + 200] for i in range(0, len(waiting), 200)):
        q = (
            select(Server.id, Server.name, ToolDefinitionRow.hash, ToolDefinitionRow.definition)
            .join(Tool, (Tool.id == ToolDefinitionRow.tool_id) & (Tool.current_hash == ToolDefinitionRow.hash))
            .join(Server, Server.id == Tool.server_id)
            .where(Tool.removed_at.is_(None), Server.removed_at.is_(None), Server.id.in_(chunk))
            .order_by(Server.id, Tool.name)
        )
        groups: dict[int, PendingServer] = {}
        for sid, name, digest, definition in session.execute(q):
            group = groups.setdefault(sid, PendingServer(name, contexts[sid], [], set()))
            group.tools.append((digest, definition))  # (server, name) is unique and the name is in the hash
            if (digest, contexts[sid]) not in done:
                group.pending.add(digest)
        out += groups.values()
    return out


def stats(session: Session) -> dict[str, Any]:
    servers = session.scalar(select(func.count()).select_from(Server).where(Server.removed_at.is_(None))) or 0
    live = select(func.count()).select_from(Tool).join(Server, Server.id == Tool.server_id)
    tools = session.scalar(live.where(Tool.removed_at.is_(None), Server.removed_at.is_(None))) or 0
    defs = session.scalar(select(func.count()).select_from(ToolDefinitionRow)) or 0
    attempts = dict(
        session.execute(
            select(IntrospectionAttempt.outcome, func.count())
            .where(IntrospectionAttempt.outcome != LISTED)  # a catalogue's list is no introspection
            .group_by(IntrospectionAttempt.outcome)
        ).all()
    )
    runs = session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc()).limit(5)).all()
    return {
        "servers": servers,
        "tools": tools,
        "definitions": defs,
        "introspection": {str(k): int(v) for k, v in attempts.items()},
        "recent_runs": runs,
    }
