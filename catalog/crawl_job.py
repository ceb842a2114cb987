"""The main job: crawl the chosen sources with Scrapy, then classify what is new.

This is the one place that wires crawler -> store -> classifier together; the CLI only
parses options and prints the summary.  Scrapy is imported here, inside the function,
so read commands never pay for it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from catalog.errors import CatalogError, UsageError
from catalog.store.db import open_store, resolve_url
from catalog.store.models import CrawlRun, utcnow
from catalog.store.repository import complete_runs, mark_interrupted_runs
from catalog.verdicts import assess_changes, classify_pending, scan_pending_instructions
from crawler.introspection import reaper
from crawler.introspection.installer import default_cache_dir
from crawler.items import local_path

SOURCES = {
    "official-registry": "crawler.spiders.official_registry.OfficialRegistrySpider",
    "curated": "crawler.spiders.curated.CuratedSpider",
    "glama": "crawler.spiders.glama.GlamaSpider",
    "toolhive": "crawler.spiders.toolhive.ToolHiveSpider",
    "docker": "crawler.spiders.docker.DockerSpider",
    "smithery": "crawler.spiders.smithery.SmitherySpider",
    "remotes": "crawler.spiders.remotes.RemotesSpider",
}
#: Sources whose catalogue is a URL of the user's choosing (``--source-url NAME=URL``).
#: A run's error when the crawl was forced to stop before its spider could close the run.
FORCED_STOP = (
    "stopped before the end (forced, before the run could be closed); the same `catalog crawl` "
    "with --resume continues it"
)
URL_SOURCES = ("official-registry", "glama", "toolhive", "docker", "smithery")
#: Sources read from a local checkout, never over HTTP.
DIRECTORY_SOURCES = ("docker",)


@dataclass
class CrawlOptions:
    sources: list[str]
    db_url: str | None = None
    registry_url: str | None = None
    #: A catalogue URL per source (``--source-url NAME=URL``); ``registry_url`` is the official one's.
    source_urls: dict[str, str] = field(default_factory=dict)
    curated_path: str | None = None
    introspect: bool = True
    install_sources: list[str] = field(default_factory=lambda: ["curated"])
    timeout: float = 30.0
    concurrency: int = 8
    cache_dir: str | None = None
    sandbox: str = "auto"
    private_remotes: bool = False
    progress: bool = False
    full: bool = False
    resume: bool = False


@dataclass
class CrawlSummary:
    runs: list[dict[str, Any]]
    classified: int
    seconds: float

    @property
    def failed(self) -> bool:
        return bool(self.runs) and all(r["status"] == "failed" for r in self.runs)

    @property
    def stopped(self) -> bool:
        """A source's crawl was stopped before its end (Ctrl-C, SIGTERM)."""
        return any(r["status"] == "interrupted" for r in self.runs)

    def total(self, key: str) -> int:
        return sum(int(r["counters"].get(key, 0) or 0) for r in self.runs)

    def failure(self) -> str:
        """Why every source failed, for the one error line (a schedule reports that line)."""
        return "; ".join(f"{r['source']}: {r['error'] or 'failed'}"[:240] for r in self.runs if r["status"] == "failed")

    def line(self) -> str:
        bad = [r for r in self.runs if r["status"] == "failed"]
        skipped = self.total("introspection_skipped")
        text = (
            f"crawl {'stopped' if self.stopped else 'finished'}: {self.total('servers')} servers, "
            f"{self.total('tools')} tools "
            f"({self.total('new_definitions')} new definitions, {self.classified} classified), "
            f"{self.total('introspection_failures')} introspection failures, "
            + (
                f"{skipped} not started (nothing this machine runs, or a source not installed from), "
                if skipped
                else ""
            )
            + f"{self.total('malformed')} malformed entries skipped"
        )
        if bad:
            text += f", {len(bad)} source(s) failed ({self.failure()})"
        # A page that could not be read after the first: what was read is stored, the listing
        # is not complete (nothing was marked removed), and the summary must say so.
        # Sources stopped for one reason share it ("official-registry, curated: stopped ...; the
        # same `catalog crawl` with --resume continues it"), said once rather than per source.
        cut: dict[str, list[str]] = {}
        for r in self.runs:
            if r["status"] in ("partial", "interrupted") and r["error"]:
                cut.setdefault(r["error"], []).append(r["source"])
        if cut:
            reasons = "; ".join(f"{', '.join(sources)}: {error}"[:240] for error, sources in cut.items())
            text += f", {sum(map(len, cut.values()))} source(s) incomplete ({reasons})"
        # A complete listing of another URL than the source's last one removes nothing this
        # once: said here, not only in the run's stored counters.
        held = [
            f"{r['source']}: {r['counters']['removal_skipped']}"
            for r in self.runs
            if r["counters"].get("removal_skipped")
        ]
        if held:
            text += f", nothing marked removed ({'; '.join(h[:240] for h in held)})"
        return text + f", {self.seconds:.1f}s"


