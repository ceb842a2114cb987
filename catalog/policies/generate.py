"""Verdict (+ the user's overrides and settings) -> one policy per tool.

``ToolPolicy`` is the format-neutral decision; exporters under ``formats/`` spell it for a
gateway or a client.  The rubric (taxonomy.md): critical -> a person approves, high ->
10 calls/min plus argument guards, medium -> 30 calls/min, low -> allowed, unknown -> not
listed (denied by ``default: deny``), poisoned -> hidden.  A person's override always wins
and survives every re-crawl.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.policies.guards import Guard, guards_for
from catalog.policies.settings import PolicySettings
from catalog.store.overrides import SERVERS_DIGEST
from crawler.items import CATALOGUE_NAMESPACES

HUMAN_APPROVAL = "Requires human approval."
RISK_ORDER = ("low", "medium", "high", "critical", "unknown")
RATE_LIMITS = {"high": (10, 60), "medium": (30, 60)}


@dataclass(frozen=True)
class Override:
    """A person's decision about a tool, stored apart from generated rules."""

    decision: str  # allow | deny | rule
    reason: str
    author: str
    created_at: datetime | None = None
    rule: dict[str, Any] | None = None
    definition_hash: str | None = None


@dataclass(frozen=True)
class ToolPolicy:
    tool: str
    risk: str
    server: str | None = None
    category: str = ""
    action: str = ""
    rationale: str = ""
    hash: str = ""
    poisoned: bool = False
    guards: tuple[Guard, ...] = ()
    override: Override | None = None
    settings: PolicySettings = field(default_factory=PolicySettings)
    #: The level the rule follows (``Verdict.policy_risk``): the risk, or a stricter one the
    #: classifier found plausible when in doubt.  Empty means ``risk``.
    policy_risk: str = ""
    #: A person's override about another definition (the tool changed since) that is not an
    #: outright deny: kept out of every decision and shown for review.
    set_aside: Override | None = None
    #: The poisoning found in the server's instructions (the first finding's evidence), ""
    #: when none: they reach the model with this tool, so the tool is hidden as if its own
    #: description carried it (``poisoned`` is set too, and the level is critical).
    server_poisoning: str = ""
    #: Since when the server has said those instructions: a person's decision made before
    #: that was made about other instructions, and is set aside as for a changed definition.
    poisoned_since: datetime | None = None

    def __post_init__(self) -> None:
        """A person's decision holds for the definition they decided about. Once the tool's
        definition changes, only an outright deny still stands (nothing the catalogue would
        generate is stricter); anything else is set aside until someone decides again, and the
        generated rule applies meanwhile. An "allow" carried a rug-pulled tool, poisoned since,
        into Claude Code's allow list and Codex's enabled tools, and only ``--pin`` (which
        neither can write) held it back; a custom rule of 9 calls a minute dropped the guards
        the new definition's rule has."""
        decided = self.override or self.set_aside
        object.__setattr__(self, "override", decided)
        object.__setattr__(self, "set_aside", None)
        if (
            decided is not None
            and (self.stale_override or self.decided_before_poisoning)
            and not _denies_outright(decided)
        ):
            object.__setattr__(self, "override", None)
            object.__setattr__(self, "set_aside", decided)

    @property
    def decided_before_poisoning(self) -> bool:
        """A person decided before the server's instructions turned poisoned: about other
        instructions (an "allow" kept a rug-pulled server's tool in every allow list)."""
        o = self.override or self.set_aside
        if o is None or not self.server_poisoning:
            return False
        return o.created_at is None or self.poisoned_since is None or o.created_at < self.poisoned_since

    @property
    def level(self) -> str:
        return self.policy_risk or self.risk

    @property
    def stale_override(self) -> bool:
        """The definition changed since the person decided: their decision needs a new look."""
        o = self.override or self.set_aside
        return bool(o and o.definition_hash and self.hash and o.definition_hash != self.hash)

    @property
    def decision(self) -> str:
        """hide | deny | approve | guarded | limit | allow | omit — what a gateway should do."""
        if self.override is not None:
            return {"allow": "allow", "deny": "deny"}.get(self.override.decision, "custom")
        if self.poisoned:
            return "hide"
        level = self.level
        if level == "critical":
            return "guarded" if self.settings.critical == "argument-gated" and self.guards else "approve"
        if level in RATE_LIMITS:
            return "limit"
        if level == "low":
            return "allow"
        return "omit"

    @property
    def rate_limit(self) -> tuple[int, int] | None:
        return RATE_LIMITS.get(self.level) if self.decision == "limit" else None

    @property
    def active_guards(self) -> tuple[Guard, ...]:
        if self.override is not None:
            return ()
        if self.decision == "guarded" or (self.decision == "limit" and self.level in self.settings.guard_levels):
            return self.guards
        return ()

    def explanation(self) -> list[str]:
        lines = []
        if self.set_aside is not None:
            o = self.set_aside
            about = "another definition" if self.stale_override else "the server's earlier instructions"
            lines.append(
                f"override by {o.author} set aside: {o.decision} ({o.reason or 'no reason given'}) was decided about "
                f"{about}; the generated rule applies until someone decides again (`catalog override`)"
            )
        if self.override is not None:
            o = self.override
            lines.append(f"override by {o.author}: {o.decision} ({o.reason or 'no reason given'})")
            if self.stale_override:
                lines.append("the tool's definition changed since this override: review it")
        elif self.level != self.risk:
            lines.append(
                f"the classifier is in doubt: the rule follows the stricter plausible level {self.level}"
                f" (the risk is {self.risk})"
            )
        if self.risk == "unknown" and self.rationale == NOT_SCANNED:
            lines.append(NOT_SCANNED)
        if self.server_poisoning:
            lines.append(
                "the server's instructions, which reach the model with this tool, carry tool poisoning"
                f" ({self.server_poisoning})"
            )
        lines.extend(g.why for g in self.active_guards)
        return lines


