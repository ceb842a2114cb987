"""Skip unchanged: a server already introspected at this version keeps its stored tools.

Incremental crawls must be cheap: starting a stranger's server again to learn what we
already know is the expensive part.  ``CATALOG_FULL`` turns this off; a new version, or a
server whose last attempts all failed, is introspected again.  On ``--resume`` the servers
the interrupted run already handled are skipped too, failures included.
"""

from __future__ import annotations

from scrapy.crawler import Crawler
from sqlalchemy import select

from catalog.store.db import open_store
from catalog.store.models import IntrospectionAttempt, Server
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
        if self.full:
            return
        store = open_store(self.crawler.settings.get("CATALOG_DATABASE_URL"))
        try:
            with store.session() as s:
                ok = (
                    select(Server.name, Server.version)
                    .join(IntrospectionAttempt, IntrospectionAttempt.server_id == Server.id)
                    .where(IntrospectionAttempt.outcome == "ok")
                )
                self.known = {name: version for name, version in s.execute(ok)}
                if self.resume_run:
                    done = (
                        select(Server.name)
                        .join(IntrospectionAttempt, IntrospectionAttempt.server_id == Server.id)
                        .where(IntrospectionAttempt.crawl_run_id == self.resume_run)
                    )
                    self.handled = set(s.scalars(done))
        finally:
            store.dispose()

    def process_item(self, item: ServerItem) -> ServerItem:
        if self.full or item.tools is not None:
            return item
        if item.name in self.handled or (item.name in self.known and self.known[item.name] == item.version):
            item.skip_introspection = True
            self.crawler.stats.inc_value("catalog/skipped_unchanged")
        return item
