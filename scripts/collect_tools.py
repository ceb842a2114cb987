#!/usr/bin/env python3
"""Collect real tool definitions for labelling: introspect packages live, write JSONL.

Each line is one tool as its server declares it, with provenance (registry, package,
version, date, how it was started) and a *draft* verdict from the rules classifier under
``draft``: a person labels by the rubric by reading the tool; a draft is never a label.
The packages come from the curated list, scripts/bench_packages.json and
scripts/collect_packages.json (real servers found to answer tools/list here) unless
--packages names other files (lists of server.json package objects).

Usage: .venv/bin/python scripts/collect_tools.py -o tools.jsonl [--packages FILE ...] [--concurrency 6]
       [--instructions instructions.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier import ToolDefinition, classify  # noqa: E402
from crawler.introspection.installer import default_cache_dir  # noqa: E402
from crawler.introspection.runner import RunnerConfig, introspect_entry  # noqa: E402
from crawler.spiders.curated import CURATED_FILE  # noqa: E402


def packages(files: list[Path]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if not files:
        found += [p for s in json.loads(CURATED_FILE.read_text())["servers"] for p in s["server"].get("packages", [])]
        files = [ROOT / "scripts" / "bench_packages.json", ROOT / "scripts" / "collect_packages.json"]
    for f in files:
        found += json.loads(f.read_text())
    unique = {(p["registryType"], p["identifier"]): p for p in found}
    return list(unique.values())


async def collect(
    pkgs: list[dict[str, Any]], cfg: RunnerConfig, concurrency: int, out: TextIO, told: TextIO | None = None
) -> list[dict[str, Any]]:
    """Introspect every package; each server's tools are written to ``out`` as soon as it
    answers, and what its ``initialize`` told the model (``instructions``) to ``told``."""
    sem = asyncio.Semaphore(concurrency)
    today = datetime.now(UTC).date().isoformat()

    async def one(p: dict[str, Any]) -> list[dict[str, Any]]:
        async with sem:
            attempts = await introspect_entry([p], [], cfg)
        last = attempts[-1]
        label = f"{p['registryType']}:{p['identifier']}"
        print(f"{label}: {last.outcome} ({len(last.tools)} tools)", file=sys.stderr)
        rows = []
        for tool in last.tools:
            v = classify(ToolDefinition.from_mapping(tool, server=p["identifier"]))
            rows.append(
                {
                    **tool,
                    "server": p["identifier"],
                    "provenance": {
                        "registry": p["registryType"],
                        "package": p["identifier"],
                        "version": p.get("version"),
                        "server_version": last.server_info.get("version"),
                        "introspected": today,
                        "compat": last.server_info.get("compat"),
                    },
                    "draft": {"category": v.category, "action": v.action, "risk": v.risk, "by": v.classifier_version},
                }
            )
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
        said = last.server_info.get("instructions")
        if told is not None and last.ok and isinstance(said, str) and said.strip():
            row = {
                "package": p["identifier"],
                "registry": p["registryType"],
                "version": p.get("version"),
                "server": last.server_info.get("name"),
                "server_version": last.server_info.get("version"),
                "introspected": today,
                "tools": sorted({t["name"] for t in last.tools}),
                "instructions": said,
            }
            told.write(json.dumps(row, ensure_ascii=False) + "\n")
            told.flush()
        return rows

    results = await asyncio.gather(*(one(p) for p in pkgs))
    return [row for rows in results for row in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--packages", type=Path, nargs="*", default=[])
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--instructions", type=Path, help="Also write each server's instructions here (JSONL).")
    args = ap.parse_args()
    cfg = RunnerConfig(cache_dir=default_cache_dir(), timeout=args.timeout, install_timeout=600)
    with args.output.open("w", encoding="utf-8") as fh, contextlib.ExitStack() as stack:
        told = stack.enter_context(args.instructions.open("w", encoding="utf-8")) if args.instructions else None
        rows = asyncio.run(collect(packages(args.packages), cfg, args.concurrency, fh, told))
    servers = len({r["server"] for r in rows})
    print(f"{len(rows)} tools from {servers} servers -> {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