def seed_rule(p: ToolPolicy, *, pin: bool = False) -> dict[str, Any] | None:
    """The tool's rule in the seed format; ``None``: leave it out (denied by default)."""
    rule: dict[str, Any] | None
    if p.override is not None:
        o = p.override
        if o.decision == "allow":
            rule = {}
        elif o.decision == "deny":
            rule = {"deny_if": [{"conditions": [], "on_deny": f"Denied by policy: {o.reason or 'override'}"}]}
        else:
            rule = dict(o.rule or {})
    elif p.decision in ("approve", "hide"):
        rule = {"deny_if": [{"conditions": [], "on_deny": HUMAN_APPROVAL}]}
    elif p.decision == "guarded":
        rule = {"deny_if": [{"conditions": [g.deny.as_dict()], "on_deny": g.on_deny} for g in p.active_guards]}
    elif p.decision == "limit":
        limit = p.rate_limit
        assert limit is not None
        rule = {"rate_limit": {"max": limit[0], "window": limit[1]}}
        if p.active_guards:
            rule["deny_if"] = [{"conditions": [g.deny.as_dict()], "on_deny": g.on_deny} for g in p.active_guards]
    elif p.decision == "allow":
        rule = {}
    else:
        rule = None
    if rule is not None and pin and p.hash:
        pinned = pin_for(p)
        if pinned is None:
            return None
        rule["pin"] = pinned
    return rule


def _denies_outright(o: Override) -> bool:
    """A deny, or a person's rule with an entry that denies without conditions."""
    return o.decision == "deny" or (o.decision == "rule" and custom_strictness(o.rule or {})[0] == "deny")


def hidden(p: ToolPolicy, *, pin: bool = False) -> bool:
    """Whether the tool is hidden from the model.  A person's override holds only for the
    definition they reviewed: pinned, an override about a definition that changed since no
    longer speaks for the tool, so a poisoned new definition is hidden as it would be without
    one (a rug-pulled tool was denied but its poisoned description still shown). A poisoned
    tool a person denies is hidden too: its calls are refused, but its description would
    still reach the model, and the description is where the poison is."""
    if p.decision == "hide" or (p.poisoned and p.decision == "deny"):
        return True
    return pin and p.poisoned and pinned_away(p)


def pinned_away(p: ToolPolicy) -> bool:
    """Whether pinning takes the rule away from the current definition: a person decided about
    another one (or about several servers' definitions, one of which changed since)."""
    return bool(p.hash) and pin_for(p) != p.hash


def pin_for(p: ToolPolicy) -> str | None:
    """The definition hash a pinned rule holds for; ``None``: leave the rule out.

    An override holds for the definition the person decided on: pinned to that one, a changed
    tool falls back to the gateway's default instead of inheriting the decision.  A digest of
    several servers' definitions is no hash a gateway could match: it stands for the current
    one only while none changed; once one did, the rule is left out (denied by default) until
    a person looks again."""
    decided = p.override.definition_hash if p.override is not None else None
    if decided and decided.startswith(SERVERS_DIGEST):
        return None
    return decided or p.hash


_STRICTNESS = ("allow", "limit", "guarded", "approve", "omit", "deny", "hide")
#: The tightness of a rule without a rate limit: any limit is tighter (a limit is -calls/s).
_UNLIMITED = float("-inf")


def custom_strictness(rule: Mapping[str, Any]) -> tuple[str, float]:
    """Where a person's own rule sits among the generated ones, by what it does: a ``deny_if``
    with an entry without conditions denies outright; conditions guard; a rate limit limits
    (by its rate); nothing at all allows."""
    deny_if = rule.get("deny_if") or []
    if any(not entry.get("conditions") for entry in deny_if if isinstance(entry, Mapping)):
        return "deny", _UNLIMITED
    limit = rule.get("rate_limit")
    rate = limit if isinstance(limit, Mapping) and "max" in limit else None
    tightness = -rate["max"] / max(rate.get("window", 1), 1) if rate is not None else _UNLIMITED
    if deny_if:
        return "guarded", tightness
    return ("limit", tightness) if rate is not None else ("allow", _UNLIMITED)


