"""A catalogue's claim against the server's own answer: where the tools a catalogue records for
a server disagree with what the server listed when it was introspected here.

Why: Glama, ToolHive and Docker carry tool definitions, so a team can review a server from the
catalogue's record without starting it.  That record is a claim: it may be stale (the server
changed since), trimmed (tools that need a credential), or simply another server.  Each
catalogue's record is stored under its own prefix (``glama/``, ``toolhive/``, ``docker/``)
beside the server as the registry lists it, so both stand; this pairs them and says where they
part: tools only one side lists, and tools whose definitions differ, with each side's risk
and findings.  A
difference is *severe* where a reviewer trusting the catalogue would have missed something:
the server's definition is poisoned where the catalogue's is not, rates stricter, or the
server serves a high or critical (or poisoned) tool the catalogue never showed.

Records are paired by repository (host, owner, name) or by remote URL, and only when they share
a tool name: one repository often holds many servers, and a record with no tool in common with
a server is not a record of it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.store.changes import describe_change
from catalog.store.models import Server
from catalog.store.repository import ToolView, current_tools, latest_listing
from classifier.verdict import RISK_LEVELS, risk_rank
from crawler.items import CATALOGUE_NAMESPACES

#: Levels at which a tool only the server lists is severe: a reviewer of the record never saw it.
SEVERE_UNSEEN = frozenset({"high", "critical"})


def repository_key(url: Any) -> str | None:
    """``host/owner/name`` of a repository URL, case folded: the same for ``git+https://...git``,
    ``http://www.…`` and a link into a sub-folder of the repository."""
    if not isinstance(url, str) or not url.strip():
        return None
    text = url.strip()
    if text.startswith("git+"):
        text = text[4:]
    if text.startswith("git@") and ":" in text:  # git@github.com:owner/name.git
        host, path = text[4:].split(":", 1)
        text = f"https://{host}/{path}"
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    host = (parts.hostname or "").lower().removeprefix("www.")
    segments = [s for s in parts.path.split("/") if s]
    if not host or len(segments) < 2:
        return None
    owner, name = segments[0].lower(), segments[1].lower().removesuffix(".git")
    return f"{host}/{owner}/{name}" if name else None


def remote_key(url: Any) -> str | None:
    """A remote endpoint's URL without its scheme's case, a trailing slash or a query."""
    if not isinstance(url, str) or "://" not in url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not host:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path.rstrip('/')}"


def _keys(server: Server) -> set[str]:
    keys = set()
    repo = repository_key(server.repository_url)
    if repo:
        keys.add("repo:" + repo)
    for remote in server.remotes or []:
        key = remote_key(remote.get("url")) if isinstance(remote, dict) else None
        if key:
            keys.add("remote:" + key)
    return keys


@dataclass
class ToolDisagreement:
    """One tool on which the record and the server part."""

    tool: str
    #: ``only_server``, ``only_catalogue`` or ``differs``.
    kind: str
    catalogue_risk: str | None = None
    server_risk: str | None = None
    catalogue_poisoned: bool = False
    server_poisoned: bool = False
    #: For ``differs``: the fields that differ (description, inputSchema, ...) and parameters.
    fields: list[str] = field(default_factory=list)
    params_added: list[str] = field(default_factory=list)
    params_removed: list[str] = field(default_factory=list)
    severe: bool = False


@dataclass
class Comparison:
    """A catalogue's record of a server beside the server as introspected here."""

    catalogue: str
    server: str
    matched_by: list[str]
    common: int
    catalogue_tools: int
    server_tools: int
    tools: list[ToolDisagreement] = field(default_factory=list)

    @property
    def severe(self) -> bool:
        return any(t.severe for t in self.tools)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severe": self.severe}


def _level(view: ToolView) -> str | None:
    return view.verdict.policy_level if view.verdict is not None else None


def _poisoned(view: ToolView) -> bool:
    return view.verdict is not None and any(
        isinstance(f, dict) and f.get("id") == "tool_poisoning" for f in view.verdict.findings or []
    )


