"""Smithery's registry: a list of servers by page, and each server's own record with its tools.

``GET {base}?page=N&pageSize=M`` answers ``{"servers": [...], "pagination": {"currentPage",
"pageSize", "totalPages", "totalCount"}}``.  The list carries no tools, so each server it names
is asked for at ``GET {base}/{qualifiedName}`` (the slash escaped), which answers its
``connections`` and the ``tools`` Smithery learned by scanning it.  Every request needs the API
key in ``SMITHERY_API_KEY``: :class:`crawler.middlewares.CatalogueKeyMiddleware` adds it on the
way out, to the catalogue's own origin only, so it is neither written into the HTTP cache nor
carried to wherever a redirect points.  A base URL may carry Smithery's own filter
(``?q=is:verified``), which the paging keeps.

Each record is stored as ``smithery/QUALIFIED_NAME``, apart from the server as other
catalogues list it (a catalogue's tool list is its claim).  An ``http`` connection is the
server's remote (for a server Smithery hosts, its gateway, which wants the user's configuration
and so often refuses an anonymous introspection); a ``stdio`` connection's bundle is recorded as
an ``mcpb`` package, which this machine does not install.  Its ``stdioFunction`` is JavaScript
Smithery's own clients run to build a command line: it is never read.

Smithery pages by number through a list it sorts by use, so a server that moves up while the
crawl reads the pages is read twice and another one not at all.  A listing is taken as complete
only when it read as many different servers as the catalogue counted, with the same count on
every page; and even then equal counts may hide a server missed for one added, so before a
stored record is marked removed its own page is asked for: only a 404 says it is gone (any other
failure leaves the run partial, and nothing is removed).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import scrapy
from scrapy.http import Response
from sqlalchemy import select

from catalog.store.db import open_store
from catalog.store.models import Server
from crawler.items import ServerItem
from crawler.middlewares import origin
from crawler.spiders.registry_api import (
    UNREADABLE,
    EntryError,
    RegistryApiSpider,
    _str,
    _timestamp,
    _tools,
    failure_text,
)

API_KEY_ENV = "SMITHERY_API_KEY"
PREFIX = "smithery/"
#: Smithery's names: ``namespace/server`` (``@owner/server`` in its older records) or a
#: namespace alone; with the prefix, within the 400 characters a stored name may have.
QUALIFIED = re.compile(r"@?[A-Za-z0-9][A-Za-z0-9._-]{0,150}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,150})?")
#: Statuses read by the callbacks (a refused key, a server gone between list and record)
#: rather than by Scrapy's error path, to say what they mean.
ANSWERED = [401, 403, 404]
#: Remotes and packages kept per record (Smithery gives one of each at most): each remote is
#: introspected in turn, and a record of a million connections must not hold the crawl.
MAX_CONNECTIONS = 16


def listed_name(entry: Any) -> str:
    """The ``qualifiedName`` of one list entry."""
    if not isinstance(entry, Mapping):
        raise EntryError(f"entry is {type(entry).__name__}, not an object")
    name = _str(entry.get("qualifiedName"), "qualifiedName", required=True, limit=400)
    if name is None or not QUALIFIED.fullmatch(name):
        raise EntryError(f"qualifiedName {str(name)[:100]!r} is not a name")
    return name


def _connections(value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Remotes and packages from a record's ``connections`` (and nothing else of them)."""
    if value is None:
        return [], []
    if not isinstance(value, list) or not all(isinstance(c, Mapping) for c in value):
        raise EntryError("connections is not a list of objects")
    remotes: dict[str, dict[str, Any]] = {}
    packages: dict[str, dict[str, Any]] = {}
    for conn in value:
        kind = conn.get("type")
        url = conn.get("deploymentUrl", conn.get("url")) if kind == "http" else conn.get("bundleUrl")
        if not isinstance(url, str) or len(url) > 2000 or origin(url) is None:
            continue
        if kind == "http" and len(remotes) < MAX_CONNECTIONS:
            remotes.setdefault(url, {"type": "streamable-http", "url": url})
        elif kind == "stdio" and len(packages) < MAX_CONNECTIONS:
            packages.setdefault(url, {"registryType": "mcpb", "identifier": url, "transport": {"type": "stdio"}})
    return list(remotes.values()), list(packages.values())


