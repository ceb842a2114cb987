"""``catalog introspect -- COMMAND [ARGS...]``: list one stdio server's tools, ad hoc."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.common import DbOption, FormatOption, TextOrJson, fail, friendly, say, say_lines
from catalog.errors import UsageError


def _exists(part: str) -> bool:
    """Whether an argument names a file; one past the OS's name length (a JSON argument) names
    none (``Path.exists`` raised and the command failed with "File name too long")."""
    try:
        return Path(part).exists()
    except OSError:
        return False


def absolute_arguments(command: list[str]) -> list[str]:
    """The command with arguments that name an existing file or directory made absolute: the
    server runs in the sandbox's temporary home, where ``server.py`` would name nothing."""
    return [command[0]] + [
        str(Path(a).absolute()) if not Path(a).is_absolute() and _exists(a) else a for a in command[1:]
    ]


def visible_paths(command: list[str]) -> list[Path]:
    """What the sandbox must show read-only for an ad-hoc command: its executable's
    directory (and virtualenv), and the directories of file arguments such as a script."""
    paths: list[Path] = []
    for part in command:
        p = Path(part)
        if not _exists(part):
            continue
        p = p.absolute()
        folder = p if p.is_dir() else p.parent
        paths.append(folder)
        if (folder.parent / "pyvenv.cfg").exists():
            paths.append(folder.parent)
    return list(dict.fromkeys(paths))


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a service manager, ``timeout``, a cancelled CI job) ends the command as Ctrl-C
    does: asyncio cancels the conversation, whose shutdown kills the server's process group.
    Python's default ended at once, and without the sandbox the server ran on."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # asyncio's handler is not there
        raise KeyboardInterrupt
    signal.raise_signal(signal.SIGINT)


@friendly
def introspect(
    command: Annotated[list[str], typer.Argument(help="The server command and its arguments (after --).")],
    name: Annotated[str | None, typer.Option(help="Server name to store it under (default: local/<command>).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds for initialize + tools/list.", min=0.1)] = 30.0,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Save the tools in the catalogue.")] = True,
    output: FormatOption = TextOrJson.TEXT,
    unsafe_no_sandbox: Annotated[
        bool, typer.Option("--unsafe-no-sandbox", help="Run without the bubblewrap sandbox.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Start COMMAND in the sandbox, call initialize + tools/list, print (and store) its tools."""
    import asyncio

    if name is not None and (not name.strip() or len(name) > 400):
        # Checked before a stranger's server runs; past 400 characters PostgreSQL refused it after.
        raise UsageError(f"--name must be 1 to 400 characters, not {len(name)}")
    from crawler.items import CATALOGUE_NAMESPACES

    if name is not None and name.startswith(CATALOGUE_NAMESPACES):
        # Those are a catalogue's records of a server, with the tools it claims: a live listing
        # stored there would flip with the catalogue's copy on every crawl.
        raise UsageError(
            f"--name {name[:100]!r}: names under {' and '.join(CATALOGUE_NAMESPACES)} are catalogue records"
        )

    from catalog.ingest import store_introspection
    from crawler.introspection.installer import default_cache_dir
    from crawler.introspection.runner import RunnerConfig, run_sandboxed

    cfg = RunnerConfig(
        cache_dir=default_cache_dir(), timeout=timeout, sandbox_mode="none" if unsafe_no_sandbox else "auto"
    )
    if store:  # a database that cannot be opened fails before a stranger's server is started
        from catalog.store.db import open_store

        open_store(db).dispose()
    exe = Path(command[0])
    command = absolute_arguments(command)
    signal.signal(signal.SIGTERM, _interrupt)
    result = asyncio.run(run_sandboxed(command, cfg, readonly=visible_paths(command)))
    server = name or f"local/{exe.name}"
    verdicts = store_introspection(db, server, result) if store else {}
    if not result.ok:
        raise fail(f"{' '.join(command)[:200]}: {result.outcome} ({result.error})")
    if output == "json":
        say(
            json.dumps(
                {
                    "server": server,
                    "protocol_version": result.protocol_version,
                    "server_info": result.server_info,
                    "tools": result.tools,
                },
                indent=2,
            )
        )
        return
    from catalog.store.repository import one_per_name

    listed, unusable, copies = one_per_name(result.tools)
    lines = [f"{server}: {len(result.tools)} tools (protocol {result.protocol_version}, {result.seconds:.1f}s)"]
    for tool in listed:
        v = verdicts.get(tool["name"])
        tag = f"  [{v.risk} · {v.category} · {v.action}]" if v else ""
        lines.append(f"  {tool['name']}{tag}")
    # What the store keeps differs from the listing: say so (it printed tools it did not keep).
    if copies:
        lines.append(f"warning: {copies} further cop(ies) of a listed name, read as one tool with every copy's text")
    if unusable:
        lines.append(f"warning: {unusable} tool(s) not kept: blank, over 400 characters or with a NUL in the name")
    if not result.complete:
        lines.append(f"warning: listing incomplete ({result.server_info['listing_cut']}): nothing marked removed")
    say_lines(lines)
