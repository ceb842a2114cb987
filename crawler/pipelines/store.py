"""Store: write each server, with its tools and attempts, as one unit.

Last in the ladder and owner of its session: opened with the spider, committed every
``CATALOG_COMMIT_EVERY`` servers (on SQLite, every server), closed with the spider.  A crash
loses at most the uncommitted batch and never leaves a server half-written; the crawl run's
row says how the run ended.

Why every server on SQLite: it has one writer at a time, and a batch would hold the write lock
from its first server to its last, while the next ones are introspected (minutes), keeping out
a person's ``catalog override`` and the other sources of the same crawl, which share this
thread and so could never let the batch end.  Each server's transaction takes the lock before
it reads: a transaction that reads first fails its first write at once if another process
wrote in between (a stale snapshot), whatever the busy timeout.
"""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from sqlalchemy import event, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog.history import mark_removed_servers
from catalog.store.db import Store, lock_for_writing, open_store
from catalog.store.models import CrawlRun, Server
from catalog.store.records import AttemptRecord, ServerRecord
from catalog.store.repository import (
    LISTED,
    complete_runs,
    finish_run,
    latest_listing,
    record_attempt,
    record_tools,
    start_run,
    upsert_server,
)
from crawler.items import ServerItem

#: How long a PostgreSQL write waits for a row another transaction holds.
LOCK_TIMEOUT = "60s"


def _set_lock_timeout(dbapi_conn: Any, _record: Any) -> None:
    with dbapi_conn.cursor() as cur:
        cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    dbapi_conn.commit()


class StorePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.url = crawler.settings.get("CATALOG_DATABASE_URL")
        self.every = max(1, crawler.settings.getint("CATALOG_COMMIT_EVERY", 25))
        #: SQLite: each server its own transaction (set when the store is opened).
        self.one_writer = False
        self.store: Store | None = None
        self.session: Session | None = None
        self.run_id: int | None = None
        self.started_at: Any = None
        self.pending = 0
        self.lost = 0
        self.counters: dict[str, int] = {
            "servers": 0,
            "tools": 0,
            "new_tools": 0,
            "new_definitions": 0,
            "changed_definitions": 0,
            "removed_tools": 0,
            "introspected": 0,
            "introspection_failures": 0,
        }

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        pipe = cls(crawler)
        crawler.signals.connect(pipe.item_lost, signal=signals.item_error)
        # The run is finished on spider_closed, which says why the spider closed (a pipeline's
        # close_spider does not): Ctrl-C closes it as "shutdown" with pages still unread.
        crawler.signals.connect(pipe.finish, signal=signals.spider_closed)
        return pipe

    def item_lost(self, **_: Any) -> None:
        """A server an earlier step failed on (an exception, not a drop with its reason): the
        listing is not complete without it."""
        self.lost += 1

    def open_spider(self) -> None:
        self.store = open_store(self.url)
        self.one_writer = self.store.engine.dialect.name == "sqlite"
        if self.store.engine.dialect.name == "postgresql":
            # A row another writer holds is waited for a minute, then this server fails (and is
            # named): waiting for ever held the crawl lock, and every later crawl exited 4.  Set
            # on every connection the pool makes, so the one opening the store made is let go.
            event.listen(self.store.engine, "connect", _set_lock_timeout)
            self.store.engine.dispose()
        self.session = self.store.session()
        spider = self.crawler.spider
        run = start_run(self.session, spider.name if spider else "unknown", self.crawler.settings.get("CATALOG_JOB"))
        # Written at the start, so a resume of a run killed before its end knows what it was.
        run.counters = self.mode()
        self.started_at = run.started_at
        self.session.commit()
        self.run_id = run.id

    def mode(self) -> dict[str, Any]:
        """How this run lists and introspects, and what: ``full`` lists everything; a run without
        ``introspect`` learned no tools, so the next incremental crawl must not start after it;
        ``catalogue`` is the URL listed (another registry's last crawl says nothing of this one's)."""
        settings = self.crawler.settings
        mode: dict[str, Any] = {
            "full": settings.getbool("CATALOG_FULL", False),
            "introspect": settings.getbool("CATALOG_INTROSPECT", True),
            "catalogue": str(getattr(self.crawler.spider, "base_url", "") or ""),
        }
        resumed = settings.getint("CATALOG_RESUME_RUN", 0)
        if resumed:
            # Written at the start: a resume of this run, interrupted in turn, follows the chain.
            mode["resumed_from"] = resumed
        return mode

    def process_item(self, item: ServerItem) -> ServerItem:
        assert self.session is not None
        stored = True
        try:
            lock_for_writing(self.session)  # SQLite: before the server is looked up
            with self.session.begin_nested():
                self._write(item)
        except Exception as exc:  # one bad server must not sink the batch
            stored = False
            spider: Any = self.crawler.spider
            if spider is not None and hasattr(spider, "note_malformed"):
                spider.note_malformed(f"{item.name}: not stored ({type(exc).__name__}: {exc})")
        if stored:
            self.pending += 1
        if self.one_writer or self.pending >= self.every:
            self.commit()  # on SQLite also after a failure: the lock was taken
        return item

    def commit(self) -> None:
        """Commit the open batch, and with it the run's counters so far: a crawl forced to stop
        before its spider closed the run said "0 servers" of the servers it had stored."""
        if self.session is not None:
            if self.run_id is not None and self.pending:
                self.session.execute(
                    update(CrawlRun).where(CrawlRun.id == self.run_id).values(counters={**self.mode(), **self.counters})
                )
            self.session.commit()
        self.pending = 0

    def _write(self, item: ServerItem) -> None:
        assert self.session is not None
        if item.recheck:
            # Asked again (`--source remotes`), not listed by a catalogue: what the catalogues
            # say of it (version, remotes, when last listed) stays theirs, and one removed since
            # is not brought back.
            found = self.session.scalar(select(Server).where(Server.name == item.name))
            if found is None or found.removed_at is not None:
                self.counters["recheck_gone"] = self.counters.get("recheck_gone", 0) + 1
                return
            self._record(found, item)
            return
        server = upsert_server(
            self.session,
            ServerRecord(
                name=item.name,
                source=item.source,
                title=item.title,
                description=item.description,
                version=item.version,
                repository_url=item.repository_url,
                website_url=item.website_url,
                packages=item.packages,
                remotes=item.remotes,
                published_at=item.published_at,
            ),
        )
        self._record(server, item)

    def _record(self, server: Server, item: ServerItem) -> None:
        """The server's attempts and tool listing (the catalogue's record is written already)."""
        assert self.session is not None
        self.counters["servers"] += 1
        for a in item.attempts:
            record_attempt(
                self.session,
                server,
                AttemptRecord(
                    a.transport,
                    a.target,
                    a.outcome,
                    a.seconds,
                    a.error,
                    a.tools_count,
                    a.protocol_version,
                    a.server_info,
                ),
                run_id=self.run_id,
            )
            # Skipped is no failure: nothing was started (an image, a bundle, a package from a
            # source not installed from), and Docker's catalogue of images read as hundreds of
            # "failures" on every crawl.  Counted once per server below.
            if a.outcome != "skipped":
                self.counters["introspected" if a.outcome == "ok" else "introspection_failures"] += 1
        if item.attempts and all(a.outcome == "skipped" for a in item.attempts):
            self.counters["introspection_skipped"] = self.counters.get("introspection_skipped", 0) + 1
        if item.skip_introspection:
            self.counters["skipped_unchanged"] = self.counters.get("skipped_unchanged", 0) + 1
        # The catalogue's list, not the server's: said once each time the stored list's origin
        # turns to it, so `catalog server` can tell a claim from a live listing.
        listed_here = any(a.outcome == "ok" for a in item.attempts)
        if item.tools is not None and not listed_here and latest_listing(self.session, server) != "catalogue":
            target = str(getattr(self.crawler.spider, "base_url", "") or item.source)
            record_attempt(
                self.session,
                server,
                AttemptRecord("catalogue", target, LISTED, 0.0, None, len(item.tools), None, {}),
                run_id=self.run_id,
            )
        if item.tools is not None:
            changes = record_tools(self.session, server, item.tools, run_id=self.run_id, complete=item.tools_complete)
            self.counters["tools"] += len(item.tools)
            self.counters["new_tools"] += changes.new_tools
            self.counters["new_definitions"] += changes.new_definitions
            self.counters["changed_definitions"] += changes.changed
            self.counters["removed_tools"] += changes.removed
            if changes.nameless:
                self.counters["tools_without_name"] = self.counters.get("tools_without_name", 0) + changes.nameless
            if changes.duplicates:
                self.counters["duplicate_tools"] = self.counters.get("duplicate_tools", 0) + changes.duplicates

    def _another_catalogue(self, source: str, catalogue: str) -> bool:
        """Whether ``source``'s last complete crawl before this one listed another URL."""
        assert self.session is not None
        last = next((r for r in complete_runs(self.session, source) if r.id != self.run_id), None)
        return last is not None and (last.counters or {}).get("catalogue", catalogue) != catalogue

    def close_spider(self) -> None:
        self.commit()  # what was stored stays stored, however the run ends

    def finish(self, reason: str = "finished", **_: Any) -> None:
        """Close the run's row: how it ended, its counters, and (only after a complete clean
        listing) the servers it no longer lists."""
        if self.session is None or self.store is None or self.run_id is None:
            return
        spider: Any = self.crawler.spider
        errors = list(getattr(spider, "errors", []))
        # An exception nothing caught (Scrapy logs it and goes on) left a page unread: the run
        # is not complete, whatever the spider noted.
        unexpected = int(self.crawler.stats.get_value("spider_exceptions/count", 0) or 0)
        if unexpected:
            errors.append(f"{unexpected} page(s) failed with an unexpected error (see the log)")
        if self.lost:
            errors.append(f"{self.lost} server(s) lost to an unexpected error in the crawl (see the log)")
        malformed = list(getattr(spider, "malformed", []))
        counters: dict[str, Any] = {**self.counters, **self.mode()}
        counters["malformed"] = int(self.crawler.stats.get_value("catalog/malformed_entries", 0) or 0)
        counters["malformed_reasons"] = malformed[:20]
        counters["pages"] = int(self.crawler.stats.get_value("catalog/pages", 0) or 0)
        status = "failed" if errors and counters["pages"] == 0 else "partial" if errors or malformed else "ok"
        if reason != "finished":
            # Stopped (Ctrl-C, SIGTERM): recorded as complete, it marked the servers on the
            # pages never read as removed and moved the incremental cutoff past them.
            errors.append(f"stopped before the end ({reason}); the same `catalog crawl` with --resume continues it")
            status = "interrupted"
        incremental = bool(getattr(spider, "updated_since", None))
        counters["incremental"] = incremental
        resumed = self.crawler.settings.getint("CATALOG_RESUME_RUN", 0)
        if resumed:
            counters["resumed_from"] = resumed
        try:
            self.session.commit()
            # A source that lists only some servers by design (`remotes`) says nothing of the rest.
            partial_by_design = not getattr(spider, "lists_everything", True)
            complete = (
                not errors and not malformed and not incremental and not resumed and not partial_by_design
            ) and counters["pages"]
            if complete and self._another_catalogue(spider.name, counters["catalogue"]):
                # The source's servers were listed by another URL (a mirror, a sub-registry
                # under the same source name): this listing says nothing of what they hold.
                counters["removal_skipped"] = "the source's last complete crawl listed another catalogue URL"
            elif complete:
                # A complete listing: what it no longer lists is gone.  An entry that could not
                # be read may be a server still listed, so a listing with one removes nothing.
                counters["removed_servers"] = mark_removed_servers(self.session, spider.name, self.started_at)
            finish_run(self.session, self.run_id, status, counters, "; ".join(errors)[:4000] or None)
            self.session.commit()
        except SQLAlchemyError as exc:
            # (A row another transaction held past the lock timeout, a lost connection.) The
            # servers are stored; the run says it is incomplete instead of staying "running".
            self.session.rollback()
            reason = (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0][:300]
            errors.append(f"the end of the run could not be recorded ({reason})")
            counters.pop("removed_servers", None)
            try:
                finish_run(self.session, self.run_id, "partial", counters, "; ".join(errors)[:4000])
                self.session.commit()
            except SQLAlchemyError:
                self.session.rollback()
                raise
        finally:
            self.session.close()
            self.store.dispose()
