"""Deduplicate: keep the latest version of each server within one crawl.

The registry lists every published version.  We ask for ``version=latest``, and still drop
an entry the catalogue itself marks as not the latest (``isLatest: false``), wherever it
comes in the listing, and one whose name already passed with ``isLatest`` or a later
publication.  Order alone cannot decide: an older version listed first was stored (or, slower
to introspect, stored last), and every crawl recorded the tools going back and forth.
"""

from __future__ import annotations

from scrapy.exceptions import DropItem

from crawler.items import ServerItem


class DeduplicatePipeline:
    def __init__(self) -> None:
        self.seen: dict[str, tuple[bool, str]] = {}

    def process_item(self, item: ServerItem) -> ServerItem:
        if item.is_latest is False:
            raise DropItem(f"{item.name} {item.version}: the catalogue says a later version exists")
        key = (bool(item.is_latest), item.published_at or "")
        old = self.seen.get(item.name)
        if old is not None and old >= key:
            raise DropItem(f"{item.name} {item.version}: an equal or later version was already kept")
        self.seen[item.name] = key
        return item
