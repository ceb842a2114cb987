"""Spiders parse registry pages written in the real API shape; each field is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from crawler.items import ServerItem
from crawler.spiders.curated import CURATED_FILE, CuratedSpider
from crawler.spiders.official_registry import OfficialRegistrySpider
from crawler.spiders.registry_api import EntryError, parse_entry

FIXTURES = Path(__file__).parent / "fixtures"


def spider(base: str = "http://registry.test") -> OfficialRegistrySpider:
    crawler = get_crawler(OfficialRegistrySpider)
    sp = OfficialRegistrySpider.from_crawler(crawler, base_url=base)
    return sp


def response(url: str, body: bytes, status: int = 200) -> TextResponse:
    return TextResponse(url=url, body=body, status=status, encoding="utf-8", request=Request(url))


def test_page_is_parsed_field_by_field_and_malformed_entries_are_counted() -> None:
    sp = spider()
    url = sp.page_url("v0.1", None)
    assert url == "http://registry.test/v0.1/servers?limit=100&version=latest"
    out = list(sp.parse_page(response(url, (FIXTURES / "registry_page1.json").read_bytes()), api="v0.1"))
    items = [o for o in out if isinstance(o, ServerItem)]
    requests = [o for o in out if isinstance(o, Request)]
    weather, payments = items
    assert weather.name == "io.github.example/weather" and weather.title == "Weather"
    assert weather.version == "1.2.0" and weather.description == "Weather forecasts for any city."
    assert weather.repository_url == "https://github.com/example/weather-mcp"
    assert weather.website_url == "https://example.org/weather"
    assert weather.packages[0]["identifier"] == "weather-mcp" and weather.remotes == []
    assert weather.published_at == "2025-10-01T10:00:00Z" and weather.is_latest is True
    assert weather.tools is None and weather.source == "official-registry"
    assert payments.remotes[0]["url"] == "https://mcp.example.com/mcp" and payments.repository_url is None
    # Three malformed entries: no name, packages not a list, not an object.
    assert sp.crawler.stats.get_value("catalog/malformed_entries") == 3
    assert any("missing name" in r for r in sp.malformed)
    assert any("broken-packages" in r and "packages is not a list" in r for r in sp.malformed)
    # The next page follows the cursor.
    assert len(requests) == 1 and "cursor=io.github.example%2Fweather%3A1.2.0" in requests[0].url


def test_last_page_stops_pagination() -> None:
    sp = spider()
    out = list(
        sp.parse_page(
            response("http://registry.test/v0.1/servers?cursor=x", (FIXTURES / "registry_page2.json").read_bytes()),
            api="v0.1",
        )
    )
    assert [o.name for o in out] == ["io.github.example/notes"]


@pytest.mark.parametrize(
    "body",
    # The last: JSON nested past the parser's depth raises RecursionError, not ValueError
    # (a review's page made the run "ok" and marked the listed servers removed).
    [b"{not json", b"[1, 2]", b'{"servers": "nope"}', b'{"servers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"],
)
def test_malformed_page_is_a_recorded_error_not_a_crash(body: bytes) -> None:
    sp = spider()
    assert list(sp.parse_page(response("http://registry.test/v0.1/servers", body), api="v0.1")) == []
    assert len(sp.errors) == 1 and sp.crawler.stats.get_value("catalog/source_errors") == 1


def test_a_repeated_cursor_stops_pagination_as_an_error() -> None:
    sp = spider()
    page = json.dumps({"servers": [{"server": {"name": "io.github.example/a"}}], "metadata": {"nextCursor": "c1"}})
    first = list(sp.parse_page(response("http://registry.test/v0.1/servers", page.encode()), api="v0.1"))
    assert sum(isinstance(o, Request) for o in first) == 1 and not sp.errors
    again = list(sp.parse_page(response("http://registry.test/v0.1/servers?cursor=c1", page.encode()), api="v0.1"))
    assert not any(isinstance(o, Request) for o in again)
    assert len(sp.errors) == 1 and "cursor 'c1' again" in sp.errors[0]


def test_a_curated_file_is_whole_its_cursor_is_not_followed(tmp_path: Path) -> None:
    # A dumped registry page carries a nextCursor; a file has no next page to fetch.
    page = {"servers": [{"server": {"name": "io.github.example/a"}}], "metadata": {"nextCursor": "abc"}}
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page))
    sp = CuratedSpider.from_crawler(get_crawler(CuratedSpider), path=str(path))
    out = list(sp.parse_page(response(path.as_uri(), path.read_bytes()), api="file"))
    assert [o.name for o in out if isinstance(o, ServerItem)] == ["io.github.example/a"]
    assert not any(isinstance(o, Request) for o in out) and not sp.errors


def test_404_on_v0_1_falls_back_to_v0() -> None:
    sp = spider()
    out = list(sp.parse_page(response("http://registry.test/v0.1/servers", b"{}", status=404), api="v0.1"))
    assert len(out) == 1 and "/v0/servers?" in out[0].url


def test_legacy_flat_entry_and_name_checks() -> None:
    item = parse_entry(
        {
            "name": "io.github.a/b",
            "description": "d",
            "version": "1",
            "tools": [{"name": "t1", "description": "x"}],
        },
        "x",
    )
    assert item.tools == [{"name": "t1", "description": "x"}]
    # Read without its junk, a list said the server's stored tools of those names were gone
    # (the run was "ok" and they were marked removed): the entry is malformed instead.
    for junk, why in (("junk", r"tools\[1\]"), ({"name": 7}, r"tools\[1\]"), ({"title": "x"}, r"tools\[1\]")):
        with pytest.raises(EntryError, match=why):
            parse_entry({"server": {"name": "io.a/b", "tools": [{"name": "t1"}, junk]}}, "x")
    # The store drops NUL from text: "x\0" was stored as, and over, the server "x".
    with pytest.raises(EntryError, match="NUL"):
        parse_entry({"server": {"name": "io.github.victim/srv\x00"}}, "official-registry")
    with pytest.raises(EntryError, match="tools is str, not a list"):
        parse_entry({"server": {"name": "io.a/b", "tools": "t1"}}, "x")
    with pytest.raises(EntryError, match="reverse-DNS"):
        parse_entry({"server": {"name": "bare", "description": "d"}}, "official-registry")
    with pytest.raises(EntryError, match="not a string"):
        parse_entry({"server": {"name": "io.a/b", "description": 42}}, "official-registry")
    # A publishedAt that is not a string is no timestamp (a dict was stored as its repr).
    meta = {"io.modelcontextprotocol.registry/official": {"publishedAt": {"x": 1}}}
    assert parse_entry({"server": {"name": "io.a/b"}, "_meta": meta}, "official-registry").published_at is None
    # Past the column's 64 characters PostgreSQL refused the whole server.
    meta = {"io.modelcontextprotocol.registry/official": {"publishedAt": "2025-10-01T00:00:00." + "0" * 60 + "Z"}}
    assert parse_entry({"server": {"name": "io.a/b"}, "_meta": meta}, "official-registry").published_at is None


@pytest.mark.parametrize(
    "metadata",
    # Each ended the listing quietly: the run was "ok", and a full crawl marked every server
    # on the pages never read as removed.
    [{"nextCursor": 2}, ["c2"], "c2"],
)
def test_a_page_ending_that_cannot_be_read_is_an_error_not_the_last_page(metadata: object) -> None:
    sp = spider()
    page = json.dumps({"servers": [{"server": {"name": "io.github.example/a"}}], "metadata": metadata})
    out = list(sp.parse_page(response("http://registry.test/v0.1/servers", page.encode()), api="v0.1"))
    assert [o.name for o in out if isinstance(o, ServerItem)] == ["io.github.example/a"]
    assert not any(isinstance(o, Request) for o in out)
    assert len(sp.errors) == 1 and "not" in sp.errors[0], sp.errors


def test_an_empty_page_with_a_cursor_is_followed() -> None:
    # A filtered page may hold nothing and still have more after it.
    sp = spider()
    page = json.dumps({"servers": [], "metadata": {"nextCursor": "c2"}})
    out = list(sp.parse_page(response("http://registry.test/v0.1/servers", page.encode()), api="v0.1"))
    assert len(out) == 1 and isinstance(out[0], Request) and "cursor=c2" in out[0].url and not sp.errors


def test_curated_list_is_valid_registry_shape() -> None:
    data = json.loads(CURATED_FILE.read_text())
    crawler = get_crawler(CuratedSpider)
    sp = CuratedSpider.from_crawler(crawler)
    items = list(sp.parse_page(response(CURATED_FILE.as_uri(), CURATED_FILE.read_bytes()), api="file"))
    assert len(items) == len(data["servers"]) >= 2 and not sp.malformed
    assert {p["registryType"] for i in items for p in i.packages} == {"pypi", "npm"}


def test_a_dropped_connection_is_said_in_words() -> None:
    # A catalogue that closed the connection without answering: the error line was the repr
    # of Twisted's list of failures.
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure
    from twisted.web._newclient import ResponseNeverReceived

    from crawler.spiders.registry_api import failure_text

    dropped = Failure(ResponseNeverReceived([Failure(ConnectionDone())]))
    assert failure_text(dropped) == "no response (ConnectionDone: Connection was closed cleanly.)"
    assert failure_text(Failure(ValueError("bad port"))) == "bad port"
