"""``catalog diff``: what changed since a crawl run or a date; ``--severe`` for CI gates."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from catalog.cli.common import DbOption, FormatOption, TextOrJson, friendly, say, say_lines, store_session
from catalog.history import Diff, diff_since, resolve_since


def _render(d: Diff, severe_only: bool) -> list[str]:
    lines = [f"changes since {d.since.isoformat(timespec='seconds')}"]
    if not severe_only:
        for title, items in (
            ("new servers", d.new_servers),
            ("removed servers", d.removed_servers),
            ("new tools", [f"{s} :: {t}" for s, t in d.new_tools]),
            ("removed tools", [f"{s} :: {t}" for s, t in d.removed_tools]),
        ):
            lines.append(f"{title}: {len(items)}")
            lines += [f"  + {x}" if "new" in title else f"  - {x}" for x in items[:200]]
    changed = d.severe if severe_only else d.changed
    lines.append(f"{'severe or not yet judged ' if severe_only else ''}changed definitions: {len(changed)}")
    for c in changed:
        s = c.summary
        tag = "SEVERE " if c.severe else "UNJUDGED " if c.severe is None else ""
        risk = s.get("risk")
        lines.append(
            f"  ~ {tag}{c.server} :: {c.tool or '(server instructions)'}  {c.old_hash[:12]} -> {c.new_hash[:12]}"
            + (f"  risk {risk[0]} -> {risk[1]}" if risk else "")
        )
        if s.get("instructions"):
            old, new = s["instructions"]
            what = f"appeared ({new:,} characters)" if not c.old_hash else f"changed ({old:,} -> {new:,} characters)"
            lines.append(f"      instructions {what}" + ("; poisoned" if c.severe else ""))
        if s.get("poisoning_added"):
            lines.append("      poisoning added (definition_changed + tool_poisoning)")
        if s.get("fields"):
            lines.append(f"      changed: {', '.join(s['fields'])}")
        for key, label in (
            ("params_added", "params added"),
            ("params_removed", "params removed"),
            ("params_changed", "params changed"),
        ):
            if s.get(key):
                lines.append(f"      {label}: {', '.join(s[key])}")
        for name, (old, new) in (s.get("annotations") or {}).items():
            lines.append(f"      annotation {name}: {old} -> {new}")
        lines += [f"      {ln}" for ln in s.get("description_diff", [])[2:]]
    return lines


@friendly
def diff(
    since: Annotated[
        str | None,
        typer.Option("--since", help="A crawl run id or an ISO date (default: the start of the latest crawl)."),
    ] = None,
    severe: Annotated[
        bool,
        typer.Option(
            "--severe",
            help="Only changes that raised a tool's risk or added poisoning, or are not judged yet; exit 1 when "
            "there are any.",
        ),
    ] = False,
    output: FormatOption = TextOrJson.TEXT,
    db: DbOption = None,
) -> None:
    """New and removed servers and tools, and changed tool definitions with what changed."""
    with store_session(db) as session:
        d = diff_since(session, resolve_since(session, since))
    if output == "json":
        data = d.to_dict()
        if severe:
            data["changed"] = [c for c in data["changed"] if c["severe"] is not False]
        say(json.dumps(data, indent=2))
    else:
        say_lines(_render(d, severe))
    if severe and d.severe:
        raise typer.Exit(1)
