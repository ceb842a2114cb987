"""Smithery's registry: list pages, each server's record, and the API key kept where it belongs.

The spider is read field by field on pages in Smithery's documented shapes (``servers`` with
``pagination``; a record with ``connections`` and ``tools``), then crawled as a user does
(`catalog crawl --source smithery` in a subprocess, the catalogue on loopback wanting a key)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from scrapy.http import Request
from scrapy.utils.test import get_crawler

from crawler.items import CATALOGUE_NAMESPACES, ServerItem
from crawler.middlewares import CatalogueKeyMiddleware, origin
from crawler.spiders.registry_api import EntryError
from crawler.spiders.smithery import MAX_CONNECTIONS, SmitherySpider, smithery_entry
from tests.conftest import run_cli
from tests.test_catalogues import CANCEL, READ_FILE, TIME, response
from tests.test_policies import SEED_POLICY

KEY = "sk-test-7f3a9c0d1e2b"
BASE = "http://smithery.test/servers"


def listed(name: str, **extra: Any) -> dict[str, Any]:
    """A list entry as Smithery's ``GET /servers`` gives it."""
    return {
        "qualifiedName": name,
        "displayName": name.rsplit("/", 1)[-1].title(),
        "description": f"The {name} server",
        "homepage": f"https://smithery.ai/server/{name}",
        "useCount": 12,
        "createdAt": "2025-06-01T10:15:00Z",
        **extra,
    }


def page(names: list[Any], total: int | None = None, page_no: int = 1, pages: int = 1) -> dict[str, Any]:
    servers = [listed(n) if isinstance(n, str) else n for n in names]
    count = len(servers) if total is None else total
    return {
        "servers": servers,
        "pagination": {"currentPage": page_no, "pageSize": 100, "totalPages": pages, "totalCount": count},
    }


def record(name: str, tools: list[dict[str, Any]] | None, connections: list[Any] | None = None) -> dict[str, Any]:
    """A server's record as ``GET /servers/{qualifiedName}`` gives it."""
    return {
        "qualifiedName": name,
        "displayName": name.rsplit("/", 1)[-1].title(),
        "iconUrl": "https://smithery.ai/icon.png",
        "remote": True,
        "connections": connections or [],
        "security": {"scanPassed": True},
        "tools": tools,
    }


@pytest.fixture
def spider(monkeypatch: pytest.MonkeyPatch) -> SmitherySpider:
    monkeypatch.setenv("SMITHERY_API_KEY", KEY)
    return SmitherySpider.from_crawler(get_crawler(SmitherySpider), base_url=BASE)


def test_list_pages_ask_for_each_server_record(spider: SmitherySpider) -> None:
    assert spider.list_url(1) == f"{BASE}?page=1&pageSize=100"
    out = list(
        spider.parse_list(
            response(spider.list_url(1), page(["acme/trader", "@old/files", "../etc", "acme/trader"], 4, 1, 2)), page=1
        )
    )
    asks = [o.url for o in out if isinstance(o, Request) and o.callback == spider.parse_record]
    # The slash of a qualified name is escaped (one path segment); a name read twice is asked once.
    assert asks == [f"{BASE}/acme%2Ftrader", f"{BASE}/@old%2Ffiles"]
    assert [o.url for o in out if isinstance(o, Request) and o.callback == spider.parse_list] == [
        f"{BASE}?page=2&pageSize=100"
    ]
    assert spider.malformed == ["page 1 entry 2: qualifiedName '../etc' is not a name"]


