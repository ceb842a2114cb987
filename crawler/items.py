"""Typed items: what a spider hands to the pipelines.

A ``ServerItem`` is one catalogue entry, normalised to the official ``server.json``
fields we keep.  ``tools`` is ``None`` until someone (the catalogue or live
introspection) knows the listing; an empty list means "the server has no tools".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Name prefixes of the catalogues whose entries are their own records of a server (Glama's
#: page, ToolHive's entry), with the tools the catalogue claims: no other catalogue's entry,
#: and no hand-run introspection, may write a server under them.
CATALOGUE_NAMESPACES = ("glama/", "toolhive/")


def file_path(url: str) -> str:
    """The path a ``file:`` URL names (``file:///x``, ``file://localhost/x``, ``file:/x``, any
    case, %-escapes undone): the crawl's check and the spider must read the same file."""
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path)


@dataclass
class AttemptItem:
    transport: str
    target: str
    outcome: str
    seconds: float
    error: str | None = None
    tools_count: int = 0
    protocol_version: str | None = None
    server_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServerItem:
    name: str
    source: str
    description: str | None = None
    title: str | None = None
    version: str | None = None
    repository_url: str | None = None
    website_url: str | None = None
    packages: list[dict[str, Any]] = field(default_factory=list)
    remotes: list[dict[str, Any]] = field(default_factory=list)
    published_at: str | None = None
    is_latest: bool | None = None
    tools: list[dict[str, Any]] | None = None
    #: Whether ``tools`` is the whole listing (an introspection cut at its cap is not).
    tools_complete: bool = True
    attempts: list[AttemptItem] = field(default_factory=list)
    #: Known at this version from an earlier crawl: keep the stored tools, start nothing.
    skip_introspection: bool = False
