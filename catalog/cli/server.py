"""``catalog server NAME``: one server as the catalogue holds it, and why its tools are what
they are: its sources, versions, tools by risk and its latest introspection attempts with
their outcomes and reasons (the first question after a failed crawl; it took SQL before)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.cli.common import DbOption, FormatOption, TextOrJson, friendly, say, say_lines, store_session
from catalog.errors import NotFound
from catalog.store.instructions import CurrentInstructions, current_instructions
from catalog.store.models import IntrospectionAttempt, Server
from catalog.store.repository import current_tools, latest_listing, unknown_server

#: Attempts shown, newest first: a few crawls' worth for a server with a remote and packages.
ATTEMPTS = 10
#: Characters of a server's instructions in the JSON view (the store keeps them whole).
SHOWN_INSTRUCTIONS = 4000


def _instructions(said: CurrentInstructions | None) -> dict[str, Any] | None:
    if said is None:
        return None
    return {
        "hash": said.hash,
        "length": said.length,
        "since": said.since.isoformat() if said.since else None,
        "text": said.text[:SHOWN_INSTRUCTIONS],
        "findings": said.findings,
    }


def describe(session: Session, name: str) -> dict[str, Any]:
    """The server's stored record, its current tools' risks and its latest attempts."""
    row = session.scalar(select(Server).where(Server.name == name))
    if row is None or row.removed_at is not None:
        raise NotFound(unknown_server(session, name))
    tools = current_tools(session, server=name)
    said = current_instructions(session, [name]).get(name)
    attempts = session.scalars(
        select(IntrospectionAttempt)
        .where(IntrospectionAttempt.server_id == row.id)
        .order_by(IntrospectionAttempt.id.desc())
        .limit(ATTEMPTS)
    ).all()
    return {
        "name": row.name,
        "title": row.title,
        "description": row.description,
        "version": row.version,
        "sources": list(row.sources or []),
        "repository_url": row.repository_url,
        "first_seen": row.first_seen.isoformat(),
        "last_seen": row.last_seen.isoformat(),
        # The catalogue's own values, typed as it pleased: only what reads as text is shown.
        "remotes": [r["url"] for r in row.remotes or [] if isinstance(r, dict) and isinstance(r.get("url"), str)],
        "packages": [
            f"{p.get('registryType', '?')}:{p.get('identifier', '?')}"
            for p in row.packages or []
            if isinstance(p, dict)
        ],
        "tools": {t.name: (t.verdict.risk if t.verdict else "unclassified") for t in tools},
        # Who listed them: the server itself (introspected), or only a catalogue entry (a
        # claim nobody here has checked against the server).
        "tools_listed_by": latest_listing(session, row) if tools else None,
        # What its `initialize` told the model, and the latest scan of it (None: not scanned yet).
        "instructions": _instructions(said),
        "attempts": [
            {
                "run": a.crawl_run_id,
                "started": a.started_at.isoformat(),
                "transport": a.transport,
                "target": a.target,
                "outcome": a.outcome,
                "seconds": a.seconds,
                "tools": a.tools_count,
                "server_version": a.server_version,
                "error": a.error,
            }
            for a in attempts
        ],
    }


@friendly
def server(
    name: Annotated[str, typer.Argument(help="The server's catalogue name (io.github.owner/name).")],
    output: FormatOption = TextOrJson.TEXT,
    db: DbOption = None,
) -> None:
    """One server: its sources and versions, its tools by risk, the scan of its instructions and
    its latest introspection attempts with their outcomes and reasons."""
    with store_session(db) as session:
        data = describe(session, name)
    if output == "json":
        say(json.dumps(data, indent=2, ensure_ascii=False))
        return
    risks = Counter(data["tools"].values())
    claimed = data["tools_listed_by"] == "catalogue"
    lines = [
        f"{data['name']}  {data['version'] or ''}".rstrip(),
        f"  sources  : {', '.join(data['sources']) or '-'}",
        f"  seen     : {data['first_seen']} .. {data['last_seen']}",
        f"  reached  : {', '.join(data['remotes'] + data['packages']) or 'nothing declared'}",
        f"  tools    : {len(data['tools'])}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(risks.items())) + ")" if risks else "")
        + (", as a catalogue lists them (not the server's own listing)" if claimed else ""),
    ]
    told = data["instructions"]
    if told is not None:
        scanned = told["findings"]
        poisoned = [f for f in scanned or [] if f.get("id") == "tool_poisoning"]
        state = (
            "not scanned yet" if scanned is None else f"POISONED ({len(poisoned)} findings)" if poisoned else "clean"
        )
        lines.append(f"  instructions: {told['length']:,} characters, {state}")
        lines += [f"    {f.get('rule', '')}: {str(f.get('evidence', ''))[:240]}" for f in poisoned]
    for a in data["attempts"]:
        why = f": {a['error'][:200]}" if a["error"] else ""
        lines.append(
            f"  attempt  : run {a['run']} {a['started']} {a['outcome']} {a['transport']} {a['target']}"
            f" ({a['seconds']:.1f}s, {a['tools']} tools){why}"
        )
    say_lines(lines)
