"""Policies v1: rubric rules, argument guards, overrides, and every export format against a
complete expected document plus that format's schema."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from catalog.errors import CatalogError
from catalog.policies.formats import ExportOptions, Format, exporter, schema_errors
from catalog.policies.formats.seed import seed_document
from catalog.policies.generate import HUMAN_APPROVAL, Override, ToolPolicy, dumps, strictness
from catalog.policies.guards import guards_for
from catalog.policies.settings import PolicySettings, load_settings

EXPECTED = Path(__file__).parent / "fixtures" / "exports"
SEED_POLICY = (
    '{"version":"1","default":"deny","tools":{"BinanceFuturesCancelBatchOrders":{"deny_if":'
    '[{"conditions":[],"on_deny":"Requires human approval."}]}}}'
)
SETTINGS = PolicySettings(
    max_amount=500,
    max_batch=5,
    allowed_roots=["/srv/agent"],
    allowed_email_domains=["example.com"],
    guard_levels=["high"],
)


def policy(
    tool: str,
    risk: str,
    definition: dict | None = None,
    *,
    category: str = "utility",
    action: str = "read",
    server: str = "io.github.acme/demo",
    poisoned: bool = False,
    override: Override | None = None,
    settings: PolicySettings = SETTINGS,
) -> ToolPolicy:
    guards = tuple(guards_for(definition or {}, category, action, settings))
    return ToolPolicy(
        tool=tool,
        risk=risk,
        server=server,
        category=category,
        action=action,
        rationale=f"{tool} rationale | with a pipe",
        hash=hashlib.sha256(tool.encode()).hexdigest(),
        poisoned=poisoned,
        guards=guards,
        override=override,
        settings=settings,
    )


def sample() -> list[ToolPolicy]:
    """One tool per decision the exporters must spell."""
    return [
        policy(
            "BinanceFuturesCancelBatchOrders",
            "critical",
            {
                "inputSchema": {
                    "properties": {
                        "symbol": {"type": "string"},
                        "orderIdList": {"type": "array", "items": {"type": "integer"}},
                    }
                }
            },
            category="financial",
            action="transact",
            server="io.github.acme/binance",
        ),
        policy(
            "send_email",
            "high",
            {"inputSchema": {"properties": {"to": {"type": "string"}, "attachment_path": {"type": "string"}}}},
            category="communication",
            action="send",
            server="io.github.acme/mail",
        ),
        policy(
            "write_file",
            "medium",
            {"inputSchema": {"properties": {"path": {"type": "string"}}}},
            category="filesystem",
            action="write",
            server="io.github.acme/files",
        ),
        policy("get_current_time", "low", server="io.github.acme/time"),
        policy("mystery", "unknown", server="io.github.acme/time"),
        policy("add_numbers", "critical", poisoned=True, server="io.github.acme/time"),
        policy(
            "drop_table",
            "critical",
            category="database",
            action="delete",
            server="io.github.acme/db",
            override=Override(
                "allow", "sandbox database only", "alice", definition_hash=hashlib.sha256(b"drop_table").hexdigest()
            ),
        ),
        # Decided about another definition: a deny still holds (it tightens), flagged for review;
        policy(
            "get_ticker_price",
            "low",
            category="financial",
            server="io.github.acme/market",
            override=Override("deny", "not for agents", "bob", definition_hash="0" * 64),
        ),
        # an allow of a tool poisoned since (a rug pull) is set aside: hidden, as without it.
        policy(
            "get_note",
            "medium",
            category="productivity",
            server="io.github.acme/notes",
            poisoned=True,
            override=Override("allow", "reviewed", "carol", definition_hash="1" * 64),
        ),
    ]


def test_seed_policy_is_reproduced_exactly() -> None:
    p = policy("BinanceFuturesCancelBatchOrders", "critical", category="financial", action="transact")
    assert dumps(seed_document([p])) == SEED_POLICY


def test_guards_from_the_input_schema() -> None:
    defn = {
        "inputSchema": {
            "properties": {
                "amount": {"type": "number"},
                "orders": {"type": "array"},
                "path": {"type": "string"},
                "to": {"type": "string"},
                "url": {"type": "string"},
                "command": {"type": "string"},
                "mode": {"type": "string", "enum": ["a", "b"]},
            }
        }
    }
    ids = {g.id: g for g in guards_for(defn, "financial", "transact", SETTINGS)}
    assert set(ids) == {"amount-cap", "batch-size", "path-traversal", "path-root", "url-private"}
    assert ids["amount-cap"].deny.as_dict() == {"path": "args.amount", "op": "gt", "value": 500}
    assert ids["amount-cap"].allow.as_dict() == {"path": "args.amount", "op": "lte", "value": 500}
    assert ids["batch-size"].deny.path == "args.orders.length" and ids["batch-size"].allow is None
    root = ids["path-root"]
    assert re.search(root.deny.value, "/etc/passwd") and not re.search(root.deny.value, "/srv/agent/x")
    assert re.search(root.allow.value, "/srv/agent/x") and not re.search(root.allow.value, "/srv/agentx")
    traversal = ids["path-traversal"].allow.value
    assert re.fullmatch(traversal, "/srv/agent/a.b") and not re.fullmatch(traversal, "/srv/agent/../x")
    private = ids["url-private"].deny.value
    assert all(re.search(private, u) for u in ("http://127.0.0.1/x", "http://169.254.169.254/", "https://10.0.0.1"))
    assert not re.search(private, "https://example.org/")
    comm = {g.id for g in guards_for(defn, "communication", "send", SETTINGS)}
    assert "recipient-domain" in comm and "amount-cap" not in comm
    code = {g.id: g for g in guards_for(defn, "code_execution", "execute", SETTINGS)}
    assert re.search(code["command-blocklist"].deny.value, "sudo rm -rf /")
    assert not re.search(code["command-blocklist"].deny.value, "ls -la")


def test_guards_hold_against_the_spellings_that_slipped_past_them() -> None:
    # A review's bypasses: each value below passed the guard it names; both spellings (the
    # seed's deny_if and Intercept's allow) must now agree on every value.
    settings = PolicySettings(allowed_url_hosts=["example.com"], allowed_email_domains=["example.com"])
    defn = {"inputSchema": {"properties": {"url": {"type": "string"}, "to": {"type": "string"}}}}
    g = {x.id: x for x in guards_for(defn, "communication", "send", settings)}
    cases = {
        "url-host": {
            "https://example.com/a": True,
            "https://api.example.com": True,
            "https://example.com?x=1": True,
            "https://evil.com?.example.com": False,
            "https://evil.com#.example.com": False,
            "https://evil.com\\.example.com": False,
            "https://example.com@evil.com/": False,
            "https://example.com.evil.com/": False,
            "HTTPS://API.Example.com/x": True,  # schemes and hosts have no case
        },
        "recipient-domain": {
            "bob@example.com": True,
            "a@example.com, b@example.com": True,
            "eve@evil.com, bob@example.com": False,
            "bob": False,
            "bob@example.com.evil.com": False,
            "Bob@Example.COM": True,
        },
    }
    for gid, values in cases.items():
        for value, ok in values.items():
            denied, allowed = bool(re.search(g[gid].deny.value, value)), bool(re.search(g[gid].allow.value, value))
            assert (denied, allowed) == (not ok, ok), (gid, value)
    private = guards_for(defn, "web_access", "read", PolicySettings())[0]
    assert private.id == "url-private"
    for url in (
        "http://LOCALHOST/",
        "HTTP://127.0.0.1/",
        "http://user@127.0.0.1/",
        "http://0/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://a.localhost:8080/",
        # A second review's, each reaching a loopback server through urllib3, curl or Node:
        "http://0177.0.0.1/",
        "http://0254.0376.0251.0376/",
        "http://a@b@127.0.0.1/",
        "http://%31%32%37.0.0.1/",
        " http://127.0.0.1/",
        "http:/127.0.0.1/",
        "http://127\u30020\u30020\u30021/",
    ):
        assert re.search(private.deny.value, url), url
    for url in (
        "https://0xproject.org/",
        "https://0xcafe.io/",
        "https://10gen.com/",
        "https://localhostess.com/",
        "https://[2001:db8::1]/",
        "https://user@example.com/",
    ):
        assert not re.search(private.deny.value, url), url


def test_high_tools_get_their_guards_and_critical_ones_wait_for_a_person() -> None:
    mail, crit = sample()[1], sample()[0]
    rule = seed_document([mail])["tools"]["send_email"]
    assert rule["rate_limit"] == {"max": 10, "window": 60}
    assert [d["conditions"][0]["path"] for d in rule["deny_if"]] == [
        "args.to",
        "args.attachment_path",
        "args.attachment_path",
    ]
    assert any("only example.com" in line for line in mail.explanation())
    assert seed_document([crit])["tools"][crit.tool] == {
        "deny_if": [{"conditions": [], "on_deny": "Requires human approval."}]
    }
    gated = policy(
        crit.tool,
        "critical",
        {"inputSchema": {"properties": {"orderIdList": {"type": "array"}}}},
        category="financial",
        action="transact",
        settings=PolicySettings(critical="argument-gated", max_batch=5),
    )
    assert seed_document([gated])["tools"][crit.tool] == {
        "deny_if": [
            {
                "conditions": [{"path": "args.orderIdList.length", "op": "gt", "value": 5}],
                "on_deny": "At most 5 items per call.",
            }
        ]
    }


def test_a_doubtful_verdict_gets_the_stricter_plausible_levels_policy() -> None:
    # Risk medium, but in doubt a high reading was plausible: the rule is high's (10 calls a
    # minute and the argument guards), and the explanation says why.
    definition = {"inputSchema": {"properties": {"path": {"type": "string"}}}}
    sure = policy("write_note", "medium", definition, category="filesystem", action="write")
    doubtful = dataclasses.replace(sure, policy_risk="high")
    assert (sure.level, doubtful.level) == ("medium", "high")
    assert seed_document([sure])["tools"]["write_note"] == {"rate_limit": {"max": 30, "window": 60}}
    rule = seed_document([doubtful])["tools"]["write_note"]
    assert rule["rate_limit"] == {"max": 10, "window": 60} and rule["deny_if"]
    assert any("in doubt" in line and "high" in line for line in doubtful.explanation())
    assert strictness(doubtful) > strictness(sure)
    # Claude Code: a plain medium tool is allowed, one whose policy follows high asks.
    from catalog.policies.formats.claude_code import bucket

    assert (bucket(sure), bucket(dataclasses.replace(sure, guards=()))) == ("allow", "allow")
    assert bucket(dataclasses.replace(doubtful, guards=())) == "ask"


def test_override_wins_and_is_flagged_when_the_definition_changed() -> None:
    by_name = {p.tool: p for p in sample()}
    p = by_name["drop_table"]  # decided about the current definition: it wins outright
    assert p.decision == "allow" and seed_document([p])["tools"]["drop_table"] == {}
    assert not p.stale_override and p.set_aside is None
    # Decided about another definition, a deny still holds (it tightens) and asks for review;
    tightened = by_name["get_ticker_price"]
    assert tightened.decision == "deny" and tightened.stale_override and tightened.set_aside is None
    assert "review" in " ".join(tightened.explanation())


def test_an_override_about_another_definition_never_loosens_the_rule() -> None:
    # An "allow" carried a tool rug-pulled into poison since into Claude Code's allow list and
    # Codex's enabled tools (only --pin, which neither can write, held it back).
    import tomllib

    from catalog.policies.formats.claude_code import bucket

    pulled = {p.tool: p for p in sample()}["get_note"]
    assert pulled.override is None and pulled.set_aside is not None and pulled.stale_override
    assert pulled.decision == "hide" and bucket(pulled) == "deny"
    assert seed_document([pulled])["hide"] == ["get_note"]
    assert any("set aside" in line for line in pulled.explanation())
    codex = tomllib.loads(exporter(Format.CODEX).render([pulled], ExportOptions()))
    assert codex["mcp_servers"]["notes"]["disabled_tools"] == ["get_note"]
    # A benign change too: the allow waits for a person, the generated rule applies meanwhile.
    allowed = Override("allow", "ok", "ana", definition_hash="1" * 64)
    tweaked = policy("write_file", "medium", category="filesystem", action="write", override=allowed)
    assert tweaked.decision == "limit" and tweaked.set_aside == allowed
    # Decided again about the current definition, it applies; and a copy made with another
    # hash weighs the decision again (dataclasses.replace runs the check anew).
    reviewed = dataclasses.replace(allowed, definition_hash=tweaked.hash)
    current = dataclasses.replace(tweaked, set_aside=None, override=reviewed)
    assert current.decision == "allow" and current.set_aside is None
    again = dataclasses.replace(current, hash="2" * 64)
    assert again.decision == "limit" and again.set_aside is not None
    back = dataclasses.replace(again, hash=tweaked.hash)
    assert back.decision == "allow" and back.set_aside is None
    # A person's rule about the old definition, a rate limit a little tighter than the new
    # one's, dropped the new definition's guards: set aside as well.
    nine = Override("rule", "", "ops", rule={"rate_limit": {"max": 9, "window": 60}}, definition_hash="1" * 64)
    guarded = policy(
        "write_file",
        "high",
        {"inputSchema": {"properties": {"path": {"type": "string"}}}},
        category="filesystem",
        action="write",
        override=nine,
    )
    assert guarded.set_aside == nine and guarded.decision == "limit" and guarded.active_guards
    assert seed_document([guarded])["tools"]["write_file"]["deny_if"]
    # An override without a recorded definition (decided before hashes were kept) is not stale.
    legacy = policy("write_file", "medium", override=Override("allow", "", "ops"))
    assert legacy.decision == "allow"
    denied = policy("get_current_time", "low", override=Override("deny", "not needed", "bob"))
    assert (
        seed_document([denied])["tools"]["get_current_time"]["deny_if"][0]["on_deny"] == "Denied by policy: not needed"
    )


def test_pinning_adds_the_definition_hash() -> None:
    p = sample()[3]
    assert seed_document([p], pin=True)["tools"]["get_current_time"] == {"pin": p.hash}


@pytest.mark.parametrize("fmt", list(Format))
def test_each_format_matches_its_complete_expected_document(fmt: Format) -> None:
    exp = exporter(fmt)
    text = exp.render(sample(), ExportOptions(aliases={"io.github.acme/binance": "binance-futures"}))
    expected = (
        (EXPECTED / f"sample{exp.suffix}").read_text()
        if fmt is not Format.SEED
        else (EXPECTED / "sample.seed.json").read_text()
    )
    assert text == expected
    assert exp.validate(text) == []


def test_exports_parse_as_their_formats() -> None:
    opts = ExportOptions()
    intercept = yaml.safe_load(exporter(Format.INTERCEPT).render(sample(), opts))
    assert intercept["default"] == "deny" and intercept["hide"] == ["add_numbers", "get_note"]
    assert intercept["tools"]["get_current_time"] == {"rules": []}
    assert "mystery" not in intercept["tools"]
    claude = json.loads(exporter(Format.CLAUDE_CODE).render(sample(), opts))["permissions"]
    assert (
        "mcp__time__add_numbers" in claude["deny"] and "mcp__binance__BinanceFuturesCancelBatchOrders" in claude["ask"]
    )
    assert "mcp__time__get_current_time" in claude["allow"]


@pytest.mark.parametrize(
    ("fmt", "bad"),
    [
        (Format.SEED, '{"version": "2", "default": "deny", "tools": {}}'),
        (
            Format.SEED,
            '{"version": "1", "default": "deny", "tools": {"x": {"deny_if": [{"conditions": '
            '[{"path": "a", "op": "bigger"}], "on_deny": "no"}]}}}',
        ),
        (Format.INTERCEPT, 'version: "1"\ntools:\n  x:\n    rules:\n      - name: "r"\n        action: "evaluate"\n'),
        (
            Format.INTERCEPT,
            'version: "1"\ntools:\n  x:\n    rules:\n      - name: "r"\n        conditions:\n'
            '          - path: "args.p"\n            op: "regex"\n            value: "^(?!/x)"\n',
        ),
        (Format.CLAUDE_CODE, '{"permissions": {"allow": ["Bash(rm:*)"]}}'),
        (Format.CLAUDE_CODE, '{"permissions": {"allow": ["mcp__a__b"], "deny": ["mcp__a__b"]}}'),
        (Format.CODEX, '[mcp_servers.a]\ndisabled_tools = "x"\n'),
        (Format.CSV, "server,tool\n"),
        (Format.MARKDOWN, "# MCP tool policy report\n| a | b |\n"),
    ],
)
def test_validators_reject_malformed_documents(fmt: Format, bad: str) -> None:
    assert exporter(fmt).validate(bad)


def test_seed_schema_accepts_pins_and_conditions() -> None:
    doc = {
        "version": "1",
        "default": "deny",
        "tools": {
            "x": {
                "rate_limit": {"max": 10, "window": 60},
                "deny_if": [{"conditions": [{"path": "args.amount", "op": "gt", "value": 5}], "on_deny": "no"}],
                "pin": "a" * 64,
            }
        },
    }
    assert schema_errors(doc, "seed.schema.json") == []


def test_settings_file(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text('max_amount = 250\nallowed_roots = ["/data"]\ncritical = "argument-gated"\n')
    s = load_settings(f)
    assert (s.max_amount, s.allowed_roots, s.critical, s.max_batch) == (250, ["/data"], "argument-gated", 10)
    f.write_text("max_amont = 3\n")
    with pytest.raises(CatalogError, match="unknown key 'max_amont'"):
        load_settings(f)
    f.write_text('critical = "sometimes"\n')
    with pytest.raises(CatalogError, match="critical must be"):
        load_settings(f)
    with pytest.raises(CatalogError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_a_persons_rule_for_one_server_is_weighed_by_what_it_does() -> None:
    # Two servers expose get_balance; a gateway keyed by name gets one rule.  A person's own
    # rule for one server used to rank below every generated limit, so "deny" on Stripe lost
    # to Binance's generated 30 calls a minute (a review reproduced it).
    from catalog.policies.generate import merge_by_name, seed_rule

    generated = policy("get_balance", "medium", server="binance")
    assert seed_rule(generated) == {"rate_limit": {"max": 30, "window": 60}}

    def custom(rule: dict) -> ToolPolicy:
        return policy("get_balance", "low", server="stripe", override=Override("rule", "", "ops", rule=rule))

    deny = custom({"deny_if": [{"conditions": [], "on_deny": "never"}]})
    slower = custom({"rate_limit": {"max": 5, "window": 60}})
    faster = custom({"rate_limit": {"max": 100, "window": 60}})
    guarded = custom({"deny_if": [{"conditions": [{"path": "args.x", "op": "eq", "value": 1}], "on_deny": "no"}]})
    for mine, wins in ((deny, True), (slower, True), (guarded, True), (faster, False), (custom({}), False)):
        for order in ([generated, mine], [mine, generated]):
            assert merge_by_name(order)["get_balance"] is (mine if wins else generated)
    # The same guards, one rule also limited: the limited one is stricter (a review found an
    # unlimited rule ranked above a limit of one call an hour).
    condition = [{"path": "args.x", "op": "eq", "value": 1}]
    unlimited = custom({"deny_if": [{"conditions": condition, "on_deny": "no"}]})
    hourly = custom({"deny_if": [{"conditions": condition, "on_deny": "no"}], "rate_limit": {"max": 1, "window": 3600}})
    assert merge_by_name([unlimited, hourly])["get_balance"] is hourly
    assert merge_by_name([hourly, unlimited])["get_balance"] is hourly
    # A tie goes to the person: the same limit, theirs.
    same = custom({"rate_limit": {"max": 30, "window": 60}})
    assert merge_by_name([generated, same])["get_balance"] is same
    assert merge_by_name([same, generated])["get_balance"] is same
    # A catalogue's record of a server (`glama/…` sorts first) never wins a tie over the server
    # as listed live: `--pin` pinned the copy's hash, which the real tool then failed.
    live = dataclasses.replace(policy("fetch", "low", server="io.github.example/fetch"), hash="b" * 64)
    copy = dataclasses.replace(policy("fetch", "low", server="glama/someone/fetch"), hash="a" * 64)
    assert merge_by_name([copy, live])["fetch"] is live and merge_by_name([live, copy])["fetch"] is live


def test_an_override_is_pinned_to_the_definition_it_was_decided_on() -> None:
    # --pin: an override of an old definition must not vouch for the changed one.
    from catalog.policies.generate import seed_rule

    decided = Override("deny", "", "ops", definition_hash="a" * 64)
    changed = dataclasses.replace(policy("read_file", "medium", override=decided), hash="b" * 64)
    assert changed.stale_override and changed.override == decided  # a deny tightens: it holds
    assert seed_rule(changed, pin=True) == {
        "deny_if": [{"conditions": [], "on_deny": "Denied by policy: override"}],
        "pin": "a" * 64,
    }
    # Decided for every server (a digest of their definitions): once one changed, a pinned
    # export leaves the rule out (denied by default) rather than vouch for the new definition.
    stale_all = policy("read_file", "medium", override=Override("deny", "", "ops", definition_hash="all:" + "c" * 60))
    assert seed_rule(dataclasses.replace(stale_all, hash="b" * 64), pin=True) is None
    # An allow about the old definition would loosen the new one's rule: set aside, the
    # generated rule is pinned to the current definition.
    allowed = dataclasses.replace(decided, decision="allow")
    loosening = dataclasses.replace(policy("read_file", "medium", override=allowed), hash="b" * 64)
    assert seed_rule(loosening, pin=True) == {"rate_limit": {"max": 30, "window": 60}, "pin": "b" * 64}
    plain = dataclasses.replace(policy("read_file", "medium"), hash="b" * 64)
    assert seed_rule(plain, pin=True) == {"rate_limit": {"max": 30, "window": 60}, "pin": "b" * 64}


@pytest.mark.parametrize(
    "name",
    [
        "nl\nx",
        "rocket_🚀",
        "tab\tand\rcr",
        'q"uote\\back',
        "nel\x85line\u2028sep",
        "ctl\x01\x7f",
        "on",
        "True",
        "null",
        "y",
    ],
)
def test_odd_tool_names_survive_the_yaml_and_toml_exports(name: str) -> None:
    # A review's names broke whole exports: a newline made the intercept YAML invalid, an emoji
    # (written as a JSON surrogate pair) the Codex TOML.  Each format reads the name back; a
    # lone surrogate, which neither can hold, becomes U+FFFD.
    import tomllib

    from catalog.policies.formats.quoting import double_quoted

    expected = name
    assert yaml.safe_load(double_quoted(name)) == expected
    assert tomllib.loads(f"k = {double_quoted(name)}")["k"] == expected
    assert tomllib.loads(f"k = {double_quoted('lone' + chr(0xD800))}")["k"] == "lone\ufffd"
    tools = [
        policy(name, "critical", server="io.github.acme/odd"),
        policy("plain", "medium", server="io.github.acme/odd"),
    ]
    opts = ExportOptions()
    for fmt in (Format.INTERCEPT, Format.CODEX):
        text = exporter(fmt).render(tools, opts)
        assert exporter(fmt).validate(text) == [], (fmt, text)
    assert expected in yaml.safe_load(exporter(Format.INTERCEPT).render(tools, opts))["tools"]
    codex = tomllib.loads(exporter(Format.CODEX).render(tools, opts))
    assert expected in codex["mcp_servers"]["odd"]["disabled_tools"]  # the alias: the last part


def test_equally_strict_servers_of_one_name_merge_the_same_in_any_order() -> None:
    # The winner was the first listed, and the listing follows the database's collation:
    # the same catalogue pinned one hash on SQLite and another on PostgreSQL.
    from catalog.policies.generate import merge_by_name

    alpha = ToolPolicy(tool="get_forecast", risk="medium", server="alpha.example/w", hash="b0a1")
    zeta = ToolPolicy(tool="get_forecast", risk="medium", server="Zeta.example/w", hash="39ae")
    assert merge_by_name([alpha, zeta])["get_forecast"] is merge_by_name([zeta, alpha])["get_forecast"]
    strict = ToolPolicy(tool="get_forecast", risk="critical", server="zz.example/w", hash="ffff")
    assert merge_by_name([alpha, strict, zeta])["get_forecast"] is strict


def test_intercept_pins_a_persons_decision_to_the_definition_they_reviewed() -> None:
    # It pinned the current, unreviewed definition, tying the old decision to it; Intercept
    # cannot check a pin, so a decision about a definition that changed since is left out.
    from dataclasses import replace

    reviewed = Override("deny", "no", "ana", definition_hash="a" * 64)
    current = replace(policy("get_weather", "low", override=reviewed), hash="a" * 64)
    changed = replace(
        policy("get_forecast", "low", override=replace(reviewed, definition_hash="b" * 64)), hash="c" * 64
    )
    assert changed.override is not None  # a deny stands through a change
    text = exporter(Format.INTERCEPT).render([current, changed], ExportOptions(pin=True))
    doc = yaml.safe_load(text)
    assert "get_weather" in doc["tools"] and "get_forecast" not in doc["tools"], text
    assert f"# pin get_weather sha256:{'a' * 64}" in text and "# pin get_forecast: changed since the override" in text
    assert "c" * 64 not in text
    # Poisoned since: hidden, with or without --pin (a denied tool's description still reached
    # the model, and the description is where the poison is).
    pulled = replace(changed, poisoned=True)
    assert yaml.safe_load(exporter(Format.INTERCEPT).render([pulled], ExportOptions(pin=True)))["hide"] == [
        "get_forecast"
    ]
    assert seed_document([pulled], pin=True)["hide"] == ["get_forecast"]
    assert seed_document([pulled])["hide"] == ["get_forecast"]
    assert seed_document([pulled])["tools"]["get_forecast"]["deny_if"][0]["on_deny"] == "Denied by policy: no"
    # An allow about the old definition is set aside: the generated rule, pinned to the new one.
    allowed = replace(changed, override=replace(reviewed, decision="allow", definition_hash="b" * 64))
    assert allowed.override is None and allowed.set_aside is not None
    text = exporter(Format.INTERCEPT).render([allowed], ExportOptions(pin=True))
    assert yaml.safe_load(text)["tools"]["get_forecast"] == {"rules": []} and f"sha256:{'c' * 64}" in text


def test_a_guard_a_format_cannot_write_makes_the_tool_stricter_not_unguarded() -> None:
    # A high-risk SQL tool's guard (no statement that changes data) has no Intercept spelling
    # (a negative pattern): Intercept kept only its rate limit and Codex left it enabled, so
    # the gateway ran it with neither guard.  Now Intercept asks a person and Codex disables it.
    import tomllib

    query = policy(
        "query",
        "high",
        {"inputSchema": {"properties": {"sql": {"type": "string"}}}},
        category="database",
        action="execute",
        server="io.github.acme/db",
    )
    assert query.decision == "limit" and any(g.allow is None for g in query.active_guards)
    text = exporter(Format.INTERCEPT).render([query], ExportOptions())
    rules = yaml.safe_load(text)["tools"]["query"]["rules"]
    assert rules == [{"name": "human approval", "action": "deny", "on_deny": HUMAN_APPROVAL}], text
    assert "# not expressible here: query: " in text and "needs a person's approval instead" in text
    codex = tomllib.loads(exporter(Format.CODEX).render([query], ExportOptions()))
    assert codex["mcp_servers"]["db"]["disabled_tools"] == ["query"]
    # A guard Intercept can write keeps the tool running inside it, with its limit.
    write = policy(
        "write_file",
        "high",
        {"inputSchema": {"properties": {"path": {"type": "string"}}}},
        category="filesystem",
        action="write",
        server="io.github.acme/files",
    )
    assert [g.id for g in write.active_guards] == ["path-traversal", "path-root"]
    rules = yaml.safe_load(exporter(Format.INTERCEPT).render([write], ExportOptions()))["tools"]["write_file"]["rules"]
    assert rules[0] == {"name": "rate limit", "rate_limit": "10/minute"}
    assert [r["name"] for r in rules[1:]] == ["path-traversal", "path-root"]
