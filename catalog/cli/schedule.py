"""``catalog schedule``: crawl every N hours (or on a cron expression) in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.common import friendly, say_lines
from catalog.errors import UsageError


@friendly
def schedule(
    crawl_args: Annotated[
        list[str] | None, typer.Argument(help="Options passed to `catalog crawl` (after --).")
    ] = None,
    every: Annotated[str | None, typer.Option("--every", help="Interval: 30m, 6h, 1d.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Cron expression, in UTC: '0 */6 * * *'.")] = None,
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", min=1, help="Stop after N runs (default: forever).")
    ] = None,
) -> None:
    """Run `catalog crawl` on a schedule; a failed run is reported with its reason and the next one still
    happens. Two crawls never overlap (the crawl takes a lock). --every runs at once, --cron at its
    first matching minute (UTC). SIGTERM, SIGHUP or Ctrl-C stops the running crawl cleanly, then the schedule."""
    from catalog.schedule import Cron, Stopped, parse_interval, run_schedule

    if (every is None) == (cron is None):
        raise UsageError("give exactly one of --every or --cron")
    try:
        failures = run_schedule(
            crawl_args or [],
            every=parse_interval(every) if every else None,
            cron=Cron.parse(cron) if cron else None,
            max_runs=max_runs,
            echo=lambda line: say_lines([line]),
        )
    except Stopped as stop:
        raise typer.Exit(128 + stop.signum) from None
    if max_runs is not None and failures == max_runs:
        raise typer.Exit(1)
