"""Pure tool classifier: an MCP tool definition in, a verdict out.

Imports nothing else of the project (crawler/ and catalog/ depend on it, never the
reverse), so it can be reused, tested and benchmarked on its own.
"""

from classifier.classify import classifier_version, classify
from classifier.definition import ToolDefinition, canonical_json, definition_hash
from classifier.verdict import ACTIONS, CATEGORIES, RISK_LEVELS, UNKNOWN, Finding, Verdict

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "RISK_LEVELS",
    "UNKNOWN",
    "Finding",
    "ToolDefinition",
    "Verdict",
    "canonical_json",
    "classifier_version",
    "classify",
    "definition_hash",
]
