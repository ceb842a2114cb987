"""The ``catalog`` command: a root Typer app that only wires one module per command.

Heavy modules (Scrapy, scikit-learn, the ``mcp`` SDK) are imported inside the commands
that need them, so read commands such as ``catalog recommend`` start fast.
"""

from __future__ import annotations

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


def main() -> None:
    app()
