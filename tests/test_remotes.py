"""`--source remotes`: a hosted server redeployed with new tools, its catalogue entry (and so its
version) unchanged, is seen by a scheduled crawl without a `--full` one (real streamable-HTTP
server on loopback, real registry pages on loopback)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from catalog.store.db import open_store
from catalog.store.models import CrawlRun
from catalog.store.records import AttemptRecord, ServerRecord
from catalog.store.repository import record_attempt, remote_listed, upsert_server
from tests.conftest import PACKAGE_CACHE, registry_page, run_cli
from tests.test_crawl import crawl, entry, stats

REMOTE = {"type": "streamable-http", "url": "https://mcp.example.com/mcp"}


def attempts(db: str, name: str) -> list[str]:
    shown = json.loads(run_cli("server", name, "--format", "json", "--db", db).stdout)
    return [a["outcome"] for a in shown["attempts"]]


@pytest.mark.live
def test_a_hosted_server_redeployed_without_a_new_version_is_seen(
    http_routes, trading_server: str, tmp_path: Path
) -> None:
    base, routes = http_routes
    db = f"sqlite:///{tmp_path / 'c.db'}"
    hosted = entry("io.example/hosted", remotes=[{"type": "streamable-http", "url": f"{trading_server}/rug/mcp"}])
    private = entry("io.example/private", remotes=[{"type": "streamable-http", "url": f"{trading_server}/private/mcp"}])
    routes.set("/v0.1/servers", registry_page([hosted, private]))
    assert crawl(db, base).returncode == 0
    first = json.loads(run_cli("server", "io.example/hosted", "--format", "json", "--db", db).stdout)
    assert "withdraw_funds" in first["tools"] and first["sources"] == ["official-registry"]

    # The operator redeploys: the same URL, the same catalogue entry and version.
    assert httpx.get(f"{trading_server}/rug/flip").status_code == 200
    again = crawl(db, base)  # incremental: the entry is unchanged, so the server is not asked
    assert again.returncode == 0 and attempts(db, "io.example/hosted") == ["ok"]
    assert run_cli("diff", "--severe", "--db", db).returncode == 0  # unseen
    private_asked = attempts(db, "io.example/private")  # (a failed server is asked on each registry crawl)

    listed_at = json.loads(run_cli("server", "io.example/hosted", "--format", "json", "--db", db).stdout)["last_seen"]
    rechecked = run_cli("crawl", "--source", "remotes", "--timeout", "5", "--cache-dir", str(PACKAGE_CACHE), "--db", db)
    assert rechecked.returncode == 0, rechecked.stderr
    assert rechecked.stdout.startswith("crawl finished: 1 servers"), rechecked.stdout
    now = json.loads(run_cli("server", "io.example/hosted", "--format", "json", "--db", db).stdout)
    assert "get_funding_rate" in now["tools"] and "withdraw_funds" not in now["tools"]
    assert now["sources"] == ["official-registry"]  # the re-ask adds no source...
    assert now["last_seen"] == listed_at  # ...and is no catalogue listing it (a full crawl removes by it)
    severe = run_cli("diff", "--severe", "--format", "json", "--db", db)
    assert severe.returncode == 1, severe.stdout
    changed = json.loads(severe.stdout)["changed"]
    assert [(c["tool"], c["summary"].get("poisoning_added")) for c in changed] == [("get_ticker_price", True)]
    # A server whose remote never listed its tools (it asks for OAuth) is not asked again, and
    # a run that lists only some servers removes none.
    assert attempts(db, "io.example/private") == private_asked
    assert stats(db)["servers"] == 2
    # Asked again unchanged: a new attempt, no new definition.
    same = run_cli("crawl", "--source", "remotes", "--timeout", "5", "--cache-dir", str(PACKAGE_CACHE), "--db", db)
    assert same.returncode == 0 and "0 new definitions" in same.stdout, same.stdout
    assert attempts(db, "io.example/hosted") == ["ok", "ok", "ok"]

    # The catalogue moves the server to a version without that endpoint: its own introspection
    # decides now, and the endpoint still stored is not asked again.
    moved = entry("io.example/hosted", packages=[{"registryType": "oci", "identifier": "example/hosted:2"}])
    moved["server"]["version"] = "2.0.0"
    routes.set("/v0.1/servers", registry_page([moved, private]))
    assert crawl(db, base).returncode == 0
    after = run_cli("crawl", "--source", "remotes", "--timeout", "5", "--cache-dir", str(PACKAGE_CACHE), "--db", db)
    assert after.returncode == 0 and after.stdout.startswith("crawl finished: 0 servers"), after.stdout


def test_remotes_runs_alone_and_only_to_introspect(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    for args, reason in [
        (("--source", "remotes", "--source", "curated"), "--source remotes runs alone"),
        (("--source", "remotes", "--no-introspect"), "with --no-introspect it has nothing to do"),
    ]:
        out = run_cli("crawl", *args, "--db", db)
        assert out.returncode == 2 and reason in out.stderr, (args, out)


def test_only_a_remote_that_answered_at_the_version_listed_now_is_asked(db_url: str) -> None:
    """A server without a version, introspected over its remote, then listed at 2.0.0 with only
    a container: the old endpoint was still asked (and its answer recorded at 2.0.0)."""
    store = open_store(db_url)
    with store.session() as s, s.begin():
        for name in ("io.example/moved", "io.example/still"):
            server = upsert_server(s, ServerRecord(name=name, source="official-registry", remotes=[REMOTE]))
            record_attempt(s, server, AttemptRecord("streamable-http", REMOTE["url"], "ok", 1.0, tools_count=1))
        moved = upsert_server(s, ServerRecord(name="io.example/moved", source="official-registry", version="2.0.0"))
        record_attempt(s, moved, AttemptRecord("stdio", "oci:example/moved:2", "skipped", 0.0))
    with store.session() as s:
        assert [srv.name for srv in remote_listed(s)] == ["io.example/still"]
    store.dispose()


def test_a_source_named_twice_is_crawled_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    out = run_cli("crawl", "--source", "remotes", "--source", "remotes", "--db", db)
    assert out.returncode == 0 and out.stdout.startswith("crawl finished: 0 servers"), out
    store = open_store(db)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(CrawlRun)) == 1
    store.dispose()
