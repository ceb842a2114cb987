#!/usr/bin/env python3
"""Build classifier/data/{train,dev,test}.jsonl from collected tools and reviewed labels.

Inputs:
* ``--tools``: JSONL written by scripts/collect_tools.py (real definitions, introspected live,
  with provenance and a rules *draft*);
* ``--labels``: JSONL of reviewed labels, one per tool: ``id`` (``server::name``),
  ``category``, ``action``, ``risk``, ``reason`` and optionally ``poisoned`` and
  ``provenance_label`` (how the label was reached, when not a single reviewed reading);
* ``--payloads``: optional JSONL of published tool-poisoning payloads (``id``, ``technique``,
  ``where``, ``payload``, ``source``, ``group``); each is planted in a real tool of the
  matching split (``DEVELOPMENT_GROUPS`` in train/dev, ``TEST_GROUPS`` in test) to make the poisoning cases.

The split is by **project**: a server's tools all land in one split, decided by a hash of
its name, and servers that repeat each other's tools (forks, re-uploads, renamed packages:
:func:`project_of`) go together under the first one's name, so the test split measures tools
from servers the model never saw, twins included.  Output rows
are sorted, so the same inputs always give byte-identical files.

Usage: .venv/bin/python scripts/build_dataset.py --tools a.jsonl b.jsonl --labels l/*.jsonl \
    [--payloads payloads.jsonl] [-o classifier/data]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.evaluation.planted import planted_note  # noqa: E402
from classifier.verdict import ACTIONS, CATEGORIES, RISK_LEVELS  # noqa: E402

SPLITS = (("train", 70), ("dev", 85), ("test", 100))
#: Payload groups planted in train/dev (the rules and the learned instruction reading were
#: developed on them) and the groups written separately and planted only in test.
DEVELOPMENT_GROUPS = "ACDEFHIJKLMNOPQRSTUVWXY"
TEST_GROUPS = "BG"


def split_of(server: str, salt: int = 0) -> str:
    bucket = int(hashlib.sha256(f"{salt}:{server}".encode()).hexdigest()[:8], 16) % 100
    return next(name for name, upper in SPLITS if bucket < upper)


def project_of(tools: list[dict[str, Any]]) -> dict[str, str]:
    """Each server's project: servers whose tools share five (name, description) pairs, or at
    least half of the smaller one's, are one project (forks, re-uploads such as ``iflow-mcp_*``,
    renamed packages such as ``awslabs.x`` / ``awslabs-x``), named by its first server.  The
    split goes by project, so no test tool has a twin in training.  Only described tools
    count: two one-tool servers with a bare ``search`` are not one project."""
    signatures: dict[str, set[tuple[str, str]]] = {}
    for tool in tools:
        signatures.setdefault(tool["server"], set())
        description = (tool.get("description") or "").strip()
        if len(description) >= 20:
            signatures[tool["server"]].add((tool["name"], description[:200]))
    holders: dict[tuple[str, str], list[str]] = {}
    for server in sorted(signatures):
        for signature in signatures[server]:
            holders.setdefault(signature, []).append(server)
    shared: Counter[tuple[str, str]] = Counter()
    for servers in holders.values():
        for i, a in enumerate(servers):
            for b in servers[i + 1 :]:
                shared[(a, b)] += 1
    parent = {server: server for server in signatures}

    def root(server: str) -> str:
        while parent[server] != server:
            server = parent[server]
        return server

    for (a, b), count in sorted(shared.items()):
        if count >= 5 or count >= 0.5 * min(len(signatures[a]), len(signatures[b])):
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {server: root(server) for server in signatures}


def twin_key(tool: dict[str, Any]) -> tuple[str, str]:
    """What makes two tools the same to a reader (and to the model): the name and description
    with case, punctuation and spacing folded; where the description says little (under 20
    characters) the input schema stands in for it (``get-orders`` with no description and the
    same parameters is the same tool in two packages)."""

    def fold(text: str) -> str:
        return re.sub(r"[\W_]+", " ", text.lower()).strip()

    description = fold(tool.get("description") or "")
    if len(description) < 20:
        description += " " + json.dumps(tool.get("inputSchema") or {}, sort_keys=True)
    return fold(tool["name"]), description


def drop_twins(rows: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str]]:
    """Drop from an earlier split (train before dev before test) every tool with a twin
    (:func:`twin_key`) in a later one: the split by project catches forks and re-uploads, but a
    generic tool ("Take a screenshot of the current page", "Convert time between timezones")
    can repeat word for word in unrelated servers, and a held-out tool must not have been
    learned.  The later split keeps its copy, so the test split never changes for this.
    Returns (split, server, name) of each dropped tool."""
    later: set[tuple[str, str]] = set()
    dropped = []
    for split in reversed([name for name, _ in SPLITS]):
        kept = []
        for row in rows[split]:
            if twin_key(row) in later:
                dropped.append((split, row["server"], row["name"]))
            else:
                kept.append(row)
        later |= {twin_key(row) for row in kept}
        rows[split] = kept
    return dropped


def from_splits(directory: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Collected tools and reviewed labels recovered from built split files (their real,
    non-poisoned rows), so the committed data rebuilds itself after a change to the split or
    the payloads: the inverse of :func:`row_for`."""
    tools, labels = [], []
    for split, _ in SPLITS:
        for row in read([directory / f"{split}.jsonl"]):
            if row.get("provenance", {}).get("derived"):
                continue  # a planted case: payloads are planted again from --payloads
            provenance = dict(row["provenance"])
            label_how = provenance.pop("label", None)
            draft = provenance.pop("draft", {})
            tool = {k: row[k] for k in ("name", "description", "inputSchema", "annotations", "server")}
            if row.get("title"):
                tool["title"] = row["title"]
            tools.append({**tool, "provenance": provenance, "draft": draft})
            label = {"id": f"{row['server']}::{row['name']}"}
            label.update({k: row[k] for k in ("category", "action", "risk", "reason")})
            if row["poisoned"]:  # a real tool found poisoned in the wild keeps its label
                label["poisoned"] = True
            if label_how and label_how != _REVIEWED:
                label["provenance_label"] = label_how
            labels.append(label)
    return tools, labels