class CrawlLocked(CatalogError):
    exit_code = 4


@contextmanager
def crawl_lock(cache_dir: Path) -> Iterator[None]:
    """One crawl at a time per cache directory (scheduled or by hand): they would install
    into, and introspect from, the same place."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / "crawl.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip()
            who = f"pid {holder}" if holder.isdigit() else "a process that wrote no pid"
            raise CrawlLocked(f"another crawl is running ({who}, lock {path})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    mod = __import__(module, fromlist=[name])
    return getattr(mod, name)


def run_crawl(opts: CrawlOptions) -> CrawlSummary:
    # A source named twice is crawled once (two crawlers of one source wrote the same servers
    # from one thread, waiting on each other's rows).
    opts.sources = list(dict.fromkeys(opts.sources))
    # Usage errors (exit 2): a schedule stops on them instead of failing the same way forever.
    unknown = [s for s in opts.sources if s not in SOURCES]
    if unknown:
        raise UsageError(f"unknown source {unknown[0]!r} (known: {', '.join(SOURCES)})")
    odd = [s for s in opts.install_sources if s not in SOURCES and s != "all"]
    if odd:  # a typo installed nothing, silently
        raise UsageError(f"unknown --install-from source {odd[0]!r} (known: {', '.join(SOURCES)}, all)")
    if "remotes" in opts.sources and len(opts.sources) > 1:
        # It asks again servers the other sources list: beside them, a server was asked twice,
        # written from two stale views, and (PostgreSQL) two uncommitted batches in one thread
        # waited on each other for good.
        raise UsageError("--source remotes runs alone (it asks again servers the other sources list)")
    if "remotes" in opts.sources and not opts.introspect:
        raise UsageError("--source remotes only asks servers; with --no-introspect it has nothing to do")
    _check_source_urls(opts)
    url = resolve_url(opts.db_url)
    store = open_store(url)  # fail fast, before any crawling, on a bad database URL
    cache_dir = Path(opts.cache_dir) if opts.cache_dir else default_cache_dir()
    with crawl_lock(cache_dir):
        return _run_locked(opts, url, store, cache_dir)


def _check_source_urls(opts: CrawlOptions) -> None:
    """Each ``--source-url`` names a source that lists a URL, and a URL (or, for a ToolHive
    registry, a file) it can read; a ToolHive registry has no public default to fall back on.
    A URL handed to Scrapy unchecked failed the run with a page-long traceback."""
    if opts.registry_url is not None and not _is_http_url(opts.registry_url):
        raise UsageError(f"--registry-url {opts.registry_url[:200]!r} is not an http(s) URL")
    if opts.registry_url is not None and "official-registry" in opts.source_urls:
        raise UsageError("--registry-url and --source-url official-registry=... name the same thing; give one")
    if opts.registry_url is not None and "official-registry" not in opts.sources:
        raise UsageError("--registry-url is for the official-registry source, which is not crawled")
    for source, target in opts.source_urls.items():
        if source not in URL_SOURCES:
            raise UsageError(f"--source-url: {source!r} takes no URL (sources that do: {', '.join(URL_SOURCES)})")
        if source not in opts.sources:  # given and then unused, it crawled the default instead
            raise UsageError(f"--source-url {source}=... but {source} is not crawled (add --source {source})")
        if source in DIRECTORY_SOURCES:
            local = _local_target(source, target)
            # Missing now, it may be back for the next run (a checkout being replaced): the run
            # fails saying why, a schedule goes on.  A file never becomes a checkout.
            if local is not None and (not local.exists() or local.is_dir()):
                continue
            raise UsageError(f"--source-url {source}={target[:200]!r} is not a directory (a checkout of the catalogue)")
        if _is_http_url(target):
            continue
        if source == "toolhive":
            local = _local_target(source, target)
            # A file missing now may be back for the next run (a schedule must not stop on it:
            # the run fails, saying why); a directory or a device never becomes a registry.
            if local is not None and (not local.exists() or local.is_file()):
                continue
        what = "an http(s) URL or a file" if source == "toolhive" else "an http(s) URL"
        raise UsageError(f"--source-url {source}={target[:200]!r} is not {what}")
    if "docker" in opts.sources and "docker" not in opts.source_urls:
        raise UsageError(
            "the docker source needs its checkout: --source-url docker=PATH (a clone of docker/mcp-registry)"
        )
    if "smithery" in opts.sources and not os.environ.get("SMITHERY_API_KEY", "").strip():
        # Every request of Smithery's API needs it; without, each run failed on a 401.
        raise UsageError("the smithery source needs an API key: set SMITHERY_API_KEY (a key from smithery.ai)")
    if "toolhive" in opts.sources and "toolhive" not in opts.source_urls:
        raise UsageError(
            "the toolhive source needs its registry: --source-url toolhive=URL or a file "
            "(a ToolHive registry.json, legacy or upstream format)"
        )


def _local_target(source: str, target: str) -> Path | None:
    """The local path a ``--source-url`` names, as its spider will read it (None: a URL); a
    ``file:`` URL on another host is refused."""
    try:
        local = local_path(target)
    except ValueError as exc:
        raise UsageError(f"--source-url {source}={target[:200]!r}: {exc}") from None
    return Path(local) if local is not None else None


def _source_url(opts: CrawlOptions, source: str) -> str | None:
    if source == "official-registry" and opts.registry_url:
        return opts.registry_url
    return opts.source_urls.get(source)


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _since_last_complete(session: Any, source: str, catalogue: str) -> str | None:
    """Start of the last complete, successful run of ``source`` that introspected: the
    registry's updated_since.  A ``--no-introspect`` run stored servers without their tools;
    starting after it, no later incremental crawl would list them again."""
    run = next(
        (
            r
            for r in complete_runs(session, source)
            if (r.counters or {}).get("introspect", True)
            and (r.counters or {}).get("catalogue", catalogue) == catalogue
        ),
        None,
    )
    if run is None:
        return None
    return run.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")  # in UTC, as the store gives every time


def _catalogue(opts: CrawlOptions, source: str) -> str:
    """The URL ``source``'s spider will list (as the store records it per run)."""
    if source not in URL_SOURCES:
        return ""
    return (_source_url(opts, source) or _import(SOURCES[source]).default_base_url).rstrip("/")