def test_a_record_is_read_field_by_field() -> None:
    stdio = {
        "type": "stdio",
        "bundleUrl": "https://backend.smithery.test/bundles/x/server.mcpb",
        "runtime": "node",
        "stdioFunction": "config => ({command: 'sh', args: ['-c', 'touch /tmp/pwned']})",
        "configSchema": {},
    }
    http = {"type": "http", "deploymentUrl": "https://server.smithery.test/acme/trader/mcp", "configSchema": {}}
    item = smithery_entry(listed("acme/trader"), record("acme/trader", [CANCEL], [http, stdio, http]), "smithery")
    assert item.name == "smithery/acme/trader" and item.source == "smithery"
    assert item.title == "Trader" and item.description == "The acme/trader server"
    assert item.website_url == "https://smithery.ai/server/acme/trader"
    assert item.published_at == "2025-06-01T10:15:00Z"
    assert item.tools == [CANCEL]
    assert item.remotes == [{"type": "streamable-http", "url": "https://server.smithery.test/acme/trader/mcp"}]
    # The bundle is recorded (never installed here); the stdioFunction's code is not kept at all.
    assert item.packages == [{"registryType": "mcpb", "identifier": stdio["bundleUrl"], "transport": {"type": "stdio"}}]
    assert "pwned" not in json.dumps(item.__dict__, default=str)
    # Not scanned (null or empty tools): unknown, which keeps the stored tools.
    assert smithery_entry(listed("a/b"), record("a/b", None), "smithery").tools is None
    assert smithery_entry(listed("a/b"), record("a/b", []), "smithery").tools is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "its record is list, not an object"),
        (record("acme/other", [TIME]), "its record is another server's ('acme/other')"),
        ({**record("acme/x", [TIME]), "connections": {"type": "http"}}, "connections is not a list of objects"),
        (record("acme/x", [{"description": "no name"}]), "tools[0] is not a tool with a name"),
        ({**record("acme/x", [TIME]), "displayName": 7}, "displayName is int, not a string"),
    ],
)
def test_a_malformed_record_says_why(body: Any, reason: str) -> None:
    with pytest.raises(EntryError, match=reason.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        smithery_entry(listed("acme/x"), body, "smithery")


def test_a_record_that_cannot_be_read_is_that_servers_problem(spider: SmitherySpider) -> None:
    entry = listed("acme/x")
    assert list(spider.parse_record(response(f"{BASE}/acme%2Fx", b"{oops"), listed=entry)) == []
    assert spider.errors == [] and len(spider.malformed) == 1 and spider.malformed[0].startswith("acme/x: ")
    gone = response(f"{BASE}/acme%2Fx", {"error": "not found"})
    gone.status = 404
    assert list(spider.parse_record(gone, listed=entry)) == []
    assert spider.malformed[1] == "acme/x: its record answered HTTP 404"
    ok = list(spider.parse_record(response(f"{BASE}/acme%2Fx", record("acme/x", [TIME])), listed=entry))
    assert [i.name for i in ok if isinstance(i, ServerItem)] == ["smithery/acme/x"]


@pytest.mark.parametrize(
    ("pagination", "reason"),
    [
        (None, "no pagination with totalPages and totalCount"),
        ({"totalPages": "2", "totalCount": 3}, "no pagination with totalPages and totalCount"),
        ({"totalPages": True, "totalCount": 3}, "no pagination with totalPages and totalCount"),
        ({"totalPages": 1, "totalCount": 5}, "read 2 different servers where Smithery counted 5"),
    ],
)
def test_a_listing_whose_end_cannot_be_trusted_is_an_error(
    spider: SmitherySpider, pagination: Any, reason: str
) -> None:
    body = {"servers": [listed("a/b"), listed("c/d")], "pagination": pagination}
    list(spider.parse_list(response(spider.list_url(1), body), page=1))
    assert len(spider.errors) == 1 and reason in spider.errors[0], spider.errors


def test_many_connections_are_read_in_linear_time_and_capped() -> None:
    http = [{"type": "http", "deploymentUrl": f"https://h{i}.test/mcp"} for i in range(200_000)]
    stdio = [{"type": "stdio", "bundleUrl": f"https://b.test/{i}.mcpb"} for i in range(200_000)]
    item = smithery_entry(listed("a/b"), record("a/b", [TIME], http + http + stdio), "smithery")
    # (Compared each against the ones before, 40,000 connections took 34 s.)
    assert len(item.remotes) == len(item.packages) == MAX_CONNECTIONS
    assert item.remotes[1] == {"type": "streamable-http", "url": "https://h1.test/mcp"}


def test_an_empty_page_before_the_last_stops_the_listing(spider: SmitherySpider) -> None:
    # A page count of 10**12 walked 10,000 empty pages, each asked with the key.
    out = list(spider.parse_list(response(spider.list_url(2), page([], 1, 2, 10**12)), page=2))
    assert [o for o in out if isinstance(o, Request)] == []
    assert spider.errors == [f"{spider.list_url(2)}: page 2 of {10**12} holds no server; stopped"]


def test_an_international_host_gets_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMITHERY_API_KEY", KEY)
    sp = SmitherySpider.from_crawler(get_crawler(SmitherySpider), base_url="http://bücher.test/servers")
    crawler = get_crawler(SmitherySpider)
    crawler.spider = sp
    req = Request(sp.list_url(1))  # Scrapy sends the host in punycode
    assert req.url.startswith("http://xn--bcher-kva.test/")
    CatalogueKeyMiddleware.from_crawler(crawler).process_request(req)
    assert req.headers[b"Authorization"] == f"Bearer {KEY}".encode()


def test_a_list_that_moved_between_pages_is_not_complete(spider: SmitherySpider) -> None:
    # Page 2 repeats a server of page 1 (it moved down): three different servers of four.
    list(spider.parse_list(response(spider.list_url(1), page(["a/one", "a/two"], 4, 1, 2)), page=1))
    list(spider.parse_list(response(spider.list_url(2), page(["a/two", "a/three"], 4, 2, 2)), page=2))
    assert spider.errors == [
        "read 3 different servers where Smithery counted 4: its list moved while it was read, so it is "
        "not taken as complete (nothing is marked removed)"
    ]
    # The same number of servers, but a count that changed between pages, is no complete list either.
    other = SmitherySpider.from_crawler(get_crawler(SmitherySpider), base_url=BASE)
    list(other.parse_list(response(other.list_url(1), page(["a/one", "a/two"], 4, 1, 2)), page=1))
    list(other.parse_list(response(other.list_url(2), page(["a/three"], 3, 2, 2)), page=2))
    assert len(other.errors) == 1 and "counted 3/4" in other.errors[0]


def test_a_base_url_keeps_its_own_filter(spider: SmitherySpider) -> None:
    sp = SmitherySpider.from_crawler(get_crawler(SmitherySpider), base_url=f"{BASE}?q=is%3Averified&page=9")
    assert sp.list_url(2) == f"{BASE}?q=is%3Averified&page=2&pageSize=100"
    assert sp.record_url("acme/x") == f"{BASE}/acme%2Fx"


def test_the_key_goes_to_the_catalogues_origin_only(spider: SmitherySpider) -> None:
    crawler = get_crawler(SmitherySpider)
    crawler.spider = spider
    mw = CatalogueKeyMiddleware.from_crawler(crawler)
    mine = Request(f"{BASE}?page=1")
    mw.process_request(mine)
    assert mine.headers[b"Authorization"] == f"Bearer {KEY}".encode()
    mw.process_response(mine, response(mine.url, b"{}"))
    assert b"Authorization" not in mine.headers  # before the cache writes the request down
    for elsewhere in (
        "http://smithery.test:8080/servers",  # another port
        "https://smithery.test/servers",  # another scheme
        "http://evil.test/servers",
        "http://smithery.test.evil.test/servers",
    ):
        req = Request(elsewhere, headers={"Authorization": f"Bearer {KEY}"})  # as a redirect copies it
        mw.process_request(req)
        assert b"Authorization" not in req.headers, elsewhere
    assert origin("HTTP://Smithery.TEST/x") == origin("http://smithery.test:80/y") == ("http", "smithery.test", 80)
    # A spider without a key is left alone, its own headers kept.
    plain = get_crawler(SmitherySpider)
    plain.spider = type("Plain", (), {})()
    req = Request("http://x.test/", headers={"Authorization": "Basic abc"})
    CatalogueKeyMiddleware.from_crawler(plain).process_request(req)
    assert req.headers[b"Authorization"] == b"Basic abc"


def test_smithery_records_are_a_catalogues_namespace() -> None:
    assert "smithery/" in CATALOGUE_NAMESPACES


# -- crawled as a user does -------------------------------------------------------------------


def crawl(db: str, cache: Path, *args: str, key: str | None = KEY) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "SMITHERY_API_KEY"}
    if key is not None:
        env["SMITHERY_API_KEY"] = key
    return run_cli(
        "crawl", "--source", "smithery", *args, "--timeout", "5", "--cache-dir", str(cache), "--db", db, env=env
    )


