"""The whole pipeline as a user runs it: `catalog crawl` in a subprocess against a registry on
loopback, real servers (a PyPI package installed live, a streamable-HTTP server), faults, then
the read commands on what it stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PACKAGE_CACHE, ROOT, free_port, refused_port, registry_page, run_cli
from tests.test_policies import SEED_POLICY

pytestmark = pytest.mark.live


def entry(
    name: str,
    *,
    remotes: list[dict[str, Any]] | None = None,
    packages: list[dict[str, Any]] | None = None,
    published: str = "2025-10-01T00:00:00Z",
    latest: bool = True,
) -> dict[str, Any]:
    server: dict[str, Any] = {"name": name, "description": f"{name} test server", "version": "1.0.0"}
    if remotes:
        server["remotes"] = remotes
    if packages:
        server["packages"] = packages
    return {
        "server": server,
        "_meta": {
            "io.modelcontextprotocol.registry/official": {
                "status": "active",
                "publishedAt": published,
                "isLatest": latest,
            }
        },
    }


def crawl(db: str, registry: str, *extra: str) -> Any:
    return run_cli(
        "crawl",
        "--source",
        "official-registry",
        "--registry-url",
        registry,
        "--install-from",
        "official-registry",
        "--timeout",
        "5",
        "--cache-dir",
        str(PACKAGE_CACHE),
        "--db",
        db,
        *extra,
    )


def stats(db: str) -> dict[str, Any]:
    out = run_cli("stats", "--format", "json", "--db", db)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_end_to_end_crawl_store_classify_recommend(http_routes, trading_server: str, tmp_path: Path) -> None:
    base, routes = http_routes
    db = f"sqlite:///{tmp_path / 'catalog.db'}"
    page1 = registry_page(
        [
            entry("io.github.test/trading", remotes=[{"type": "streamable-http", "url": f"{trading_server}/mcp"}]),
            entry(
                "io.github.test/trading",
                remotes=[{"type": "streamable-http", "url": f"{trading_server}/mcp"}],
                published="2025-01-01T00:00:00Z",
                latest=False,
            ),  # an older version: dropped
            entry(
                "io.github.test/needs-oauth",
                remotes=[{"type": "streamable-http", "url": f"{trading_server}/private/mcp"}],
            ),
            entry("io.github.test/hangs", remotes=[{"type": "streamable-http", "url": f"{trading_server}/hang/mcp"}]),
            entry(
                "io.github.test/gone",
                remotes=[{"type": "streamable-http", "url": f"http://127.0.0.1:{free_port()}/mcp"}],
            ),
            {"server": {"description": "no name"}},
            {
                "server": {
                    "name": "io.github.test/bad-remote",
                    "description": "x",
                    "remotes": [{"type": "sse", "url": "ftp://x"}],
                }
            },
        ],
        next_cursor="page2",
    )
    page2 = registry_page(
        [
            entry(
                "io.github.modelcontextprotocol/time",
                packages=[{"registryType": "pypi", "identifier": "mcp-server-time", "transport": {"type": "stdio"}}],
            ),
        ]
    )
    routes.set("/v0.1/servers?limit=100&version=latest", page1)
    routes.set("/v0.1/servers?limit=100&version=latest&cursor=page2", page2)

    result = crawl(db, base)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("crawl finished: 5 servers, 6 tools") and "2 malformed entries skipped" in line
    assert "/robots.txt" in routes.hits  # a polite crawler asks first

    s = stats(db)
    assert s["servers"] == 5 and s["tools"] == 6
    assert s["introspection"] == {"ok": 2, "auth_required": 1, "timeout": 1, "error": 1}
    assert s["recent_runs"][0]["status"] == "partial"  # malformed entries were skipped

    rec = run_cli("recommend", "BinanceFuturesCancelBatchOrders", "--format", "json", "--db", db)
    assert rec.returncode == 0 and rec.stdout.strip() == SEED_POLICY
    shown = json.loads(run_cli("show", "withdraw_funds", "--db", db).stdout)
    assert shown["verdict"]["risk"] == "critical"
    assert {f["id"] for f in shown["verdict"]["findings"]} == {"annotation_mismatch"}
    exported = json.loads(run_cli("export", "--db", db).stdout)
    assert exported["hide"] == ["add_numbers"] and exported["tools"]["get_current_time"] == {}

    # The same crawl again changes nothing; a broken registry afterwards loses nothing.
    again = crawl(db, base)
    assert again.returncode == 0 and "(0 new definitions, 0 classified)" in again.stdout
    routes.set("/v0.1/servers?limit=100&version=latest", b"{this is not json", content_type="application/json")
    broken = crawl(db, base)
    assert broken.returncode == 1
    assert "malformed JSON" in broken.stdout and "every source failed" in broken.stderr
    after = stats(db)
    assert (after["servers"], after["tools"]) == (5, 6)
    assert after["recent_runs"][0]["status"] == "failed"


@pytest.mark.postgres
def test_crawl_on_postgresql_with_remote_only(http_routes, trading_server: str, pg_url: str) -> None:
    base, routes = http_routes
    # What SQLite stores, PostgreSQL refused, and with it the whole server: a NUL in a text,
    # a tool name past its column, a publication time past its column.
    nul, long_name, long_time = (entry(f"io.github.test/{n}") for n in ("nul", "long-name", "long-time"))
    nul["server"]["description"] = "nul \x00 byte"
    long_name["server"]["tools"] = [{"name": "t" * 401}, {"name": "read_file"}]
    official = long_time["_meta"]["io.modelcontextprotocol.registry/official"]
    official["publishedAt"] = "2025-10-01T00:00:00." + "0" * 60 + "Z"
    for hostile in (nul, long_time):
        hostile["server"]["tools"] = [{"name": "read_file", "description": "Read a file \x00"}]
    trading = entry("io.github.test/trading", remotes=[{"type": "streamable-http", "url": f"{trading_server}/mcp"}])
    routes.set("/v0.1/servers", registry_page([trading, nul, long_name, long_time]))
    result = crawl(pg_url, base)
    assert result.returncode == 0, result.stderr
    assert "0 malformed entries" in result.stdout, result.stdout
    got = stats(pg_url)
    assert got["servers"] == 4 and got["tools"] == 4 + 3, got
    assert got["recent_runs"][0]["status"] == "ok"
    rec = run_cli("recommend", "BinanceFuturesCancelBatchOrders", "--format", "json", "--db", pg_url)
    assert rec.stdout.strip() == SEED_POLICY


def test_no_introspect_and_unreachable_registry(http_routes, tmp_path: Path) -> None:
    base, routes = http_routes
    db = f"sqlite:///{tmp_path / 'c.db'}"
    routes.set(
        "/v0.1/servers",
        registry_page(
            [entry("io.github.test/t", remotes=[{"type": "streamable-http", "url": "http://127.0.0.1:9/mcp"}])]
        ),
    )
    ok = crawl(db, base, "--no-introspect")
    assert ok.returncode == 0 and "1 servers, 0 tools" in ok.stdout
    assert stats(db)["introspection"] == {}
    # A run that learned no tools is not where the next incremental listing starts (it would
    # never list those servers again), and one registry's last crawl says nothing of another's.
    assert crawl(db, base).returncode == 0
    assert crawl(db, base.replace("127.0.0.1", "localhost")).returncode == 0
    listings = [h for h in routes.hits if h.startswith("/v0.1/servers")]
    assert ["updated_since=" in h for h in listings] == [False, False, False], listings
    assert crawl(db, base).returncode == 0
    assert "updated_since=" in [h for h in routes.hits if h.startswith("/v0.1/servers")][-1]
    # A page after the first that cannot be read: what was read is stored, and the summary
    # says the listing is incomplete (it said nothing, as if the crawl had been whole).
    routes.set("/v0.1/servers", registry_page([entry("io.github.test/t")], next_cursor="p2"))
    routes.set("/v0.1/servers?limit=100&version=latest&cursor=p2", b"{not json")
    cut = crawl(db, base, "--no-introspect", "--full")
    assert cut.returncode == 0 and "1 source(s) incomplete (official-registry: " in cut.stdout, cut.stdout
    # A registry URL that is no URL is a usage error of one line, not a page of traceback.
    bad = crawl(db, "notaurl")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "not an http(s) URL" in bad.stderr, bad
    with refused_port() as port:
        down = crawl(db, f"http://127.0.0.1:{port}")
    assert down.returncode == 1 and "Connection refused" in down.stdout


def test_a_source_whose_run_never_started_is_a_failed_crawl(http_routes, tmp_path: Path) -> None:
    # The store pipeline could not open (the database went away between the job's check and
    # the crawl): the crawl said "crawl finished: 0 servers" and exited 0.
    base, routes = http_routes
    routes.set("/v0.1/servers", registry_page([entry("io.github.test/t")]))
    db = f"sqlite:///{tmp_path / 'c.db'}"
    code = (
        "import sys\nimport crawler.pipelines.store as sp\n"
        "def boom(*a, **k):\n    raise RuntimeError('database went away')\n"
        "sp.start_run = boom\nfrom catalog.cli import main\n"
        f"sys.argv = ['catalog', 'crawl', '-s', 'official-registry', '--registry-url', {base!r}, '--no-introspect',"
        f" '--cache-dir', {str(tmp_path / 'cache')!r}, '--db', {db!r}]\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 1 and "official-registry: the crawl did not start" in out.stderr, out
