"""Pure tool classifier: an MCP tool definition in, a verdict out.

Imports nothing else of the project (crawler/ and catalog/ depend on it, never the
reverse), so it can be reused, tested and benchmarked on its own.
"""

from classifier import _fast

#: Whether the mypyc-compiled hot path is in use (see classifier/_fast.py).
COMPILED = _fast.enable(__name__, __path__)

from classifier.classify import classifier_version, classify, classify_many  # noqa: E402
from classifier.context import ServerContext  # noqa: E402
from classifier.definition import ToolDefinition, canonical_json, definition_hash  # noqa: E402
from classifier.verdict import ACTIONS, CATEGORIES, RISK_LEVELS, UNKNOWN, Finding, Verdict  # noqa: E402

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "COMPILED",
    "RISK_LEVELS",
    "UNKNOWN",
    "Finding",
    "ServerContext",
    "ToolDefinition",
    "Verdict",
    "canonical_json",
    "classifier_version",
    "classify",
    "classify_many",
    "definition_hash",
]
