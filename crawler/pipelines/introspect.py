"""Introspect: learn a server's tools by asking it, when the catalogue did not say.

Bounded by a semaphore (``CATALOG_INTROSPECT_CONCURRENCY``); each server is bounded by
its own timeout inside the runner, so one hung server costs at most that.

Asked to stop (:func:`stop_introspection`, on the crawl's first Ctrl-C or SIGTERM), the servers
being introspected are stopped at once (their process trees killed) and dropped, with those
still waiting: a graceful stop waited for each to answer or time out (30 s by default, longer
than ``catalog schedule`` waits before forcing), and a dropped server has no attempt in the
interrupted run, so ``--resume`` introspects it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawler.introspection.installer import default_cache_dir
from crawler.introspection.result import IntrospectionResult
from crawler.introspection.runner import RunnerConfig, introspect_entry
from crawler.items import AttemptItem, ServerItem

#: Introspections under way in this process, and whether the crawl was asked to stop.
_RUNNING: set[asyncio.Task[list[IntrospectionResult]]] = set()
_STOPPING = False


def stop_introspection() -> None:
    """Stop every introspection under way and start no other (call in the event loop's thread)."""
    global _STOPPING
    _STOPPING = True
    for task in list(_RUNNING):
        task.cancel()


class IntrospectPipeline:
    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        self.crawler = crawler
        self.enabled = s.getbool("CATALOG_INTROSPECT", True)
        self.install_sources = set(s.getlist("CATALOG_INSTALL_SOURCES", ["curated"]))
        cache = s.get("CATALOG_CACHE_DIR")
        self.config = RunnerConfig(
            cache_dir=Path(cache) if cache else default_cache_dir(),
            timeout=s.getfloat("CATALOG_INTROSPECT_TIMEOUT", 30.0),
            install_timeout=s.getfloat("CATALOG_INSTALL_TIMEOUT", 300.0),
            sandbox_mode=s.get("CATALOG_SANDBOX", "auto"),
            private_remotes=s.getbool("CATALOG_PRIVATE_REMOTES", False),
        )
        self.semaphore = asyncio.Semaphore(max(1, s.getint("CATALOG_INTROSPECT_CONCURRENCY", 8)))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IntrospectPipeline:
        return cls(crawler)

    async def process_item(self, item: ServerItem) -> ServerItem:
        if not self.enabled or item.skip_introspection or item.tools is not None or not (item.packages or item.remotes):
            return item
        spider = self.crawler.spider
        source = spider.name if spider is not None else item.source
        cfg = self.config
        allowed = "all" in self.install_sources or source in self.install_sources
        if cfg.install != allowed:
            cfg = RunnerConfig(**{**cfg.__dict__, "install": allowed})
        try:
            async with self.semaphore:
                if _STOPPING:
                    raise DropItem(f"{item.name}: not introspected, the crawl was stopped")
                task = asyncio.ensure_future(introspect_entry(item.packages, item.remotes, cfg))
                _RUNNING.add(task)
                try:
                    results = await task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if not task.cancelled() or (current is not None and current.cancelling()):
                        raise  # this item itself was cancelled, not just its introspection
                    raise DropItem(f"{item.name}: introspection stopped, the crawl was stopped") from None
                finally:
                    _RUNNING.discard(task)
        except DropItem:
            raise
        except Exception as exc:
            # Raised out of a pipeline, it dropped the server with a traceback and the run still
            # looked complete (a full crawl then marked the server removed).
            results = [IntrospectionResult("entry", item.name, "error", error=f"{type(exc).__name__}: {exc}"[:500])]
        stats = self.crawler.stats
        for r in results:
            stats.inc_value(f"catalog/introspect/{r.outcome}")
            item.attempts.append(
                AttemptItem(
                    r.transport,
                    r.target,
                    r.outcome,
                    r.seconds,
                    r.error,
                    len(r.tools),
                    r.protocol_version,
                    r.server_info,
                )
            )
        ok = next((r for r in results if r.ok), None)
        if ok is not None:
            item.tools = ok.tools
            item.tools_complete = ok.complete
        return item
