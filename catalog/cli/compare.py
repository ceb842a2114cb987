"""``catalog compare [SERVER]``: where a catalogue's record of a server disagrees with the server's
own answer here; ``--severe`` for CI gates."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlalchemy import select

from catalog.cli.common import DbOption, FormatOption, TextOrJson, friendly, say, say_lines, store_session
from catalog.compare import Comparison, ToolDisagreement, compare
from catalog.errors import NotFound
from catalog.store.models import Server
from catalog.store.repository import unknown_server

#: Tools listed per comparison in text (JSON has them all).
SHOWN = 100


def _side(risk: str | None, poisoned: bool) -> str:
    return (risk or "unclassified") + (", poisoned" if poisoned else "")


def _line(t: ToolDisagreement) -> str:
    tag = "SEVERE " if t.severe else ""
    if t.kind == "only_server":
        return f"  + {tag}{t.tool}: only the server lists it ({_side(t.server_risk, t.server_poisoned)})"
    if t.kind == "only_catalogue":
        return f"  - {t.tool}: only the catalogue lists it ({_side(t.catalogue_risk, t.catalogue_poisoned)})"
    what = ", ".join(t.fields) or "definition"
    params = "".join(
        f"; params {label} {', '.join(names)}"
        for label, names in (("added", t.params_added), ("removed", t.params_removed))
        if names
    )
    return (
        f"  ~ {tag}{t.tool}: {what} differ{params}; catalogue {_side(t.catalogue_risk, t.catalogue_poisoned)},"
        f" server {_side(t.server_risk, t.server_poisoned)}"
    )


def _render(found: list[Comparison], severe_only: bool) -> list[str]:
    lines: list[str] = []
    for c in found:
        shown = [t for t in c.tools if t.severe or not severe_only]
        if not shown:
            continue
        lines.append(
            f"{c.catalogue}  vs  {c.server}  (same {' and '.join(c.matched_by)}; {c.common} tools in common,"
            f" catalogue {c.catalogue_tools}, server {c.server_tools})"
        )
        lines += [_line(t) for t in shown[:SHOWN]]
        if len(shown) > SHOWN:
            lines.append(f"  ... {len(shown) - SHOWN} more (--format json lists them all)")
    parting = sum(1 for c in found if c.tools)
    lines.append(f"records compared: {len(found)}, disagreeing: {parting}, severe: {sum(1 for c in found if c.severe)}")
    return lines


@friendly
def compare_cmd(
    server: Annotated[
        str | None,
        typer.Argument(
            help="A server or a catalogue record (glama/..., toolhive/..., docker/..., smithery/...); "
            "default: every record."
        ),
    ] = None,
    severe: Annotated[
        bool,
        typer.Option(
            "--severe",
            help="Only what a reviewer trusting the catalogue would miss (poisoning, a stricter rating, an unseen"
            " high or critical tool); exit 1 when there is any.",
        ),
    ] = False,
    output: FormatOption = TextOrJson.TEXT,
    db: DbOption = None,
) -> None:
    """Where the tools a catalogue records for a server (Glama, ToolHive, Docker, Smithery) disagree with
    what the server listed when introspected here: tools only one side lists, and differing definitions
    with each side's risk and poisoning."""
    with store_session(db) as session:
        if server is not None:
            row = session.scalar(select(Server).where(Server.name == server, Server.removed_at.is_(None)))
            if row is None:
                raise NotFound(unknown_server(session, server))
        found = compare(session, server)
    if output == "json":
        data = [c.to_dict() for c in found]
        if severe:
            data = [{**d, "tools": [t for t in d["tools"] if t["severe"]]} for d in data if d["severe"]]
        say(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        lines = _render(found, severe)
        if server is not None and not found:
            # Said, not left to a bare "records compared: 0".
            lines.insert(
                0,
                f"{server}: nothing to compare (a catalogue's record is compared when the catalogue listed its"
                " tools, with a server whose own tools were introspected here, paired by remote URL or by"
                " repository with tools in common)",
            )
        say_lines(lines)
    if severe and any(c.severe for c in found):
        raise typer.Exit(1)
