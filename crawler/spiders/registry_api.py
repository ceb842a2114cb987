"""The MCP Registry API shape: ``GET {base}/v0.1/servers?cursor=&limit=``.

Pages look like ``{"servers": [{"server": <server.json>, "_meta": {...}}], "metadata":
{"nextCursor": ..., "count": ...}}``.  Any catalogue that serves this shape (the official
registry, a sub-registry, our curated file) is a small subclass.  Malformed entries are
counted and skipped with their reason; a malformed page ends this source's crawl with a
recorded error and leaves everything already stored untouched.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.items import CATALOGUE_NAMESPACES, ServerItem

OFFICIAL_META = "io.modelcontextprotocol.registry/official"
MAX_REASONS = 50
#: Objects and arrays one catalogue page may hold, counted before parsing: parsed, each costs
#: far more than its bytes (a 120 MB page of `{}` took 7.6 GB), as in an introspection answer.
MAX_PAGE_CONTAINERS = 1_000_000


class EntryError(ValueError):
    """A catalogue entry that cannot become a ServerItem."""


class PageTooLarge(ValueError):
    """A page holding more containers than :data:`MAX_PAGE_CONTAINERS`."""


def containers(body: bytes) -> int:
    """Objects and arrays in a UTF-8 JSON text, counted outside its strings in one linear pass
    of bounded memory (a description of a million `{` is one string: one server's text must
    not refuse its whole page; a regular expression over the strings took quadratic time on
    an unterminated string of escaped quotes, and gigabytes on one long string).  Without
    its escapes every `"` opens or closes a string."""
    body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    count, inside, step = 0, False, 1 << 20
    for start in range(0, len(body), step):
        for k, part in enumerate(body[start : start + step].split(b'"')):
            if k:
                inside = not inside
            if not inside:
                count += part.count(b"{") + part.count(b"[")
    return count


def load_page(body: bytes) -> Any:
    """A catalogue page's JSON, refused (:class:`PageTooLarge`) past :data:`MAX_PAGE_CONTAINERS`
    objects and arrays, counted before parsing.  UTF-16 and UTF-32 (which ``json.loads``
    reads) are counted in UTF-8: read as bytes, a character's half could pass for a quote."""
    encoding = json.detect_encoding(body)
    if encoding != "utf-8":
        # As json.loads reads it (a lone surrogate passes); UnicodeError is a ValueError.
        body = body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    if body.count(b"{") + body.count(b"[") > MAX_PAGE_CONTAINERS:
        found = containers(body)
        if found > MAX_PAGE_CONTAINERS:
            raise PageTooLarge(f"{found:,} objects and arrays, more than {MAX_PAGE_CONTAINERS:,}")
    return json.loads(body)


#: What :meth:`RegistryApiSpider.read_json` gives for a page it could not read (a JSON
#: ``null`` page is None, and must still be reported as no server list).
UNREADABLE = object()


def _str(value: Any, field: str, *, required: bool = False, limit: int = 20_000) -> str | None:
    if value is None:
        if required:
            raise EntryError(f"missing {field}")
        return None
    if not isinstance(value, str):
        raise EntryError(f"{field} is {type(value).__name__}, not a string")
    value = value.strip()
    if required and not value:
        raise EntryError(f"empty {field}")
    return value[:limit]


