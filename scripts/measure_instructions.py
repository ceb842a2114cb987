#!/usr/bin/env python3
"""How well servers' instructions are read for poisoning: false alarms on real instructions,
and the planted payloads found when each is planted in honest instructions.

Real instructions: classifier/data/server_instructions.jsonl (what real servers' ``initialize``
said, introspected live by this project; see classifier/data/README.md).  Planted: every case of
classifier/data/poisoning_payloads.jsonl put into one of a few honest instructions texts (at the
start, in the middle, at the end, chosen by the case's id), reported per payload group; groups
B and G are the test split's (never learned, never tuned on), the rest are learned by the
instruction reading, so its figures on them are not held out.

Usage: .venv/bin/python scripts/measure_instructions.py [--rules-only] [--real FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier.definition import ToolDefinition  # noqa: E402
from classifier.findings import poisoning  # noqa: E402
from classifier.rules import load_rules  # noqa: E402
from classifier.server_instructions import ORDINARY_IN_INSTRUCTIONS, scan_instructions  # noqa: E402

RULES = load_rules()
DATA = ROOT / "classifier" / "data"
HELD_OUT = ("B", "G")

#: Honest instructions, written for this script in the styles real servers use.
HONEST = (
    "This server gives access to the team's notes. Use list_notes to find a note and read_note to"
    " read it. Ask the user before deleting anything.",
    "Weather server.\n\n## Tools\n- get_forecast: the forecast for a city\n- get_alerts: active alerts"
    " for a US state\n\nAlways pass the city's full name.",
    "You are connected to the Acme CRM. Look customers up with find_customer before updating them;"
    " never invent customer ids. Dates are ISO 8601.",
)


def planted(case: dict[str, str]) -> str:
    """The case's payload in an honest text, at a place its id chooses."""
    pick = int(hashlib.sha256(case["id"].encode()).hexdigest(), 16)
    honest = HONEST[pick % len(HONEST)]
    sentences = honest.split(". ")
    at = (pick // len(HONEST)) % 3
    if at == 0:
        return case["payload"] + "\n" + honest
    if at == 1:
        half = len(sentences) // 2
        return ". ".join(sentences[:half]) + ". " + case["payload"] + " " + ". ".join(sentences[half:])
    return honest + "\n" + case["payload"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules-only", action="store_true", help="Without the learned instruction reading.")
    ap.add_argument("--real", type=Path, default=DATA / "server_instructions.jsonl")
    args = ap.parse_args()
    learned = not args.rules_only

    real = [json.loads(line) for line in args.real.read_text(encoding="utf-8").splitlines() if line.strip()]
    # A line's `tools` (its server's tool names, where the collection kept them) lets an ordering
    # of a tool that is none of them count; without, every ordering is the server's own.
    alarms = [(r, scan_instructions(r["instructions"], tools=r.get("tools"), learned=learned)) for r in real]
    ordinary = sum(
        any(f.rule in ORDINARY_IN_INSTRUCTIONS for f in poisoning(ToolDefinition("i", r["instructions"]), RULES))
        for r in real
    )
    wrong = [(r, f) for r, f in alarms if f]
    honest = [scan_instructions(h, learned=learned) for h in HONEST]
    print(f"reading: rules{' + learned instruction reading' if learned else ''}")
    print(f"real instructions: {len(real)} texts from {len({r['package'] for r in real})} servers,")
    rate = len(wrong) / max(len(real), 1)
    print(f"  false alarms: {len(wrong)} ({rate:.1%}); honest wrappers flagged: {sum(map(bool, honest))}")
    print(f"  texts where a rule left out for instructions fires (what tool names could turn into alarms): {ordinary}")
    for r, found in wrong:
        print(f"    {r['package']}: {found[0].rule}: {found[0].evidence[:160]}")

    cases = [json.loads(line) for line in (DATA / "poisoning_payloads.jsonl").read_text(encoding="utf-8").splitlines()]
    by_group: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for case in cases:
        g = by_group[case["group"]]
        g[0] += 1
        g[1] += bool(scan_instructions(planted(case), learned=learned))
    held = [by_group[g] for g in HELD_OUT]
    rest = [v for k, v in by_group.items() if k not in HELD_OUT]
    print("planted payloads found:")
    print(
        f"  held out (groups {', '.join(HELD_OUT)}): {sum(v[1] for v in held)} of {sum(v[0] for v in held)}"
        f" ({sum(v[1] for v in held) / sum(v[0] for v in held):.1%})"
    )
    print(
        f"  learned groups (not held out): {sum(v[1] for v in rest)} of {sum(v[0] for v in rest)}"
        f" ({sum(v[1] for v in rest) / sum(v[0] for v in rest):.1%})"
    )
    print("  by group: " + ", ".join(f"{k} {v[1]}/{v[0]}" for k, v in sorted(by_group.items())))


if __name__ == "__main__":
    main()
