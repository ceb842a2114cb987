"""The rubric's risk rules (taxonomy.md, "Risk levels"), first match wins.

Each rule has an id that ends up in the verdict, so the rationale can always say which
rule decided.  Annotations may raise a level, never lower one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from classifier.analysis import (
    ACCESS_OBJECTS,
    GRANT_WORDS,
    PRIVATE_FINANCE,
    PRIVATE_KNOWLEDGE,
    PUBLIC_FINANCE,
    SECRET_WORDS,
    ActionChoice,
    Facts,
)
from classifier.rules import RuleSet
from classifier.verdict import RISK_LEVELS, UNKNOWN, Finding


@dataclass(frozen=True)
class Context:
    category: str
    action: ActionChoice
    facts: Facts
    findings: tuple[Finding, ...]
    rules: RuleSet
    #: The learned privacy reading of a read (probability that it returns private data), or
    #: ``None`` without a learned model: then the category decides, as the rubric lists.
    private: float | None = None

    @property
    def tokens(self) -> frozenset[str]:
        return self.facts.all_tokens


@dataclass(frozen=True)
class RiskRule:
    id: str
    level: str
    why: str
    test: Callable[[Context], bool]


def _money_write(c: Context) -> bool:
    name = set(c.facts.name_tokens)
    return (
        c.category == "financial"
        and c.action.id == "write"
        and bool(
            name & c.rules.money_objects or (c.action.verb in c.rules.money_verbs and c.tokens & c.rules.money_objects)
        )
    )


def _grants_access(c: Context) -> bool:
    if c.category != "identity_access" or c.action.id == "read":
        return False
    return bool(set(c.facts.name_tokens) & GRANT_WORDS or c.action.verb in GRANT_WORDS) and bool(
        c.tokens & ACCESS_OBJECTS
    )


def _reads_secret(c: Context) -> bool:
    if c.action.id != "read":
        return False
    name = set(c.facts.name_tokens)
    if c.category == "identity_access" and name & (SECRET_WORDS - {"key"}):
        return True
    # `vault_get`: "Retrieves secrets of a service" - the opening says what comes back (and
    # does not deny it: "The password is never returned", "password policy").
    opening = set(c.facts.desc_words[:12])
    if (
        c.category == "identity_access"
        and not name & {"list", "search", "describe", "count", "find", "check", "validate"}
        and opening & {"secret", "password", "credential"}
        and not opening & {"never", "not", "no", "without", "policy", "masked", "redacted"}
    ):
        return True
    # Session cookies, a process's environment (where keys live) and "reveal" switches.
    if "cookie" in name or ("env" in name and name & {"get", "list", "show", "print", "dump", "read"}):
        return True
    if "reveal" in c.facts.param_tokens:
        return True
    return bool(
        {"secret", "password", "private", "mnemonic"} & name
        and name & {"value", "key", "get", "read", "reveal", "export", "show"}
    )


def _free_form_code(c: Context) -> bool:
    return c.category == "code_execution" and bool(c.facts.code_params)


def _browser_acts(c: Context) -> bool:
    return c.category == "browser_automation" and c.action.id != "read"


def _db_bulk_write(c: Context) -> bool:
    return (
        c.category == "database"
        and c.action.id == "write"
        and bool(c.facts.batch or {"filter", "where", "query", "condition", "selector"} & c.facts.param_tokens)
    )


#: Categories whose reads the rubric itself calls private (local files, database rows, mail
#: and messages, infrastructure state, access data): the learned reading cannot make them low.
RUBRIC_PRIVATE = frozenset({"filesystem", "database", "communication", "infrastructure", "identity_access"})
#: A read is private when the learned privacy reading gives at least this (server-grouped
#: CV on train+dev: the most accurate cut; scripts/tune_model.py --privacy).
PRIVATE_ABOVE = 0.5


def privacy_decides(category: str, action: str, rule_id: str) -> bool:
    """Whether the learned privacy reading decided a verdict's risk: a read outside
    ``RUBRIC_PRIVATE`` whose rule is the private or the public read."""
    return action == "read" and category not in RUBRIC_PRIVATE and rule_id in ("medium.private-read", "low.read")


def _private_read(c: Context) -> bool:
    if c.action.id != "read":
        return False
    cat = c.category
    if cat in RUBRIC_PRIVATE:
        return True
    if c.private is not None:  # a read outside RUBRIC_PRIVATE: privacy_decides
        # Learned from the labels' low/medium reads: public vs private is a matter of what
        # comes back (a weather report, a user's orders), which most categories name only roughly.
        return c.private >= PRIVATE_ABOVE
    if cat in {
        "source_control",
        "productivity",
        "system_device",
        "browser_automation",
    }:
        return True
    if cat == "financial":
        name = set(c.facts.name_tokens)
        if name & {
            "my",
            "account",
            "wallet",
            "portfolio",
            "balance",
            "pnl",
            "position",
            "deposit",
            "withdraw",
            "withdrawal",
            "transfer",
            "liquidation",
            "activity",
            "activitie",
        }:
            return True
        return bool(name & PRIVATE_FINANCE) and not name & PUBLIC_FINANCE
    if cat == "knowledge":
        return bool(c.tokens & PRIVATE_KNOWLEDGE)
    return False


RULES: tuple[RiskRule, ...] = (
    RiskRule(
        "critical.poisoning",
        "critical",
        "a tool that carries hidden instructions must never reach an agent",
        lambda c: any(f.id == "tool_poisoning" for f in c.findings),
    ),
    RiskRule(
        "critical.transact",
        "critical",
        "moving value or placing, changing or cancelling orders cannot be undone by a later control",
        lambda c: c.action.id == "transact",
    ),
    RiskRule("critical.financial-write", "critical", "it changes money or commitments", _money_write),
    RiskRule(
        "critical.delete",
        "critical",
        "destroying, cancelling or revoking is irreversible",
        lambda c: c.action.id == "delete",
    ),
    RiskRule(
        "critical.grant-access", "critical", "it grants, changes or revokes access or credentials", _grants_access
    ),
    RiskRule("critical.secret-read", "critical", "it returns secret values", _reads_secret),
    RiskRule("critical.free-form-code", "critical", "it runs free-form commands or code", _free_form_code),
    RiskRule(
        "high.execute",
        "high",
        "it runs a workflow or command whose effects depend on its arguments",
        lambda c: c.action.id == "execute",
    ),
    RiskRule("high.send", "high", "it reaches people outside the session", lambda c: c.action.id == "send"),
    RiskRule("high.browser", "high", "it drives a real browser on the user's behalf", _browser_acts),
    RiskRule(
        "high.infra-identity-write",
        "high",
        "it changes infrastructure or access configuration",
        lambda c: c.action.id == "write" and c.category in {"infrastructure", "identity_access"},
    ),
    RiskRule(
        "high.database-bulk-write", "high", "it writes many rows at once through a filter or batch", _db_bulk_write
    ),
    RiskRule("medium.write", "medium", "a reversible change", lambda c: c.action.id == "write"),
    RiskRule("medium.private-read", "medium", "it brings private data into the agent's context", _private_read),
    RiskRule(
        "medium.web",
        "medium",
        "open-world web content is untrusted (prompt injection, SSRF)",
        lambda c: c.category == "web_access",
    ),
    RiskRule("low.read", "low", "read-only access to public information or pure computation", lambda c: True),
)


def _raise(level: str) -> str:
    i = RISK_LEVELS.index(level)
    return RISK_LEVELS[max(0, i - 1)]


def assess(c: Context) -> tuple[str, str, str, list[str]]:
    """Return (risk, rule id, why, modifiers applied); each modifier ends with the level it led to."""
    rule = next(r for r in RULES if r.test(c))
    level: str = rule.level
    why = rule.why
    if c.private is not None and privacy_decides(c.category, c.action.id, rule.id):
        why += f" (learned privacy reading: p(private)={c.private:.2f}, cut {PRIVATE_ABOVE})"
    modifiers: list[str] = []
    if level == "high" and c.facts.path_params:
        level = _raise(level)
        modifiers.append(
            f"unconstrained path/URL argument `{c.facts.path_params[0]}` on a high-risk tool (+1 ⇒ {level})"
        )
    if c.action.id == "send" and (
        "forward" in c.facts.name_tokens
        or any(p.rsplit(".", 1)[-1].lower().startswith(("file", "path", "attach")) for p in c.facts.path_params)
    ):
        new = _raise(level)
        if new != level:
            level = new
            what = "forwards private content" if "forward" in c.facts.name_tokens else "reads local files"
            modifiers.append(f"{what} and sends it out: a single-tool exfiltration path (+1 ⇒ {level})")
    if c.facts.annotations.get("destructiveHint") is True and level in ("medium", "low"):
        level = _raise(level)
        modifiers.append(f"declares destructiveHint: true (+1 ⇒ {level})")
    return level, rule.id, why, modifiers


__all__ = ["PRIVATE_ABOVE", "RULES", "UNKNOWN", "Context", "RiskRule", "assess", "privacy_decides"]