def _interrupted(session: Any, source: str) -> tuple[int, bool]:
    """The interrupted last run of ``source`` (0 if it finished) and whether it was a full crawl."""
    run = session.scalars(
        select(CrawlRun).where(CrawlRun.source == source).order_by(CrawlRun.id.desc()).limit(1)
    ).first()
    if run is None or run.status not in ("interrupted", "running"):
        return 0, False
    return run.id, bool((run.counters or {}).get("full"))


def _run_locked(opts: CrawlOptions, url: str, store: Any, cache_dir: Path) -> CrawlSummary:
    job = uuid.uuid4().hex
    with store.session() as session:
        interrupted = {s: _interrupted(session, s) for s in opts.sources} if opts.resume else {}
        resume_from = {s: run for s, (run, _) in interrupted.items() if run}
        if opts.resume and not resume_from:
            raise CatalogError(
                f"nothing to resume: the last crawl of {', '.join(opts.sources)} finished "
                "(resume with the interrupted crawl's own --source and --source-url)"
            )
        # A resumed full crawl goes on listing everything (resumed as an incremental one, it
        # listed only what changed and the rest of the full crawl never happened).
        full = {s: opts.full or interrupted.get(s, (0, False))[1] for s in opts.sources}
        mark_interrupted_runs(session)
        session.commit()
        since = {s: None if full[s] else _since_last_complete(session, s, _catalogue(opts, s)) for s in opts.sources}
    started = time.monotonic()

    from scrapy import signals
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.setdict(
        {
            "CATALOG_DATABASE_URL": url,
            "CATALOG_INTROSPECT": opts.introspect,
            "CATALOG_INSTALL_SOURCES": opts.install_sources,
            "CATALOG_INTROSPECT_TIMEOUT": opts.timeout,
            "CATALOG_INTROSPECT_CONCURRENCY": opts.concurrency,
            "CATALOG_CACHE_DIR": str(cache_dir),
            "CATALOG_SANDBOX": opts.sandbox,
            "CATALOG_PRIVATE_REMOTES": opts.private_remotes,
            # Servers per transaction; smaller loses less to a crash, larger writes faster.  With
            # several sources, each server: their pipelines share one thread, and two open
            # batches holding rows the other wants would wait on each other for good.
            "CATALOG_COMMIT_EVERY": 1 if len(opts.sources) > 1 else int(os.environ.get("CATALOG_COMMIT_EVERY", "25")),
            "CATALOG_JOB": job,
            "HTTPCACHE_DIR": str(cache_dir / "http"),
        },
        priority="cmdline",
    )
    process = CrawlerProcess(settings)
    # Both log a failed fetch (robots.txt with a traceback); the spider reports it once, in the summary.
    for noisy in ("scrapy.downloadermiddlewares.robotstxt", "scrapy.downloadermiddlewares.retry"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    progress = _Progress() if opts.progress else None
    for source in opts.sources:
        kwargs: dict[str, Any] = {}
        base_url = _source_url(opts, source)
        if base_url:
            kwargs["base_url"] = base_url
        if source == "official-registry" and since[source]:
            kwargs["updated_since"] = since[source]
        if source == "curated" and opts.curated_path:
            kwargs["path"] = opts.curated_path
        spider_cls = _import(SOURCES[source])
        # Per source (a spider's own settings): a resumed full crawl is full, the others need not be.
        own = {"CATALOG_FULL": full[source], "CATALOG_RESUME_RUN": resume_from.get(source, 0)}
        spider_cls = type(
            spider_cls.__name__, (spider_cls,), {"custom_settings": {**(spider_cls.custom_settings or {}), **own}}
        )
        crawler = process.create_crawler(spider_cls)
        if progress:
            crawler.signals.connect(progress.stored, signal=signals.item_scraped)
        process.crawl(crawler, **kwargs)
    from twisted.internet import reactor

    # Scrapy installs its handlers in an "after startup" trigger of its own, registered after
    # this one: ours wraps them a turn later.
    reactor.callWhenRunning(reactor.callLater, 0, _stop_introspection_on_signal)  # type: ignore[attr-defined]
    try:
        if progress:
            progress.start()
        process.start()
    finally:
        # A forced stop leaves the conversations still under way unfinished, their shutdown
        # (which kills the server) never run: without the sandbox the servers would run on.
        reaper.kill_all()
        if progress:
            progress.stop()
        # The reactor is gone, its handlers not: a Ctrl-C while classifying was swallowed and
        # the crawl exited 0.  Python's own handling again (KeyboardInterrupt; SIGTERM ends it).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    with store.session() as session:
        # A run still "running" here never closed: a second Ctrl-C or SIGTERM ("send again to
        # force", as `catalog schedule` does after a few seconds) stopped the reactor before the
        # spider could.  It said "crawl finished" and exited 0, its run left "running".
        for run in session.scalars(select(CrawlRun).where(CrawlRun.job == job, CrawlRun.status == "running")):
            run.status = "interrupted"
            run.finished_at = utcnow()
            run.error = FORCED_STOP
        session.commit()
        classified = classify_pending(session)
        scan_pending_instructions(session)
        assess_changes(session)
        session.commit()
        runs = session.scalars(select(CrawlRun).where(CrawlRun.job == job).order_by(CrawlRun.id)).all()
        # A source whose run never started (its store could not open) failed: it said
        # "crawl finished: 0 servers" and exited 0, and a schedule reported it ok.
        never: list[dict[str, Any]] = [
            {
                "id": None,
                "source": s,
                "status": "failed",
                "counters": {},
                "error": "the crawl did not start (see the log)",
            }
            for s in opts.sources
            if s not in {r.source for r in runs}
        ]
        summary = CrawlSummary(
            runs=[
                {"id": r.id, "source": r.source, "status": r.status, "counters": r.counters or {}, "error": r.error}
                for r in runs
            ]
            + never,
            classified=classified,
            seconds=time.monotonic() - started,
        )
    store.dispose()
    return summary


#: A second signal this soon after the first is the same stop sent twice, not "force it":
#: systemd signals every process of a service at once, and `catalog schedule` forwards its own.
SAME_STOP_SECONDS = 0.5
#: A graceful stop still waiting after this long (a download a catalogue never answers) is
#: forced, as a second signal would: a crawl whose schedule died (SIGKILL) got one SIGTERM
#: from the kernel and nobody to send the second.
FORCE_STOP_AFTER_SECONDS = 10.0


def _stop_introspection_on_signal() -> None:
    """On the first SIGINT or SIGTERM, also stop the introspections under way, then let
    Scrapy's own handler (installed by then) begin its graceful stop: it waits for the items
    in its pipelines, and each introspection ran on to its answer or its timeout. Scrapy's
    handler puts its "force" handler in place for the next signal; a next one within
    SAME_STOP_SECONDS is taken as the same stop (a service stopped by systemd, whose schedule
    forwarded the signal too, was forced at once); one still waiting after
    FORCE_STOP_AFTER_SECONDS is forced."""
    import asyncio

    from twisted.internet import reactor

    from crawler.pipelines.introspect import stop_introspection

    loop = asyncio.get_event_loop()
    scrapys: dict[int, Any] = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def first(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(stop_introspection)
        graceful = scrapys.get(signum)
        if callable(graceful):
            graceful(signum, frame)
        at = time.monotonic()
        forced: list[bool] = []
        for sig in scrapys:
            forcing = signal.getsignal(sig)
            if callable(forcing) and forcing is not first:

                def again(signum: int, frame: Any, forcing: Any = forcing) -> None:
                    if time.monotonic() - at >= SAME_STOP_SECONDS and not forced:
                        forced.append(True)
                        forcing(signum, frame)

                signal.signal(sig, again)
        force_later = signal.getsignal(signum)
        if callable(force_later) and force_later is not first:
            call_later = reactor.callLater  # type: ignore[attr-defined]
            reactor.callFromThread(call_later, FORCE_STOP_AFTER_SECONDS, force_later, signum, None)  # type: ignore[attr-defined]

    for sig in scrapys:
        signal.signal(sig, first)


class _Progress:
    """A live line on a terminal: servers stored so far and how many have tools."""

    def __init__(self) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True, console=None
        )
        self.task = self.bar.add_task("crawling…", total=None)
        self.servers = self.tools = self.failures = 0

    def start(self) -> None:
        self.bar.start()

    def stop(self) -> None:
        self.bar.stop()

    def stored(self, item: Any) -> None:
        from rich.markup import escape  # a server's name is neither rich markup nor escape codes

        from catalog.display import printable

        self.servers += 1
        self.tools += len(item.tools or [])
        self.failures += sum(1 for a in item.attempts if a.outcome not in ("ok", "skipped"))
        self.bar.update(
            self.task,
            description=f"{self.servers} servers, {self.tools} tools, "
            f"{self.failures} introspection failures — {escape(printable(str(item.name)[:60], one_line=True))}",
        )


def is_terminal() -> bool:
    return sys.stderr.isatty()
