"""Claude Code settings: ``permissions.allow / ask / deny`` entries ``mcp__<server>__<tool>``.

Claude Code cannot rate-limit or check arguments, so a tool that needs either is asked
about; a person-approval tool is asked about; a hidden or denied tool is denied.  Tools the
catalogue cannot vouch for (risk unknown) are asked about too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from catalog.policies.formats import ExportOptions, Format, schema_errors
from catalog.policies.generate import ToolPolicy, custom_strictness


def rule_name(server: str, tool: str) -> str:
    return f"mcp__{server}__{re.sub(r'[^A-Za-z0-9_-]', '_', tool)}"


def bucket(p: ToolPolicy) -> str:
    if p.decision == "custom" and p.override is not None:
        # A person's own rule, by what it does: one that denies outright is a deny (it was
        # asked about, so a user could approve a tool the team had banned); one that only
        # guards or limits is asked about; an empty rule allows.
        does = custom_strictness(p.override.rule or {})[0]
        return {"deny": "deny", "allow": "allow"}.get(does, "ask")
    if p.decision in ("deny", "hide"):
        return "deny"
    if p.decision == "allow" or (p.decision == "limit" and not p.active_guards and p.level == "medium"):
        return "allow"
    return "ask"


class ClaudeCodeExporter:
    format = Format.CLAUDE_CODE
    suffix = ".json"

    def render(self, policies: Sequence[ToolPolicy], opts: ExportOptions) -> str:
        lists: dict[str, set[str]] = {"allow": set(), "ask": set(), "deny": set()}
        for p in policies:
            lists[bucket(p)].add(rule_name(opts.alias(p.server), p.tool))
        # A name in two lists (same alias and tool) keeps the strictest: deny > ask > allow.
        lists["ask"] -= lists["deny"]
        lists["allow"] -= lists["deny"] | lists["ask"]
        doc = {"permissions": {k: sorted(v) for k, v in lists.items()}}
        return json.dumps(doc, indent=2) + "\n"

    def validate(self, text: str) -> list[str]:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            return [f"not JSON: {exc}"]
        errors = schema_errors(doc, "claude-code-settings.schema.json")
        perms = doc.get("permissions", {}) if isinstance(doc, dict) else {}
        seen: dict[str, str] = {}
        for kind in ("allow", "ask", "deny"):
            for rule in perms.get(kind, []) or []:
                if rule in seen:
                    errors.append(f"{rule} is in both {seen[rule]} and {kind}")
                seen[rule] = kind
        return errors
