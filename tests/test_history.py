"""Incremental, resumable crawls with history, rug-pull watch and scheduling (real crawls in
subprocesses against a registry and MCP servers on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from catalog.crawl_job import crawl_lock
from catalog.errors import CatalogError
from catalog.schedule import Cron, parse_interval
from catalog.store.db import HEAD_REVISION, current_revision, migrate, open_store
from tests.conftest import ROOT, process_ended, refused_port, registry_page, run_cli
from tests.test_crawl import entry, stats

pytestmark = pytest.mark.live


def crawl(db: str, registry: str, cache: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return run_cli(
        "crawl",
        "--source",
        "official-registry",
        "--registry-url",
        registry,
        "--timeout",
        "10",
        "--cache-dir",
        str(cache),
        "--db",
        db,
        *extra,
        env=env,
    )


def attempts(db: str) -> int:
    return sum(stats(db)["introspection"].values())


def test_incremental_recrawl_history_and_rug_pull(http_routes, trading_server: str, tmp_path: Path) -> None:
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    v1 = registry_page(
        [
            entry("io.github.test/trading", remotes=[{"type": "streamable-http", "url": f"{trading_server}/mcp"}]),
            entry("io.github.test/old", remotes=[{"type": "streamable-http", "url": f"{trading_server}/mcp"}]),
        ]
    )
    routes.set("/v0.1/servers", v1)
    first = crawl(db, base, cache)
    assert first.returncode == 0, first.stderr
    assert attempts(db) == 2

    # Unchanged: the registry is asked for changes only, and nothing is started again.
    routes.hits.clear()
    second = crawl(db, base, cache)
    assert second.returncode == 0 and "0 new definitions, 0 classified" in second.stdout
    assert any("updated_since=" in h for h in routes.hits)
    assert attempts(db) == 2
    # A full listing repeats the first URL: the unchanged page costs a conditional request (304).
    full = crawl(db, base, cache, "--full")
    assert full.returncode == 0 and routes.not_modified == 1
    assert attempts(db) == 4  # --full starts every server again

    # Version 2: the trading server's definitions change (one turns malicious), one server goes away.
    routes.set(
        "/v0.1/servers",
        registry_page(
            [
                {
                    **entry(
                        "io.github.test/trading",
                        remotes=[{"type": "streamable-http", "url": f"{trading_server}/v2/mcp"}],
                    ),
                    "server": {
                        "name": "io.github.test/trading",
                        "description": "x",
                        "version": "2.0.0",
                        "remotes": [{"type": "streamable-http", "url": f"{trading_server}/v2/mcp"}],
                    },
                },
                entry("io.github.test/new", remotes=[{"type": "streamable-http", "url": f"{trading_server}/mcp"}]),
            ]
        ),
    )
    third = crawl(db, base, cache, "--full")
    assert third.returncode == 0, third.stderr
    assert attempts(db) == 6  # the two servers of this listing

    diff = json.loads(run_cli("diff", "--format", "json", "--db", db).stdout)
    assert diff["new_servers"] == ["io.github.test/new"]
    assert diff["removed_servers"] == ["io.github.test/old"]
    # A server no longer listed takes its tools out of every export (a review found them live).
    gone = run_cli("export", "--server", "io.github.test/old", "--db", db)
    assert gone.returncode == 0 and json.loads(gone.stdout)["tools"] == {}
    assert json.loads(run_cli("export", "--server", "io.github.test/new", "--db", db).stdout)["tools"]
    assert {"server": "io.github.test/trading", "tool": "get_funding_rate"} in diff["new_tools"]
    assert {"server": "io.github.test/trading", "tool": "withdraw_funds"} in diff["removed_tools"]
    changed = {c["tool"]: c for c in diff["changed"]}
    ticker = changed["get_ticker_price"]
    assert ticker["severe"] is True and ticker["summary"]["poisoning_added"] is True
    assert ticker["summary"]["risk"] == ["low", "critical"]
    assert ticker["summary"]["params_added"] == ["note"]
    assert ticker["summary"]["annotations"] == {"readOnlyHint": [True, None]}
    text_diff = run_cli("diff", "--db", db).stdout
    assert "~ SEVERE io.github.test/trading :: get_ticker_price" in text_diff
    assert "-Get the latest public market price for a trading pair" in text_diff
    assert "+Get the latest public market price for a trading pair. <IMPORTANT>" in text_diff
    severe = run_cli("diff", "--severe", "--db", db)
    assert severe.returncode == 1 and "get_ticker_price" in severe.stdout
    # Since the second crawl there was one change; since now, none.
    assert run_cli("diff", "--severe", "--since", datetime.now().isoformat(), "--db", db).returncode == 0
    for odd in ("²", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"):  # tracebacks, before
        out = run_cli("diff", "--since", odd, "--db", db)
        # 2, a usage error: 1 is what `diff --severe` says for a severe change.
        assert out.returncode == 2 and "--since takes a run id or an ISO date" in out.stderr, out.stderr
    shown = json.loads(run_cli("show", "get_ticker_price", "--server", "io.github.test/trading", "--db", db).stdout)
    assert [c["severe"] for c in shown["definition_changes"]] == [True]
    rec = run_cli("recommend", "get_ticker_price", "--server", "io.github.test/trading", "--db", db).stdout
    assert "definition_changed (SEVERE)" in rec and "tool_poisoning" in rec
    pinned = json.loads(run_cli("export", "--pin", "--server", "io.github.test/trading", "--db", db).stdout)
    assert all(len(rule["pin"]) == 64 for rule in pinned["tools"].values())


def kill_when(args: list[str], db: str, count_sql: str, at_least: int) -> int:
    """Start a crawl (committing every server) and SIGKILL it once ``count_sql`` reaches
    ``at_least`` (or after a minute); the count it was killed at."""
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, "CATALOG_COMMIT_EVERY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    engine = create_engine(db)
    deadline, count = time.monotonic() + 60, 0
    while time.monotonic() < deadline and count < at_least:
        time.sleep(0.2)
        try:
            with engine.connect() as conn:
                count = conn.execute(text(count_sql)).scalar() or 0
        except Exception:
            count = 0
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    engine.dispose()
    return count


def test_killed_crawl_resumes_without_loss_or_duplicates(http_routes, trading_server: str, tmp_path: Path) -> None:
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    names = [f"io.github.test/slow-{i:02d}" for i in range(16)]
    routes.set(
        "/v0.1/servers",
        registry_page(
            [entry(n, remotes=[{"type": "streamable-http", "url": f"{trading_server}/slow/mcp"}]) for n in names]
        ),
    )
    args = [
        sys.executable,
        "-m",
        "catalog",
        "crawl",
        "--source",
        "official-registry",
        "--registry-url",
        base,
        "--concurrency",
        "1",
        "--cache-dir",
        str(cache),
        "--db",
        db,
    ]
    stored = kill_when(args, db, "SELECT count(*) FROM servers", 4)
    assert 4 <= stored < len(names), "the crawl should have been killed mid-way"

    resumed = crawl(db, base, cache, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    s = stats(db)
    assert s["servers"] == len(names) and s["tools"] == 4 * len(names)
    runs = s["recent_runs"]
    assert runs[0]["status"] == "ok" and runs[1]["status"] == "interrupted"
    engine = create_engine(db)
    with engine.connect() as conn:
        per_server = conn.execute(
            text("SELECT server_id, count(*) FROM introspection_attempts WHERE outcome = 'ok' GROUP BY server_id")
        ).all()
        dupes = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT server_id, name FROM tools GROUP BY server_id, name "
                "HAVING count(*) > 1) AS d"
            )
        ).scalar()
    engine.dispose()
    assert len(per_server) == len(names) and all(n == 1 for _, n in per_server)  # nobody introspected twice
    assert dupes == 0
    nothing = crawl(db, base, cache, "--resume")
    assert nothing.returncode == 1 and "nothing to resume" in nothing.stderr

    # A killed *full* crawl resumes as a full one: the servers it had not reached yet are
    # introspected again, the ones it had are not (resumed as an incremental crawl, the rest
    # of the full crawl never happened; with --full, the handled ones were started again).
    again = kill_when([*args, "--full"], db, "SELECT count(*) FROM introspection_attempts", len(names) + 4)
    assert 4 <= again - len(names) < len(names), "the full crawl should have been killed mid-way"
    resumed = crawl(db, base, cache, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    engine = create_engine(db)
    with engine.connect() as conn:
        per_server = conn.execute(
            text("SELECT server_id, count(*) FROM introspection_attempts WHERE outcome = 'ok' GROUP BY server_id")
        ).all()
        last = conn.execute(text("SELECT counters FROM crawl_runs ORDER BY id DESC LIMIT 1")).scalar()
    engine.dispose()
    assert sorted(n for _, n in per_server) == [2] * len(names), per_server
    assert json.loads(last)["full"] is True


def test_two_crawls_never_overlap(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with crawl_lock(cache):
        result = run_cli(
            "crawl",
            "--source",
            "curated",
            "--no-introspect",
            "--cache-dir",
            str(cache),
            "--db",
            f"sqlite:///{tmp_path / 'c.db'}",
        )
    assert result.returncode == 4 and "another crawl is running" in result.stderr


def test_schedule_runs_reports_failures_and_goes_on(http_routes, tmp_path: Path) -> None:
    base, routes = http_routes
    db = f"sqlite:///{tmp_path / 'c.db'}"
    routes.set(
        "/v0.1/servers",
        registry_page(
            [entry("io.github.test/a", remotes=[{"type": "streamable-http", "url": "http://127.0.0.1:9/mcp"}])]
        ),
    )
    args = [
        "--source",
        "official-registry",
        "--registry-url",
        base,
        "--no-introspect",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--db",
        db,
    ]
    ok = run_cli("schedule", "--every", "1s", "--max-runs", "2", "--", *args, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(" ok: crawl finished") == 2
    # A crawl takes longer than a second: the next one starts at once, and says so (it said
    # "next crawl at" a time already past).
    assert "next crawl now (the last one took longer than --every)" in ok.stdout, ok.stdout
    assert "next crawl at" not in ok.stdout
    routes.set("/v0.1/servers", b"{broken", content_type="application/json")
    bad = run_cli("schedule", "--every", "1s", "--max-runs", "2", "--", *args, timeout=120)
    assert bad.returncode == 1
    assert bad.stdout.count("FAILED (exit 1): error: every source failed") == 2
    # The real reason is in the line the schedule reports (it said only "every source failed").
    assert bad.stdout.count("official-registry: ") >= 2 and "malformed JSON" in bad.stdout, bad.stdout
    # Arguments the crawl refuses stop the schedule at once (an unknown source was rescheduled).
    for refused in (["--source", "bogus"], ["--install-from", "bogus"]):
        stop = run_cli("schedule", "--every", "1h", "--", *refused, *args[2:], timeout=60)
        # 2, as the crawl said: arguments no run could use (1 is a run that failed).
        assert stop.returncode == 2 and "schedule stopped" in stop.stderr and "next crawl" not in stop.stdout, stop


@contextmanager
def _scheduled_on_a_silent_registry(tmp_path: Path, **output: Any) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``catalog schedule --every 1h`` of a crawl whose registry accepts connections and never
    answers, with the crawl's arguments; the registry closed and the schedule killed after."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    args = ["--source", "official-registry", "--registry-url", f"http://127.0.0.1:{silent.getsockname()[1]}"]
    args += ["--no-introspect", "--cache-dir", str(tmp_path / "cache"), "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    sched = subprocess.Popen(
        [sys.executable, "-m", "catalog", "schedule", "--every", "1h", "--", *args], cwd=ROOT, **output
    )
    try:
        yield sched, args
    finally:
        silent.close()
        if sched.poll() is None:
            sched.kill()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_stopping_the_schedule_stops_its_crawl_and_frees_the_lock(tmp_path: Path, stop: signal.Signals) -> None:
    # A review killed the scheduler (SIGTERM) under a crawl of a registry that never answered:
    # the crawl ran on, orphaned, holding the lock, and the next crawl exited 4.
    piped = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with _scheduled_on_a_silent_registry(tmp_path, **piped) as (sched, args):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (tmp_path / "c.db").exists():
            time.sleep(0.2)
        time.sleep(2)  # the crawl is waiting on the silent registry
        sched.send_signal(stop)
        out, err = sched.communicate(timeout=60)
    assert sched.returncode == 128 + stop, (out, err)
    assert f"stopped by {stop.name}; crawl 1 was interrupted" in out
    again = run_cli("crawl", *args, timeout=120)  # the same cache directory, so the same lock
    assert again.returncode != 4 and "another crawl is running" not in again.stderr, again.stderr


def test_a_schedule_killed_outright_still_stops_its_crawl(tmp_path: Path) -> None:
    # SIGKILL (or the OOM killer) gives the schedule no chance to pass a stop on: its crawl, in
    # a session of its own, ran on holding the lock. The kernel now sends it SIGTERM.
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    lock = tmp_path / "cache" / "crawl.lock"
    with _scheduled_on_a_silent_registry(tmp_path, **quiet) as (sched, args):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
            time.sleep(0.2)
        crawl_pid = int(lock.read_text())
        time.sleep(2)  # the crawl is waiting on the silent registry
        sched.kill()
        sched.wait(timeout=10)
        assert process_ended(crawl_pid, timeout=60), "the crawl outlived its schedule"
    assert removed_and_last_status(f"sqlite:///{tmp_path / 'c.db'}") == ([], "interrupted")
    again = run_cli("crawl", *args, timeout=120)  # the same cache directory, so the same lock
    assert again.returncode != 4 and "another crawl is running" not in again.stderr, again.stderr


def test_a_schedule_refuses_what_would_fail_every_time(tmp_path: Path) -> None:
    never = run_cli("schedule", "--cron", "0 0 30 2 *", "--", "--db", f"sqlite:///{tmp_path / 'c.db'}")
    assert never.returncode == 2 and "never matches" in never.stderr and "starting" not in never.stdout
    usage = run_cli("schedule", "--every", "1s", "--max-runs", "3", "--", "--bogus", timeout=120)
    assert usage.returncode == 2 and usage.stdout.count("starting") == 1, usage.stdout
    assert "No such option" in usage.stdout and "No such option" in usage.stderr  # the reason, not the box's border
    assert run_cli("schedule", "--every", "400d", "--max-runs", "1").returncode == 2
    assert run_cli("schedule", "--every", "1s", "--max-runs", "0").returncode == 2


def test_interval_and_cron_parsing() -> None:
    assert parse_interval("6h") == 21600 and parse_interval("1h30m") == 5400 and parse_interval("45s") == 45
    for bad in ("6", "h", "6x", "-1h"):
        with pytest.raises(CatalogError):
            parse_interval(bad)
    cron = Cron.parse("0 */6 * * *")
    assert cron.next_after(datetime(2026, 11, 24, 7, 5)) == datetime(2026, 11, 24, 12, 0)
    weekly = Cron.parse("30 2 * * 1")  # Mondays at 02:30
    assert weekly.next_after(datetime(2026, 11, 24, 7, 5)) == datetime(2026, 11, 30, 2, 30)
    monthly = Cron.parse("15 3 1 */3 *")
    assert monthly.next_after(datetime(2026, 11, 24, 7, 5)) == datetime(2027, 1, 1, 3, 15)
    # 7 is Sunday as 0 is (a review found "5-7" refused): Friday to Sunday at 03:00.
    weekend = Cron.parse("0 3 * * 5-7")
    assert weekend.weekday == {5, 6, 0} and Cron.parse("0 3 * * 7").weekday == {0}
    assert weekend.next_after(datetime(2026, 11, 29, 4, 0)) == datetime(2026, 12, 4, 3, 0)  # Sun -> Fri
    # A day field starting with "*" does not restrict (Vixie cron): every other day of the
    # month that is a Monday, not every other day or every Monday.
    odd_mondays = Cron.parse("0 0 */2 * 1")
    assert odd_mondays.next_after(datetime(2026, 11, 24, 7, 5)) == datetime(2026, 12, 7, 0, 0)
    for bad in ("* * * *", "61 * * * *", "a * * * *", "* * * * 8", "* * * * 17"):
        with pytest.raises(CatalogError):
            Cron.parse(bad)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_upgrade_an_old_catalogue_in_place(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    store = open_store(url, migrate_schema=False)
    migrate(store.engine, "0001")
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO servers (name, packages, remotes, sources, first_seen, last_seen) "
                "VALUES ('io.a/b', '[]', '[]', '[\"x\"]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    store.dispose()
    store = open_store(url)
    assert current_revision(store.engine) == HEAD_REVISION
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT name, removed_at FROM servers")).all() == [("io.a/b", None)]
        assert conn.execute(text("SELECT count(*) FROM definition_changes")).scalar() == 0
    store.dispose()


def removed_and_last_status(db: str) -> tuple[list[str], str]:
    """The servers marked removed, and the status of the latest crawl run."""
    engine = create_engine(db)
    with engine.connect() as conn:
        removed = [name for (name,) in conn.execute(text("SELECT name FROM servers WHERE removed_at IS NOT NULL"))]
        status = conn.execute(text("SELECT status FROM crawl_runs ORDER BY id DESC LIMIT 1")).scalar()
    engine.dispose()
    return removed, str(status)


def test_a_listing_with_an_unreadable_entry_removes_nothing(http_routes, tmp_path: Path) -> None:
    # A review's listing gave a still-listed server a numeric description: the entry is
    # malformed, so the run is partial, and the server (listed, only unreadable) must not be
    # marked removed; nor must the servers of a page that failed to parse.
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    good = [entry("io.github.test/a"), entry("io.github.test/b")]
    routes.set("/v0.1/servers", registry_page(good))
    assert crawl(db, base, cache, "--no-introspect", "--full").returncode == 0
    broken_b = {**good[1], "server": {**good[1]["server"], "description": 12345}}
    routes.set("/v0.1/servers", registry_page([good[0], broken_b]))
    out = crawl(db, base, cache, "--no-introspect", "--full")
    assert out.returncode == 0, out.stderr
    assert removed_and_last_status(db) == ([], "partial")
    # A page nested past the JSON parser's depth is a failed source, not an empty listing.
    routes.set("/v0.1/servers", b'{"servers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    out = crawl(db, base, cache, "--no-introspect", "--full")
    assert "Traceback" not in out.stderr
    assert removed_and_last_status(db) == ([], "failed")


def ok_attempts_per_run(db: str) -> list[tuple[int, str]]:
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT crawl_run_id, outcome FROM introspection_attempts ORDER BY id")).all()
    engine.dispose()
    return [(int(r), str(o)) for r, o in rows]


def test_incremental_crawls_retry_failures_and_keep_the_latest_version(
    http_routes, trading_server: str, tmp_path: Path
) -> None:
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    up = [{"type": "streamable-http", "url": f"{trading_server}/mcp", "headers": 5}]  # a wrong type: ignored

    def listing(version: str, remotes: list[dict[str, Any]]) -> dict[str, Any]:
        latest = entry("io.github.test/x", remotes=remotes, published=f"2025-10-0{version[0]}T00:00:00Z")
        latest["server"]["version"] = version
        # An older version listed first: it was stored (or, slower, stored last) and every
        # crawl recorded the tools going back and forth.
        older = entry("io.github.test/x", published="2025-01-01T00:00:00Z", latest=False)
        older["server"]["tools"] = [{"name": "old_only", "description": "An old tool"}]
        return registry_page([older, latest])

    routes.set("/v0.1/servers", listing("1.0.0", up))
    first = crawl(db, base, cache)
    assert first.returncode == 0 and "1 servers, 4 tools" in first.stdout, first.stdout + first.stderr
    with refused_port() as port:
        routes.set(
            "/v0.1/servers", listing("2.0.0", [{"type": "streamable-http", "url": f"http://127.0.0.1:{port}/mcp"}])
        )
        assert crawl(db, base, cache).returncode == 0
    # Back up at the same version: its latest attempt failed, so it is tried again (it was
    # skipped as unchanged, its 1.0.0 tools standing for 2.0.0, for good).
    routes.set("/v0.1/servers", listing("2.0.0", up))
    assert crawl(db, base, cache).returncode == 0
    assert [o for _, o in ok_attempts_per_run(db)] == ["ok", "error", "ok"]
    # Settled now: the next crawl skips it, and nothing ever changed back and forth.
    assert crawl(db, base, cache).returncode == 0
    assert len(ok_attempts_per_run(db)) == 3
    s = stats(db)
    assert s["servers"] == 1 and s["tools"] == 4
    diff = run_cli("diff", "--since", "1", "--format", "json", "--db", db)
    assert diff.returncode == 0 and json.loads(diff.stdout)["changed"] == [], diff.stdout
    # `catalog server` shows why: every attempt, newest first, with the version it was made at.
    shown = json.loads(run_cli("server", "io.github.test/x", "--format", "json", "--db", db).stdout)
    assert [(a["outcome"], a["server_version"]) for a in shown["attempts"]] == [
        ("ok", "2.0.0"),
        ("error", "2.0.0"),
        ("ok", "1.0.0"),
    ]
    assert shown["version"] == "2.0.0" and len(shown["tools"]) == 4 and shown["sources"] == ["official-registry"]
    text = run_cli("server", "io.github.test/x", "--db", db)
    assert text.returncode == 0 and text.stdout.count("  attempt  : ") == 3 and " error " in text.stdout
    assert run_cli("server", "io.github.test/nope", "--db", db).returncode == 2


def test_a_server_another_source_still_lists_is_not_removed(http_routes, tmp_path: Path) -> None:
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    curated = tmp_path / "curated.json"
    shared = entry("io.github.test/shared")
    curated.write_text(json.dumps(registry_page([shared])))
    routes.set("/v0.1/servers", registry_page([entry("io.github.test/only-registry"), shared]))
    both = ["--source", "curated", "--curated", str(curated), "--no-introspect"]
    assert crawl(db, base, cache, *both).returncode == 0
    assert run_cli("crawl", *both, "--cache-dir", str(cache), "--db", db).returncode == 0
    # The registry drops it, in a complete crawl of its own: the curated list still has it.
    routes.set("/v0.1/servers", registry_page([entry("io.github.test/only-registry")]))
    assert crawl(db, base, cache, "--no-introspect", "--full").returncode == 0
    assert removed_and_last_status(db) == ([], "ok")
    curated.write_text(json.dumps(registry_page([])))
    assert run_cli("crawl", *both, "--cache-dir", str(cache), "--db", db).returncode == 0
    assert removed_and_last_status(db) == (["io.github.test/shared"], "ok")
    # A server a person once introspected by hand (source "introspect", which no crawl lists)
    # is still removed when its catalogue drops it: it stayed in every export for good.
    routes.set("/v0.1/servers", registry_page([entry("io.github.test/only-registry"), entry("io.github.test/by-hand")]))
    assert crawl(db, base, cache, "--no-introspect", "--full").returncode == 0
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE servers SET sources = :s WHERE name = 'io.github.test/by-hand'"),
            {"s": json.dumps(["official-registry", "introspect"])},
        )
    engine.dispose()
    routes.set("/v0.1/servers", registry_page([entry("io.github.test/only-registry")]))
    assert crawl(db, base, cache, "--no-introspect", "--full").returncode == 0
    assert sorted(removed_and_last_status(db)[0]) == ["io.github.test/by-hand", "io.github.test/shared"]
    # A complete crawl of another URL under the same source name (a mirror) removes nothing:
    # it marked every server of the public registry removed.
    mirror = base.replace("127.0.0.1", "localhost")
    routes.set("/v0.1/servers", registry_page([]))
    held = crawl(db, mirror, cache, "--no-introspect", "--full")
    assert held.returncode == 0
    assert sorted(removed_and_last_status(db)[0]) == ["io.github.test/by-hand", "io.github.test/shared"]
    # ... and says so in its summary, not only in the run's stored counters.
    assert "nothing marked removed (official-registry: the source's last complete crawl listed another" in (
        held.stdout
    ), held.stdout


def test_a_crawl_stopped_with_ctrl_c_is_interrupted_not_complete(http_routes, tmp_path: Path) -> None:
    # Ctrl-C closes Scrapy's spider as "shutdown": the run was recorded as a complete, clean
    # listing, so a --full crawl marked the servers on the pages it never read as removed.
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    second = "/v0.1/servers?limit=100&version=latest&cursor=p2"
    routes.set("/v0.1/servers", registry_page([entry("io.github.test/a")], next_cursor="p2"))
    routes.set(second, registry_page([entry("io.github.test/b")]))
    assert crawl(db, base, cache, "--no-introspect").returncode == 0
    routes.set(second, registry_page([entry("io.github.test/b")]), delay=6)
    args = [sys.executable, "-m", "catalog", "crawl", "--source", "official-registry", "--registry-url", base]
    proc = subprocess.Popen(
        [*args, "--full", "--no-introspect", "--cache-dir", str(cache), "--db", db],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and routes.hits.count(second) < 2:
        time.sleep(0.1)
    assert routes.hits.count(second) == 2, routes.hits
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "stopped before the end" in err, (out, err)
    assert removed_and_last_status(db) == ([], "interrupted")
    assert crawl(db, base, cache, "--no-introspect", "--resume").returncode == 0


def _stop_crawl(
    argv: list[str],
    routes: Any,
    stops: list[tuple[signal.Signals, float]],
    *,
    hit: str | None = None,
    timeout: float = 120,
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``catalog ARGV`` stopped by ``stops`` (each signal sent that many seconds after the one
    before), counted from the catalogue's answer to ``hit`` (default: its first request); with
    the seconds from the first signal to the crawl's exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog", *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen = len(routes.hits)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (hit not in routes.hits if hit else len(routes.hits) == seen):
        time.sleep(0.1)
    assert (hit in routes.hits) if hit else len(routes.hits) > seen, routes.hits
    first = 0.0
    for i, (sig, after) in enumerate(stops):
        time.sleep(after)
        first = first if i else time.monotonic()
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.monotonic() - first


SECOND_PAGE = "/v0.1/servers?limit=100&version=latest&cursor=p2"


def _full_crawl_of_two_pages(http_routes: Any, tmp_path: Path, *, delay: float) -> tuple[list[str], str, Path]:
    """A registry of two pages whose second answers after ``delay`` seconds, and the arguments
    of a full crawl of it (``catalog crawl …``) with its database and cache."""
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    routes.set("/v0.1/servers", registry_page([entry("io.github.test/a")], next_cursor="p2"))
    routes.set(SECOND_PAGE, registry_page([entry("io.github.test/b")]), delay=delay)
    argv = ["crawl", "--source", "official-registry", "--registry-url", base]
    argv += ["--full", "--no-introspect", "--cache-dir", str(cache), "--db", db]
    return argv, db, cache


def test_a_crawl_forced_to_stop_is_interrupted_not_finished(http_routes, tmp_path: Path) -> None:
    # A second Ctrl-C (or SIGTERM, as `catalog schedule` sends a few seconds after the first)
    # stops the reactor before the spider closes its run: the crawl said "crawl finished",
    # exited 0, and left its run "running".
    base, routes = http_routes
    argv, db, cache = _full_crawl_of_two_pages(http_routes, tmp_path, delay=20)
    done, _ = _stop_crawl(argv, routes, [(signal.SIGINT, 0), (signal.SIGINT, 1)], hit=SECOND_PAGE, timeout=60)
    out, err = done.stdout, done.stderr
    assert done.returncode == 130 and "stopped before the end" in err, (out, err)
    assert "forced, before the run could be closed" in out, out
    # What it stored is said (its counters were written only when the run closed: "0 servers").
    assert out.startswith("crawl stopped: 1 servers, "), out
    assert removed_and_last_status(db) == ([], "interrupted")
    routes.set(SECOND_PAGE, registry_page([entry("io.github.test/b")]))
    resumed = crawl(db, base, cache, "--no-introspect", "--resume")
    assert resumed.returncode == 0, resumed.stderr


def test_one_stop_sent_twice_at_once_is_not_a_forced_stop(http_routes, tmp_path: Path) -> None:
    # systemd signals every process of a service at once and `catalog schedule` forwards its
    # own SIGTERM: the crawl took the pair as "send again to force" and was forced at once.
    argv, db, _ = _full_crawl_of_two_pages(http_routes, tmp_path, delay=4)
    stops = [(signal.SIGTERM, 0), (signal.SIGTERM, 0.05)]
    done, _ = _stop_crawl(argv, http_routes[1], stops, hit=SECOND_PAGE, timeout=60)
    out, err = done.stdout, done.stderr
    assert done.returncode == 130 and "stopped before the end" in err, (out, err)
    assert "forced" not in out, out  # the spider closed its run itself
    assert removed_and_last_status(db) == ([], "interrupted")


def test_a_stopped_crawl_does_not_wait_for_the_servers_it_is_asking(
    http_routes, trading_server: str, tmp_path: Path
) -> None:
    # A graceful stop (one SIGTERM) waited for each server being introspected to answer or time
    # out: a hung one held the crawl for its whole --timeout, longer than `catalog schedule`
    # waits before forcing.  Now they are stopped at once, and --resume asks them again.
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    hung = entry("io.github.test/hung", remotes=[{"type": "streamable-http", "url": f"{trading_server}/hang/mcp"}])
    routes.set("/v0.1/servers", registry_page([hung]))
    args = ["crawl", "--source", "official-registry", "--registry-url", base]
    # Three seconds after the listing: the hung server is being asked.
    done, took = _stop_crawl(
        [*args, "--timeout", "120", "--cache-dir", str(cache), "--db", db],
        routes,
        [(signal.SIGTERM, 3)],
        hit="/v0.1/servers?limit=100&version=latest",
    )
    out, err = done.stdout, done.stderr
    assert done.returncode == 130 and "stopped before the end" in err, (out, err)
    assert took < 30, f"the stop waited {took:.0f} s for the hung server"
    assert "forced" not in out  # one signal: the spider closed its run itself
    assert removed_and_last_status(db) == ([], "interrupted")
    assert stats(db)["introspection"] == {}  # no attempt recorded for a server it stopped asking
    resumed = run_cli(*args, "--timeout", "2", "--resume", "--cache-dir", str(cache), "--db", db)
    assert resumed.returncode == 0, resumed.stderr
    assert stats(db)["introspection"] == {"timeout": 1}, stats(db)


def test_a_second_resume_keeps_what_the_first_run_handled(http_routes, trading_server: str, tmp_path: Path) -> None:
    # crawl, stop, --resume, stop, --resume: the second resume asked again the servers the first
    # run had handled (the run it resumed skipped them, so held no attempt of theirs).
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    remote = {"ok": "/mcp", "auth": "/private/mcp", "hung": "/hang/mcp"}
    routes.set(
        "/v0.1/servers",
        registry_page(
            [
                entry(f"io.github.t/{n}", remotes=[{"type": "streamable-http", "url": f"{trading_server}{p}"}])
                for n, p in remote.items()
            ]
        ),
    )
    argv = ["crawl", "--source", "official-registry", "--registry-url", base, "--cache-dir", str(cache), "--db", db]
    argv += ["--full"]
    assert _stop_crawl([*argv, "--timeout", "120"], routes, [(signal.SIGTERM, 4)])[0].returncode == 130
    assert _stop_crawl([*argv, "--timeout", "120", "--resume"], routes, [(signal.SIGTERM, 4)])[0].returncode == 130
    third = run_cli(*argv, "--timeout", "2", "--resume")
    assert third.returncode == 0, third.stderr
    engine = create_engine(db)
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT a.crawl_run_id, s.name FROM introspection_attempts a JOIN servers s ON s.id = a.server_id"
                " ORDER BY a.id"
            )
        ).all()
    engine.dispose()
    runs = sorted({run for run, _ in rows})
    assert [name for run, name in rows if run == runs[-1]] == ["io.github.t/hung"], rows
    assert sorted(name for run, name in rows if run == runs[0]) == ["io.github.t/auth", "io.github.t/ok"], rows


def test_not_started_counts_servers(http_routes, tmp_path: Path) -> None:
    base, routes = http_routes
    db, cache = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "cache"
    oci = [
        {"registryType": "oci", "identifier": f"x/img{i}", "version": "1", "transport": {"type": "stdio"}}
        for i in (1, 2)
    ]
    routes.set("/v0.1/servers", registry_page([entry("io.github.t/img", packages=oci)]))
    out = crawl(db, base, cache)
    assert out.returncode == 0 and "0 introspection failures, 1 not started" in out.stdout, out.stdout


def test_sources_stopped_for_one_reason_share_it_in_the_summary() -> None:
    # Two sources stopped by one Ctrl-C each said "stopped before the end ...; --resume
    # continues it": the hint twice on the line a schedule logs.
    from catalog.crawl_job import FORCED_STOP, CrawlSummary

    def run(source: str, status: str, error: str | None) -> dict[str, Any]:
        return {"id": 1, "source": source, "status": status, "counters": {"servers": 2}, "error": error}

    summary = CrawlSummary(
        runs=[
            run("official-registry", "interrupted", FORCED_STOP),
            run("curated", "interrupted", FORCED_STOP),
            run("glama", "partial", "page 3: not JSON"),
            run("toolhive", "ok", None),
        ],
        classified=0,
        seconds=1.0,
    )
    line = summary.line()
    assert line.startswith("crawl stopped: 8 servers, "), line
    assert line.count("--resume") == 1, line
    assert f"3 source(s) incomplete (official-registry, curated: {FORCED_STOP}"[:60] in line, line
    assert "; glama: page 3: not JSON)" in line, line
