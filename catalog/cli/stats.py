"""``catalog stats``: what the catalogue holds, by risk and category, and the latest runs."""

from __future__ import annotations

from collections import Counter

from catalog.cli.common import DbOption, FormatOption, TextOrJson, friendly, say, say_lines, store_session
from catalog.store.instructions import current_instructions
from catalog.store.repository import current_tools
from catalog.store.repository import stats as store_stats


@friendly
def stats(
    output: FormatOption = TextOrJson.TEXT,
    db: DbOption = None,
) -> None:
    """Counts of servers, tools, verdicts and recent crawl runs."""
    import json

    with store_session(db) as session:
        s = store_stats(session)
        # Verdicts only: the definitions (megabytes each, from a hostile server) are not read.
        tools = current_tools(session, definitions=False)
        said = current_instructions(session, text=False)
    told = {
        "servers_with_instructions": len(said),
        "poisoned": sum(1 for i in said.values() if i.poisoned),
        "not_scanned": sum(1 for i in said.values() if i.findings is None),
    }
    risks = Counter(t.verdict.risk if t.verdict else "unclassified" for t in tools)
    cats = Counter(t.verdict.category for t in tools if t.verdict)
    # Tools with each finding of their verdict (`catalog findings` lists them, with evidence).
    flagged = Counter(
        kind
        for t in tools
        if t.verdict
        for kind in {f.get("id") for f in t.verdict.findings or [] if isinstance(f, dict)}
        if kind in ("tool_poisoning", "annotation_mismatch")
    )
    runs = [
        {
            "id": r.id,
            "source": r.source,
            "status": r.status,
            "started": r.started_at.isoformat(),
            "servers": (r.counters or {}).get("servers", 0),
            "error": r.error,
        }
        for r in s["recent_runs"]
    ]
    if output == "json":
        say(
            json.dumps(
                {
                    "servers": s["servers"],
                    "tools": s["tools"],
                    "definitions": s["definitions"],
                    "risk": dict(risks),
                    "category": dict(cats),
                    "findings": {k: flagged[k] for k in ("tool_poisoning", "annotation_mismatch")},
                    "instructions": told,
                    "introspection": s["introspection"],
                    "recent_runs": runs,
                },
                indent=2,
            )
        )
        return
    lines = [f"servers: {s['servers']}   tools: {s['tools']}   definitions (with history): {s['definitions']}"]
    lines.append(
        "risk: "
        + ", ".join(
            f"{k} {risks[k]}" for k in ("critical", "high", "medium", "low", "unknown", "unclassified") if risks[k]
        )
    )
    lines.append("category: " + ", ".join(f"{k} {v}" for k, v in cats.most_common()))
    lines.append(
        f"findings: poisoned tools {flagged['tool_poisoning']}, annotation mismatches "
        f"{flagged['annotation_mismatch']} (catalog findings lists them)"
    )
    lines.append(
        f"instructions: {told['servers_with_instructions']} server(s) send them, {told['poisoned']} poisoned"
        + (f", {told['not_scanned']} not scanned yet" if told["not_scanned"] else "")
    )
    lines.append("introspection: " + (", ".join(f"{k} {v}" for k, v in sorted(s["introspection"].items())) or "none"))
    for r in runs:
        err = f" — {r['error'][:120]}{'…' if len(r['error']) > 120 else ''}" if r["error"] else ""
        lines.append(f"run {r['id']}: {r['source']} {r['status']} ({r['servers']} servers) {r['started']}{err}")
    say_lines(lines)
