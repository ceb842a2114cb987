"""Catalogues beyond the MCP Registry API: Glama's directory and ToolHive registry documents.

Both carry tool definitions in their entries, so a crawl of them stores tools without starting
anything; the spiders are read field by field on pages written in each catalogue's real shape,
then crawled as a user does (`catalog crawl` in a subprocess, the catalogue on loopback)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from catalog.store.db import open_store
from catalog.store.records import ServerRecord
from catalog.store.repository import latest_listing, record_tools, upsert_server
from crawler.items import ServerItem
from crawler.spiders import registry_api, toolhive
from crawler.spiders.glama import GlamaSpider, glama_entry
from crawler.spiders.registry_api import (
    MAX_PAGE_CONTAINERS,
    EntryError,
    PageTooLarge,
    containers,
    load_page,
    parse_entry,
)
from crawler.spiders.toolhive import ToolHiveSpider, legacy_entry
from tests.conftest import PACKAGE_CACHE, registry_page, run_cli
from tests.test_crawl import entry as registry_entry
from tests.test_policies import SEED_POLICY
from tests.test_spider import response as page_response

CANCEL = {
    "name": "BinanceFuturesCancelBatchOrders",
    "description": "Cancel multiple USD-M Futures orders in batch (max 10 orders)",
    "inputSchema": {"type": "object", "properties": {"symbol": {"type": "string"}}},
}
READ_FILE = {
    "name": "read_file",
    "description": "Read the complete contents of a file from the file system.",
    "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
}
TIME = {
    "name": "get_current_time",
    "description": "Get current time in a specific timezone",
    "inputSchema": {"type": "object", "properties": {"timezone": {"type": "string"}}},
}


def response(url: str, body: Any) -> TextResponse:
    """A page answering ``url``: bytes as they are, anything else as its JSON."""
    return page_response(url, body if isinstance(body, bytes) else json.dumps(body).encode())


def glama_server(slug: str, tools: list[dict[str, Any]] | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{slug}",
        "name": slug.replace("-", " ").title(),
        "namespace": "example",
        "slug": slug,
        "description": f"The {slug} server.",
        "url": f"https://glama.test/mcp/servers/example/{slug}",
        "repository": {"url": f"https://github.com/example/{slug}"},
        "attributes": ["hosting:remote-capable"],
        "tools": tools if tools is not None else [],
        **extra,
    }


def glama_page(servers: list[dict[str, Any]], cursor: str | None = None) -> dict[str, Any]:
    return {
        "servers": servers,
        "pageInfo": {
            "startCursor": "s",
            "endCursor": cursor,
            "hasNextPage": cursor is not None,
            "hasPreviousPage": False,
        },
    }


def glama_spider() -> GlamaSpider:
    return GlamaSpider.from_crawler(get_crawler(GlamaSpider), base_url="http://glama.test/api/mcp/v1/servers")


def test_glama_page_is_read_field_by_field() -> None:
    sp = glama_spider()
    url = sp.page_url("", None)
    assert url == "http://glama.test/api/mcp/v1/servers?first=100"
    page = glama_page(
        [
            glama_server("trader", [CANCEL]),
            glama_server("uninspected", []),  # Glama could not list its tools: unknown, not none
            glama_server("../../etc", [TIME]),  # not a name: skipped with its reason
            glama_server("broken", [{"description": "a tool without a name"}]),
            "not an object",
        ],
        cursor="c2",
    )
    out = list(sp.parse_glama(response(url, page)))
    items = [o for o in out if isinstance(o, ServerItem)]
    trader, uninspected = items
    assert trader.name == "glama/example/trader" and trader.source == "glama"
    assert trader.title == "Trader" and trader.description == "The trader server."
    assert trader.repository_url == "https://github.com/example/trader"
    assert trader.website_url == "https://glama.test/mcp/servers/example/trader"
    assert trader.tools == [CANCEL] and trader.packages == [] and trader.remotes == []
    assert uninspected.tools is None
    assert len(sp.malformed) == 3
    assert any("'../../etc'" in m and "not a name" in m for m in sp.malformed)
    assert any("(broken)" in m and "tools[0] is not a tool with a name" in m for m in sp.malformed)
    [nxt] = [o for o in out if isinstance(o, Request)]
    assert nxt.url == "http://glama.test/api/mcp/v1/servers?first=100&after=c2"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed JSON"),
        ({"data": []}, "no 'servers' array"),
        ({"servers": []}, "no pageInfo object"),
        ({"servers": [], "pageInfo": {"hasNextPage": "yes"}}, "hasNextPage is str, not a boolean"),
        ({"servers": [], "pageInfo": {"hasNextPage": True, "endCursor": None}}, "hasNextPage without an endCursor"),
    ],
)
def test_a_glama_page_whose_end_cannot_be_read_is_an_error(body: Any, reason: str) -> None:
    # Read as a quiet last page, it made a cut listing complete, and a full crawl then marked
    # the servers on the unread pages removed.
    sp = glama_spider()
    assert [o for o in sp.parse_glama(response("http://glama.test/x", body)) if isinstance(o, Request)] == []
    assert len(sp.errors) == 1 and reason in sp.errors[0], sp.errors


def test_a_glama_base_url_keeps_its_own_filter() -> None:
    # `?query=github` had `?first=100` appended after it: the filter became "github?first=100".
    sp = GlamaSpider.from_crawler(get_crawler(GlamaSpider), base_url="http://glama.test/servers?query=git+hub&first=5")
    assert sp.page_url("", None) == "http://glama.test/servers?query=git+hub&first=100"
    assert sp.page_url("", "c/2") == "http://glama.test/servers?query=git+hub&first=100&after=c%2F2"


def test_names_fit_the_store_and_keep_to_their_namespace() -> None:
    # PostgreSQL refused a 407-character name and a 101-character version that SQLite stored,
    # and the source's runs were never complete again (nothing of it was ever removed).
    longest = glama_entry({"namespace": "n" * 190, "slug": "s" * 190, "tools": []}, "glama")
    assert len(longest.name) <= 400
    with pytest.raises(EntryError, match="not a name"):
        glama_entry({"namespace": "n" * 191, "slug": "s", "tools": []}, "glama")
    assert legacy_entry("k", {"image": "x:" + "1" * 101}, "toolhive", remote=False).version is None
    # Another catalogue's entry spelled like theirs would take over a Glama or ToolHive server.
    for name in ("glama/example/trader", "toolhive/io.github.stacklok/trader"):
        with pytest.raises(EntryError, match="kept for another catalogue"):
            parse_entry({"server": {"name": name}}, "official-registry")


def test_a_page_of_too_many_objects_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 120 MB page of `{}` took 7.6 GB to parse; an introspection answer was already bounded.
    sp = glama_spider()
    body = b'{"servers": [' + b"{}," * MAX_PAGE_CONTAINERS + b'{}], "pageInfo": {"hasNextPage": false}}'
    parsed: list[int] = []
    monkeypatch.setattr(registry_api.json, "loads", lambda b: parsed.append(1) or json.JSONDecoder().decode(b.decode()))
    assert list(sp.parse_glama(response("http://glama.test/x", body))) == []
    assert "refused, 1,000,004 objects and arrays, more than 1,000,000" in sp.errors[0] and parsed == []
    # Brackets inside a string are text: one server's description of a million `{` refused the
    # whole page (every other server on it, and with it the source's updates and removals).
    sp = glama_spider()
    loud = glama_server("loud", [{**TIME, "description": "{" * (MAX_PAGE_CONTAINERS + 1) + ' \\"['}])
    body = json.dumps(glama_page([loud, glama_server("quiet", [TIME])])).encode()
    assert [i.name for i in sp.parse_glama(response("http://glama.test/x", body))] == [
        "glama/example/loud",
        "glama/example/quiet",
    ]
    assert sp.errors == []


@pytest.mark.parametrize(
    "body",
    [
        # An unterminated string of escaped quotes: a regular expression over the strings
        # rescanned to the end from every quote (40,000 of them took 35 s).
        b"[" * (MAX_PAGE_CONTAINERS + 1) + b'"\\' * 200_000,
        # One long string: the expression kept state per character (60 MB took 7 GB).
        b"[" * (MAX_PAGE_CONTAINERS + 1) + b'"' + b"x" * 10_000_000 + b'"',
        # UTF-16: a character whose half is a quote byte hid real arrays inside a "string".
        ('{"servers":[],"x":"\u2200","pad":[' + "[]," * (MAX_PAGE_CONTAINERS + 1) + "[]]}").encode("utf-16-le"),
        ('{"servers":[],"x":"∀","pad":[' + "[]," * (MAX_PAGE_CONTAINERS + 1) + "[]]}").encode("utf-16-le"),
    ],
)
def test_hostile_pages_are_counted_in_one_pass(body: bytes) -> None:
    with pytest.raises(PageTooLarge, match="more than 1,000,000"):
        load_page(body)


def test_a_lone_surrogate_reads_as_json_reads_it() -> None:
    # Converted strictly to UTF-8 for the count, a UTF-16 page with one lone surrogate was
    # unreadable whole, though json.loads reads it.
    body = '{"a": "x\ud800"}'.encode("utf-16-le", "surrogatepass")
    assert load_page(body) == json.loads(body)


def test_tools_stored_before_listed_attempts_read_as_a_catalogues(tmp_path: Path) -> None:
    # A catalogue's tools stored before `listed` attempts were recorded said "listed by: null".
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    with store.session() as session:
        server = upsert_server(session, ServerRecord(name="glama/a/b", source="glama"))
        assert latest_listing(session, server) is None
        record_tools(session, server, [TIME])
        assert latest_listing(session, server) == "catalogue"
    store.dispose()


def test_page_containers_are_counted_outside_strings() -> None:
    for doc in [{"a": "{[", "b": ['\\"[', {"c": "\\"}]}, ["∀", {"é": '"{'}], []]:
        for ascii_only in (True, False):
            text = json.dumps(doc, ensure_ascii=ascii_only)
            expected = text.count("{") + text.count("[") - sum(s.count("{") + s.count("[") for s in _strings(doc))
            assert containers(text.encode()) == expected, text


def _strings(doc: Any) -> list[str]:
    """Every string of ``doc`` as JSON spells it (keys too)."""
    if isinstance(doc, str):
        return [json.dumps(doc)]
    if isinstance(doc, list):
        return [s for d in doc for s in _strings(d)]
    return [s for k, v in doc.items() for s in _strings(k) + _strings(v)]


def test_a_toolhive_file_is_checked_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    def start(path: str) -> tuple[ToolHiveSpider, list[Any]]:
        sp = ToolHiveSpider.from_crawler(get_crawler(ToolHiveSpider), base_url=path)

        async def drain() -> list[Any]:
            return [r async for r in sp.start()]

        return sp, asyncio.run(drain())

    big = tmp_path / "big.json"
    big.write_text("{}" * 10)
    monkeypatch.setattr(toolhive, "MAX_DOCUMENT_BYTES", 10)
    sp, requests = start(str(big))
    assert requests == [] and "20 bytes, more than 10" in sp.errors[0]
    sp, requests = start(str(tmp_path / "missing.json"))
    assert requests == [] and "No such file or directory" in sp.errors[0]
    # A symlink is the catalogue, not its target of the day (a ConfigMap swaps the target on
    # every update, and each new target read as another catalogue held back every removal).
    link = tmp_path / "registry.json"
    link.symlink_to(big)
    sp, _ = start(str(link))
    assert sp.base_url == link.as_uri()


def test_a_repeated_glama_cursor_stops_the_listing() -> None:
    sp = glama_spider()
    page = glama_page([glama_server("a", [TIME])], cursor="same")
    assert len([o for o in sp.parse_glama(response("http://glama.test/1", page)) if isinstance(o, Request)]) == 1
    assert [o for o in sp.parse_glama(response("http://glama.test/2", page)) if isinstance(o, Request)] == []
    assert "cursor 'same' again" in sp.errors[0]


def legacy_registry() -> dict[str, Any]:
    """A ToolHive registry document in the legacy shape (its keys as ToolHive writes them)."""
    return {
        "$schema": "https://example.test/toolhive-legacy-registry.schema.json",
        "version": "1.0.0",
        "last_updated": "2026-11-20T00:00:00Z",
        "servers": {
            "trader": {
                "title": "Trader",
                "description": "Futures trading",
                "tier": "Community",
                "status": "Active",
                "transport": "stdio",
                "image": "ghcr.io/example/trader:1.4.2",
                "repository_url": "https://github.com/example/trader",
                "tools": ["BinanceFuturesCancelBatchOrders"],
                "tool_definitions": [CANCEL],
                "metadata": {"stars": 3, "last_updated": "2026-11-19T10:00:00Z"},
                "env_vars": [{"name": "API_KEY", "required": True, "secret": True}],
            },
            "names-only": {
                "description": "Tool names without definitions",
                "transport": "stdio",
                "image": "registry.example.test:5000/names-only",
                "tools": ["a", "b"],
            },
        },
        "remote_servers": {
            "files": {
                "description": "Files over HTTP",
                "transport": "streamable-http",
                "url": "https://files.example.test/mcp",
                "tool_definitions": [READ_FILE],
                "custom_metadata": {"homepage": "https://files.example.test"},
            },
        },
    }


def test_toolhive_legacy_entries_are_read_field_by_field() -> None:
    sp = ToolHiveSpider.from_crawler(get_crawler(ToolHiveSpider), base_url="http://th.test/registry.json")
    items = list(sp.parse_document(response("http://th.test/registry.json", legacy_registry())))
    by_name = {i.name: i for i in items}
    # Named as ToolHive names its entries in the upstream format, under ToolHive's namespace.
    trader, names, files = (by_name[f"toolhive/io.github.stacklok/{k}"] for k in ("trader", "names-only", "files"))
    assert trader.tools == [CANCEL] and trader.version == "1.4.2" and trader.title == "Trader"
    assert trader.packages == [
        {"registryType": "oci", "identifier": "ghcr.io/example/trader:1.4.2", "transport": {"type": "stdio"}}
    ]
    assert (
        trader.published_at == "2026-11-19T10:00:00Z" and trader.repository_url == "https://github.com/example/trader"
    )
    # Names alone are no definitions: the tools stay unknown (a container cannot be started here).
    assert names.tools is None and names.version is None  # a registry's port is no tag
    assert files.remotes == [{"type": "streamable-http", "url": "https://files.example.test/mcp"}]
    assert files.tools == [READ_FILE] and files.website_url == "https://files.example.test"
    assert sp.pages == 1 and sp.errors == [] and sp.malformed == []


@pytest.mark.parametrize(
    ("entry", "remote", "reason"),
    [
        ({"description": "no image"}, False, "missing image"),
        ({"image": "x:1", "transport": "carrier-pigeon"}, False, "transport 'carrier-pigeon' is not one of"),
        ({"url": "https://x.test/mcp", "transport": "stdio"}, True, "remote server with transport 'stdio'"),
        ({"image": "x:1", "tool_definitions": [{"name": ""}]}, False, "tool_definitions[0] is not a tool with a name"),
        ({"image": "x:1", "tool_definitions": {"name": "t"}}, False, "tool_definitions is dict, not a list"),
        ("a string", False, "entry is str, not an object"),
    ],
)
def test_a_malformed_toolhive_entry_says_why(entry: Any, remote: bool, reason: str) -> None:
    with pytest.raises(EntryError) as info:
        legacy_entry("k", entry, "toolhive", remote=remote)
    assert reason in str(info.value)


@pytest.mark.parametrize("key", ["a/b", "a\nb", "", " ", "-x", "x" * 201, 5])
def test_a_toolhive_key_that_is_no_name_is_malformed(key: Any) -> None:
    # Stored as `toolhive/io.github.stacklok/KEY`, a slash or a newline made a name of another shape.
    with pytest.raises(EntryError, match="server key is not a name"):
        legacy_entry(key, {"image": "x:1"}, "toolhive", remote=False)


def test_a_toolhive_key_in_both_maps_is_malformed() -> None:
    # Both named `toolhive/io.github.stacklok/KEY`: one was dropped without a word.
    sp = ToolHiveSpider.from_crawler(get_crawler(ToolHiveSpider), base_url="http://th.test/registry.json")
    doc = {"servers": {"k": {"image": "x:1"}}, "remote_servers": {"k": {"url": "https://k.test/mcp"}}}
    assert [i.name for i in sp.parse_document(response("http://th.test/registry.json", doc))] == [
        "toolhive/io.github.stacklok/k"
    ]
    assert sp.malformed == ["remote_servers.k: the same key names a container and a remote"]


def test_toolhive_image_tags() -> None:
    def version(image: str) -> str | None:
        return legacy_entry("k", {"image": image}, "toolhive", remote=False).version

    assert version("ghcr.io/a/b:2.0") == "2.0"
    assert version("ghcr.io/a/b:latest") is None
    assert version("localhost:5000/a/b") is None
    assert version("ghcr.io/a/b@sha256:" + "0" * 64) is None


def test_toolhive_upstream_format_takes_tools_from_its_extension() -> None:
    sp = ToolHiveSpider.from_crawler(get_crawler(ToolHiveSpider), base_url="http://th.test/registry.json")
    doc = {
        "version": "1.0.0",
        "meta": {"last_updated": "2026-11-20T00:00:00Z"},
        "data": {
            "servers": [
                {
                    "name": "io.github.example/trader",
                    "description": "Futures trading",
                    "version": "1.4.2",
                    "packages": [
                        {
                            "registryType": "oci",
                            "identifier": "ghcr.io/example/trader:1.4.2",
                            "transport": {"type": "stdio"},
                        }
                    ],
                    "_meta": {
                        "io.modelcontextprotocol.registry/publisher-provided": {
                            "io.github.stacklok": {
                                "ghcr.io/example/trader:1.4.2": {"status": "active", "tool_definitions": [CANCEL]}
                            }
                        }
                    },
                },
                {"name": "io.github.example/bare", "description": "No extension"},
                {"description": "no name"},
            ]
        },
    }
    items = list(sp.parse_document(response("http://th.test/registry.json", doc)))
    assert [(i.name, i.tools) for i in items] == [
        ("toolhive/io.github.example/trader", [CANCEL]),
        ("toolhive/io.github.example/bare", None),
    ]
    assert len(sp.malformed) == 1 and "data.servers[2]" in sp.malformed[0] and "missing name" in sp.malformed[0]


@pytest.mark.parametrize("doc", [{"servers": []}, {"servers": {"a": {}}, "remote_servers": []}, [1], {"other": 1}])
def test_a_document_that_is_no_toolhive_registry_is_an_error(doc: Any) -> None:
    sp = ToolHiveSpider.from_crawler(get_crawler(ToolHiveSpider), base_url="http://th.test/registry.json")
    assert list(sp.parse_document(response("http://th.test/registry.json", doc))) == []
    assert len(sp.errors) == 1 and "not a ToolHive registry" in sp.errors[0]


# -- crawled as a user does -------------------------------------------------------------------


def crawl(db: str, *args: str) -> Any:
    return run_cli("crawl", *args, "--timeout", "5", "--cache-dir", str(PACKAGE_CACHE), "--db", db)


def stats(db: str) -> dict[str, Any]:
    out = run_cli("stats", "--format", "json", "--db", db)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.live
def test_glama_crawl_stores_and_classifies_catalogue_tools(http_routes, db_url: str) -> None:
    # On SQLite and PostgreSQL (which refuses what SQLite stores past a column's size).
    base, routes = http_routes
    db = db_url
    api = "/api/mcp/v1/servers"
    # The longest name a Glama entry may give fits the store's column on both databases.
    longest = glama_server("s" * 190, [TIME], namespace="n" * 190)
    page1 = [glama_server("trader", [CANCEL]), glama_server("empty", []), longest]
    routes.set(f"{api}?first=100", glama_page(page1, "c2"))
    routes.set(f"{api}?first=100&after=c2", glama_page([glama_server("files", [READ_FILE, TIME])]))
    args = ("--source", "glama", "--source-url", f"glama={base}{api}")
    first = crawl(db, *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("crawl finished: 4 servers, 4 tools (4 new definitions, 4 classified)"), first.stdout
    assert "0 malformed entries skipped" in first.stdout
    rec = run_cli("recommend", "BinanceFuturesCancelBatchOrders", "--format", "json", "--db", db)
    assert rec.returncode == 0 and rec.stdout.strip() == SEED_POLICY
    server = json.loads(run_cli("server", "glama/example/files", "--format", "json", "--db", db).stdout)
    assert server["sources"] == ["glama"] and set(server["tools"]) == {"read_file", "get_current_time"}
    assert server["tools_listed_by"] == "catalogue"
    assert [(a["transport"], a["outcome"], a["tools"]) for a in server["attempts"]] == [("catalogue", "listed", 2)]
    assert stats(db)["introspection"] == {}  # a catalogue's list is no introspection
    text = run_cli("server", "glama/example/files", "--db", db).stdout
    assert "tools    : 2 (" in text and "), as a catalogue lists them (not the server's own listing)" in text, text

    # A complete listing that no longer holds a server removes it; one cut short removes nothing.
    routes.set(f"{api}?first=100", glama_page([glama_server("trader", [CANCEL])], "c2"))
    routes.set(f"{api}?first=100&after=c2", b"{not json")
    cut = crawl(db, *args)
    assert cut.returncode == 0 and "1 source(s) incomplete (glama: " in cut.stdout, cut.stdout
    assert stats(db)["servers"] == 4
    routes.set(f"{api}?first=100&after=c2", glama_page([glama_server("empty", [])]))
    whole = crawl(db, *args)
    assert whole.returncode == 0, whole.stdout
    assert stats(db)["servers"] == 2
    diff = json.loads(run_cli("diff", "--format", "json", "--db", db).stdout)
    assert sorted(diff["removed_servers"]) == ["glama/example/files", f"glama/{'n' * 190}/{'s' * 190}"], diff


@pytest.mark.live
def test_toolhive_crawl_by_file_and_by_url(http_routes, trading_server: str, tmp_path: Path) -> None:
    base, routes = http_routes
    db = f"sqlite:///{tmp_path / 'c.db'}"
    doc = legacy_registry()
    # A remote without definitions in the catalogue is introspected live; one with them is not.
    doc["remote_servers"]["live"] = {"transport": "streamable-http", "url": f"{trading_server}/mcp"}
    doc["remote_servers"]["files"]["url"] = "http://127.0.0.1:9/mcp"  # never reached
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(doc))
    by_file = crawl(db, "--source", "toolhive", "--source-url", f"toolhive={path}")
    assert by_file.returncode == 0, by_file.stderr
    s = stats(db)
    assert s["servers"] == 4 and s["introspection"] == {"ok": 1, "skipped": 1}, s
    ns = "toolhive/io.github.stacklok"
    live = json.loads(run_cli("server", f"{ns}/live", "--format", "json", "--db", db).stdout)
    assert live["tools"]["withdraw_funds"] == "critical" and live["tools_listed_by"] == "server"
    names = json.loads(run_cli("server", f"{ns}/names-only", "--format", "json", "--db", db).stdout)
    assert names["tools"] == {} and "needs a container runtime" in names["attempts"][0]["error"]
    shown = json.loads(run_cli("show", "read_file", "--server", f"{ns}/files", "--db", db).stdout)
    assert shown["verdict"]["category"] == "filesystem"
    # A remote without a version is asked again on every crawl: nothing says it is unchanged
    # (it was skipped as "same version" None == None until a `--full` crawl).
    assert crawl(db, "--source", "toolhive", "--source-url", f"toolhive=file://{path}").returncode == 0
    live = json.loads(run_cli("server", f"{ns}/live", "--format", "json", "--db", db).stdout)
    assert [a["outcome"] for a in live["attempts"]] == ["ok", "ok"]
    # The document then gives the remote's definitions: ToolHive's claim replaces the live
    # listing, and the record says so (it still said "listed by the server").
    doc["remote_servers"]["live"]["tool_definitions"] = [TIME]
    path.write_text(json.dumps(doc))
    assert crawl(db, "--source", "toolhive", "--source-url", f"toolhive={path}").returncode == 0
    live = json.loads(run_cli("server", f"{ns}/live", "--format", "json", "--db", db).stdout)
    assert list(live["tools"]) == ["get_current_time"] and live["tools_listed_by"] == "catalogue"
    del doc["remote_servers"]["live"]["tool_definitions"]
    path.write_text(json.dumps(doc))
    assert crawl(db, "--source", "toolhive", "--source-url", f"toolhive={path}").returncode == 0
    live = json.loads(run_cli("server", f"{ns}/live", "--format", "json", "--db", db).stdout)
    assert "withdraw_funds" in live["tools"] and live["tools_listed_by"] == "server"
    # The same document moved to the upstream format keeps its servers (and their overrides).
    upstream = {"version": "1.0.0", "meta": {}, "data": {"servers": [{"name": "io.github.stacklok/files"}]}}
    path.write_text(json.dumps(upstream))
    assert crawl(db, "--source", "toolhive", "--source-url", f"toolhive={path}").returncode == 0
    assert json.loads(run_cli("server", f"{ns}/files", "--format", "json", "--db", db).stdout)["tools"]
    path.write_text(json.dumps(doc))

    routes.set("/registry.json", doc)
    by_url = crawl(db, "--source", "toolhive", "--source-url", f"toolhive={base}/registry.json", "--no-introspect")
    assert by_url.returncode == 0 and "4 servers" in by_url.stdout, by_url.stdout
    assert "/registry.json" in routes.hits
    # A refusal says its status (it said "Ignoring non-200 response").
    routes.set("/denied.json", {"error": "no"}, status=403)
    denied = crawl(db, "--source", "toolhive", "--source-url", f"toolhive={base}/denied.json")
    assert denied.returncode == 1 and "HTTP 403" in denied.stderr, denied
    # Read again unchanged, the document costs a conditional request (a 304), and is read whole.
    again = crawl(db, "--source", "toolhive", "--source-url", f"toolhive={base}/registry.json", "--no-introspect")
    assert again.returncode == 0 and "4 servers" in again.stdout and routes.not_modified == 1, again.stdout


def test_source_urls_are_checked_before_anything_runs(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    cases = [
        (("--source", "toolhive"), "the toolhive source needs its registry"),
        (("--source", "glama", "--source-url", "glama=ftp://x"), "is not an http(s) URL"),
        (("--source", "toolhive", "--source-url", f"toolhive={tmp_path}"), "is not an http(s) URL or a file"),
        (("--source", "toolhive", "--source-url", "toolhive=http:/x.test/r.json"), "is not an http(s) URL or a file"),
        (("--source", "curated", "--registry-url", "http://a.test"), "official-registry source, which is not crawled"),
        (("--source", "curated", "--source-url", "curated=http://x.test"), "'curated' takes no URL"),
        (("--source", "curated", "--source-url", "glama=http://x.test"), "glama is not crawled"),
        (("--source", "glama", "--source-url", "glama"), "is not NAME=URL"),
        (("--source", "glama", "--source-url", "glama=http://a.test", "--source-url", "glama=http://b.test"), "twice"),
        (
            (
                "--source",
                "official-registry",
                "--registry-url",
                "http://a.test",
                "--source-url",
                "official-registry=http://b.test",
            ),
            "name the same thing",
        ),
    ]
    for args, reason in cases:
        out = crawl(db, *args)
        assert out.returncode == 2 and reason in out.stderr and out.stderr.strip().count("\n") == 0, (args, out)
    assert not (tmp_path / "c.db").exists()  # refused before the store was opened
    db = f"sqlite:///{tmp_path / 'later.db'}"
    # A file whose name holds a colon is a file, and a file: URL is read as the spider reads it.
    dated = tmp_path / "registry-2026-11-27T10:00.json"
    dated.write_text(json.dumps(legacy_registry()))
    spaced = tmp_path / "a dir"
    spaced.mkdir()
    for target, code in [
        (str(dated), 0),
        (f"FILE://{dated}", 0),
        (f"file://localhost{dated}", 0),
        (f"file://{str(spaced).replace(' ', '%20')}", 2),
        ("file://elsewhere/etc/registry.json", 2),  # read as the local /etc/registry.json before
        ("th://registry.json", 2),  # no scheme we read: not a file named `th:`
        # Missing for now: relative with a colon, or under a home that does not exist. They
        # fail the run (a schedule goes on); the first stopped the schedule, the second crashed.
        ("reg-10:00-missing.json", 1),
        ("~nosuchuser/registry.json", 1),
    ]:
        out = crawl(db, "--source", "toolhive", "--source-url", f"toolhive={target}", "--no-introspect")
        assert out.returncode == code and out.stderr.strip().count("\n") == 0, (target, out)
    # A file missing for a moment (a config tool rewriting it) fails this run, saying why; as
    # a usage error it stopped `catalog schedule` for good.
    gone = crawl(db, "--source", "toolhive", "--source-url", f"toolhive={tmp_path / 'moved.json'}")
    assert gone.returncode == 1 and "No such file or directory" in gone.stderr, gone


@pytest.mark.live
@pytest.mark.parametrize("order", ["registry first", "together"])
def test_a_catalogues_copy_never_writes_over_a_live_listing(
    http_routes, trading_server: str, tmp_path: Path, order: str
) -> None:
    # The same server in the registry (introspected live) and in a ToolHive document (with an
    # older tool list): each crawl of the document replaced the live tools with its copy, each
    # registry crawl put them back, and `diff --severe` called a server that never changed a
    # rug pull. ToolHive's record of the server is its own (`toolhive/NAME`).
    base, routes = http_routes
    db = f"sqlite:///{tmp_path / 'c.db'}"
    name = "io.github.test/trading"
    routes.set(
        "/v0.1/servers",
        registry_page([registry_entry(name, remotes=[{"type": "streamable-http", "url": f"{trading_server}/mcp"}])]),
    )
    doc = {"version": "1.0.0", "meta": {}, "data": {"servers": [{"name": name, "description": "old copy"}]}}
    doc["data"]["servers"][0]["_meta"] = {
        "io.modelcontextprotocol.registry/publisher-provided": {
            "io.github.stacklok": {"https://x.test/mcp": {"status": "active", "tool_definitions": [TIME]}}
        }
    }
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(doc))
    registry = ("--source", "official-registry", "--registry-url", base)
    document = ("--source", "toolhive", "--source-url", f"toolhive={path}")
    runs = [registry, document, registry] if order == "registry first" else [registry + document] * 2
    for args in runs:
        out = crawl(db, *args)
        assert out.returncode == 0, out.stderr
    live = json.loads(run_cli("server", name, "--format", "json", "--db", db).stdout)
    assert "withdraw_funds" in live["tools"] and "get_current_time" not in live["tools"]
    assert live["sources"] == ["official-registry"] and live["tools_listed_by"] == "server"
    claim = json.loads(run_cli("server", f"toolhive/{name}", "--format", "json", "--db", db).stdout)
    assert list(claim["tools"]) == ["get_current_time"] and claim["tools_listed_by"] == "catalogue"
    diff = json.loads(run_cli("diff", "--since", "2000-01-01", "--format", "json", "--db", db).stdout)
    assert diff["changed"] == [] and diff["removed_tools"] == [], diff
    assert run_cli("diff", "--severe", "--since", "2000-01-01", "--db", db).returncode == 0
    # A live listing by hand under a catalogue's name would flip with its copy the same way.
    by_hand = run_cli("introspect", "--name", f"toolhive/{name}", "--db", db, "--", sys.executable, "-V")
    assert by_hand.returncode == 2 and "are catalogue records" in by_hand.stderr, by_hand
