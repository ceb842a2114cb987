#!/usr/bin/env python3
"""Benchmark: classification throughput and read-command start-up, against baselines measured
in the same run.

* Classifier throughput (tools/s, one core) on the labelled real definitions under
  classifier/data (or the definitions stored in a catalogue with --db), against a keyword
  baseline that only splits the name and looks verbs up (peers.md's "honest floor") on the
  same input: the model path alone (batched :func:`classifier.classify.predict`: features,
  both heads, server context, calibrated confidence; in a fresh process with the cached
  model, compiled and pure Python, and again right after training), full verdicts
  (:func:`classifier.classify_many`: plus the
  rubric's risk rules, the poisoning scan and the rationale) and the rules-only verdicts.
* Training time of the learned model from the committed data (what a cold cache costs).
* `catalog recommend` wall time from a cold interpreter, against `python -c pass`.

Usage: .venv/bin/python scripts/bench_classify.py [--db URL] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import classifier  # noqa: E402
from classifier import ToolDefinition, classify, classify_many  # noqa: E402
from classifier.classify import current_model, predict  # noqa: E402
from classifier.model import DATA_DIR, DEV_FILE, TRAIN_FILES, read_jsonl, train  # noqa: E402
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
    rows = [r for name in ("train", "dev", "test") for r in read_jsonl(DATA_DIR / f"{name}.jsonl")]
    defs = [ToolDefinition.from_mapping(r, server=r["server"]) for r in rows]
    return defs, f"{len(defs)} labelled real definitions (classifier/data)"


def rate(fn, items: list[ToolDefinition], repeat: int, *, batch: bool = False) -> float:  # type: ignore[no-untyped-def]
    """Tools per second, best of ``repeat`` rounds (CPU time of this one process and thread)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        if batch:
            fn(items)
        else:
            for d in items:
                fn(d)
        best = min(best, time.process_time() - start)
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
    ap.add_argument("--db", help="classify the definitions stored in this catalogue instead")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model-path-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    items, what = corpus(args.db)
    work = (items * (max(1, 5000 // len(items)) + 1))[:5000]
    if args.model_path_only:  # the pure-Python comparison, run in a child process
        current_model()
        # The rate, then whether this process ran the compiled modules (for the label).
        print(f"{rate(predict, work, args.repeat, batch=True):.0f} {int(classifier.COMPILED)}")
        return
    train_rows = [r for name in TRAIN_FILES for r in read_jsonl(DATA_DIR / name)]
    start = time.process_time()
    train(train_rows, read_jsonl(DATA_DIR / DEV_FILE))
    trained = time.process_time() - start
    current_model()
    # The model path as `catalog classify` runs it: a process that loads the cached model, not
    # one that has just trained it.  Compiled and pure Python each in a fresh child process, so
    # their ratio compares like with like; the in-process figure after training is printed too.
    child = [sys.executable, __file__, "--model-path-only", "--repeat", str(args.repeat)]
    child += ["--db", args.db] if args.db else []

    def in_child(pure_python: bool) -> tuple[float, bool]:
        env = {k: v for k, v in os.environ.items() if k != "MCP_CATALOG_PURE_PYTHON"}
        env |= {"MCP_CATALOG_PURE_PYTHON": "1"} if pure_python else {}
        done = subprocess.run(child, capture_output=True, text=True, check=True, env=env)
        tools_per_s, compiled_child = done.stdout.split()[-2:]
        return float(tools_per_s), compiled_child == "1"

    (model, compiled_run), (pure, _) = in_child(pure_python=False), in_child(pure_python=True)
    after_training = rate(predict, work, args.repeat, batch=True)
    full = rate(classify_many, work, args.repeat, batch=True)  # a catalogue classifies a server at a time
    plain = rate(lambda d: classify(d, learned=False), work, args.repeat)
    base = rate(keyword_baseline, work, args.repeat)
    print(f"corpus: {what}; {len(work)} classifications per round, best of {args.repeat}, CPU time, one thread")
    print(f"training from the committed data: {trained:.1f} s CPU")
    print(f"keyword baseline:        {base:>9,.0f} tools/s")
    compiled = "compiled with mypyc" if compiled_run else "pure Python: no build/fast/"
    print(f"model path (batched):    {model:>9,.0f} tools/s   {model / base:.2f}x baseline ({compiled}; fresh process)")
    print(f"  same, pure Python:     {pure:>9,.0f} tools/s   compiled/pure {model / pure:.2f}x")
    print(f"  same, right after training in this process: {after_training:,.0f} tools/s")
    print(f"full verdicts:           {full:>9,.0f} tools/s   {full / base:.2f}x baseline")
    print(f"rules-only verdicts:     {plain:>9,.0f} tools/s   {plain / base:.2f}x baseline")
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
