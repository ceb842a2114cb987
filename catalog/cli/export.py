"""``catalog export``: the recommended policy for a tool set, in the format a gateway or client reads."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from catalog.cli.common import DbOption, SettingsOption, fail, friendly, replaced_atomically, store_session
from catalog.display import printable
from catalog.errors import NotFound, UsageError
from catalog.policies.collect import collect
from catalog.policies.formats import ExportOptions, Format, exporter
from catalog.policies.generate import RISK_ORDER
from catalog.policies.settings import load_settings
from catalog.store.repository import server_names, unknown_server
from classifier.verdict import CATEGORIES

LEVELS = ("low", "medium", "high", "critical")
#: What a client config calls a server (Claude Code: ``mcp__ALIAS__tool``).
ALIAS = re.compile(r"[A-Za-z0-9_-]+")


#: Formats written as JSON, where printable()'s escapes are JSON's own.
JSON_FORMATS = (Format.SEED, Format.CLAUDE_CODE)


@friendly
def export(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.SEED,
    server: Annotated[str | None, typer.Option("--server", help="Only this server's tools.")] = None,
    tool: Annotated[str | None, typer.Option("--tool", help="Only this tool.")] = None,
    min_risk: Annotated[
        str | None,
        typer.Option(
            "--min-risk",
            help="Only tools whose policy follows this level or above: low, medium, high, critical"
            " (unknown tools are always denied by default).",
        ),
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Only these categories (repeatable).")
    ] = None,
    pin: Annotated[
        bool,
        typer.Option(
            "--pin",
            help="Pin each rule to the tool's definition hash, so a gateway "
            "can refuse a tool whose definition changed after review.",
        ),
    ] = False,
    alias: Annotated[
        str | None,
        typer.Option("--alias", help="Server name as your client config calls it (claude-code, codex; with --server)."),
    ] = None,
    output: Annotated[str | None, typer.Option("-o", "--output", help="Write to FILE instead of stdout.")] = None,
    settings_file: SettingsOption = None,
    db: DbOption = None,
) -> None:
    """Export the recommended policy for one tool, a server, or the whole catalogue."""
    # Arguments no export could use are usage errors (exit 2), as the parser's own are.
    if min_risk is not None and min_risk not in LEVELS:
        raise UsageError(f"unknown risk level {min_risk!r} (one of {', '.join(LEVELS)})")
    odd = [c for c in category or [] if c not in CATEGORIES]
    if odd:  # a typo exported an empty policy
        raise UsageError(f"unknown category {odd[0]!r} (one of {', '.join(CATEGORIES)})")
    if pin and fmt in (Format.CLAUDE_CODE, Format.CODEX):
        # They cannot tie a rule to a definition: --pin was accepted and did nothing.
        raise UsageError(f"--pin: the {fmt.value} format cannot pin a rule to a definition (seed and intercept can)")
    if alias is not None and not server:
        raise UsageError("--alias names one server: use it with --server")
    if alias is not None and not ALIAS.fullmatch(alias):
        # Claude Code's rule names (mcp__ALIAS__tool) take no other characters: "my.notes"
        # wrote a settings file that failed its own validation; "" was silently ignored.
        raise UsageError(f"--alias {alias[:80]!r}: letters, digits, '_' and '-' only, as client configs name servers")
    settings = load_settings(settings_file)
    with store_session(db) as session:
        if server and server not in server_names(session):
            raise NotFound(unknown_server(session, server))
        policies = collect(session, settings, server=server, tool=tool)
    if tool and not policies:
        raise NotFound(f"unknown tool {tool!r}")
    if min_risk:
        # A person's decision is always exported: a deny of a low-risk tool dropped by the
        # filter left it enabled in Codex (which lists only what it disables).
        policies = [
            p for p in policies if p.override is not None or RISK_ORDER.index(p.level) >= RISK_ORDER.index(min_risk)
        ]
    if category:
        policies = [p for p in policies if p.category in category]
    opts = ExportOptions(pin=pin, aliases={server: alias} if server and alias else {})
    fmt_exporter = exporter(fmt)
    # Strangers' invisible and control characters are written as escapes, never raw to a
    # terminal: in JSON here (the same value to any reader); the YAML and TOML formats quote
    # every name so (policies.formats.quoting), and the reports show them in their cells.
    text = fmt_exporter.render(policies, opts)
    text = printable(text) if fmt in JSON_FORMATS else text
    problems = fmt_exporter.validate(text)
    if problems:
        raise fail(f"generated {fmt.value} export does not validate: " + "; ".join(problems[:3]))
    if output:
        with replaced_atomically(output) as out:
            out.write(text)
        names = len({p.tool for p in policies})
        # Seed and Intercept hold one rule per name (the strictest of the servers exposing it).
        merged = f" ({names} names)" if fmt in (Format.SEED, Format.INTERCEPT) and names != len(policies) else ""
        typer.echo(f"wrote {len(policies)} tools{merged} as {fmt.value} to {output}", err=True)
    else:
        typer.echo(text, nl=False)
