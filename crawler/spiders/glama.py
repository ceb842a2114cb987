"""Glama's MCP server directory: ``GET {base}?first=N&after=CURSOR``.

Pages look like ``{"servers": [...], "pageInfo": {"endCursor": ..., "hasNextPage": ...}}``
(Relay-style cursors, no authentication to list).  Each server carries the ``tools`` Glama
learned by inspecting it (``name``, ``description``, ``inputSchema``), so a crawl of it
collects tool definitions without starting anything; the listing gives no launch
information (no packages, no remotes), so a server without tools stays without them.

Glama's servers have no registry name: they are stored as ``glama/NAMESPACE/SLUG`` (the
path of their page on Glama), apart from the servers other catalogues list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import scrapy
from scrapy.http import Response

from crawler.items import ServerItem
from crawler.spiders.registry_api import EntryError, RegistryApiSpider, _str, _tools

#: What a namespace or slug may hold: Glama's own paths are GitHub-like names (two of them
#: and the prefix stay within the 400 characters a stored server name may have).
SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,189}")


def glama_entry(entry: Any, source: str) -> ServerItem:
    if not isinstance(entry, Mapping):
        raise EntryError(f"entry is {type(entry).__name__}, not an object")
    namespace = _str(entry.get("namespace"), "namespace", required=True, limit=400)
    slug = _str(entry.get("slug"), "slug", required=True, limit=400)
    for what, value in (("namespace", namespace), ("slug", slug)):
        if value is None or not SEGMENT.fullmatch(value):
            raise EntryError(f"{what} {value!r} is not a name")
    repo = entry.get("repository")
    repo_url = repo.get("url") if isinstance(repo, Mapping) else None
    tools = _tools(entry.get("tools"))
    return ServerItem(
        name=f"glama/{namespace}/{slug}",
        source=source,
        description=_str(entry.get("description"), "description"),
        title=_str(entry.get("name"), "name", limit=400),
        repository_url=repo_url if isinstance(repo_url, str) and 0 < len(repo_url) <= 2000 else None,
        website_url=_str(entry.get("url"), "url", limit=2000),
        # An empty list is a server Glama could not inspect, not one without tools (read as
        # "no tools", it would mark every stored tool of the server removed).
        tools=tools or None,
    )


class GlamaSpider(RegistryApiSpider):
    name = "glama"
    default_base_url = "https://glama.ai/api/mcp/v1/servers"

    def page_url(self, api: str, cursor: str | None) -> str:
        # A base URL may carry its own filter (`?query=github`): the paging joins it.
        parts = urlsplit(self.base_url)
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("first", "after")]
        params.append(("first", str(self.page_size)))
        if cursor:
            params.append(("after", cursor))
        return urlunsplit(parts._replace(query=urlencode(params)))

    def page_request(self, api: str, cursor: str | None = None) -> scrapy.Request:
        return scrapy.Request(
            self.page_url(api, cursor),
            callback=self.parse_glama,
            errback=self.page_failed,
            dont_filter=True,
        )

    def parse_glama(self, response: Response) -> Iterator[Any]:
        data = self.server_page(response)
        if data is None:
            return
        for i, entry in enumerate(data["servers"]):
            try:
                yield glama_entry(entry, self.name)
            except EntryError as exc:
                label = entry.get("slug") if isinstance(entry, Mapping) else None
                where = f" ({label[:100]})" if isinstance(label, str) else ""
                self.note_malformed(f"page {self.pages} entry {i}{where}: {exc}")
        # How the page ends decides whether the listing is complete: an ending it cannot read
        # is an error, never a quiet last page.
        info = data.get("pageInfo")
        if not isinstance(info, Mapping):
            self.note_error(f"{response.url}: no pageInfo object")
            return
        more = info.get("hasNextPage")
        if not isinstance(more, bool):
            self.note_error(f"{response.url}: pageInfo.hasNextPage is {type(more).__name__}, not a boolean")
            return
        if not more:
            return
        cursor = info.get("endCursor")
        if not isinstance(cursor, str) or not cursor:
            self.note_error(f"{response.url}: hasNextPage without an endCursor")
        else:
            yield from self.follow(response.url, "", cursor)
