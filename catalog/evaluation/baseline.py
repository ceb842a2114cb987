"""The honest floor (the rubric's peers note): a verb lexicon on the split tool name, mapped
through the rubric. Any learned model must beat it on the same split."""

from __future__ import annotations

from classifier.tokens import split_name

VERBS = {
    "get": "read",
    "list": "read",
    "read": "read",
    "search": "read",
    "find": "read",
    "fetch": "read",
    "describe": "read",
    "show": "read",
    "query": "read",
    "create": "write",
    "update": "write",
    "add": "write",
    "set": "write",
    "write": "write",
    "edit": "write",
    "delete": "delete",
    "drop": "delete",
    "remove": "delete",
    "cancel": "delete",
    "destroy": "delete",
    "run": "execute",
    "exec": "execute",
    "execute": "execute",
    "send": "send",
    "post": "send",
    "publish": "send",
    "pay": "transact",
    "transfer": "transact",
    "order": "transact",
    "buy": "transact",
    "sell": "transact",
    "trade": "transact",
    "swap": "transact",
}
RISK = {
    "read": "low",
    "write": "medium",
    "send": "high",
    "execute": "high",
    "delete": "critical",
    "transact": "critical",
}


def keyword_verdict(name: str) -> tuple[str, str]:
    """(action, risk) from the first verb of the name; no verb: read, low."""
    action = next((VERBS[t] for t in split_name(name) if t in VERBS), "read")
    return action, RISK[action]
