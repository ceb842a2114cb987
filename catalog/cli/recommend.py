"""``catalog recommend TOOL`` and ``catalog show TOOL``: read commands, no heavy imports."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from catalog.cli.common import (
    DbOption,
    FormatOption,
    SettingsOption,
    TextOrJson,
    friendly,
    say,
    say_lines,
    store_session,
)
from catalog.errors import Ambiguous, CatalogError, NotFound
from catalog.history import changes_of
from catalog.policies.collect import policy_for
from catalog.policies.formats.seed import seed_document
from catalog.policies.generate import NOT_CLASSIFIED, dumps
from catalog.policies.settings import load_settings
from catalog.store.instructions import with_instructions
from catalog.store.overrides import all_overrides
from catalog.store.repository import ToolView, current_tools, server_names, similar_tool_names, unknown_server

ServerOption = Annotated[str | None, typer.Option("--server", help="The server, when several expose the tool.")]


def find_one(session, tool: str, server: str | None) -> ToolView:  # type: ignore[no-untyped-def]
    rows = current_tools(session, name=tool, server=server)
    if not rows:
        if server and server not in server_names(session):
            raise NotFound(unknown_server(session, server))
        where = f" on server {server!r}" if server else ""
        hint = similar_tool_names(session, tool)
        extra = f"; similar: {', '.join(hint)}" if hint else ""
        raise NotFound(f"unknown tool {tool!r}{where}{extra}")
    if len(rows) > 1:
        names = ", ".join(r.server for r in rows[:20])
        raise Ambiguous(f"tool {tool!r} is exposed by {len(rows)} servers ({names}); choose one with --server")
    return rows[0]


@friendly
def recommend(
    tool: Annotated[str, typer.Argument(help="Tool name as the server exposes it.")],
    server: ServerOption = None,
    output: FormatOption = TextOrJson.TEXT,
    pin: Annotated[bool, typer.Option("--pin", help="Pin the rule to the tool's definition hash.")] = False,
    settings_file: SettingsOption = None,
    db: DbOption = None,
) -> None:
    """The recommended default policy for one tool, with the reasons."""
    if output not in ("text", "json"):
        raise CatalogError(f"unknown format {output!r} (text or json)")
    settings = load_settings(settings_file)
    with store_session(db) as session:
        view = with_instructions(session, [find_one(session, tool, server)])[0]
        policy = policy_for(view, settings, all_overrides(session), session)
        changes = [c for c in changes_of(session, view.server, view.name) if c.new_hash == view.hash]
    doc = seed_document([policy], pin=pin)
    if output == "json":
        say(dumps(doc))
        return
    v = view.verdict
    desc = (view.definition.get("description") or "(no description)").strip()
    found = [f"{f.get('id')}: {f.get('evidence')}" for f in (v.findings if v else None) or []]
    found += [
        f"definition_changed{' (SEVERE)' if c.severe else ''}: {c.old_hash[:12]} -> {c.new_hash[:12]} on "
        f"{c.detected_at:%Y-%m-%d}, changed {', '.join(c.summary.get('fields', [])) or 'nothing visible'}"
        for c in changes
    ]
    findings = "; ".join(found) or "none"
    if v is None:
        verdict = [
            "  Category     : -",
            "  Action       : -",
            "  Risk         : unknown",
            f"  Why          : {NOT_CLASSIFIED}",
        ]
    else:
        # In doubt: the verdict's own stricter plausible level (not the server's instructions).
        doubt = policy.level != v.risk and policy.override is None and policy.risk == v.risk
        doubt = doubt and not policy.server_poisoning
        verdict = [
            f"  Category     : {v.category}",
            f"  Action       : {v.action}",
            f"  Risk         : {v.risk}  (rule {v.risk_rule}, confidence {v.confidence:.2f})"
            + (f"; policy follows {policy.level} (in doubt)" if doubt else ""),
            f"  Why          : {v.rationale}",
        ]
    lines = [
        f"{view.name}  (server {view.server})",
        f"  What it does : {desc[:400]}",
        *verdict,
        f"  Findings     : {findings}",
        f"  Decision     : {policy.decision}",
    ]
    lines += [f"  Condition    : {why}" for why in policy.explanation()]
    lines.append(f"  Policy       : {dumps(doc)}")
    say_lines(lines)


@friendly
def show(
    tool: Annotated[str, typer.Argument(help="Tool name as the server exposes it.")],
    server: ServerOption = None,
    db: DbOption = None,
) -> None:
    """Everything stored about one tool: definition, hash, verdict."""
    with store_session(db) as session:
        view = find_one(session, tool, server)
        history = changes_of(session, view.server, view.name)
    v = view.verdict
    data = {
        "server": view.server,
        "name": view.name,
        "hash": view.hash,
        "definition": view.definition,
        "verdict": None
        if v is None
        else {
            "category": v.category,
            "action": v.action,
            "risk": v.risk,
            "policy_risk": v.policy_level,
            "confidence": v.confidence,
            "risk_rule": v.risk_rule,
            "rationale": v.rationale,
            "findings": v.findings,
            "classifier_version": v.classifier_version,
        },
        "definition_changes": [
            {
                "old_hash": c.old_hash,
                "new_hash": c.new_hash,
                "detected_at": c.detected_at.isoformat(),
                "severe": c.severe,
                "summary": c.summary,
            }
            for c in history
        ],
    }
    say(json.dumps(data, indent=2, ensure_ascii=False))
