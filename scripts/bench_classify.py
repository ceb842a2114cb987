#!/usr/bin/env python3
"""Benchmark: classification throughput and read-command start-up, against baselines measured
in the same run.

* Classifier throughput (tools/s, one core) on the definitions stored in a catalogue (default
  catalog.db; falls back to the rule files' own cases), against a keyword baseline that only
  splits the name and looks verbs up (peers.md's "honest floor") on the same input.
* `catalog recommend` wall time from a cold interpreter, against `python -c pass`.

Usage: .venv/bin/python scripts/bench_classify.py [--db URL] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier import ToolDefinition, classify  # noqa: E402
from classifier.rules import load_rules  # noqa: E402
from classifier.tokens import split_name  # noqa: E402

BASELINE_VERBS = {
    "get": "read",
    "list": "read",
    "read": "read",
    "search": "read",
    "create": "write",
    "update": "write",
    "add": "write",
    "delete": "delete",
    "drop": "delete",
    "cancel": "delete",
    "run": "execute",
    "exec": "execute",
    "send": "send",
    "post": "send",
    "pay": "transact",
    "transfer": "transact",
    "order": "transact",
}


def keyword_baseline(defn: ToolDefinition) -> str:
    return next((BASELINE_VERBS[t] for t in split_name(defn.name) if t in BASELINE_VERBS), "read")


def corpus(db: str | None) -> tuple[list[ToolDefinition], str]:
    if db:
        from catalog.store.db import open_store
        from catalog.store.repository import current_tools

        store = open_store(db)
        with store.session() as s:
            defs = [ToolDefinition.from_mapping(v.definition, server=v.server) for v in current_tools(s)]
        store.dispose()
        if defs:
            return defs, f"{len(defs)} stored definitions from {db}"
    rules = load_rules()
    cases = [c for r in rules.categories for c in (*r.must_match, *r.must_not_match)]
    return [ToolDefinition.from_mapping(c) for c in cases], f"{len(cases)} rule cases (no catalogue found)"


def rate(fn, items: list[ToolDefinition], repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for d in items:
            fn(d)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_db = f"sqlite:///{ROOT / 'catalog.db'}" if (ROOT / "catalog.db").exists() else None
    ap.add_argument("--db", default=default_db)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    items, what = corpus(args.db)
    work = (items * (max(1, 5000 // len(items)) + 1))[:5000]
    ours = rate(classify, work, args.repeat)
    base = rate(keyword_baseline, work, args.repeat)
    print(f"corpus: {what}; {len(work)} classifications per round, best of {args.repeat}")
    print(f"rules classifier: {ours:,.0f} tools/s   keyword baseline: {base:,.0f} tools/s   ratio: {ours / base:.2f}x")
    py = [sys.executable]
    if args.db:
        tool = items[0].name
        server = items[0].server or ""
        rec = wall(
            [*py, "-m", "catalog", "recommend", tool, "--server", server, "--format", "json", "--db", args.db],
            args.repeat,
        )
        bare = wall([*py, "-c", "pass"], args.repeat)
        print(
            f"catalog recommend: {rec * 1000:.0f} ms   python -c pass: {bare * 1000:.0f} ms   "
            f"overhead: {(rec - bare) * 1000:.0f} ms (median of {args.repeat})"
        )


if __name__ == "__main__":
    main()
