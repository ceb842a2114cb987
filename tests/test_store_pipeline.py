"""The crawl's store pipeline beside other writers on one SQLite file: it neither fails
their writes nor has its own failed by them."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from scrapy import Spider
from scrapy.utils.test import get_crawler
from sqlalchemy import event, select, text

from catalog.store.db import open_store
from catalog.store.models import CrawlRun, Server
from catalog.store.records import ServerRecord
from catalog.store.repository import upsert_server
from crawler.items import ServerItem
from crawler.pipelines import store as store_pipeline
from crawler.pipelines.store import StorePipeline

TOOL = {"name": "read_file", "description": "Read a file", "inputSchema": {"type": "object"}, "annotations": {}}


class Noting(Spider):
    name = "curated"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.malformed: list[str] = []

    def note_malformed(self, why: str) -> None:
        self.malformed.append(why)


def _pipeline(url: str, **settings: Any) -> tuple[StorePipeline, Noting]:
    crawler = get_crawler(Noting, settings_dict={"CATALOG_DATABASE_URL": url, **settings})
    spider = Noting()
    crawler.spider = spider
    pipe = StorePipeline(crawler)
    pipe.open_spider()
    return pipe, spider


def _names(url: str) -> set[str]:
    store = open_store(url)
    with store.session() as s:
        names = set(s.scalars(select(Server.name)))
    store.dispose()
    return names


def _can_write_within(path: Path, seconds: float) -> bool:
    """Whether another process could take the write lock within ``seconds``."""
    conn = sqlite3.connect(path, timeout=seconds)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def test_a_write_by_another_process_between_look_and_insert_waits(sqlite_url: str) -> None:
    """The pipeline looks a server up before writing it.  Another process writing between the
    two made the insert fail at once with "database is locked" (a stale snapshot, which no
    busy timeout waits out), and the server was not stored."""
    pipe, spider = _pipeline(sqlite_url)
    assert pipe.store is not None
    other_done = threading.Event()

    def other_writer() -> None:
        other = open_store(sqlite_url)
        with other.session() as s, s.begin():
            upsert_server(s, ServerRecord(name="io.example/other", source="introspect"))
        other.dispose()
        other_done.set()

    started: list[threading.Thread] = []

    def before_insert(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO servers") and not started:
            thread = threading.Thread(target=other_writer)
            started.append(thread)
            thread.start()
            other_done.wait(1.0)  # it finishes at once unless this crawl holds the write lock

    event.listen(pipe.store.engine, "before_cursor_execute", before_insert)
    pipe.process_item(ServerItem(name="io.example/crawled", source="curated", tools=[TOOL]))
    assert spider.malformed == []
    pipe.commit()
    started[0].join(30)
    pipe.finish()
    assert _names(sqlite_url) == {"io.example/crawled", "io.example/other"}


def test_each_server_is_committed_on_sqlite_so_other_writers_wait_for_nothing(sqlite_url: str, tmp_path: Path) -> None:
    """SQLite has one writer: a batch held the lock from its first server to its last while
    the next ones were introspected (a person's `catalog override` waited and failed)."""
    pipe, spider = _pipeline(sqlite_url, CATALOG_COMMIT_EVERY=25)
    db = tmp_path / "catalog.db"
    pipe.process_item(ServerItem(name="io.example/one", source="curated", tools=[TOOL]))
    assert _can_write_within(db, 0.2)
    assert "io.example/one" in _names(sqlite_url)
    # A server that fails to store (a value JSON cannot hold) leaves no lock behind either.
    broken = ServerItem(name="io.example/two", source="curated", tools=[{"name": "x", "inputSchema": {"a": object()}}])
    pipe.process_item(broken)
    assert len(spider.malformed) == 1 and spider.malformed[0].startswith("io.example/two: not stored")
    assert _can_write_within(db, 0.2)
    pipe.process_item(ServerItem(name="io.example/three", source="curated", tools=[TOOL]))
    pipe.finish()
    assert _names(sqlite_url) == {"io.example/one", "io.example/three"}


def test_two_sources_of_one_crawl_share_the_database(sqlite_url: str) -> None:
    """`catalog crawl` runs its sources as crawlers in one thread, each with its pipeline: one
    holding the write lock across servers blocked the other for the busy timeout, in the very
    thread that would have released it, and its servers were lost as "database is locked"."""
    first, first_spider = _pipeline(sqlite_url)
    second, second_spider = _pipeline(sqlite_url)
    for i in range(3):
        first.process_item(ServerItem(name=f"io.example/a{i}", source="curated", tools=[TOOL]))
        second.process_item(ServerItem(name=f"io.example/b{i}", source="official-registry", tools=[TOOL]))
    first.finish()
    second.finish()
    assert first_spider.malformed == [] and second_spider.malformed == []
    assert len(_names(sqlite_url)) == 6


@pytest.mark.postgres
def test_postgresql_commits_in_batches(pg_url: str) -> None:
    pipe, _ = _pipeline(pg_url, CATALOG_COMMIT_EVERY=2)
    pipe.process_item(ServerItem(name="io.example/one", source="curated", tools=[TOOL]))
    assert pipe.pending == 1 and "io.example/one" not in _names(pg_url)
    pipe.process_item(ServerItem(name="io.example/two", source="curated", tools=[TOOL]))
    assert pipe.pending == 0 and {"io.example/one", "io.example/two"} <= _names(pg_url)
    pipe.finish()


def test_a_recheck_neither_revives_nor_rewrites_a_server(sqlite_url: str) -> None:
    """`--source remotes` asks a server again; what the catalogues say of it is theirs: a server
    removed since it was listed for the re-ask stayed removed only until the re-ask wrote it
    back (new again in `catalog diff`), and its version and last sighting were overwritten."""
    store = open_store(sqlite_url)
    with store.session() as s, s.begin():
        kept = upsert_server(s, ServerRecord(name="io.example/kept", source="official-registry", version="2.0.0"))
        gone = upsert_server(s, ServerRecord(name="io.example/gone", source="official-registry"))
        gone.removed_at = kept.last_seen
        seen = kept.last_seen
    store.dispose()
    pipe, spider = _pipeline(sqlite_url)
    for name in ("io.example/kept", "io.example/gone"):
        pipe.process_item(
            ServerItem(name=name, source="official-registry", version="1.0.0", tools=[TOOL], recheck=True)
        )
    pipe.finish()
    assert spider.malformed == [] and pipe.counters["recheck_gone"] == 1
    store = open_store(sqlite_url)
    with store.session() as s:
        kept, gone = (
            s.scalars(select(Server).where(Server.name == n)).one() for n in ("io.example/kept", "io.example/gone")
        )
        assert kept.version == "2.0.0" and kept.last_seen == seen and [t.name for t in kept.tools] == ["read_file"]
        assert gone.removed_at is not None and gone.tools == []
    store.dispose()


@pytest.mark.postgres
def test_a_postgresql_crawl_waits_for_a_held_row_a_minute_not_for_ever(pg_url: str) -> None:
    pipe, _ = _pipeline(pg_url)
    assert pipe.session is not None
    assert pipe.session.execute(text("SHOW lock_timeout")).scalar() == "1min"
    pipe.finish()


@pytest.mark.postgres
def test_a_run_whose_end_cannot_be_recorded_says_so(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row another transaction held past the lock timeout while a complete run marked what it
    no longer lists: the error escaped and the run stayed "running" (the crawl exited 0)."""
    monkeypatch.setattr(store_pipeline, "LOCK_TIMEOUT", "1s")
    store = open_store(pg_url)
    with store.session() as s, s.begin():
        upsert_server(s, ServerRecord(name="io.example/old", source="curated"))
    pipe, _ = _pipeline(pg_url)
    pipe.process_item(ServerItem(name="io.example/new", source="curated", tools=[TOOL]))
    pipe.crawler.stats.inc_value("catalog/pages")  # a listing was read, whole
    with store.engine.connect() as other:
        other.execute(text("UPDATE servers SET title = 'held' WHERE name = 'io.example/old'"))  # held, uncommitted
        pipe.close_spider()
        pipe.finish()
        other.rollback()
    with store.session() as s:
        run = s.scalars(select(CrawlRun).order_by(CrawlRun.id.desc())).first()
        assert run is not None and run.status == "partial", run.status if run else None
        assert "the end of the run could not be recorded" in (run.error or "")
        assert s.scalars(select(Server).where(Server.name == "io.example/old")).one().removed_at is None
        assert s.scalars(select(Server).where(Server.name == "io.example/new")).one().removed_at is None
    store.dispose()