def choose_salt(servers: dict[str, set[str]]) -> int:
    """The first salt whose split gives train and test every category (server -> categories).

    Only coverage is looked at, never a model's score, so the choice cannot favour the
    classifier; without it a small category can miss the training split entirely.
    """
    for salt in range(1000):
        covered: dict[str, set[str]] = {name: set() for name, _ in SPLITS}
        for server, cats in servers.items():
            covered[split_of(server, salt)] |= cats
        if all(covered[name] >= set(CATEGORIES) for name in ("train", "test")):
            return salt
    return 0


def read(paths: list[Path]) -> list[dict[str, Any]]:
    rows = []
    for p in paths:
        rows += [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def check_label(label: dict[str, Any]) -> None:
    problems = []
    if label.get("category") not in CATEGORIES:
        problems.append(f"category {label.get('category')!r}")
    if label.get("action") not in ACTIONS:
        problems.append(f"action {label.get('action')!r}")
    if label.get("risk") not in RISK_LEVELS:
        problems.append(f"risk {label.get('risk')!r}")
    if not str(label.get("reason") or "").strip():
        problems.append("no reason")
    if problems:
        raise SystemExit(f"label {label.get('id')}: " + ", ".join(problems))


_REVIEWED = "reviewed by reading the definition against the rubric"


def row_for(tool: dict[str, Any], label: dict[str, Any]) -> dict[str, Any]:
    row = {
        "name": tool["name"],
        "description": tool.get("description") or "",
        "inputSchema": tool.get("inputSchema") or {},
        "annotations": tool.get("annotations") or {},
        "server": tool["server"],
        "category": label["category"],
        "action": label["action"],
        "risk": label["risk"],
        "poisoned": bool(label.get("poisoned")),
        "reason": label["reason"].strip(),
        "provenance": {
            **tool.get("provenance", {}),
            # How the label was reached; a later review (e.g. adjudication) says so in its label line.
            "label": label.get("provenance_label") or _REVIEWED,
            "draft": {k: tool.get("draft", {}).get(k) for k in ("category", "action", "risk")},
        },
    }
    if tool.get("title"):
        row["title"] = tool["title"]
    return row


def plant_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order in which real tools receive payloads: by a hash of ``server::name``, so a
    payload's host does not depend on the input's order (and --arrival plants the same way)."""
    return sorted(rows, key=lambda r: hashlib.sha256(f"{r['server']}::{r['name']}".encode()).hexdigest())


def plant(base: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """A real tool with a published poisoning payload planted where the payload says."""
    row = json.loads(json.dumps(base))
    where = payload.get("where", "description")
    text = payload["payload"]
    if where == "parameter":
        row["inputSchema"].setdefault("type", "object")
        props = row["inputSchema"].setdefault("properties", {})
        named = payload.get("param_name")
        keyword = payload.get("in")  # the payload sits in the parameter's enum, default or examples
        # The first parameter by name, not by position: the committed rows store schemas with
        # sorted keys, so a rebuild from them plants every payload where the first build did.
        target = next((k for k in sorted(props) if isinstance(props[k], dict)), None)
        if named == text:  # the payload is the parameter's name itself
            props[named] = {"type": "string"}
        elif named and keyword == "enum":
            props[named] = {"type": "string", "enum": ["default", text]}
        elif named and keyword in ("default", "examples"):
            props[named] = {"type": "string", keyword: text if keyword == "default" else [text]}
        elif named:
            props[named] = {"type": "string", "description": text}
        elif target is None:
            props["notes"] = {"type": "string", "description": text}
        else:
            props[target]["description"] = (str(props[target].get("description") or "") + " " + text).strip()
    elif where == "title":
        row["title"] = text
    else:
        row["description"] = (row["description"] + "\n\n" + text).strip()
    row["name"] = base["name"]
    row["poisoned"] = True
    row["risk"] = "critical"
    row["reason"] = (
        f"The real tool {base['name']} ({base['category']} + {base['action']}) with a poisoning payload "
        f"planted in its {where} ({payload['technique']}): instructions aimed at the model ⇒ critical."
    )
    row["provenance"] = {
        **base["provenance"],
        "derived": planted_note(payload),
    }
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tools", type=Path, nargs="+")
    ap.add_argument("--labels", type=Path, nargs="+")
    ap.add_argument(
        "--from-splits",
        type=Path,
        metavar="DIR",
        help="rebuild from the real rows of DIR's built splits instead of --tools/--labels",
    )
    ap.add_argument("--payloads", type=Path)
    ap.add_argument("--exclude", nargs="*", default=[], help="servers to leave out (their labels are skipped)")
    ap.add_argument("--salt", type=int, help="split salt (default: the first that covers every category)")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "classifier" / "data")
    args = ap.parse_args()

    if args.from_splits and (args.tools or args.labels):
        ap.error("--from-splits rebuilds from the splits alone: leave out --tools and --labels")
    if args.from_splits:
        collected, reviewed = from_splits(args.from_splits)
    elif args.tools and args.labels:
        collected, reviewed = read(args.tools), read(args.labels)
    else:
        ap.error("give --tools and --labels, or --from-splits DIR")
    tools = {f"{t['server']}::{t['name']}": t for t in collected if t["server"] not in args.exclude}
    labels = [label for label in reviewed if label["id"].split("::", 1)[0] not in args.exclude]
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in SPLITS}
    seen: set[str] = set()
    pairs = []
    for label in labels:
        check_label(label)
        key = label["id"]
        if key in seen:
            first = next(lab for _, lab in pairs if lab["id"] == key)
            if any(first[k] != label[k] for k in ("category", "action", "risk")):
                raise SystemExit(f"label {key}: labelled twice, differently")
            continue
        tool = tools.get(key)
        if tool is None:
            raise SystemExit(f"label {key}: no such collected tool")
        seen.add(key)
        pairs.append((tool, label))
    project = project_of([tool for tool, _ in pairs])
    merged = sorted({(p, s) for s, p in project.items() if p != s})
    for root, server in merged:
        print(f"one project: {server} goes with {root}", file=sys.stderr)
    server_cats: dict[str, set[str]] = {}
    for tool, label in pairs:
        server_cats.setdefault(project[tool["server"]], set()).add(label["category"])
    salt = args.salt if args.salt is not None else choose_salt(server_cats)
    print(f"split salt {salt}", file=sys.stderr)
    for tool, label in pairs:
        rows[split_of(project[tool["server"]], salt)].append(row_for(tool, label))
    for split, server, name in drop_twins(rows):
        print(f"twin left out of {split}: {server}::{name}", file=sys.stderr)

    if args.payloads:
        payloads = sorted(read([args.payloads]), key=lambda p: p["id"])
        for split, groups in (("train", DEVELOPMENT_GROUPS), ("dev", DEVELOPMENT_GROUPS), ("test", TEST_GROUPS)):
            mine = [p for p in payloads if p.get("group") in groups]
            if split != "test":  # development groups are shared between train and dev, alternately
                mine = mine[split == "dev" :: 2]
            benign = plant_order([r for r in rows[split] if not r["poisoned"]])
            for base, payload in zip(benign, mine, strict=False):
                rows[split].append(plant(base, payload))

    args.output.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        items.sort(key=lambda r: (r["server"], r["name"], r["poisoned"], r.get("provenance", {}).get("derived", "")))
        with (args.output / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for r in items:
                fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
        cats = Counter(r["category"] for r in items)
        missing = [c for c in CATEGORIES if c not in cats]
        print(
            f"{split}: {len(items)} tools from {len({r['server'] for r in items})} servers, "
            f"{sum(r['poisoned'] for r in items)} poisoned, risk {dict(Counter(r['risk'] for r in items))}"
            + (f"; categories missing: {missing}" if missing else ""),
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