def strictness(p: ToolPolicy) -> tuple[int, float, bool, int, int]:
    """How strict a tool's rule is, to compare two servers' rules for one name: the kind of
    decision, then within limits the rate (fewer calls per second is stricter), then a
    person's override over a generated rule that does the same, then the level and guards."""
    decision, tightness = p.decision, _UNLIMITED
    if decision == "custom":
        assert p.override is not None
        decision, tightness = custom_strictness(p.override.rule or {})
    elif decision == "limit" and p.rate_limit:
        tightness = -p.rate_limit[0] / p.rate_limit[1]
    risk = RISK_ORDER.index(p.level) if p.level in RISK_ORDER else len(RISK_ORDER)
    return _STRICTNESS.index(decision), tightness, p.override is not None, risk, len(p.active_guards)


def merge_by_name(policies: Iterable[ToolPolicy]) -> dict[str, ToolPolicy]:
    """Two servers exposing the same tool name: a gateway keyed by name gets the stricter one;
    between equally strict ones, a live server before a catalogue's record of one, then the
    first server name in code-point order, so the pinned hash does not depend on the
    database's collation (SQLite and PostgreSQL sort names apart)."""
    by_name: dict[str, ToolPolicy] = {}
    for p in policies:
        old = by_name.get(p.tool)
        if old is None or (strictness(p), _after(old, p)) > (strictness(old), False):
            by_name[p.tool] = p
    return by_name


def _after(old: ToolPolicy, new: ToolPolicy) -> bool:
    """Whether ``new``'s server sorts before ``old``'s: the tie-break of :func:`merge_by_name`.
    A server as it is listed live comes before a catalogue's record of one (`glama/…` sorted
    first, and `--pin` pinned the copy's hash, which the real tool would then fail)."""
    return _order(new) < _order(old)


def _order(p: ToolPolicy) -> tuple[bool, str, str]:
    server = p.server or ""
    return (server.startswith(CATALOGUE_NAMESPACES), server, p.hash)


#: Why a stored tool without a verdict is ``unknown``.
NOT_CLASSIFIED = (
    "not classified yet (stored by a crawl that stopped before classifying, or beside one): "
    "the next crawl classifies it"
)


#: Why a tool whose server's instructions are not scanned yet is ``unknown``.
NOT_SCANNED = (
    "its server's instructions are not scanned yet (a crawl stopped before scanning them): they reach the model "
    "with the tool, so it is not let run unattended until the next crawl scans them"
)


def _server_poisoning(told: Any) -> str:
    """The first poisoning finding in the server's instructions, as "rule: evidence"."""
    for f in (told.findings or []) if told is not None else []:
        if isinstance(f, dict) and f.get("id") == "tool_poisoning":
            return f"{f.get('rule') or 'poisoning'}: {f.get('evidence', '')}"
    return ""


def build_policy(view: Any, settings: PolicySettings, override: Override | None = None) -> ToolPolicy:
    """From a stored tool (``ToolView``) with its verdict and its server's instructions.  A tool
    without a verdict yet, or whose server's instructions are not scanned yet, is ``unknown``,
    which no format lets run unattended, and a person's override still applies: left out, it
    stayed enabled in Codex (which lists only what it disables) and the override made for it
    was dropped from every export.  Poisoned instructions hide every tool of their server."""
    v = view.verdict
    told = getattr(view, "instructions", None)
    poisoning = _server_poisoning(told)
    # When the poisoning was first found against these tools (a decision made before it was made
    # without knowing it): a rug pull of the text, or a tool set that turned it into shadowing.
    since = (told.poisoned_since or told.since) if told is not None else None
    if v is None or (told is not None and told.findings is None):
        return ToolPolicy(
            tool=view.name,
            risk="unknown",
            server=view.server,
            rationale=NOT_CLASSIFIED if v is None else NOT_SCANNED,
            hash=view.hash,
            override=override,
            settings=settings,
            server_poisoning=poisoning,
            poisoned_since=since,
        )
    if poisoning:
        return ToolPolicy(
            tool=view.name,
            risk=v.risk,
            policy_risk="critical",  # as any poisoned tool's (critical.poisoning): kept by --min-risk
            server=view.server,
            category=v.category,
            action=v.action,
            rationale=f"{v.rationale} Hidden: its server's instructions carry tool poisoning ({poisoning[:300]}).",
            hash=view.hash,
            poisoned=True,
            override=override,
            settings=settings,
            server_poisoning=poisoning,
            poisoned_since=since,
        )
    return ToolPolicy(
        tool=view.name,
        risk=v.risk,
        policy_risk=v.policy_risk,
        server=view.server,
        category=v.category,
        action=v.action,
        rationale=v.rationale,
        hash=view.hash,
        poisoned=v.poisoned,
        guards=tuple(guards_for(view.definition, v.category, v.action, settings)),
        override=override,
        settings=settings,
    )


def dumps(doc: Mapping[str, Any], *, compact: bool = True) -> str:
    if compact:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(doc, indent=2, ensure_ascii=False)
