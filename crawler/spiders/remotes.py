"""Hosted servers asked again: every stored server whose tools its remote endpoint listed.

A package changes its tools with a new version, which the catalogues list and an incremental
crawl follows.  A hosted (streamable-HTTP or SSE) server changes whenever its operator deploys:
its registry entry, and so its version, may never move, and an incremental crawl of the
registry, which lists only updated entries, would not see the change until a ``--full`` crawl.
``--source remotes`` asks each of them again (no package is installed or started), so a
scheduled crawl records a hosted server's rug pull as it records a package's: a changed
definition, flagged severe by ``catalog diff --severe`` where it raised the risk or added
poisoning.

This source lists only some servers by design, so its runs never mark anything removed, and
it adds no source of its own to a server: each is listed as the catalogue it came from.
Catalogue records (``glama/``, ``toolhive/``, ``docker/``, ``smithery/``) are left to their own
crawls, which introspect their remotes every time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from catalog.store.db import open_store
from catalog.store.repository import remote_listed
from crawler.items import CATALOGUE_NAMESPACES, ServerItem
from crawler.spiders.registry_api import RegistryApiSpider


class RemotesSpider(RegistryApiSpider):
    """The store's own remote-listed servers, each to be introspected again."""

    name = "remotes"
    follows_cursors = False
    #: Only some servers: a run says nothing of the others (nothing is marked removed).
    lists_everything = False

    async def start(self) -> AsyncIterator[Any]:
        store = open_store(self.crawler.settings.get("CATALOG_DATABASE_URL"))
        try:
            with store.session() as session:
                items = [
                    ServerItem(
                        name=server.name,
                        # Listed as the catalogue it came from: this run adds no source.
                        source=(server.sources or [self.name])[0],
                        version=server.version,
                        remotes=[dict(r) for r in server.remotes or [] if isinstance(r, dict)],
                        recheck=True,
                    )
                    for server in remote_listed(session, CATALOGUE_NAMESPACES)
                ]
        finally:
            store.dispose()
        self.count_page()
        for item in items:
            if item.remotes:
                yield item
