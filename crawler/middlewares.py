"""Downloader middleware: a catalogue's API key, added where it belongs and nowhere else.

Why a middleware and not a header on the spider's requests: Scrapy's HTTP cache writes each
request's headers to disk beside the response (``request_headers`` under the cache
directory), and a redirect's new request starts as a copy of the old one.  A key set on the
request would be kept in a plain file for as long as the cache lives and carried to wherever a
redirect pointed.  This middleware sits below the cache (closer to the downloader): it adds the
``Authorization`` header as the request goes out, only when the request's origin (scheme, host,
port) is the catalogue's own, and takes it off again as the response comes back, before the
cache stores the request and before a redirect copies it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

#: Where it sits in ``DOWNLOADER_MIDDLEWARES``: above the HTTP cache's 900, so its request
#: step runs after the cache's and its response step before it.
ORDER = 950


def origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an http(s) URL, the port made explicit; None otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


class CatalogueKeyMiddleware:
    """``Authorization: Bearer KEY`` on the requests to the spider's ``key_origin``.

    A spider opts in with two attributes: ``api_key`` (the secret) and ``key_origin`` (what
    :func:`origin` gives for its catalogue's URL).  Spiders without them are not touched."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CatalogueKeyMiddleware:
        return cls(crawler)

    def _keyed(self) -> tuple[str, Any] | None:
        spider: Any = self.crawler.spider
        key = getattr(spider, "api_key", None)
        return (str(key), getattr(spider, "key_origin", None)) if key else None

    def process_request(self, request: Request) -> None:
        keyed = self._keyed()
        if keyed is None:
            return
        key, home = keyed
        if home is not None and origin(request.url) == home:
            request.headers[b"Authorization"] = f"Bearer {key}".encode()
        else:
            # Never another origin's (a redirect's target), whatever the request carried.
            request.headers.pop(b"Authorization", None)

    def process_response(self, request: Request, response: Response) -> Response:
        if self._keyed() is not None:
            request.headers.pop(b"Authorization", None)
        return response

    def process_exception(self, request: Request, exception: BaseException) -> None:
        if self._keyed() is not None:
            request.headers.pop(b"Authorization", None)
