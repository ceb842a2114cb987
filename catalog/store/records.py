"""Plain inputs to the store, so writers (the crawler's pipeline, ``catalog introspect``)
depend on these small types rather than on ORM rows or on each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServerRecord:
    name: str
    source: str
    title: str | None = None
    description: str | None = None
    version: str | None = None
    repository_url: str | None = None
    website_url: str | None = None
    packages: list[dict[str, Any]] = field(default_factory=list)
    remotes: list[dict[str, Any]] = field(default_factory=list)
    published_at: str | None = None


@dataclass(frozen=True)
class AttemptRecord:
    transport: str
    target: str
    outcome: str  # ok | timeout | crashed | error | auth_required | install_failed | skipped | listed (a catalogue's)
    seconds: float
    error: str | None = None
    tools_count: int = 0
    protocol_version: str | None = None
    server_info: dict[str, Any] = field(default_factory=dict)
