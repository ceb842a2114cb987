"""Skip unchanged: a server already introspected at this version keeps its stored tools.

Incremental crawls must be cheap: starting a stranger's server again to learn what we
already know is the expensive part.  ``CATALOG_FULL`` turns this off; a new version, or a
server whose latest attempt failed, is introspected again when the catalogue lists it.  On
``--resume`` the servers the interrupted run already handled are skipped too, failures
included, in a full crawl as well.
"""

from __future__ import annotations

from scrapy.crawler import Crawler
from sqlalchemy import func, select

from catalog.store.db import open_store
from catalog.store.models import CrawlRun, IntrospectionAttempt, Server
from crawler.items import ServerItem


class SkipUnchangedPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.full = crawler.settings.getbool("CATALOG_FULL", False)
        self.resume_run = crawler.settings.getint("CATALOG_RESUME_RUN", 0)
        self.known: dict[str, str | None] = {}
        self.handled: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SkipUnchangedPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        if self.full and not self.resume_run:
            return
        store = open_store(self.crawler.settings.get("CATALOG_DATABASE_URL"))
        try:
            with store.session() as s:
                # Each server's latest attempt: it settles the server only if it succeeded, and
                # only for the version it was made at (the stored version moves with every
                # listing, an attempt's does not).
                latest = (
                    select(func.max(IntrospectionAttempt.id).label("id"))
                    .group_by(IntrospectionAttempt.server_id)
                    .subquery()
                )
                ok = (
                    select(Server.name, IntrospectionAttempt.server_version, Server.version)
                    .join(IntrospectionAttempt, IntrospectionAttempt.server_id == Server.id)
                    .join(latest, latest.c.id == IntrospectionAttempt.id)
                    .where(IntrospectionAttempt.outcome == "ok")
                )
                # Attempts from before revision 0006 hold no version: the stored one stands in.
                self.known = {name: at or stored for name, at, stored in s.execute(ok)}
                if self.resume_run:
                    # The interrupted run and the runs it resumed in turn: a server the first
                    # handled has no attempt in a resume that skipped it, and a second resume
                    # asked it again.
                    chain: list[int] = []
                    run = s.get(CrawlRun, self.resume_run)
                    while run is not None and run.id not in chain and len(chain) < 1000:
                        chain.append(run.id)
                        earlier = (run.counters or {}).get("resumed_from")
                        run = s.get(CrawlRun, earlier) if isinstance(earlier, int) else None
                    done = (
                        select(Server.name)
                        .join(IntrospectionAttempt, IntrospectionAttempt.server_id == Server.id)
                        .where(IntrospectionAttempt.crawl_run_id.in_(chain))
                    )
                    self.handled = set(s.scalars(done))
        finally:
            store.dispose()

    def process_item(self, item: ServerItem) -> ServerItem:
        if item.tools is not None:
            return item
        # Without a version nothing says the server is the same one (a ToolHive remote has
        # none): it is asked again, or a changed remote went unseen until a `--full` crawl.
        unchanged = (
            not self.full
            and not item.recheck
            and item.version is not None
            and item.name in self.known
            and self.known[item.name] == item.version
        )
        if item.name in self.handled or unchanged:
            item.skip_introspection = True
            self.crawler.stats.inc_value("catalog/skipped_unchanged")
        return item
