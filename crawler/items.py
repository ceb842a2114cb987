"""Typed items: what a spider hands to the pipelines.

A ``ServerItem`` is one catalogue entry, normalised to the official ``server.json``
fields we keep.  ``tools`` is ``None`` until someone (the catalogue or live
introspection) knows the listing; an empty list means "the server has no tools".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

#: Name prefixes of the catalogues whose entries are their own records of a server (Glama's
#: page, ToolHive's entry, Smithery's record), with the tools the catalogue claims: no other catalogue's entry,
#: and no hand-run introspection, may write a server under them.
CATALOGUE_NAMESPACES = ("glama/", "toolhive/", "docker/", "smithery/")


def local_path(target: str) -> str | None:
    """The file a catalogue target names, or None for a URL: a ``file:`` URL (any case,
    ``localhost`` or no host, %-escapes undone) or a path, which may hold a colon
    (``reg-10:00.json``); ``word:/…`` is a URL, mistyped or not.  The crawl's check and the
    ToolHive spider both ask here, so they agree on what is a file.  ``~`` is expanded where
    it can be; a ``file:`` URL naming another host is no local file (ValueError)."""
    if target[:5].lower() == "file:":
        parts = urlsplit(target)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"a file: URL on another host ({parts.netloc[:100]})")
        return unquote(parts.path)
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:/", target):
        return None
    return os.path.expanduser(target)


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
    #: Asked again whatever its version says (``--source remotes``: a hosted server changes its
    #: tools without a new version).
    recheck: bool = False
