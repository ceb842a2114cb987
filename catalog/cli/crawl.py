"""``catalog crawl``: crawl catalogues, introspect servers live, classify, store."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.common import DbOption, fail, friendly, say_lines


@friendly
def crawl(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Catalogue to crawl (repeatable): official-registry, curated, glama, toolhive, docker, smithery "
            "(needs SMITHERY_API_KEY); or remotes "
            "(every stored server whose remote endpoint listed its tools, asked again). "
            "Default: official-registry and curated.",
        ),
    ] = None,
    registry_url: Annotated[
        str | None, typer.Option(help="Base URL of an MCP Registry API (default: the public registry).")
    ] = None,
    source_url: Annotated[
        list[str] | None,
        typer.Option(
            "--source-url",
            help="A source's catalogue (repeatable): NAME=URL, e.g. glama=https://…, "
            "toolhive=registry.json (a ToolHive registry has no default: give its URL or file) or "
            "docker=PATH (a checkout of docker/mcp-registry).",
        ),
    ] = None,
    curated: Annotated[
        str | None,
        typer.Option("--curated", help="Curated list file in registry page shape (default: the project's own)."),
    ] = None,
    introspect: Annotated[
        bool, typer.Option("--introspect/--no-introspect", help="Start servers / reach remotes to list their tools.")
    ] = True,
    install_from: Annotated[
        list[str] | None,
        typer.Option(
            "--install-from",
            help="Sources whose packages may be installed and run (repeatable; 'all' for every "
            "source). Default: curated. Remotes are always tried.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per server for initialize + tools/list.", min=0.1)] = 30.0,
    concurrency: Annotated[int, typer.Option(help="Servers introspected at once.", min=1)] = 8,
    cache_dir: Annotated[
        str | None, typer.Option(help="Package install cache (default: $CATALOG_CACHE_DIR or ~/.cache/mcp-catalog).")
    ] = None,
    unsafe_no_sandbox: Annotated[
        bool,
        typer.Option("--unsafe-no-sandbox", help="Run packages without the bubblewrap sandbox (only resource limits)."),
    ] = False,
    allow_private_remotes: Annotated[
        bool,
        typer.Option(
            "--allow-private-remotes",
            envvar="MCP_CATALOG_PRIVATE_REMOTES",
            help="Reach remotes at loopback, private and link-local addresses (an internal registry's servers).",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Re-introspect every server and list every entry (no "
            "updated_since); a complete crawl also detects removed servers.",
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue an interrupted crawl: servers it already handled are not started again."
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Crawl, introspect, classify and store; prints a one-line summary.

    Incremental by default: unchanged catalogue pages cost a conditional request, servers
    already introspected at the same version keep their tools, unchanged definitions keep
    their verdicts."""
    from catalog.crawl_job import CrawlOptions, is_terminal, run_crawl
    from catalog.errors import UsageError

    urls: dict[str, str] = {}
    for pair in source_url or []:
        name, sep, url = pair.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise UsageError(f"--source-url {pair[:200]!r} is not NAME=URL")
        if name.strip() in urls:
            raise UsageError(f"--source-url gives {name.strip()!r} twice")
        urls[name.strip()] = url.strip()

    opts = CrawlOptions(
        sources=source or ["official-registry", "curated"],
        db_url=db,
        registry_url=registry_url,
        source_urls=urls,
        curated_path=curated,
        introspect=introspect,
        install_sources=install_from or ["curated"],
        timeout=timeout,
        concurrency=concurrency,
        cache_dir=cache_dir,
        sandbox="none" if unsafe_no_sandbox else "auto",
        private_remotes=allow_private_remotes,
        progress=is_terminal(),
        full=full,
        resume=resume,
    )
    summary = run_crawl(opts)
    say_lines([summary.line()])
    if summary.failed:
        raise fail(f"every source failed ({summary.failure()}); the catalogue was left as it was")
    if summary.stopped:
        raise fail("stopped before the end; the same `catalog crawl` command with --resume continues it", 130)
