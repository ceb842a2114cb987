"""``catalog export``: one policy document for a tool set, validated against the shipped schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.common import DbOption, fail, friendly
from catalog.errors import CatalogError, NotFound
from catalog.policies.generate import RISK_ORDER, PolicyEntry, build_document, dumps, validate_document
from catalog.store.db import open_store
from catalog.store.repository import current_tools, server_names

LEVELS = ("low", "medium", "high", "critical")


@friendly
def export(
    server: Annotated[str | None, typer.Option("--server", help="Only this server's tools.")] = None,
    tool: Annotated[str | None, typer.Option("--tool", help="Only this tool.")] = None,
    min_risk: Annotated[
        str | None,
        typer.Option(
            "--min-risk",
            help="Only tools at or above: low, medium, high, critical (unknown tools are always denied by default).",
        ),
    ] = None,
    output: Annotated[str | None, typer.Option("-o", "--output", help="Write to FILE instead of stdout.")] = None,
    db: DbOption = None,
) -> None:
    """Export the recommended policy for one tool, a server, or the whole catalogue."""
    if min_risk is not None and min_risk not in LEVELS:
        raise CatalogError(f"unknown risk level {min_risk!r} (one of {', '.join(LEVELS)})")
    store = open_store(db)
    try:
        with store.session() as session:
            if server and server not in server_names(session):
                raise NotFound(f"unknown server {server!r}")
            rows = current_tools(session, server=server, name=tool)
    finally:
        store.dispose()
    entries = []
    for r in rows:
        if r.verdict is None:
            continue
        if min_risk and RISK_ORDER.index(r.verdict.risk) < RISK_ORDER.index(min_risk):
            continue
        poisoned = any(f.get("id") == "tool_poisoning" for f in r.verdict.findings or [])
        entries.append(PolicyEntry(r.name, r.verdict.risk, poisoned, r.server))
    if tool and not rows:
        raise NotFound(f"unknown tool {tool!r}")
    doc = build_document(entries)
    problems = validate_document(doc)
    if problems:
        raise fail("generated policy does not validate: " + "; ".join(problems[:3]))
    text = dumps(doc, compact=False) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {len(doc['tools'])} tool rules to {output}", err=True)
    else:
        typer.echo(text, nl=False)
