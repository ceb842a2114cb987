"""The user's policy settings: thresholds, allowed roots and domains.

Read from a TOML file (``--settings FILE``, ``$CATALOG_POLICY_SETTINGS`` or
``~/.config/mcp-catalog/policy.toml``); every field has a documented default, so an absent
file is fine and an unknown key is an error (a typo must not silently loosen a policy).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from catalog.errors import CatalogError, UsageError

DEFAULT_FILE = Path("~/.config/mcp-catalog/policy.toml")
ENV_VAR = "CATALOG_POLICY_SETTINGS"

#: Commands no agent should run unattended, whatever the tool (a regular expression).
DEFAULT_BLOCKED_COMMANDS = (
    r"(?i)(\brm\s+-[a-z]*[rf]|\bsudo\b|\bsu\s|\bmkfs|\bdd\s+if=|\bchmod\s+(-R\s+)?777|\bchown\s+-R|"
    r"\bshutdown\b|\breboot\b|\bcurl\b[^|]*\|\s*(ba|z)?sh|\bwget\b[^|]*\|\s*(ba|z)?sh|\bnc\s+-[a-z]*e|"
    r">\s*/dev/sd|:\(\)\s*\{)"
)
#: SQL that changes data or schema (a regular expression).
DEFAULT_MUTATING_SQL = r"(?i)\b(insert|update|delete|merge|drop|truncate|alter|create|grant|revoke|replace)\b"


@dataclass(frozen=True)
class PolicySettings:
    #: Largest amount (in the tool's own unit) a transfer or order may carry without a person.
    max_amount: float = 1000.0
    #: Largest number of items one batch call may act on.
    max_batch: int = 10
    #: Directories file arguments must stay inside; empty: only traversal (``..``) is refused.
    allowed_roots: list[str] = field(default_factory=list)
    #: Domains messages may be sent to; empty: recipients are not restricted by domain.
    allowed_email_domains: list[str] = field(default_factory=list)
    #: Hosts URL arguments may point at; empty: loopback, private and link-local addresses are refused (SSRF).
    allowed_url_hosts: list[str] = field(default_factory=list)
    blocked_commands: str = DEFAULT_BLOCKED_COMMANDS
    mutating_sql: str = DEFAULT_MUTATING_SQL
    #: Risk levels whose tools get argument conditions (the rubric: high).
    guard_levels: list[str] = field(default_factory=lambda: ["high"])
    #: "approve": every call of a critical tool needs a person (the rubric).  "argument-gated":
    #: critical tools with argument conditions are allowed inside them and denied outside.
    critical: str = "approve"

    def __post_init__(self) -> None:
        # A string where a list belongs was read letter by letter: `allowed_url_hosts = "10.0.0.5"`
        # allowed hosts "1", "0", ".", "5" and let the SSRF guard pass 127.0.0.1.
        for name in ("allowed_roots", "allowed_email_domains", "allowed_url_hosts", "guard_levels"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
                raise CatalogError(f"policy settings: {name} must be a list of non-empty strings, not {value!r:.80}")
        for name in ("blocked_commands", "mutating_sql", "critical"):
            if not isinstance(getattr(self, name), str):
                raise CatalogError(f"policy settings: {name} must be a string, not {getattr(self, name)!r:.80}")
        if self.critical not in ("approve", "argument-gated"):
            raise CatalogError(
                f"policy settings: critical must be 'approve' or 'argument-gated', not {self.critical!r}"
            )
        bad = [lvl for lvl in self.guard_levels if lvl not in ("critical", "high", "medium", "low")]
        if bad:
            raise CatalogError(f"policy settings: unknown risk level in guard_levels: {bad[0]!r}")
        if (
            isinstance(self.max_amount, bool)
            or not isinstance(self.max_amount, int | float)
            or isinstance(self.max_batch, bool)
            or not isinstance(self.max_batch, int)
        ):
            raise CatalogError("policy settings: max_amount must be a number and max_batch an integer")
        if not math.isfinite(self.max_amount):  # NaN compares false: a cap that never caps
            raise CatalogError(f"policy settings: max_amount must be a finite number, not {self.max_amount}")
        if self.max_amount <= 0 or self.max_batch < 1:
            raise CatalogError("policy settings: max_amount must be > 0 and max_batch >= 1")


def load_settings(path: str | Path | None = None) -> PolicySettings:
    """``path`` beats ``$CATALOG_POLICY_SETTINGS`` beats ~/.config/mcp-catalog/policy.toml beats defaults."""
    explicit = path or os.environ.get(ENV_VAR)
    chosen = Path(explicit).expanduser() if explicit else DEFAULT_FILE.expanduser()
    if not chosen.exists():
        if explicit:
            raise UsageError(f"policy settings file not found: {chosen}")
        return PolicySettings()
    try:
        data: dict[str, Any] = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"policy settings {chosen}: {exc}") from exc
    known = {f.name for f in fields(PolicySettings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CatalogError(f"policy settings {chosen}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    try:
        return PolicySettings(**data)
    except TypeError as exc:
        raise CatalogError(f"policy settings {chosen}: {exc}") from exc
