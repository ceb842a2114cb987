"""``catalog override`` and ``catalog overrides``: a person's decisions, kept across crawls."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from catalog.cli.common import DbOption, FormatOption, TextOrJson, friendly, say, say_lines, store_session
from catalog.errors import CatalogError, NotFound, UsageError
from catalog.policies.formats import schema_errors
from catalog.store.overrides import (
    SERVERS_DIGEST,
    all_overrides,
    clear_override,
    covered_now,
    keep_servers_digest,
    servers_digest,
    set_override,
    vouches,
)
from catalog.store.repository import current_tools


def _author(by: str | None) -> str:
    if by:
        return by
    try:
        return os.environ.get("CATALOG_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _load_rule(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no such rule file: {path}")
    try:
        rule = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CatalogError(f"rule file {path} is not JSON: {exc}") from exc
    problems = schema_errors({"version": "1", "default": "deny", "tools": {"x": rule}}, "seed.schema.json")
    if problems:
        raise CatalogError(f"rule file {path} is not a valid rule: {problems[0]}")
    return dict(rule)


@friendly
def override(
    tool: Annotated[str, typer.Argument(help="Tool name as the server exposes it.")],
    allow: Annotated[bool, typer.Option("--allow", help="Allow the tool without conditions.")] = False,
    deny: Annotated[bool, typer.Option("--deny", help="Deny the tool outright.")] = False,
    rule: Annotated[str | None, typer.Option("--rule", help="A JSON rule file (seed format) to use instead.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the override.")] = False,
    server: Annotated[
        str | None, typer.Option("--server", help="Only for this server (default: every server exposing the tool).")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why: shown in exports and reports.")] = "",
    by: Annotated[str | None, typer.Option("--by", help="Who decided (default: $CATALOG_USER or the login).")] = None,
    db: DbOption = None,
) -> None:
    """Record a person's decision about a tool; every export applies it and crawls never drop it."""
    chosen = [
        name for name, on in (("allow", allow), ("deny", deny), ("rule", rule is not None), ("clear", clear)) if on
    ]
    if len(chosen) != 1:
        raise UsageError("choose exactly one of --allow, --deny, --rule FILE, --clear")
    decision = chosen[0]
    author = _author(by)
    if len(author) > 200:  # the column's width (PostgreSQL enforces it, SQLite does not)
        raise UsageError(f"--by takes at most 200 characters, not {len(author)}")
    rule_doc = _load_rule(rule) if rule is not None else None
    with store_session(db) as session, session.begin():
        cover = covered_now(session, tool)
        before = servers_digest(cover)
        if decision == "clear":
            if not clear_override(session, tool, server):
                raise NotFound(f"no override for {tool!r}" + (f" on {server!r}" if server else ""))
            # (The override for every server now covers one more: left as it was, it asks for
            # a look if that server's definition is not the one it was decided on.)
            say_lines([f"override for {tool} cleared"])
            return
        views = current_tools(session, name=tool, server=server)
        if not views:
            raise NotFound(f"unknown tool {tool!r}" + (f" on server {server!r}" if server else ""))
        # One server: its definition's hash.  Every server (no --server): one digest of the
        # definitions it covers, so a change on any of them, or a server that starts exposing
        # the tool, asks for review.
        digest = views[0].hash if server else before
        covered = None if server else cover
        set_override(
            session,
            tool,
            server,
            decision,
            reason=reason,
            author=author,
            rule=rule_doc,
            definition_hash=digest,
            covered=covered,
        )
        if server:
            keep_servers_digest(session, tool, before)
    where = f" on {server}" if server else (f" on {len(views)} servers" if len(views) > 1 else "")
    say_lines([f"override for {tool}{where}: {decision}" + (f" ({reason})" if reason else "")])


@friendly
def overrides(
    output: FormatOption = TextOrJson.TEXT,
    db: DbOption = None,
) -> None:
    """List overrides; one whose tool definition changed since is flagged for review."""
    with store_session(db) as session:
        rows = all_overrides(session)
        current = {(v.server, v.name): v.hash for v in current_tools(session)}
        vouched = {r.tool: vouches(session, r) for r in rows if (r.definition_hash or "").startswith(SERVERS_DIGEST)}
    items = []
    for r in rows:
        hashes = {h for (srv, name), h in current.items() if name == r.tool and (not r.server or srv == r.server)}
        if (r.definition_hash or "").startswith(SERVERS_DIGEST):
            review = bool(hashes) and not vouched[r.tool]
        else:
            review = bool(r.definition_hash) and bool(hashes) and hashes != {r.definition_hash}
        items.append(
            {
                "tool": r.tool,
                "server": r.server or "*",
                "decision": r.decision,
                "reason": r.reason,
                "by": r.author,
                "at": r.created_at.isoformat(),
                "review": review,
                "missing": not hashes,
            }
        )
    if output == "json":
        say(json.dumps(items, indent=2))
        return
    if not items:
        say_lines(["no overrides"])
    for it in items:
        flag = (
            "  REVIEW: definition changed since"
            if it["review"]
            else ("  (tool not in catalogue)" if it["missing"] else "")
        )
        say_lines(
            [f"{it['tool']} [{it['server']}] {it['decision']} by {it['by']} at {it['at']}: {it['reason'] or '-'}{flag}"]
        )
