"""The ``catalog`` command: a root Typer app that only wires one module per command.

Heavy modules (Scrapy, scikit-learn, the ``mcp`` SDK) are imported inside the commands
that need them, so read commands such as ``catalog recommend`` start fast.
"""

from __future__ import annotations

from typing import Any

import typer

from catalog.cli import (
    classify,
    compare,
    crawl,
    diff,
    evaluate,
    export,
    findings,
    introspect,
    override,
    recommend,
    schedule,
    server,
    stats,
)

app = typer.Typer(
    name="catalog",
    help="A catalogue of MCP servers and their tools, with risk verdicts and recommended gateway policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("crawl")(crawl.crawl)
app.command("introspect", context_settings={"allow_interspersed_args": False})(introspect.introspect)
app.command("classify")(classify.classify)
app.command("recommend")(recommend.recommend)
app.command("show")(recommend.show)
app.command("server")(server.server)
app.command("export")(export.export)
app.command("stats")(stats.stats)
app.command("override")(override.override)
app.command("overrides")(override.overrides)
app.command("diff")(diff.diff)
app.command("compare")(compare.compare_cmd)
app.command("findings")(findings.findings)
app.command("evaluate")(evaluate.evaluate)
app.command("schedule", context_settings={"allow_interspersed_args": False})(schedule.schedule)


def _is(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is the parser's ``name`` exception (typer carries its own copy of click,
    so its classes are matched by name rather than imported from either)."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def main() -> None:
    """Run the command; a usage error is one line on stderr, exit 2, like every other error.

    Why not the parser's own report: it is a box of five lines (``Usage:``, ``Try ...``, a
    bordered message) that a schedule, a log or a CI step has to dig the reason out of."""
    try:
        code = app(standalone_mode=False)
    except Exception as exc:
        ctx: Any = getattr(exc, "ctx", None)
        if _is(exc, "NoArgsIsHelpError"):
            help_text = ctx.get_help() if ctx else ""  # typer's rich help prints itself
            if help_text:
                typer.echo(help_text, err=True)
        elif _is(exc, "UsageError"):
            from catalog.display import printable

            where = f" (see `{ctx.command_path} --help`)" if ctx else ""
            typer.echo(f"error: {printable(exc.format_message(), one_line=True)}{where}", err=True)  # type: ignore[attr-defined]
        elif _is(exc, "ClickException"):
            exc.show()  # type: ignore[attr-defined]
        elif _is(exc, "Abort"):
            raise SystemExit(130) from None
        else:
            raise
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)
