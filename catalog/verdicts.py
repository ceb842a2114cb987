"""Store -> classifier: give every current tool definition a verdict from this classifier.

Verdicts are keyed by (definition hash, classifier version): an unchanged definition is
never classified twice by the same classifier, and a new rule set re-classifies everything.
"""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy.orm import Session

from catalog.store.models import Classification, utcnow
from catalog.store.repository import unclassified
from classifier import ToolDefinition, classifier_version, classify


def classify_pending(session: Session, batch: int = 500) -> int:
    version = classifier_version()
    pending = unclassified(session, version)
    now = utcnow()
    for i, (digest, definition, server) in enumerate(pending, 1):
        verdict = classify(ToolDefinition.from_mapping(definition, server=server))
        session.add(
            Classification(
                definition_hash=digest,
                classifier_version=version,
                category=verdict.category,
                action=verdict.action,
                risk=verdict.risk,
                confidence=verdict.confidence,
                risk_rule=verdict.risk_rule,
                rationale=verdict.rationale,
                findings=[asdict(f) for f in verdict.findings],
                created_at=now,
            )
        )
        if i % batch == 0:
            session.flush()
    session.flush()
    return len(pending)