@pytest.mark.live
def test_smithery_crawl_stores_records_and_keeps_the_key_secret(
    http_routes, trading_server: str, db_url: str, tmp_path: Path
) -> None:
    base, routes = http_routes
    routes.key = KEY
    api = "/servers"
    url = f"{base}{api}"
    cache = tmp_path / "cache"
    stdio = {
        "type": "stdio",
        "bundleUrl": f"{base}/bundles/files.mcpb",
        "runtime": "node",
        "stdioFunction": f"config => ({{command: 'touch', args: ['{tmp_path / 'pwned'}']}})",
        "configSchema": {},
    }
    hosted = {"type": "http", "deploymentUrl": f"{trading_server}/mcp", "configSchema": {}}
    routes.set(f"{api}?page=1&pageSize=100", page(["acme/trader", "acme/files"], 3, 1, 2))
    routes.set(f"{api}?page=2&pageSize=100", page(["acme/hosted"], 3, 2, 2))
    routes.set(f"{api}/acme%2Ftrader", record("acme/trader", [CANCEL]))
    routes.set(f"{api}/acme%2Ffiles", record("acme/files", [READ_FILE, TIME], [stdio]))
    routes.set(f"{api}/acme%2Fhosted", record("acme/hosted", None, [hosted]))
    args = ("--source-url", f"smithery={url}")
    db = db_url

    # Without a key the crawl does not start (every request would be refused).
    none = crawl(db, cache, *args, key=None)
    assert none.returncode == 2 and "set SMITHERY_API_KEY" in none.stderr and none.stderr.count("\n") == 1
    assert routes.hits == []

    first = crawl(db, cache, *args)
    assert first.returncode == 0, first.stderr
    # 1 + 2 tools from the records, 4 from the hosted server asked live.
    assert first.stdout.startswith("crawl finished: 3 servers, 7 tools"), first.stdout
    assert "0 malformed entries skipped" in first.stdout and "incomplete" not in first.stdout, first.stdout
    rec = run_cli(
        "recommend",
        "BinanceFuturesCancelBatchOrders",
        "--server",
        "smithery/acme/trader",
        "--format",
        "json",
        "--db",
        db,
    )
    assert rec.returncode == 0 and rec.stdout.strip() == SEED_POLICY
    files = json.loads(run_cli("server", "smithery/acme/files", "--format", "json", "--db", db).stdout)
    assert files["sources"] == ["smithery"] and files["tools_listed_by"] == "catalogue"
    # A record Smithery did not scan is introspected at its remote, live.
    hosted_out = json.loads(run_cli("server", "smithery/acme/hosted", "--format", "json", "--db", db).stdout)
    assert hosted_out["tools_listed_by"] != "catalogue" and "BinanceFuturesCancelBatchOrders" in hosted_out["tools"]
    assert not (tmp_path / "pwned").exists()  # the stdioFunction was never run
    assert all(not p.startswith("/bundles/") for p in routes.hits)  # nor the bundle fetched

    # Every request to the catalogue carried the key; none was ever written down or printed.
    assert all(auth == f"Bearer {KEY}" for path, auth in routes.authorizations if path.startswith(api))
    written = [p for p in cache.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert written == [], written
    assert KEY not in first.stdout + first.stderr
    if db.startswith("sqlite:///"):
        assert KEY.encode() not in Path(db.removeprefix("sqlite:///")).read_bytes()

    # A list that moved while it was read stores what it read and removes nothing.
    routes.set(f"{api}?page=2&pageSize=100", page(["acme/trader"], 3, 2, 2))
    moved = crawl(db, cache, "--full", *args)
    assert moved.returncode == 0 and "1 source(s) incomplete (smithery: read 2 different servers" in moved.stdout
    assert json.loads(run_cli("stats", "--format", "json", "--db", db).stdout)["servers"] == 3

    # Counts that agree may hide a server missed for one added ([trader, files | hosted] read as
    # [trader, files | fresh]): the stored record the list did not name still answers, so it stays.
    routes.set(f"{api}?page=2&pageSize=100", page(["acme/fresh"], 3, 2, 2))
    routes.set(f"{api}/acme%2Ffresh", record("acme/fresh", [TIME]))
    churn = crawl(db, cache, "--full", *args)
    assert churn.returncode == 0 and "incomplete" not in churn.stdout, churn.stdout
    assert json.loads(run_cli("stats", "--format", "json", "--db", db).stdout)["servers"] == 4
    # A complete listing without a server whose own page is gone too removes it.
    routes.set(f"{api}?page=1&pageSize=100", page(["acme/trader", "acme/files"], 2, 1, 1))
    del routes.routes[f"{api}/acme%2Ffresh"]
    del routes.routes[f"{api}/acme%2Fhosted"]
    whole = crawl(db, cache, "--full", *args)
    assert whole.returncode == 0 and "incomplete" not in whole.stdout, whole.stdout
    diff = json.loads(run_cli("diff", "--format", "json", "--db", db).stdout)
    assert sorted(diff["removed_servers"]) == ["smithery/acme/fresh", "smithery/acme/hosted"], diff

    # A wrong key: the run fails saying so, without printing either key, and nothing is lost.
    wrong = crawl(db, cache, *args, key="sk-wrong-0000")
    assert wrong.returncode == 1, wrong.stdout
    assert "HTTP 401 (is SMITHERY_API_KEY a valid Smithery API key?)" in wrong.stderr
    assert KEY not in wrong.stdout + wrong.stderr and "sk-wrong" not in wrong.stdout + wrong.stderr
    assert json.loads(run_cli("stats", "--format", "json", "--db", db).stdout)["servers"] == 2


@pytest.mark.live
def test_a_redirect_elsewhere_never_carries_the_key(http_routes, tmp_path: Path) -> None:
    base, routes = http_routes
    routes.key = KEY
    # The same loopback server under another origin (localhost, not 127.0.0.1): the key is for
    # the origin the user named, so the redirected request goes without it (and gets 401).
    port = base.rsplit(":", 1)[1]
    routes.set("/servers?page=1&pageSize=100", f"http://localhost:{port}/moved?page=1".encode(), status=302)
    routes.set("/moved?page=1", page(["acme/trader"]))
    out = crawl(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache", "--source-url", f"smithery={base}/servers")
    moved = [auth for path, auth in routes.authorizations if path.startswith("/moved")]
    assert moved == [None], routes.authorizations
    assert out.returncode == 1 and "HTTP 401" in out.stderr
