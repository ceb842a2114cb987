#!/usr/bin/env python3
"""Benchmark: live introspection of real packages, 8 in parallel against the same run serially.

Installs every package once (not timed), then introspects all of them serially and with
`--concurrency` at once in the sandbox, and prints total time, time per server and the
ratio.  A hung server (tests/servers/stdio_faults.py hang) rides along to show that it costs
no more than its timeout.

Usage: .venv/bin/python scripts/bench_introspect.py [--concurrency 8] [--timeout 30] [--packages FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.introspection.installer import default_cache_dir  # noqa: E402
from crawler.introspection.runner import RunnerConfig, introspect_entry, run_sandboxed  # noqa: E402
from crawler.spiders.curated import CURATED_FILE  # noqa: E402


def packages(extra: Path | None) -> list[dict[str, Any]]:
    pkgs = [p for s in json.loads(CURATED_FILE.read_text())["servers"] for p in s["server"].get("packages", [])]
    more = extra or ROOT / "scripts" / "bench_packages.json"
    if more.exists():
        pkgs += json.loads(more.read_text())
    seen, out = set(), []
    for p in pkgs:
        if p["identifier"] not in seen:
            seen.add(p["identifier"])
            out.append(p)
    return out


async def run_all(pkgs: list[dict[str, Any]], cfg: RunnerConfig, concurrency: int) -> tuple[float, list[Any]]:
    sem = asyncio.Semaphore(concurrency)

    async def one(p: dict[str, Any]) -> tuple[str, float, str, int]:
        async with sem:
            start = time.perf_counter()
            attempts = await introspect_entry([p], [], cfg)
            last = attempts[-1]
            return p["identifier"], time.perf_counter() - start, last.outcome, len(last.tools)

    start = time.perf_counter()
    results = await asyncio.gather(*(one(p) for p in pkgs))
    return time.perf_counter() - start, list(results)


async def hung(cfg: RunnerConfig) -> float:
    start = time.perf_counter()
    await run_sandboxed(
        [sys.executable, str(ROOT / "tests" / "servers" / "stdio_faults.py"), "hang"],
        cfg,
        readonly=[ROOT / "tests" / "servers", Path(sys.prefix)],
    )
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--packages", type=Path)
    args = ap.parse_args()
    cfg = RunnerConfig(cache_dir=default_cache_dir(), timeout=args.timeout)
    pkgs = packages(args.packages)
    t_install, _ = asyncio.run(run_all(pkgs, cfg, 4))
    print(f"{len(pkgs)} packages; install + first run (not compared): {t_install:.1f}s")
    t_serial, serial = asyncio.run(run_all(pkgs, cfg, 1))
    t_par, par = asyncio.run(run_all(pkgs, cfg, args.concurrency))
    ok = sum(1 for r in par if r[2] == "ok")
    tools = sum(r[3] for r in par)
    per = [r[1] for r in serial]
    print(f"answered: {ok}/{len(pkgs)} servers, {tools} tools")
    print(f"serial: {t_serial:.1f}s total, {statistics.median(per):.2f}s median per server, {max(per):.2f}s slowest")
    print(
        f"{args.concurrency} in parallel: {t_par:.1f}s total ({t_par / len(pkgs):.2f}s per server)   "
        f"speed-up over serial: {t_serial / t_par:.2f}x"
    )
    for ident, secs, outcome, n in sorted(serial, key=lambda r: -r[1])[:5]:
        print(f"  slowest: {ident} {secs:.2f}s {outcome} ({n} tools)")
    for ident, _, outcome, _ in par:
        if outcome != "ok":
            print(f"  not ok: {ident}: {outcome}")
    hang_cfg = RunnerConfig(cache_dir=cfg.cache_dir, timeout=10.0)
    print(f"hung server with a 10s timeout: {asyncio.run(hung(hang_cfg)):.1f}s")


if __name__ == "__main__":
    main()
