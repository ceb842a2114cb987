"""A ToolHive registry file: servers with the tool definitions the catalogue already holds.

ToolHive (Stacklok's MCP gateway) keeps its catalogue as one JSON document, and
organisations keep their own in the same shape.  It comes in two formats:

* the *legacy* one: ``{"servers": {NAME: {...}}, "remote_servers": {NAME: {...}}}``, each
  entry with ``image`` (a container) or ``url`` (a remote), ``transport``, ``tools`` (names)
  and, for many, ``tool_definitions`` (full MCP tool definitions);
* the *upstream* one: ``{"version", "meta", "data": {"servers": [server.json, ...]}}``, the
  official ``server.json`` with ToolHive's extensions under
  ``_meta["io.modelcontextprotocol.registry/publisher-provided"]["io.github.stacklok"][KEY]``.

Where an entry carries ``tool_definitions`` they are its tools (no stranger's container is
started for them); otherwise a remote is introspected as usual and a container image is
recorded as one this machine cannot run.

Every entry is stored as ``toolhive/NAME``, NAME being the upstream ``server.json`` name and,
for a legacy entry, the name ToolHive itself gives it in the upstream format
(``io.github.stacklok/KEY``), so a document moved from one format to the other keeps its
servers and their overrides.  The prefix keeps ToolHive's record of a server apart from the
server as another catalogue lists it: a document's tool list is ToolHive's claim, and stored
over a live listing of the same name it made each crawl of the two flip the tools (and a
catalogue's copy could hide what the server really serves).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import scrapy
from scrapy.http import Response

from crawler.items import ServerItem, local_path
from crawler.spiders.glama import SEGMENT
from crawler.spiders.registry_api import (
    UNREADABLE,
    EntryError,
    RegistryApiSpider,
    _label,
    _str,
    _timestamp,
    _tools,
    parse_entry,
)

PUBLISHER_META = "io.modelcontextprotocol.registry/publisher-provided"
STACKLOK = "io.github.stacklok"
PREFIX = "toolhive/"
TRANSPORTS = ("stdio", "sse", "streamable-http")
#: The largest document read (ToolHive's own is under 2 MB); Scrapy's size limit does not
#: apply to a file, which it reads whole.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


def legacy_entry(key: Any, entry: Any, source: str, *, remote: bool) -> ServerItem:
    """One entry of the legacy ``servers`` (containers) or ``remote_servers`` map."""
    if not isinstance(key, str) or not SEGMENT.fullmatch(key):
        # ToolHive's keys are short names; anything else (a slash, a newline) is not one.
        raise EntryError("server key is not a name")
    if not isinstance(entry, Mapping):
        raise EntryError(f"entry is {type(entry).__name__}, not an object")
    transport = _str(entry.get("transport"), "transport", limit=40)
    if transport is not None and transport not in TRANSPORTS:
        raise EntryError(f"transport {transport!r} is not one of {', '.join(TRANSPORTS)}")
    packages: list[dict[str, Any]] = []
    remotes: list[dict[str, Any]] = []
    version = None
    if remote:
        url = _str(entry.get("url"), "url", required=True, limit=2000)
        if transport == "stdio":
            raise EntryError("a remote server with transport 'stdio'")
        remotes.append({"type": transport or "streamable-http", "url": url})
    else:
        image = _str(entry.get("image"), "image", required=True, limit=500)
        assert image is not None
        # The tag after the last ':' that follows the last '/' (a registry port is no tag).
        tail = image.rsplit("/", 1)[-1]
        tag = tail.rsplit(":", 1)[1] if ":" in tail and "@" not in tail else None
        version = tag if tag and tag != "latest" and len(tag) <= 100 else None
        packages.append({"registryType": "oci", "identifier": image, "transport": {"type": transport or "stdio"}})
    custom = entry.get("custom_metadata")
    homepage = custom.get("homepage") if isinstance(custom, Mapping) else None
    metadata = entry.get("metadata")
    updated = metadata.get("last_updated") if isinstance(metadata, Mapping) else None
    return ServerItem(
        name=f"{PREFIX}{STACKLOK}/{key}",
        source=source,
        description=_str(entry.get("description"), "description"),
        title=_str(entry.get("title"), "title", limit=400),
        version=version,
        repository_url=_str(entry.get("repository_url"), "repository_url", limit=2000),
        website_url=homepage if isinstance(homepage, str) and len(homepage) <= 2000 else None,
        packages=packages,
        remotes=remotes,
        published_at=_timestamp(updated),
        tools=_definitions(entry.get("tool_definitions")),
    )


def _definitions(value: Any) -> list[dict[str, Any]] | None:
    """``tool_definitions`` as the entry's tools; absent or empty, the catalogue does not say
    (an empty list would mark every stored tool of the server removed)."""
    tools = _tools(value, "tool_definitions")
    return tools or None


def upstream_entry(server: Any, source: str) -> ServerItem:
    """One ``server.json`` of the upstream format, with ToolHive's tool definitions."""
    item = parse_entry(server, source)
    if len(PREFIX) + len(item.name) > 400:  # the longest name the store keeps
        raise EntryError(f"name {item.name[:100]!r}... is too long")
    item.name = PREFIX + item.name
    meta = server.get("_meta") if isinstance(server, Mapping) else None
    provided = meta.get(PUBLISHER_META) if isinstance(meta, Mapping) else None
    ours = provided.get(STACKLOK) if isinstance(provided, Mapping) else None
    if isinstance(ours, Mapping):
        # Keyed by the image reference or the remote URL; one server has one of each at most.
        for key in sorted(k for k in ours if isinstance(k, str)):
            ext = ours[key]
            tools = _definitions(ext.get("tool_definitions")) if isinstance(ext, Mapping) else None
            if tools is not None:
                item.tools = tools
                break
    return item