def _stricter(a: str | None, b: str | None) -> bool:
    """Whether level ``a`` is stricter than ``b`` (an unclassified side compares as nothing)."""
    if a not in RISK_LEVELS or b not in RISK_LEVELS:
        return False
    return risk_rank(a) > risk_rank(b)


def disagreements(record: list[ToolView], live: list[ToolView]) -> list[ToolDisagreement]:
    """Where one server's tools as a catalogue records them and as the server listed them part."""
    claimed = {v.name: v for v in record}
    served = {v.name: v for v in live}
    out: list[ToolDisagreement] = []
    for name in sorted(set(claimed) | set(served)):
        c, s = claimed.get(name), served.get(name)
        if c is None and s is not None:
            level, poisoned = _level(s), _poisoned(s)
            out.append(
                ToolDisagreement(
                    name,
                    "only_server",
                    server_risk=level,
                    server_poisoned=poisoned,
                    severe=poisoned or level in SEVERE_UNSEEN,
                )
            )
        elif s is None and c is not None:
            out.append(
                ToolDisagreement(name, "only_catalogue", catalogue_risk=_level(c), catalogue_poisoned=_poisoned(c))
            )
        elif c is not None and s is not None and c.hash != s.hash:
            change = describe_change(c.definition, s.definition)
            c_level, s_level = _level(c), _level(s)
            c_poisoned, s_poisoned = _poisoned(c), _poisoned(s)
            out.append(
                ToolDisagreement(
                    name,
                    "differs",
                    catalogue_risk=c_level,
                    server_risk=s_level,
                    catalogue_poisoned=c_poisoned,
                    server_poisoned=s_poisoned,
                    fields=list(change["fields"]),
                    params_added=list(change["params_added"]),
                    params_removed=list(change["params_removed"]),
                    severe=(s_poisoned and not c_poisoned) or _stricter(s_level, c_level),
                )
            )
    return out


def compare(session: Session, name: str | None = None) -> list[Comparison]:
    """Every catalogue record beside the servers it describes (or only those involving the
    server or record ``name``), each with the tools on which they part."""
    rows = list(session.scalars(select(Server).where(Server.removed_at.is_(None)).order_by(Server.name)))
    by_key: dict[str, list[Server]] = defaultdict(list)
    records: list[Server] = []
    for row in rows:
        if row.name.startswith(CATALOGUE_NAMESPACES):
            records.append(row)
        else:
            for key in _keys(row):
                by_key[key].append(row)
    tools: dict[str, list[ToolView]] = {}

    def tools_of(server: Server) -> list[ToolView]:
        if server.name not in tools:
            tools[server.name] = current_tools(session, server=server.name)
        return tools[server.name]

    out: list[Comparison] = []
    for record in records:
        keys = _keys(record)
        candidates: dict[str, tuple[Server, list[str]]] = {}
        for key in sorted(keys):
            for live in by_key.get(key, []):
                candidates.setdefault(live.name, (live, []))[1].append(key.split(":", 1)[0])
        if name is not None and record.name != name and name not in candidates:
            continue
        claimed = tools_of(record) if candidates else []
        names = {v.name for v in claimed}
        scored: list[tuple[float, Server, list[str]]] = []
        for live, how in candidates.values():
            served = {v.name for v in tools_of(live)}
            common = names & served
            # Only a server that answered here: a registry entry's tools are introspected; one
            # whose stored list is itself a catalogue's says nothing about the server.
            if common and latest_listing(session, live) == "server":
                scored.append((len(common) / len(names | served), live, how))
        if not scored:
            continue
        best = max(score for score, _, _ in scored)
        for score, live, how in scored:
            if score < best:
                continue  # another server of the same repository matches the record better
            if name is not None and name not in (record.name, live.name):
                continue
            served_views = tools_of(live)
            out.append(
                Comparison(
                    catalogue=record.name,
                    server=live.name,
                    matched_by=sorted(set(how)),
                    common=len(names & {v.name for v in served_views}),
                    catalogue_tools=len(claimed),
                    server_tools=len(served_views),
                    tools=disagreements(claimed, served_views),
                )
            )
    return out
