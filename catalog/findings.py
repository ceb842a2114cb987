"""Every finding in the catalogue, in one list: what a security team reviews after a crawl.

Why: a verdict's findings (``tool_poisoning``, ``annotation_mismatch``) were seen one tool at a
time (``catalog recommend``), and a changed definition (``definition_changed``) only in
``catalog diff`` for a window of time; nothing answered "which tools of ours are poisoned, or
declare themselves read-only and delete, or changed since we looked", nor fed that answer to
the tools security teams already run (SARIF: :mod:`catalog.sarif`).

Findings are read from the store as it stands: the current definition of every tool still
listed, its verdict by the classifier that made it, and, for a definition that replaced an
earlier one, the latest recorded change to it.  Nothing is classified here; a tool without a
verdict (a crawl stopped before classifying) has no findings until ``catalog crawl`` or
``catalog classify`` gives it one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.store.instructions import InstructionsChange, current_instructions, instruction_changes
from catalog.store.models import DefinitionChange, Server, Tool
from catalog.store.repository import current_tools
from classifier.verdict import FINDING_IDS, UNKNOWN

#: Evidence kept per finding (a hostile description may be megabytes; the tool's definition
#: is in the store for whoever needs all of it).
MAX_EVIDENCE = 1000


@dataclass(frozen=True)
class CatalogFinding:
    server: str
    tool: str
    #: The definition the finding is about (the tool's current one).
    hash: str
    kind: str
    evidence: str
    #: None for a change not judged yet (a crawl stopped before classifying the new definition):
    #: not known to be mild, so ``--severe`` keeps it.
    severe: bool | None
    #: The rule that found it ("" for a finding no single rule made).
    rule: str = ""
    risk: str = UNKNOWN
    category: str = ""
    #: For ``definition_changed``: the definition it replaced, and when that was seen.
    old_hash: str | None = None
    detected_at: datetime | None = None
    #: What the finding is in: ``tool`` (a tool's definition) or ``instructions`` (the server's
    #: instructions, which reach the model with all its tools; ``tool`` is "" and ``hash`` is
    #: the instructions text's).
    place: str = "tool"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["detected_at"] = self.detected_at.isoformat(timespec="seconds") if self.detected_at else None
        return data


def _change_text(summary: dict[str, Any]) -> str:
    """A changed definition's summary as one line: what changed, and the risk move."""
    parts: list[str] = []
    if summary.get("fields"):
        parts.append("changed " + ", ".join(summary["fields"]))
    for key, label in (("params_added", "params added"), ("params_removed", "params removed")):
        if summary.get(key):
            parts.append(f"{label} {', '.join(summary[key])}")
    risk = summary.get("risk")
    if isinstance(risk, list | tuple) and len(risk) == 2:
        parts.append(f"risk {risk[0]} -> {risk[1]}")
    if summary.get("poisoning_added"):
        parts.append("poisoning added")
    return "; ".join(parts) or "definition changed"


def _latest_changes(session: Session, server: str | None) -> dict[tuple[str, str], DefinitionChange]:
    """(server, tool) -> the latest change that produced the tool's current definition."""
    latest = (
        select(func.max(DefinitionChange.id).label("id"))
        .join(Tool, Tool.id == DefinitionChange.tool_id)
        .where(DefinitionChange.new_hash == Tool.current_hash)
        .group_by(DefinitionChange.tool_id)
        .subquery()
    )
    q = (
        select(Server.name, Tool.name, DefinitionChange)
        .join(latest, latest.c.id == DefinitionChange.id)
        .join(Tool, Tool.id == DefinitionChange.tool_id)
        .join(Server, Server.id == Tool.server_id)
        .where(Tool.removed_at.is_(None), Server.removed_at.is_(None))
    )
    if server is not None:
        q = q.where(Server.name == server)
    return {(s, t): c for s, t, c in session.execute(q)}


