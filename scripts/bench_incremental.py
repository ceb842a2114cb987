#!/usr/bin/env python3
"""Benchmark: an unchanged re-crawl against the first crawl of the same catalogue.

Serves a registry of N servers on loopback (pages of 100, with ETags), every entry with a
streamable-HTTP remote on a loopback MCP server (tests/servers/trading_http.py), then times
`catalog crawl` three times in one run: the first crawl, an unchanged incremental re-crawl,
and a `--full` re-crawl, and prints the ratios.

Usage: .venv/bin/python scripts/bench_incremental.py [--servers 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def send_json(handler: BaseHTTPRequestHandler, body: bytes) -> bool:
    """Answer with ``body`` and its ETag, or 304 when the request already holds that ETag (as
    a catalogue's CDN does); whether it was a 304."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    if handler.headers.get("If-None-Match") == etag:
        handler.send_response(304)
        handler.send_header("ETag", etag)
        handler.end_headers()
        return True
    handler.send_response(200)
    handler.send_header("ETag", etag)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
    return False


def registry(n: int, mcp_url: str, honour_updated_since: bool = True) -> ThreadingHTTPServer:
    entries = [
        {
            "server": {
                "name": f"io.github.bench/server-{i:05d}",
                "description": "bench",
                "version": "1.0.0",
                "remotes": [{"type": "streamable-http", "url": mcp_url}],
            },
            "_meta": {
                "io.modelcontextprotocol.registry/official": {"isLatest": True, "publishedAt": "2026-01-01T00:00:00Z"}
            },
        }
        for i in range(n)
    ]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if not url.path.endswith("/servers"):
                self.send_response(404)
                self.end_headers()
                return
            q = parse_qs(url.query)
            start = int(q.get("cursor", ["0"])[0])
            # Nothing changes between crawls: an updated_since listing is empty.
            page = [] if "updated_since" in q and honour_updated_since else entries[start : start + 100]
            meta = {"count": len(page)}
            if page and start + 100 < n:
                meta["nextCursor"] = str(start + 100)
            send_json(self, json.dumps({"servers": page, "metadata": meta}).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def crawl(base: str, db: str, cache: str, *extra: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "catalog",
            "crawl",
            "--source",
            "official-registry",
            "--registry-url",
            base,
            "--cache-dir",
            cache,
            "--db",
            db,
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    took = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"crawl failed: {proc.stderr.strip()[-500:]}")
    return took, proc.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=1000)
    args = ap.parse_args()
    port = free_port()
    mcp = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "servers" / "trading_http.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        reg = registry(args.servers, f"http://127.0.0.1:{port}/mcp")
        base = f"http://127.0.0.1:{reg.server_address[1]}"
        with tempfile.TemporaryDirectory() as tmp:
            db, cache = f"sqlite:///{tmp}/bench.db", f"{tmp}/cache"
            first, line1 = crawl(base, db, cache)
            again, line2 = crawl(base, db, cache)
            full, line3 = crawl(base, db, cache, "--full")
        # A catalogue that ignores updated_since: every page comes back (304 from the HTTP cache on
        # the second pass) and every server is skipped as unchanged.
        plain = registry(args.servers, f"http://127.0.0.1:{port}/mcp", honour_updated_since=False)
        base2 = f"http://127.0.0.1:{plain.server_address[1]}"
        with tempfile.TemporaryDirectory() as tmp:
            db, cache = f"sqlite:///{tmp}/bench.db", f"{tmp}/cache"
            first2, _ = crawl(base2, db, cache)
            again2, line4 = crawl(base2, db, cache)
        print(f"catalogue: {args.servers} servers on loopback, each introspected over streamable HTTP")
        print(f"first crawl:            {first:7.1f}s  ({line1})")
        print(f"unchanged re-crawl:     {again:7.1f}s  ({line2})")
        print(f"--full re-crawl:        {full:7.1f}s  ({line3})")
        print(f"first / unchanged re-crawl: {first / again:.1f}x   first / --full: {first / full:.1f}x")
        print(
            f"catalogue without updated_since: first {first2:.1f}s, unchanged re-crawl {again2:.1f}s "
            f"({line4}): {first2 / again2:.1f}x"
        )
    finally:
        mcp.terminate()
        mcp.wait(10)


if __name__ == "__main__":
    main()
