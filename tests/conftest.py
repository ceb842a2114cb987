"""Shared fixtures: real SQLite and PostgreSQL stores, loopback HTTP servers, real MCP servers.

PostgreSQL runs at 127.0.0.1:5432 (trust auth, database ``test``); each test session gets
its own schema so runs never see each other's rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
SERVERS = Path(__file__).parent / "servers"
PG_BASE = os.environ.get("CATALOG_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")
#: Packages installed by the tests are cached across runs (git-ignored), one cache per pytest-xdist
#: worker: a crawl holds its cache directory's lock, so two workers' crawls on one cache would
#: refuse each other ("another crawl is running", exit 4).
PACKAGE_CACHE = Path(os.environ.get("CATALOG_TEST_CACHE", ROOT / ".cache" / "test-packages")) / os.environ.get(
    "PYTEST_XDIST_WORKER", "main"
)
#: Every server the tests run is on loopback, which a crawl does not reach unless told
#: (`--allow-private-remotes`); the test of that guard removes the variable.
os.environ.setdefault("MCP_CATALOG_PRIVATE_REMOTES", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs: bound, never
    listening, so no other process can take it in between (a port that was merely free a
    moment ago once answered a test's "unreachable" registry with HTTP 404)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    schema = f"catalog_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(PG_BASE)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def pg_url(pg_schema: str) -> Iterator[str]:
    """A fresh schema per test (inside the session's), selected through search_path."""
    inner = f"{pg_schema}_{uuid.uuid4().hex[:6]}"
    engine = create_engine(PG_BASE)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{inner}"'))
    yield f"{PG_BASE}?options=-csearch_path%3D{inner}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{inner}" CASCADE'))
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


class Routes:
    """A tiny loopback HTTP server whose answers the test sets per path (query ignored unless given).

    Every answer carries an ETag; a request with a matching If-None-Match gets 304, as the
    real registry's CDN does, so conditional requests can be counted.  With ``key`` set, a
    request without ``Authorization: Bearer KEY`` gets 401, as an API that wants a key does;
    every request's Authorization header is kept in ``authorizations``.  A 3xx answer's body is
    its Location."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, str]] = {}
        self.delays: dict[str, float] = {}
        self.hits: list[str] = []
        self.not_modified = 0
        self.key: str | None = None
        self.authorizations: list[tuple[str, str | None]] = []

    def set(
        self, path: str, body: Any, status: int = 200, content_type: str = "application/json", delay: float = 0.0
    ) -> None:
        """Answer ``path`` with ``body``; after ``delay`` seconds (a slow catalogue page)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.routes[path] = (status, raw, content_type)
        self.delays[path] = delay

    def answer(self, full_path: str) -> tuple[int, bytes, str]:
        self.hits.append(full_path)
        if full_path in self.routes:
            time.sleep(self.delays.get(full_path, 0.0))
            return self.routes[full_path]
        path = full_path.split("?", 1)[0]
        if path in self.routes:
            return self.routes[path]
        return 404, b'{"error":"not found"}', "application/json"


@pytest.fixture
def http_routes() -> Iterator[tuple[str, Routes]]:
    routes = Routes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            given = self.headers.get("Authorization")
            routes.authorizations.append((self.path, given))
            if routes.key is not None and given != f"Bearer {routes.key}":
                routes.hits.append(self.path)
                status, body, ctype = 401, b'{"error":"unauthorized"}', "application/json"
            else:
                status, body, ctype = routes.answer(self.path)
            if 300 <= status < 400:
                self.send_response(status)
                self.send_header("Location", body.decode())
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if status == 200 and self.headers.get("If-None-Match") == etag:
                routes.not_modified += 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(status)
            self.send_header("ETag", etag)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def trading_server() -> Iterator[str]:
    """The loopback streamable-HTTP MCP server from tests/servers/trading_http.py; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVERS / "trading_http.py"), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:  # a test left a request hanging (/hang): no graceful exit
            proc.kill()
            proc.wait(5)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``catalog`` as a real subprocess (the console script's module)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "catalog", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(cwd or ROOT),
        check=False,
    )


def process_ended(pid: int, timeout: float = 5) -> bool:
    """Whether the process ends (or is a zombie nobody reaps yet) within ``timeout`` seconds;
    one still running then is killed, so a failing test leaves nothing behind."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if stat.read_text().split(") ")[1][0] == "Z":
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    os.kill(pid, 9)
    return False


def console_wheel(
    links: Path,
    name: str,
    version: str,
    source: str,
    scripts: dict[str, str] | None = None,
    data: dict[str, bytes] | None = None,
    requires: tuple[str, ...] = (),
) -> None:
    """Write a wheel of module ``name`` (``source``, with a ``main``) whose console script of
    that name calls ``main`` (or whose ``scripts`` call the functions they name), plus ``data``
    files and the dependencies ``requires``, by hand (a zip with its dist-info), into ``links``
    (pip's ``--find-links``): installing it needs no network and runs none of its code."""
    import base64
    import hashlib
    import zipfile

    entry_points = "".join(f"{script} = {name}:{func}\n" for script, func in (scripts or {name: "main"}).items())
    info = f"{name}-{version}.dist-info"
    texts = {
        f"{name}.py": source,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[console_scripts]\n{entry_points}",
    }
    files = {path: body.encode() for path, body in texts.items()} | (data or {})
    record = []
    for path, raw in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(raw)}")
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(links / f"{name}-{version}-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, raw in files.items():
            wheel.writestr(path, raw)


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


def registry_page(entries: list[dict[str, Any]], next_cursor: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"count": len(entries)}
    if next_cursor:
        meta["nextCursor"] = next_cursor
    return {"servers": entries, "metadata": meta}
