"""``catalog findings``: every poisoned, mislabelled or changed tool in the catalogue, for people
(text), scripts (JSON) or security tools (SARIF); ``--severe`` for CI gates."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from sqlalchemy import select

from catalog.cli.common import DbOption, friendly, say, say_lines, store_session
from catalog.errors import NotFound, UsageError
from catalog.findings import CatalogFinding, collect_findings, counts
from catalog.history import resolve_since
from catalog.store.models import Server
from catalog.store.repository import unknown_server
from classifier.verdict import FINDING_IDS

#: Evidence characters shown per line of text (JSON and SARIF carry what the store keeps).
SHOWN_EVIDENCE = 240


class FindingsFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"


def _line(f: CatalogFinding) -> str:
    tag = "SEVERE " if f.severe else "UNJUDGED " if f.severe is None else ""
    rule = f" [{f.rule}]" if f.rule else ""
    evidence = f.evidence if len(f.evidence) <= SHOWN_EVIDENCE else f.evidence[:SHOWN_EVIDENCE] + "…"
    if f.place == "instructions":
        return f"  {tag}{f.kind}{rule}  {f.server} :: (server instructions)  {evidence}"
    return f"  {tag}{f.kind}{rule}  {f.server} :: {f.tool}  ({f.risk})  {evidence}"


def _summary(found: list[CatalogFinding]) -> str:
    n = counts(found)
    kinds = ", ".join(f"{n[k]} {k}" for k in FINDING_IDS)
    unjudged = f", not yet judged: {n['unjudged']}" if n["unjudged"] else ""
    return f"findings: {len(found)} ({kinds}), severe: {n['severe']}{unjudged}"


@friendly
def findings(
    server: Annotated[str | None, typer.Option("--server", help="Only this server's tools.")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help=f"Only these findings (repeatable): {', '.join(FINDING_IDS)}."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Changed definitions seen since a crawl run id or an ISO date (the verdicts' findings "
            "stand whenever they were made).",
        ),
    ] = None,
    severe: Annotated[
        bool,
        typer.Option(
            "--severe",
            help="Only severe findings (poisoning, changes that raised the risk or are not judged yet); "
            "exit 1 when there are any.",
        ),
    ] = False,
    output: Annotated[FindingsFormat, typer.Option("--format", help="text, json or sarif (SARIF 2.1.0).")] = (
        FindingsFormat.TEXT
    ),
    db: DbOption = None,
) -> None:
    """Every finding on the catalogue's current tools and servers' instructions: tool poisoning
    and annotation mismatches from their verdicts, poisoning in what a server's `initialize`
    tells the model, and definitions and instructions that changed since an earlier crawl."""
    kinds = tuple(dict.fromkeys(kind or FINDING_IDS))
    odd = [k for k in kinds if k not in FINDING_IDS]
    if odd:
        raise UsageError(f"--kind {odd[0]!r} is not a finding (known: {', '.join(FINDING_IDS)})")
    with store_session(db) as session:
        if (
            server is not None
            and session.scalar(select(Server.id).where(Server.name == server, Server.removed_at.is_(None))) is None
        ):
            raise NotFound(unknown_server(session, server))
        start = resolve_since(session, since) if since is not None else None
        found = collect_findings(session, server=server, kinds=kinds, since=start)
    if severe:
        # A change not judged yet is kept: a gate that cannot say it is mild does not pass it.
        found = [f for f in found if f.severe is not False]
    if output == FindingsFormat.SARIF:
        from catalog.sarif import sarif_log

        say(json.dumps(sarif_log(found), indent=2, ensure_ascii=False))
    elif output == FindingsFormat.JSON:
        say(
            json.dumps(
                {"findings": [f.to_dict() for f in found], "counts": counts(found)}, indent=2, ensure_ascii=False
            )
        )
    else:
        say_lines([_summary(found), *(_line(f) for f in found)])
    if severe and found:
        raise typer.Exit(1)
