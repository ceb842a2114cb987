"""The outcome of one introspection attempt: a value, whatever happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("ok", "timeout", "crashed", "error", "auth_required", "install_failed", "refused", "skipped")


@dataclass
class IntrospectionResult:
    transport: str
    target: str
    outcome: str
    seconds: float = 0.0
    error: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    protocol_version: str | None = None
    server_info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def complete(self) -> bool:
        """Whether ``tools`` is the whole listing: one cut at the page or tool cap (or at a
        repeated cursor) must not mark the tools it did not reach as removed."""
        return "listing_cut" not in self.server_info
