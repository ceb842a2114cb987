"""Recommended gateway policies, generated from verdicts (taxonomy.md, "Recommended default policy")."""

from catalog.policies.generate import PolicyEntry, build_document, rule_for, validate_document

__all__ = ["PolicyEntry", "build_document", "rule_for", "validate_document"]
