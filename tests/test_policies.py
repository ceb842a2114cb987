"""Policy generation per the rubric, and the shipped JSON Schema."""

from __future__ import annotations

import pytest

from catalog.policies.generate import PolicyEntry, build_document, dumps, rule_for, validate_document

SEED_POLICY = (
    '{"version":"1","default":"deny","tools":{"BinanceFuturesCancelBatchOrders":{"deny_if":'
    '[{"conditions":[],"on_deny":"Requires human approval."}]}}}'
)


def test_seed_policy_is_reproduced_exactly() -> None:
    doc = build_document([PolicyEntry("BinanceFuturesCancelBatchOrders", "critical")])
    assert dumps(doc) == SEED_POLICY
    assert validate_document(doc) == []


@pytest.mark.parametrize(
    ("risk", "rule"),
    [
        ("high", {"rate_limit": {"max": 10, "window": 60}}),
        ("medium", {"rate_limit": {"max": 30, "window": 60}}),
        ("low", {}),
        ("unknown", None),
    ],
)
def test_rules_by_level(risk: str, rule: dict | None) -> None:
    assert rule_for(risk) == rule


def test_document_hides_poisoned_tools_and_omits_unknown_ones() -> None:
    doc = build_document([PolicyEntry("a", "low"), PolicyEntry("b", "unknown"), PolicyEntry("c", "critical", True)])
    assert set(doc["tools"]) == {"a", "c"}
    assert doc["hide"] == ["c"]
    assert validate_document(doc) == []


def test_same_name_on_two_servers_gets_the_stricter_rule() -> None:
    doc = build_document(
        [
            PolicyEntry("query", "medium", server="s1"),
            PolicyEntry("query", "critical", server="s2"),
            PolicyEntry("query", "low", server="s3"),
        ]
    )
    assert doc["tools"]["query"] == rule_for("critical")


def test_schema_rejects_malformed_documents() -> None:
    assert validate_document({"version": "2", "default": "deny", "tools": {}})
    assert validate_document(
        {"version": "1", "default": "deny", "tools": {"x": {"rate_limit": {"max": 0, "window": 60}}}}
    )
    assert validate_document(
        {
            "version": "1",
            "default": "deny",
            "tools": {
                "x": {"deny_if": [{"conditions": [{"path": "amount", "op": "bigger", "value": 1}], "on_deny": "no"}]}
            },
        }
    )
    assert validate_document({"version": "1", "default": "deny", "tools": {}, "extra": 1})