class ToolHiveSpider(RegistryApiSpider):
    """A ToolHive registry document, read whole (by URL, or by path for a file of your own)."""

    name = "toolhive"
    follows_cursors = False

    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        self.path: Path | None = None
        local = local_path(base_url) if base_url else None
        if local is not None:
            # A local file.  Absolute, but its symlinks kept: a mounted ConfigMap swaps its
            # target on every update, and each target read as another catalogue held back
            # every removal.
            self.path = Path(os.path.abspath(local))
            base_url = self.path.as_uri()
        super().__init__(base_url=base_url, **kwargs)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.path is not None:
            try:
                size = self.path.stat().st_size
            except OSError as exc:  # gone for a moment (a config tool rewriting it): this run fails
                self.note_error(f"{self.path}: {exc.strerror or exc}")
                return
            if size > MAX_DOCUMENT_BYTES:
                self.note_error(f"{self.path}: {size:,} bytes, more than {MAX_DOCUMENT_BYTES:,}")
                return
        yield scrapy.Request(
            self.base_url,
            callback=self.parse_document,
            errback=self.page_failed,
            meta={"handle_httpstatus_list": [404]},
            dont_filter=True,
        )

    def parse_document(self, response: Response) -> Iterator[ServerItem]:
        if response.status == 404:
            self.note_error(f"{response.url}: HTTP 404")
            return
        data = self.read_json(response)
        if data is UNREADABLE:
            return
        inner = data.get("data") if isinstance(data, Mapping) else None
        if isinstance(inner, Mapping) and isinstance(inner.get("servers"), list):
            self.count_page()
            for i, server in enumerate(inner["servers"]):
                try:
                    yield upstream_entry(server, self.name)
                except EntryError as exc:
                    self.note_malformed(f"data.servers[{i}]{_label(server)}: {exc}")
            return
        maps = {k: data.get(k) for k in ("servers", "remote_servers")} if isinstance(data, Mapping) else {}
        present = {k: v for k, v in maps.items() if v is not None}
        if not present or not all(isinstance(v, Mapping) for v in present.values()):
            self.note_error(
                f"{response.url}: not a ToolHive registry ('servers' and 'remote_servers' objects, "
                "or 'data.servers' list)"
            )
            return
        self.count_page()
        names: set[str] = set()
        for field, entries in present.items():
            for key, entry in entries.items():
                try:
                    item = legacy_entry(key, entry, self.name, remote=field == "remote_servers")
                    if item.name in names:
                        # One key in both maps: one name, and either entry dropped silently.
                        raise EntryError("the same key names a container and a remote")
                    names.add(item.name)
                    yield item
                except EntryError as exc:
                    self.note_malformed(f"{field}.{str(key)[:100]}: {exc}")
