"""Validate: drop entries no later step can use, with the reason counted and logged."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawler.items import ServerItem

MAX_TOOLS_PER_ENTRY = 20_000


class ValidatePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        return cls(crawler)

    def _reject(self, item: ServerItem, reason: str) -> None:
        spider: Any = self.crawler.spider
        if hasattr(spider, "note_malformed"):
            spider.note_malformed(f"{item.name}: {reason}")
        raise DropItem(f"{item.name}: {reason}")

    def process_item(self, item: ServerItem) -> ServerItem:
        for remote in item.remotes:
            url = remote.get("url")
            if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
                self._reject(item, f"remote URL {url!r} is not http(s)")
        for pkg in item.packages:
            if not isinstance(pkg.get("identifier") or pkg.get("name"), str):
                self._reject(item, "package without an identifier")
        if item.tools is not None:
            item.tools = [t for t in item.tools if isinstance(t.get("name"), str) and t["name"].strip()]
            item.tools = item.tools[:MAX_TOOLS_PER_ENTRY]
        return item
