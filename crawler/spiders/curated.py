"""The project's own curated list of real servers, kept in the registry's page shape.

It is read through Scrapy like any other catalogue (a ``file://`` URL), so it exercises
the same parsing, pipelines and store as the public registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import scrapy

from crawler.spiders.registry_api import RegistryApiSpider

CURATED_FILE = Path(__file__).resolve().parent.parent / "curated" / "servers.json"


class CuratedSpider(RegistryApiSpider):
    name = "curated"
    custom_settings = {"ROBOTSTXT_OBEY": False}  # noqa: RUF012 - Scrapy API
    follows_cursors = False

    def __init__(self, path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path) if path else CURATED_FILE

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(
            self.path.resolve().as_uri(),
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"api": "file"},
            dont_filter=True,
        )
