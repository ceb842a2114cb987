#!/usr/bin/env python3
"""Measure the learned instruction reading (classifier/instructions.py) on payload groups it
did not learn from, and choose its threshold and regularisation.

Only train.jsonl and dev.jsonl are read (the test split's groups stay untouched).  For each
development payload group in turn, the instruction head is trained on the training split
*without* that group's planted tools and scored on the dev split's tools planted with it:
recall of the learned reading alone and together with the regex rules (the rules were
written on groups A and C-E, so only group F measures them fairly), and the share of the dev
split's benign tools the learned reading flags (false alarms).

``--arrival FILE`` measures a payload group before anything learns from it: each payload of
FILE (the shape of classifier/data/poisoning_payloads.jsonl) is planted, as build_dataset
plants it, in three benign dev tools, and the classifier as shipped reads them; it prints how
many plantings each finder caught (the rules, else the learned reading) and lists the misses.

``--cv-false-alarms K`` instead scores every benign train/dev tool with a head trained without
its project (the false alarms of the head as shipped, which learns train and dev together).

Usage: .venv/bin/python scripts/tune_instructions.py [--with-dev] [--c 1 3 10] [--thresholds 0.9 0.95]
       [--show-missed H] [--cv-false-alarms 5] [--arrival payloads.jsonl]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.evaluation.planted import planted_group  # noqa: E402
from classifier.definition import ToolDefinition  # noqa: E402
from classifier.findings import poisoning, scanned_parts  # noqa: E402
from classifier.instructions import INSTRUCTION_C, INSTRUCTION_THRESHOLD, InstructionReader  # noqa: E402
from classifier.model import DATA_DIR, DEV_FILE, TRAIN_FILES, fit_instruction_head, read_jsonl  # noqa: E402
from classifier.rules import load_rules  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from build_dataset import plant, plant_order, project_of, read  # noqa: E402

#: How many benign dev tools each payload is planted in by --arrival.
ARRIVAL_HOSTS = 3


def strongest(reader: InstructionReader, defn: ToolDefinition) -> tuple[float, str, list[str]]:
    """The learned reading's strongest piece as findings.learned_poisoning reads it (decoded
    text too): (probability, piece, the features that pushed it)."""
    return reader.strongest(defn, load_rules(), scanned_parts(defn).hidden)


def score(reader: InstructionReader, defn: ToolDefinition) -> float:
    return strongest(reader, defn)[0]


def cv_false_alarms(
    train: list[dict[str, Any]],
    dev: list[dict[str, Any]],
    k: int,
    cs: list[float],
    thresholds: list[float],
    show: bool = False,
) -> None:
    """False alarms where the dev split's thousand-odd benign tools are too few to tell 0.5 %
    from 1 %, as the shipped head is trained (train and dev together): every benign tool of
    both, scored by a head trained without its project (K folds grouped by project; a fold's
    planted rows leave with it, since a planted row's own sentences are only told from its
    payload by its benign twin)."""
    from sklearn.model_selection import GroupKFold

    rows = [*train, *dev]
    # Folds by project, as the splits are made: a fork's tools must not vouch for the original's.
    project = project_of([r for r in rows if not r["poisoned"]])
    servers = [project.get(r["server"], r["server"]) for r in rows]
    for c in cs:
        scores: list[float] = []
        for kept, held in GroupKFold(n_splits=k).split(rows, groups=servers):
            head = fit_instruction_head([rows[i] for i in kept], c=c)
            assert head is not None
            reader = InstructionReader(head)
            for i in held:
                if not rows[i]["poisoned"]:
                    defn = ToolDefinition.from_mapping(rows[i])
                    p, piece, pushed = strongest(reader, defn)
                    scores.append(p)
                    if show and p >= thresholds[0]:
                        print(
                            f"    flagged {rows[i]['server']}::{rows[i]['name']} p={scores[-1]:.2f} {pushed} | "
                            f"{' '.join(piece.split())[:160]!r}"
                        )
        for t in thresholds:
            flagged = sum(p >= t for p in scores)
            share = flagged / len(scores)
            print(f"C={c} threshold {t:.2f}: {flagged} of {len(scores)} benign train/dev tools flagged ({share:.4f})")


def arrival(path: Path, dev: list[dict[str, Any]]) -> None:
    """Each payload of ``path`` planted in ARRIVAL_HOSTS benign dev tools (consecutive in the
    hash order build_dataset plants in, a different run per payload) and read by the shipped
    classifier: the figure a new group is introduced with, before it joins DEVELOPMENT_GROUPS."""
    from classifier import classify

    payloads = read([path])
    hosts = plant_order([r for r in dev if not r["poisoned"]])
    caught_by: dict[str, Counter[str]] = {}  # group -> finder -> plantings caught
    planted: Counter[str] = Counter()  # group -> plantings
    for i, payload in enumerate(payloads):
        group = str(payload.get("group", "?"))
        finders = caught_by.setdefault(group, Counter())
        caught = 0
        for j in range(ARRIVAL_HOSTS):
            row = plant(hosts[(i * ARRIVAL_HOSTS + j) % len(hosts)], payload)
            found = [f for f in classify(ToolDefinition.from_mapping(row)).findings if f.id == "tool_poisoning"]
            if found:
                caught += 1
                finders["learned" if found[0].rule == "learned-instruction" else "rules"] += 1
        planted[group] += ARRIVAL_HOSTS
        if caught < ARRIVAL_HOSTS:
            print(
                f"  {payload['id']:5} caught {caught}/{ARRIVAL_HOSTS} ({payload.get('where', 'description')}): "
                f"{' '.join(str(payload['payload']).split())[:110]!r}"
            )
    for group, finders in sorted(caught_by.items()):
        caught, total = sum(finders.values()), planted[group]
        print(
            f"group {group}: {caught} of {total} plantings caught ({caught / total:.1%}): "
            f"rules {finders['rules']}, learned reading {finders['learned']}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--c", type=float, nargs="+", default=[INSTRUCTION_C])
    # The shipped threshold first: --show-missed and --show-flagged list what it misses or flags.
    shipped_first = [INSTRUCTION_THRESHOLD, *sorted({0.9, 0.98} - {INSTRUCTION_THRESHOLD})]
    ap.add_argument("--thresholds", type=float, nargs="+", default=shipped_first)
    ap.add_argument("--with-dev", action="store_true", help="learn from the dev split's other planted groups too")
    ap.add_argument("--show-missed", metavar="GROUP", help="list the held-out group's cases neither reading catches")
    ap.add_argument(
        "--cv-false-alarms",
        type=int,
        metavar="K",
        help="instead: false alarms on the benign train/dev tools, K folds grouped by project",
    )
    ap.add_argument("--show-flagged", action="store_true", help="with --cv-false-alarms: list the flagged tools")
    ap.add_argument("--arrival", type=Path, metavar="FILE", help="instead: measure FILE's payloads on arrival")
    args = ap.parse_args()
    rules = load_rules()
    train = [r for name in TRAIN_FILES for r in read_jsonl(DATA_DIR / name)]
    dev = read_jsonl(DATA_DIR / DEV_FILE)
    if args.arrival:
        arrival(args.arrival, dev)
        return
    if args.cv_false_alarms:
        cv_false_alarms(train, dev, args.cv_false_alarms, args.c, args.thresholds, args.show_flagged)
        return
    benign = [ToolDefinition.from_mapping(r) for r in dev if not r["poisoned"]]
    groups = sorted({g for r in dev if (g := planted_group(r))})
    ruled = {id(r): bool(poisoning(ToolDefinition.from_mapping(r), rules)) for r in dev if r["poisoned"]}
    for c in args.c:
        print(f"C={c}")
        # "none": every dev case, learned from the training split alone (the dev split's own
        # planted tools cannot be both training and measurement).
        for held in [*groups] + ([] if args.with_dev else ["none"]):
            head = fit_instruction_head(
                [r for r in train if planted_group(r) != held],
                [r for r in dev if planted_group(r) != held] if args.with_dev else [],
                c=c,
            )
            assert head is not None
            reader = InstructionReader(head)
            cases = (
                [r for r in dev if planted_group(r) == held] if held != "none" else [r for r in dev if r["poisoned"]]
            )
            learned = [score(reader, ToolDefinition.from_mapping(r)) for r in cases]
            if held == args.show_missed:
                t = args.thresholds[0]
                for r, p in zip(cases, learned, strict=True):
                    if p < t and not ruled[id(r)]:
                        defn = ToolDefinition.from_mapping(r)
                        _, piece, pushed = strongest(reader, defn)
                        print(f"    missed {r['provenance']['derived'][:20]} p={p:.2f} {pushed} | {piece[:140]!r}")
            false = [score(reader, d) for d in benign]
            for t in args.thresholds:
                alone = sum(p >= t for p in learned) / len(cases)
                union = sum(p >= t or ruled[id(r)] for p, r in zip(learned, cases, strict=True)) / len(cases)
                fa = sum(p >= t for p in false) / len(false)
                rules_only = sum(ruled[id(r)] for r in cases) / len(cases)
                print(
                    f"  held out {held:4} n={len(cases):3} threshold {t:.2f}: learned {alone:.3f}"
                    f"  rules {rules_only:.3f}  both {union:.3f}  false alarms {fa:.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