def smithery_entry(listed: Mapping[str, Any], record: Any, source: str) -> ServerItem:
    """One server from its list entry (already read by :func:`listed_name`) and its record."""
    name = listed_name(listed)
    if not isinstance(record, Mapping):
        raise EntryError(f"its record is {type(record).__name__}, not an object")
    answered = record.get("qualifiedName")
    if answered is not None and answered != name:
        raise EntryError(f"its record is another server's ({str(answered)[:100]!r})")
    remotes, packages = _connections(record.get("connections"))
    old_remote = record.get("deploymentUrl")  # the record's own field in Smithery's older API
    if not remotes and isinstance(old_remote, str) and origin(old_remote) is not None and len(old_remote) <= 2000:
        remotes.append({"type": "streamable-http", "url": old_remote})
    homepage = listed.get("homepage", record.get("homepage"))

    def field(key: str, **kw: Any) -> str | None:
        return _str(record.get(key, listed.get(key)), key, **kw)

    tools = _tools(record.get("tools"))
    return ServerItem(
        name=PREFIX + name,
        source=source,
        description=field("description"),
        title=field("displayName", limit=400),
        website_url=homepage if isinstance(homepage, str) and 0 < len(homepage) <= 2000 else None,
        remotes=remotes,
        packages=packages,
        published_at=_timestamp(record.get("updatedAt", listed.get("updatedAt", listed.get("createdAt")))),
        # Empty, Smithery has not scanned the server: unknown, not "no tools" (which would
        # mark every stored tool of the record removed).
        tools=tools or None,
    )