def _list_of_objects(value: Any, field: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise EntryError(f"{field} is not a list of objects")
    return [dict(v) for v in value]


def parse_entry(entry: Any, source: str) -> ServerItem:
    """One list entry (``{"server": ..., "_meta": ...}`` or a bare server.json) -> ServerItem."""
    if not isinstance(entry, Mapping):
        raise EntryError(f"entry is {type(entry).__name__}, not an object")
    inner = entry.get("server")
    server: Mapping[str, Any] = inner if isinstance(inner, Mapping) else entry
    meta = entry.get("_meta") if isinstance(entry.get("_meta"), Mapping) else server.get("_meta") or {}
    official = meta.get(OFFICIAL_META) if isinstance(meta, Mapping) else None
    official = official if isinstance(official, Mapping) else {}
    name = _str(server.get("name"), "name", required=True, limit=400)
    if name is not None and "\x00" in name:
        # The store drops NUL from text: "x\0" would have been stored as (and over) "x".
        raise EntryError("name contains a NUL character")
    if name is None or len(name) < 3 or ("/" not in name and "." not in name and source != "curated"):
        raise EntryError(f"name {name!r} is not a reverse-DNS server name")
    if name.startswith(CATALOGUE_NAMESPACES):
        raise EntryError(f"name {name[:100]!r} is in a namespace kept for another catalogue's servers")
    repo = server.get("repository")
    repo_url = repo.get("url") if isinstance(repo, Mapping) and isinstance(repo.get("url"), str) else None
    tools = _tools(server.get("tools"))
    return ServerItem(
        name=name,
        source=source,
        description=_str(server.get("description"), "description"),
        title=_str(server.get("title"), "title", limit=400),
        version=_str(server.get("version"), "version", limit=100),
        repository_url=repo_url or None,
        website_url=_str(server.get("websiteUrl"), "websiteUrl", limit=2000),
        packages=_list_of_objects(server.get("packages"), "packages"),
        remotes=_list_of_objects(server.get("remotes"), "remotes"),
        published_at=_timestamp(official.get("publishedAt")),
        is_latest=official.get("isLatest") if isinstance(official.get("isLatest"), bool) else None,
        tools=tools,
    )


def _timestamp(value: Any) -> str | None:
    """A publication time as the catalogue spells it (RFC 3339), or None for what is not one:
    a dict was stored as its repr, and text past the column's 64 characters made the whole
    server unstorable on PostgreSQL."""
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 64 or "\x00" in value:
        return None
    return value.strip()


def _tools(value: Any, field: str = "tools") -> list[dict[str, Any]] | None:
    """The entry's tool list, or None when it gives none.  A list with an item that is not a
    named tool makes the entry malformed: read without that item, the list would say the
    server's stored tool of that name is gone."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise EntryError(f"{field} is {type(value).__name__}, not a list")
    for i, tool in enumerate(value):
        name = tool.get("name") if isinstance(tool, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            raise EntryError(f"{field}[{i}] is not a tool with a name")
    return [dict(t) for t in value]


def failure_text(failure: Failure) -> str:
    """Why a request failed, in words: Twisted wraps a dropped connection in a list of
    failures whose repr (``[<twisted.python.failure.Failure ...ConnectionDone: ...>]``) was the
    error line a person read."""
    reasons = getattr(failure.value, "reasons", None)
    inner = [r for r in reasons if isinstance(r, Failure)] if isinstance(reasons, list) else []
    parts = [f"{type(r.value).__name__}: {r.getErrorMessage()}" for r in inner] or [
        failure.getErrorMessage() or failure.type.__name__
    ]
    what = "no response" if inner else ""
    return (f"{what} ({'; '.join(parts)})" if what else parts[0])[:300]


def _label(entry: Any) -> str:
    server = entry.get("server", entry) if isinstance(entry, Mapping) else None
    name = server.get("name") if isinstance(server, Mapping) else None
    return f" ({name[:100]})" if isinstance(name, str) else ""


class RegistryApiSpider(scrapy.Spider):
    """Base spider for catalogues that speak the MCP Registry list API."""

    name = "registry-api"
    default_base_url = ""
    api_versions: tuple[str, ...] = ("v0.1", "v0")
    page_size = 100
    max_pages = 10_000
    #: A catalogue API pages on; a file (the curated list, a dumped registry page) is whole,
    #: so its ``nextCursor`` names nothing to fetch.
    follows_cursors = True

    def __init__(self, base_url: str | None = None, updated_since: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        #: Only entries updated since then (RFC 3339): an incremental listing, so nothing it
        #: leaves out may be taken as removed.
        self.updated_since = updated_since
        self.malformed: list[str] = []
        self.errors: list[str] = []
        self.pages = 0
        #: Cursors already followed: a catalogue that repeats one would page forever.
        self.cursors: set[str] = set()

    # -- requests ---------------------------------------------------------------------------
    def page_url(self, api: str, cursor: str | None) -> str:
        params: dict[str, Any] = {"limit": self.page_size, "version": "latest"}
        if cursor:
            params["cursor"] = cursor
        if self.updated_since:
            params["updated_since"] = self.updated_since
        return f"{self.base_url}/{api}/servers?{urlencode(params)}"

    def page_request(self, api: str, cursor: str | None = None) -> scrapy.Request:
        return scrapy.Request(
            self.page_url(api, cursor),
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"api": api},
            meta={"api": api, "handle_httpstatus_list": [404]},
            dont_filter=True,
        )

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield self.page_request(self.api_versions[0])

    # -- parsing ----------------------------------------------------------------------------
    def note_malformed(self, reason: str) -> None:
        self.crawler.stats.inc_value("catalog/malformed_entries")
        if len(self.malformed) < MAX_REASONS:
            self.malformed.append(reason)
        self.logger.warning("skipped malformed entry: %s", reason)

    def note_error(self, reason: str) -> None:
        self.crawler.stats.inc_value("catalog/source_errors")
        self.errors.append(reason)
        # A warning, below the crawl's log level: the run records it and the summary (or the
        # one error line of a crawl whose every source failed) says it, once.
        self.logger.warning("%s: %s", self.name, reason)

    def read_json(self, response: Response, note: Callable[[str], None] | None = None) -> Any:
        """The page's JSON, or :data:`UNREADABLE` once ``note`` (the run's error, unless the
        page is one server's own) says why."""
        note = note or self.note_error
        try:
            return load_page(response.body)
        except PageTooLarge as exc:
            note(f"{response.url}: refused, {exc}")
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested past the parser's depth
            note(f"{response.url}: malformed JSON ({type(exc).__name__}: {str(exc)[:200]})")
        return UNREADABLE

    def server_page(self, response: Response) -> Mapping[str, Any] | None:
        """A list page with its ``servers`` array, counted as read; None once the run's error
        says why (unreadable JSON, or no ``servers`` array)."""
        data = self.read_json(response)
        if data is UNREADABLE:
            return None
        if not isinstance(data, Mapping) or not isinstance(data.get("servers"), list):
            self.note_error(f"{response.url}: not a server list (no 'servers' array)")
            return None
        self.count_page()
        return data

    def count_page(self) -> None:
        """A page was read: a run that read none failed, whatever it noted."""
        self.pages += 1
        self.crawler.stats.inc_value("catalog/pages")

    def follow(self, url: str, api: str, cursor: str) -> Iterator[scrapy.Request]:
        """The page at ``cursor``, unless the catalogue pages forever (a cursor it gave
        before, or past :attr:`max_pages`): then the listing ends, cut, with an error."""
        if cursor in self.cursors:
            self.note_error(f"{url}: the catalogue gave cursor {cursor[:80]!r} again; stopped")
        elif self.pages >= self.max_pages:
            self.note_error(f"stopped after {self.max_pages} pages")
        else:
            self.cursors.add(cursor)
            yield self.page_request(api, cursor)

    def parse_page(self, response: Response, api: str) -> Iterator[Any]:
        if response.status == 404:
            later = self.api_versions[self.api_versions.index(api) + 1 :] if api in self.api_versions else ()
            if later and self.pages == 0:
                yield self.page_request(later[0])
            else:
                self.note_error(f"{response.url}: HTTP 404")
            return
        data = self.server_page(response)
        if data is None:
            return
        for i, entry in enumerate(data["servers"]):
            try:
                yield parse_entry(entry, self.name)
            except EntryError as exc:
                self.note_malformed(f"page {self.pages} entry {i}{_label(entry)}: {exc}")
        # How the page ends decides whether the listing is complete (and what a full crawl then
        # marks removed): an ending it cannot read is an error, never a quiet last page.
        metadata = data.get("metadata")
        if metadata is None:
            metadata = {}
        elif not isinstance(metadata, Mapping):
            self.note_error(f"{response.url}: metadata is {type(metadata).__name__}, not an object")
            return
        cursor = metadata.get("nextCursor", metadata.get("next_cursor"))
        if cursor is not None and not isinstance(cursor, str):
            self.note_error(f"{response.url}: nextCursor is {type(cursor).__name__}, not a string")
            return
        # An empty page with a cursor is followed (a filtered page may hold nothing); a repeated
        # cursor and the page limit still end a catalogue that pages forever.
        if cursor and self.follows_cursors:
            yield from self.follow(response.url, api, cursor)

    def page_failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else self.base_url
        response = getattr(failure.value, "response", None)  # an HttpError: say which status
        if response is not None and getattr(response, "status", None):
            self.note_error(f"HTTP {response.status} ({url})")
            return
        self.note_error(f"{failure_text(failure)} ({url})")
