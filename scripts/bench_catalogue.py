#!/usr/bin/env python3
"""Benchmark: a catalogue that carries its tools (Glama's shape), crawled cold and again.

Serves, on loopback, a Glama-shaped directory of N servers (pages of 100, Relay cursors,
ETags), each listing K real tool definitions from the project's labelled corpus
(``classifier/data/train.jsonl``, windows of K consecutive tools, so every server is a real
server's neighbourhood of tools), and times `catalog crawl --source glama` three times in
one run: the first crawl (every definition stored and classified), an unchanged re-crawl
(Glama offers no ``updated_since``: listed whole, every definition already known, nothing
classified), and a re-crawl after one server in ten changed one tool's description. It
prints the times, tools per second and the ratios against the first crawl.

Usage: .venv/bin/python scripts/bench_catalogue.py [--servers 1000] [--tools 10] [--db URL]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench_incremental import send_json  # the same loopback answers, ETags and 304s

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "classifier" / "data" / "train.jsonl"
PAGE = 100


def corpus() -> list[dict[str, Any]]:
    tools = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row.get("poisoned"):
            continue
        tools.append(
            {
                "name": row["name"],
                "description": row.get("description") or "",
                "inputSchema": row.get("inputSchema") or {"type": "object"},
                **({"annotations": row["annotations"]} if row.get("annotations") else {}),
            }
        )
    return tools


def servers(n: int, k: int, changed: bool) -> list[dict[str, Any]]:
    pool = corpus()
    out = []
    for i in range(n):
        start = (i * k) % max(1, len(pool) - k)
        tools = [dict(t) for t in pool[start : start + k]]
        # One name per server, as a server lists them.
        seen: set[str] = set()
        tools = [t for t in tools if not (t["name"] in seen or seen.add(t["name"]))]
        if changed and i % 10 == 0 and tools:
            tools[0]["description"] += " (updated)"
        out.append(
            {
                "id": f"id{i}",
                "name": f"Bench {i}",
                "namespace": "bench",
                "slug": f"server-{i:05d}",
                "description": "benchmark server",
                "url": f"https://glama.test/mcp/servers/bench/server-{i:05d}",
                "repository": {"url": f"https://github.com/bench/server-{i:05d}"},
                "tools": tools,
            }
        )
    return out


class Catalogue:
    """The directory on loopback; ``entries`` can be swapped between crawls."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.not_modified = 0
        catalogue = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/api/mcp/v1/servers":
                    self.send_response(404)
                    self.end_headers()
                    return
                q = parse_qs(url.query)
                start = int(q.get("after", ["0"])[0])
                page = catalogue.entries[start : start + PAGE]
                more = start + PAGE < len(catalogue.entries)
                info = {"endCursor": str(start + PAGE) if more else None, "hasNextPage": more}
                if send_json(self, json.dumps({"servers": page, "pageInfo": info}).encode()):
                    catalogue.not_modified += 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/mcp/v1/servers"


def crawl(url: str, db: str, cache: str) -> tuple[float, str]:
    args = ["crawl", "--source", "glama", "--source-url", f"glama={url}", "--cache-dir", cache, "--db", db]
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "catalog", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"crawl failed: {out.stdout}{out.stderr}")
    return seconds, out.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--tools", type=int, default=10)
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        cache = str(Path(tmp) / "cache")
        socket.setdefaulttimeout(30)
        cat = Catalogue(servers(args.servers, args.tools, changed=False))
        tools = sum(len(e["tools"]) for e in cat.entries)
        print(f"catalogue: {args.servers} servers, {tools} tools (Glama's shape, pages of {PAGE}, loopback)")
        cold, line = crawl(cat.url, db, cache)
        print(f"first crawl      : {cold:7.1f} s  {tools / cold:7.0f} tools/s   {line}")
        warm, line = crawl(cat.url, db, cache)
        print(f"unchanged again  : {warm:7.1f} s  {tools / warm:7.0f} tools/s   {line}")
        print(f"  {cold / warm:.1f}x cheaper than the first crawl ({cat.not_modified} pages answered 304)")
        cat.entries = servers(args.servers, args.tools, changed=True)
        some, line = crawl(cat.url, db, cache)
        print(f"1 in 10 changed  : {some:7.1f} s  {tools / some:7.0f} tools/s   {line}")
        print(f"  {cold / some:.1f}x cheaper than the first crawl")
        cat.server.shutdown()


if __name__ == "__main__":
    main()
