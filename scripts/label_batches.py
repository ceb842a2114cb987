#!/usr/bin/env python3
"""Cut collected tools into labelling batches: compact, one server per block, capped per server.

A labeller (a person, reading each tool against the rubric) gets one batch and writes one
label line per tool (classifier/data/LABELLING.md says how).  Servers already in a batch
of ``--batches`` are skipped, so batches can be cut as collection goes on.  The per-server
cap keeps a server with hundreds of tools from drowning the rest; which tools are kept is
deterministic (evenly spaced by name).

Usage: .venv/bin/python scripts/label_batches.py tools.jsonl -o batches/b01.jsonl [--cap 40] [--max-tools 300]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def compact(row: dict[str, Any]) -> dict[str, Any]:
    props = (row.get("inputSchema") or {}).get("properties") or {}
    params = []
    if isinstance(props, dict):
        for name, spec in list(props.items())[:25]:
            if not isinstance(spec, dict):
                continue
            text = f"{name}:{spec.get('type', '')}"
            if "enum" in spec:
                text += " enum=" + ",".join(map(str, spec["enum"][:12]))
            doc = spec.get("description")
            if isinstance(doc, str) and doc:
                text += " — " + " ".join(doc.split())[:120]
            params.append(text)
    return {
        "id": f"{row['server']}::{row['name']}",
        "server": row["server"],
        "name": row["name"],
        "description": (row.get("description") or "")[:1500],
        "params": params,
        "annotations": row.get("annotations") or {},
        "draft": {k: (row.get("draft") or {}).get(k) for k in ("category", "action", "risk")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tools", type=Path, nargs="+")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--cap", type=int, default=40, help="tools per server at most")
    ap.add_argument("--max-tools", type=int, default=300, help="tools per batch at most")
    args = ap.parse_args()
    done: set[str] = set()
    for other in args.output.parent.glob("*.jsonl"):
        done |= {json.loads(line)["server"] for line in other.read_text().splitlines() if line.strip()}
    servers: dict[str, dict[str, dict[str, Any]]] = {}
    for path in args.tools:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                servers.setdefault(row["server"], {})[row["name"]] = row
    batch: list[dict[str, Any]] = []
    for server in sorted(set(servers) - done):
        tools = sorted(servers[server].values(), key=lambda r: r["name"])
        if len(tools) > args.cap:
            step = len(tools) / args.cap
            tools = [tools[int(i * step)] for i in range(args.cap)]
        if batch and len(batch) + len(tools) > args.max_tools:
            break
        batch += [compact(r) for r in tools]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as fh:
        for item in batch:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{args.output}: {len(batch)} tools from {len({b['server'] for b in batch})} servers")


if __name__ == "__main__":
    main()
