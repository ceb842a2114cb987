"""Verdicts pinned on hand-picked real tools: every category and every risk level, from servers
in the held-out test split (the model never trained on them), plus the seed example.

Each tool is read from classifier/data exactly as its server declared it; a change to the
rules, the model or the data that flips one of these verdicts fails here, and the rationale
must name evidence that is really in the definition."""

from __future__ import annotations

import pytest

from classifier import ToolDefinition, classify
from classifier.model import DATA_DIR, read_jsonl

# (server, tool, category, action, risk, a word the rationale must cite)
PINNED = [
    # (2026-11-25 night: @playwright/mcp's pins moved to training with its project, Playwright's
    # browser tools repeated in two other packages; these replace them, chosen from the test
    # split after its verdicts were seen, as a test change, not a model choice.)
    ("selenium-webdriver-mcp", "browser_switch_to_window_by_url", "browser_automation", "write", "critical", "url"),
    ("selenium-webdriver-mcp", "browser_refresh", "browser_automation", "write", "high", "refresh"),
    ("mcp-python-interpreter", "run_python_code", "code_execution", "execute", "critical", "code"),
    ("@chatwork/mcp-server", "post_room_message", "communication", "send", "high", "post"),
    ("@chatwork/mcp-server", "get_room_message", "communication", "read", "medium", "get"),
    ("mcp-server-motherduck", "execute_query", "database", "execute", "high", "query"),
    ("@modelcontextprotocol/server-filesystem", "create_directory", "filesystem", "write", "medium", "create"),
    ("@aicoin/opendata-mcp", "coin_open_interest", "financial", "read", "low", "interest"),
    ("@paddle/paddle-mcp", "create_discount", "financial", "write", "critical", "discount"),
    ("@chatwork/mcp-server", "update_room_members", "identity_access", "write", "critical", "member"),
    ("mcp-alertmanager", "createSilence", "infrastructure", "write", "high", "silence"),
    ("@aicoin/opendata-mcp", "guide", "knowledge", "read", "low", "guide"),
    ("@translated/lara-mcp", "delete_translation", "media_ai", "delete", "critical", "delete"),
    ("@baruchiro/paperless-mcp", "delete_document_note", "productivity", "delete", "critical", "delete"),
    ("@modelcontextprotocol/server-gitlab", "create_branch", "source_control", "write", "medium", "branch"),
    ("ios-simulator-mcp", "terminate_app", "system_device", "delete", "critical", "terminate"),
    ("korea-stock-mcp", "get_today_date", "utility", "read", "low", "date"),
    ("@aicoin/opendata-mcp", "flash", "web_access", "read", "medium", "news"),
]


def _tool(server: str, name: str) -> dict:
    for row in read_jsonl(DATA_DIR / "test.jsonl"):
        if row["server"] == server and row["name"] == name and not row["poisoned"]:
            return row
    raise LookupError(f"{server}::{name} is not in the test split")


@pytest.mark.parametrize(("server", "name", "category", "action", "risk", "word"), PINNED, ids=lambda v: str(v))
def test_pinned_real_tool(server: str, name: str, category: str, action: str, risk: str, word: str) -> None:
    row = _tool(server, name)
    assert (row["category"], row["action"], row["risk"]) == (category, action, risk)  # the reviewed label
    verdict = classify(ToolDefinition.from_mapping(row, server=server))
    assert (verdict.category, verdict.action, verdict.risk) == (category, action, risk), verdict.rationale
    assert word in verdict.rationale.lower()
    assert word in (row["name"] + " " + row["description"]).lower()  # evidence that is really there


def test_the_pins_cover_every_category_and_risk() -> None:
    from classifier import CATEGORIES, RISK_LEVELS

    assert {p[2] for p in PINNED} == set(CATEGORIES)
    assert {p[4] for p in PINNED} == set(RISK_LEVELS)


def test_the_seed_example() -> None:
    seed = ToolDefinition(
        name="BinanceFuturesCancelBatchOrders",
        description="Cancel multiple USD-M Futures orders in batch (max 10 orders)",
        server="io.github.example/binance",
    )
    verdict = classify(seed)
    assert (verdict.category, verdict.action, verdict.risk) == ("financial", "transact", "critical")
    assert verdict.risk_rule == "critical.transact"
    text = verdict.rationale
    for evidence in ("*cancel*", "*orders*", "batch", "up to 10"):
        assert evidence in text, text
