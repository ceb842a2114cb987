"""Store -> classifier: give every current tool definition a verdict from this classifier.

Verdicts are keyed by (definition hash, classifier version, server context): an unchanged
definition on an unchanged server is never classified twice by the same classifier; a new
rule set re-classifies everything, and a server whose tool set changed re-classifies its
tools (each tool's category prior comes from its siblings).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.store.instructions import unscanned
from catalog.store.models import (
    Classification,
    DefinitionChange,
    InstructionScan,
    Server,
    Tool,
    ToolDefinitionRow,
    utcnow,
)
from catalog.store.repository import server_contexts as server_context_hashes
from catalog.store.repository import unclassified
from classifier import ToolDefinition, Verdict, classifier_version, classify
from classifier.classify import server_contexts
from classifier.verdict import risk_rank


def verdict_row(
    digest: str, verdict: Verdict, version: str, context: str = "", now: datetime | None = None
) -> Classification:
    """One verdict as a row keyed by definition hash, classifier version and server context."""
    return Classification(
        definition_hash=digest,
        classifier_version=version,
        context_hash=context,
        category=verdict.category,
        action=verdict.action,
        risk=verdict.risk,
        confidence=verdict.confidence,
        risk_rule=verdict.risk_rule,
        policy_risk=verdict.policy_level,
        rationale=verdict.rationale,
        findings=[asdict(f) for f in verdict.findings],
        created_at=now or utcnow(),
    )


def _readable(definition: Any) -> bool:
    name = definition.get("name") if isinstance(definition, dict) else None
    return isinstance(name, str) and bool(name.strip())


def classify_pending(session: Session) -> int:
    """Classify every current tool without a verdict from this classifier in its server's
    current context, a server at a time (its tools are one another's context)."""
    version = classifier_version()
    now = utcnow()
    done = 0
    for group in unclassified(session, version):
        # A stored definition no classifier can read (a blank name, stored before the crawler
        # left those out) stays without a verdict, so unknown and denied, instead of stopping
        # every later crawl.
        readable = [(digest, d) for digest, d in group.tools if _readable(d)]
        defs = [ToolDefinition.from_mapping(d, server=group.server) for _, d in readable]
        found = server_contexts(defs)  # every sibling counts; only the pending get verdicts
        rows = [
            verdict_row(digest, classify(defn, context=context), version, group.context, now)
            for (digest, _), defn, context in zip(readable, defs, found, strict=True)
            if digest in group.pending
        ]
        try:
            with session.begin_nested():  # a savepoint per server
                session.add_all(rows)
        except IntegrityError:
            # Another process classified the same tools first (`catalog introspect` beside a
            # crawl, two crawls sharing a database): the same verdicts, theirs stand.  It made
            # the crawl fail with a database error after its work was stored.
            continue
        done += len(rows)
    return done


def scan_pending_instructions(session: Session) -> int:
    """Scan for poisoning every listed server's current instructions that this classifier has
    not scanned against the server's current tools (each text and tool set once)."""
    from classifier.server_instructions import scan_instructions

    version = classifier_version()
    now = utcnow()
    done = 0
    for digest, text, length, tools, context in unscanned(session, version):
        found = scan_instructions(text, length, tools=tools)
        row = InstructionScan(
            hash=digest,
            classifier_version=version,
            context_hash=context,
            findings=[asdict(f) for f in found],
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue  # scanned by another process meanwhile: the same findings
        done += 1
    return done


def _verdict_of(
    session: Session, digest: str, definition: dict[str, Any] | None, server: str, context: str = ""
) -> Classification | None:
    """The latest verdict of a definition, made in ``context`` (the server's current tool set)
    where there is one, else its latest anywhere; classified now if it never was (an old
    definition): another server's copy of the definition decides only when nothing else can."""
    row = session.scalars(
        select(Classification)
        .where(Classification.definition_hash == digest)
        .order_by(
            case((Classification.context_hash == context, 0), else_=1),
            Classification.created_at.desc(),
            Classification.id.desc(),
        )
        .limit(1)
    ).first()
    if row is not None or definition is None:
        return row
    # An old definition is classified on its own: its siblings of the time are not known.
    row = verdict_row(digest, classify(ToolDefinition.from_mapping(definition, server=server)), classifier_version())
    session.add(row)
    session.flush()
    return row


def assess_changes(session: Session) -> int:
    """Decide ``severe`` for definition changes that have not been judged: the risk went up,
    or the new definition carries poisoning the old one did not (a rug pull)."""
    pending = session.execute(
        select(DefinitionChange, Tool.id, Server.name, Server.id)
        .join(Tool, Tool.id == DefinitionChange.tool_id)
        .join(Server, Server.id == Tool.server_id)
        .where(DefinitionChange.severe.is_(None))
    ).all()
    contexts = server_context_hashes(session, {sid for *_, sid in pending}) if pending else {}
    for change, tool_id, server, server_id in pending:
        defs: dict[str, Any] = dict(
            session.execute(
                select(ToolDefinitionRow.hash, ToolDefinitionRow.definition).where(
                    ToolDefinitionRow.tool_id == tool_id, ToolDefinitionRow.hash.in_([change.old_hash, change.new_hash])
                )
            ).all()
        )
        old = _verdict_of(session, change.old_hash, defs.get(change.old_hash), server)
        new = _verdict_of(session, change.new_hash, defs.get(change.new_hash), server, contexts.get(server_id, ""))
        if old is None or new is None:
            continue
        # The policy's level counts too: a change that leaves the risk but puts the tool in doubt
        # with a stricter plausible reading tightens what a gateway enforces.
        old_level, new_level = old.policy_level, new.policy_level
        raised = risk_rank(new.risk) > risk_rank(old.risk) or risk_rank(new_level) > risk_rank(old_level)
        poisoned = new.poisoned and not old.poisoned
        change.severe = raised or poisoned
        change.summary = {
            **(change.summary or {}),
            "risk": [old.risk, new.risk],
            "policy_level": [old_level, new_level],
            "poisoning_added": poisoned,
        }
    session.flush()
    return len(pending)