class SmitherySpider(RegistryApiSpider):
    name = "smithery"
    default_base_url = "https://api.smithery.ai/servers"
    follows_cursors = False

    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, **kwargs)
        #: Read by CatalogueKeyMiddleware (never logged, stored or put in a URL).
        self.api_key = os.environ.get(API_KEY_ENV, "").strip()
        # As Scrapy will send it (an international host in punycode), or the key never matched.
        self.key_origin = origin(scrapy.Request(self.base_url).url) if origin(self.base_url) else None
        #: Servers asked for, and the count each page gave (see the module's last paragraph).
        self.listed: set[str] = set()
        self.counts: set[int] = set()
        self.last_page_read = False

    # -- requests ---------------------------------------------------------------------------
    def list_url(self, page: int) -> str:
        parts = urlsplit(self.base_url)
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("page", "pageSize")]
        params += [("page", str(page)), ("pageSize", str(self.page_size))]
        return urlunsplit(parts._replace(query=urlencode(params)))

    def record_url(self, name: str) -> str:
        parts = urlsplit(self.base_url)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + quote(name, safe="@"), query=""))

    def list_request(self, page: int) -> scrapy.Request:
        return scrapy.Request(
            self.list_url(page),
            callback=self.parse_list,
            errback=self.page_failed,
            cb_kwargs={"page": page},
            meta={"handle_httpstatus_list": ANSWERED},
            dont_filter=True,
        )

    def record_request(self, name: str, listed: dict[str, Any], *, confirming: bool = False) -> scrapy.Request:
        return scrapy.Request(
            self.record_url(name),
            callback=self.parse_record,
            errback=self.record_failed,
            cb_kwargs={"listed": listed, "confirming": confirming},
            meta={"handle_httpstatus_list": ANSWERED},
            dont_filter=True,
        )

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield self.list_request(1)

    def unlisted(self) -> list[str]:
        """Qualified names of the stored records of this source that this run's list did not
        name (read as the ``remotes`` source reads the store: a name, nothing written)."""
        url = self.crawler.settings.get("CATALOG_DATABASE_URL")
        if not url:
            return []
        store = open_store(url)
        try:
            with store.session() as session:
                rows = session.execute(
                    select(Server.name, Server.sources).where(
                        Server.removed_at.is_(None), Server.name.startswith(PREFIX, autoescape=True)
                    )
                ).all()
        finally:
            store.dispose()
        names = (name[len(PREFIX) :] for name, sources in rows if self.name in (sources or []))
        return sorted(n for n in names if n not in self.listed and QUALIFIED.fullmatch(n))

    # -- parsing ----------------------------------------------------------------------------
    def refused(self, response: Response) -> bool:
        """A 401 or 403: the key is missing, wrong or without access (the run says so)."""
        if response.status in (401, 403):
            self.note_error(f"{response.url}: HTTP {response.status} (is {API_KEY_ENV} a valid Smithery API key?)")
            return True
        return False

    def parse_list(self, response: Response, page: int) -> Iterator[Any]:
        if self.refused(response):
            return
        if response.status == 404:
            self.note_error(f"{response.url}: HTTP 404")
            return
        data = self.server_page(response)
        if data is None:
            return
        for i, entry in enumerate(data["servers"]):
            try:
                name = listed_name(entry)
            except EntryError as exc:
                self.note_malformed(f"page {page} entry {i}: {exc}")
                continue
            if name in self.listed:
                continue  # read again on a later page: the list moved (counted at the end)
            self.listed.add(name)
            yield self.record_request(name, dict(entry))
        # How the page ends decides whether the listing is complete: an ending it cannot read is
        # an error, never a quiet last page.
        pagination = data.get("pagination")
        total_pages = pagination.get("totalPages") if isinstance(pagination, Mapping) else None
        total = pagination.get("totalCount") if isinstance(pagination, Mapping) else None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (total_pages, total)):
            self.note_error(f"{response.url}: no pagination with totalPages and totalCount")
            return
        assert isinstance(total, int) and isinstance(total_pages, int)
        self.counts.add(total)
        if page < total_pages:
            if not data["servers"]:
                # Before the last page, an empty one: the list shrank while it was read, or its
                # page count is not to be believed (10**12 pages would be walked to the limit).
                self.note_error(f"{response.url}: page {page} of {total_pages} holds no server; stopped")
            elif self.pages >= self.max_pages:
                self.note_error(f"stopped after {self.max_pages} pages")
            else:
                yield self.list_request(page + 1)
            return
        self.last_page_read = True
        if len(self.counts) > 1 or len(self.listed) < total:
            self.note_error(
                f"read {len(self.listed)} different servers where Smithery counted "
                f"{'/'.join(str(c) for c in sorted(self.counts))}: its list moved while it was read, so it "
                "is not taken as complete (nothing is marked removed)"
            )
            return
        # Counts that agree may still hide a server missed for one added: a stored record the
        # list did not name is removed only if its own page says it is gone.
        for name in self.unlisted():
            yield self.record_request(name, {"qualifiedName": name}, confirming=True)

    def parse_record(
        self, response: Response, listed: dict[str, Any], confirming: bool = False
    ) -> Iterator[ServerItem]:
        name = str(listed.get("qualifiedName"))
        if self.refused(response):
            return
        if response.status == 404 and confirming:
            self.crawler.stats.inc_value("catalog/smithery_confirmed_gone")
            return  # not listed and its page gone: the end of the run marks it removed
        if response.status == 404:
            # Gone between the list and its record: the next crawl's list will say.
            self.note_malformed(f"{name[:100]}: its record answered HTTP 404")
            return
        data = self.read_json(response, note=lambda reason: self.note_malformed(f"{name[:100]}: {reason}"))
        if data is UNREADABLE:
            return  # that server's problem, not the list's: noted as one malformed entry
        try:
            yield smithery_entry(listed, data, self.name)
        except EntryError as exc:
            self.note_malformed(f"{name[:100]}: {exc}")

    def record_failed(self, failure: Any) -> None:
        """A record that could not be fetched (after the retries): the server stays as stored,
        and the run, being partial, marks nothing removed."""
        request = getattr(failure, "request", None)
        listed = request.cb_kwargs.get("listed", {}) if request is not None else {}
        response = getattr(failure.value, "response", None)
        status = getattr(response, "status", None)
        why = f"HTTP {status}" if status else failure_text(failure)
        self.note_malformed(f"{str(listed.get('qualifiedName'))[:100]}: its record could not be fetched ({why})")
