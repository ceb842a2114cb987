"""Verdict -> policy rule -> policy document.

The document format is the seed's: ``{"version": "1", "default": "deny", "tools": {...},
"hide": [...]}``.  ``default: deny`` means a tool that is not listed (risk ``unknown``) is
blocked; a ``low`` tool is listed with an empty rule so that it is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).parent / "policy.schema.json"
HUMAN_APPROVAL = "Requires human approval."
RISK_ORDER = ("low", "medium", "high", "critical", "unknown")


@dataclass(frozen=True)
class PolicyEntry:
    tool: str
    risk: str
    poisoned: bool = False
    server: str | None = None


def rule_for(risk: str) -> dict[str, Any] | None:
    """The rubric's rule for a risk level; ``None`` means "do not list" (denied by default)."""
    if risk == "critical":
        return {"deny_if": [{"conditions": [], "on_deny": HUMAN_APPROVAL}]}
    if risk == "high":
        return {"rate_limit": {"max": 10, "window": 60}}
    if risk == "medium":
        return {"rate_limit": {"max": 30, "window": 60}}
    if risk == "low":
        return {}
    return None


def strictness(risk: str) -> int:
    return RISK_ORDER.index(risk) if risk in RISK_ORDER else len(RISK_ORDER)


def build_document(entries: Iterable[PolicyEntry]) -> dict[str, Any]:
    """One policy document. Two servers exposing the same tool name get the stricter rule,
    since a gateway keyed by tool name cannot tell them apart."""
    by_name: dict[str, PolicyEntry] = {}
    hide: set[str] = set()
    for e in entries:
        if e.poisoned:
            hide.add(e.tool)
        old = by_name.get(e.tool)
        if old is None or strictness(e.risk) > strictness(old.risk):
            by_name[e.tool] = e
    tools: dict[str, Any] = {}
    for name in sorted(by_name):
        rule = rule_for(by_name[name].risk)
        if rule is not None:
            tools[name] = rule
    doc: dict[str, Any] = {"version": "1", "default": "deny", "tools": tools}
    if hide:
        doc["hide"] = sorted(hide)
    return doc


def dumps(doc: dict[str, Any], *, compact: bool = True) -> str:
    if compact:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(doc, indent=2, ensure_ascii=False)


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate_document(doc: dict[str, Any]) -> Sequence[str]:
    """Errors against the shipped JSON Schema (empty when valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]
