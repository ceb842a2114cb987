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
from sqlalchemy import event, select
from twisted.internet.task import Clock

from catalog.store.db import open_store
from catalog.store.models import Server
from catalog.store.records import ServerRecord
from catalog.store.repository import upsert_server
from crawler.items import ServerItem
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
    pipe.clock = Clock()
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


def test_a_batch_is_committed_once_no_server_comes_for_a_while(sqlite_url: str, tmp_path: Path) -> None:
    """A batch held SQLite's write lock from its first server to its 25th: while the next
    servers were introspected, a person's `catalog override` waited and failed."""
    pipe, _ = _pipeline(sqlite_url, CATALOG_COMMIT_IDLE=1.0)
    assert isinstance(pipe.clock, Clock)
    db = tmp_path / "catalog.db"
    pipe.process_item(ServerItem(name="io.example/one", source="curated", tools=[TOOL]))
    assert not _can_write_within(db, 0.2)  # the batch is open
    pipe.clock.advance(0.5)
    pipe.process_item(ServerItem(name="io.example/two", source="curated", tools=[TOOL]))
    pipe.clock.advance(0.7)  # 1.2 s after the first, 0.7 s after the last: still coming
    assert not _can_write_within(db, 0.2)
    pipe.clock.advance(0.3)  # a second without a server
    assert _can_write_within(db, 0.2)
    assert {"io.example/one", "io.example/two"} <= _names(sqlite_url)
    pipe.finish()


@pytest.mark.parametrize("every", [1, 2])
def test_a_full_batch_is_committed_at_once(sqlite_url: str, tmp_path: Path, every: int) -> None:
    pipe, _ = _pipeline(sqlite_url, CATALOG_COMMIT_EVERY=every)
    for i in range(every):
        pipe.process_item(ServerItem(name=f"io.example/s{i}", source="curated", tools=[TOOL]))
    assert _can_write_within(tmp_path / "catalog.db", 0.2)
    assert pipe.idle is None
    pipe.finish()