def collect_findings(
    session: Session,
    *,
    server: str | None = None,
    kinds: tuple[str, ...] = FINDING_IDS,
    since: datetime | None = None,
) -> list[CatalogFinding]:
    """The catalogue's findings, by server and tool; ``since`` keeps the changes seen since then
    (the verdicts' findings stand whenever they were made: a poisoned tool stays poisoned)."""
    changes = _latest_changes(session, server) if "definition_changed" in kinds else {}
    found: list[CatalogFinding] = []
    for view in current_tools(session, server=server, definitions=False):
        v = view.verdict
        risk = v.risk if v is not None else UNKNOWN
        category = v.category if v is not None else ""
        for f in (v.findings if v is not None else None) or []:
            if not isinstance(f, dict) or f.get("id") not in kinds:
                continue
            found.append(
                CatalogFinding(
                    server=view.server,
                    tool=view.name,
                    hash=view.hash,
                    kind=str(f["id"]),
                    evidence=str(f.get("evidence") or "")[:MAX_EVIDENCE],
                    # Poisoning is always severe: the tool's text is aimed at the model.
                    severe=bool(f.get("severe")) or f["id"] == "tool_poisoning",
                    rule=str(f.get("rule") or ""),
                    risk=risk,
                    category=category,
                )
            )
        change = changes.get((view.server, view.name))
        if change is not None and (since is None or change.detected_at >= since):
            found.append(
                CatalogFinding(
                    server=view.server,
                    tool=view.name,
                    hash=view.hash,
                    kind="definition_changed",
                    evidence=_change_text(change.summary or {})[:MAX_EVIDENCE],
                    severe=change.severe,
                    risk=risk,
                    category=category,
                    old_hash=change.old_hash,
                    detected_at=change.detected_at,
                )
            )
    found += _instruction_findings(session, server, kinds, since)
    order = {k: i for i, k in enumerate(FINDING_IDS)}
    rank = {True: 0, None: 1, False: 2}
    found.sort(key=lambda f: (rank[f.severe], order.get(f.kind, len(order)), f.server, f.tool))
    return found


def _instruction_findings(
    session: Session, server: str | None, kinds: tuple[str, ...], since: datetime | None
) -> list[CatalogFinding]:
    """Findings in the servers' current instructions: their latest scan's poisoning, and a
    change of text since an earlier crawl (severe when poisoning came with it, not judged while
    the new text has no scan)."""
    said = current_instructions(session, None if server is None else [server], text=False)
    found: list[CatalogFinding] = []
    for name, now in sorted(said.items()):
        for f in now.findings or []:
            if isinstance(f, dict) and f.get("id") in kinds:
                found.append(
                    CatalogFinding(
                        server=name,
                        tool="",
                        hash=now.hash,
                        kind=str(f["id"]),
                        evidence=str(f.get("evidence") or "")[:MAX_EVIDENCE],
                        severe=True,
                        rule=str(f.get("rule") or ""),
                        risk="critical",  # poisoning is critical (the rubric), wherever it is
                        place="instructions",
                    )
                )
    if "definition_changed" in kinds:
        for change in instruction_changes(session, list(said), since):
            severe = change.severe
            found.append(
                CatalogFinding(
                    server=change.server,
                    tool="",
                    hash=change.new_hash,
                    kind="definition_changed",
                    evidence=change_text(change),
                    severe=severe,
                    risk="critical" if severe else UNKNOWN,
                    old_hash=change.old_hash,
                    detected_at=change.detected_at,
                    place="instructions",
                )
            )
    return found


def change_text(change: InstructionsChange) -> str:
    """An instructions change as one line: the lengths and what came with it."""
    text = (
        f"instructions appeared ({change.new_length:,} characters)"
        if not change.old_hash
        else f"instructions changed ({change.old_length:,} -> {change.new_length:,} characters)"
    )
    if change.poisoning_added:
        return text + "; poisoning added"
    return text + "; still poisoned" if change.severe else text


def counts(found: list[CatalogFinding]) -> dict[str, int]:
    """Findings per kind (every kind named, zero or not), how many are severe and how many
    changes are not judged yet."""
    by_kind = Counter(f.kind for f in found)
    return {
        **{k: by_kind.get(k, 0) for k in FINDING_IDS},
        "severe": sum(1 for f in found if f.severe),
        "unjudged": sum(1 for f in found if f.severe is None),
    }
