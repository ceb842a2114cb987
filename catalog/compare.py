"""A catalogue's claim against the server's own answer: where the tools a catalogue records for
a server disagree with what the server listed when it was introspected here.

Why: Glama, ToolHive, Docker and Smithery carry tool definitions, so a team can review a
server from the catalogue's record without starting it.  That record is a claim: it may be
stale (the server changed since), trimmed (tools that need a credential), or simply another
server.  Each catalogue's record is stored under its own prefix (``glama/``, ``toolhive/``,
``docker/``, ``smithery/``) beside the server as the registry lists it, so both stand; this
pairs them and says where they part: tools only one side lists, and tools whose definitions
differ, with each side's risk and findings.  A
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
from classifier.verdict import RISK_LEVELS, UNKNOWN, risk_rank
from crawler.items import CATALOGUE_NAMESPACES

#: Levels at which a tool only the server lists is severe: a reviewer of the record never saw
#: it.  ``unknown`` (and a tool without a verdict) is denied by default, as strict as critical.
SEVERE_UNSEEN = frozenset({"high", "critical", UNKNOWN})
#: Hosts whose repositories are exactly ``owner/name`` (elsewhere, GitLab among them, groups nest).
TWO_SEGMENT_HOSTS = frozenset({"github.com", "bitbucket.org", "codeberg.org"})
#: Path segments that end a repository's path and start a link into it.
INTO_REPOSITORY = frozenset({"-", "tree", "blob", "src", "commit", "commits", "raw"})
#: Paired by repository alone, a record and a server share at least this share of the smaller
#: tool list: one repository often holds many servers, and a generic tool name (``search``)
#: shared with the wrong one made its every other tool a "severe" surprise.
MIN_OVERLAP = 0.5
DEFAULT_PORTS = {"https": 443, "http": 80}


def repository_key(url: Any) -> str | None:
    """``host/path`` of a repository URL, case folded: the same for ``git+https://...git``,
    ``git@host:owner/name``, ``http://www.…`` and a link into a folder of the repository
    (``/tree/main/src``, GitLab's ``/-/tree/…``).  The path is ``owner/name`` on GitHub-like
    hosts and the whole group path elsewhere (GitLab subgroups)."""
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
        host = (parts.hostname or "").lower().removeprefix("www.")
    except ValueError:
        return None
    segments = [seg.lower() for seg in parts.path.split("/") if seg]
    for i, seg in enumerate(segments):
        if seg in INTO_REPOSITORY and i >= 2:
            segments = segments[:i]
            break
    if host in TWO_SEGMENT_HOSTS:
        segments = segments[:2]
    while segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][:-4]
    if not host or len(segments) < 2 or not all(segments):
        return None
    return "/".join([host, *segments])


def remote_key(url: Any) -> str | None:
    """A remote endpoint's URL without its scheme, case in the host, a default port, ``www.``,
    a trailing slash or a query."""
    if not isinstance(url, str) or "://" not in url:
        return None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().removeprefix("www.")
        port = parts.port  # raises for a port that is no number or out of range
    except ValueError:
        return None
    if not host:
        return None
    shown = f":{port}" if port and port != DEFAULT_PORTS.get(parts.scheme.lower()) else ""
    return f"{host}{shown}{parts.path.rstrip('/')}"


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


def _level(view: ToolView) -> str:
    """The level the tool's policy follows; a tool without a verdict is unknown (denied by
    default), as every export treats it."""
    level = view.verdict.policy_level if view.verdict is not None else UNKNOWN
    return level if level in RISK_LEVELS else UNKNOWN


def _poisoned(view: ToolView) -> bool:
    return view.verdict is not None and view.verdict.poisoned


def _stricter(a: str, b: str) -> bool:
    """Whether level ``a`` is stricter than ``b`` (``unknown`` above critical)."""
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


#: Above this many servers to read, every current tool is read in one query (one verdict
#: look-up for all) rather than a server at a time.
ONE_QUERY_ABOVE = 50


def _pairs(
    records: list[Server], by_key: dict[str, list[Server]]
) -> list[tuple[Server, dict[str, tuple[Server, set[str]]]]]:
    """Each record with its candidate servers (name -> server, how matched)."""
    out = []
    for record in records:
        candidates: dict[str, tuple[Server, set[str]]] = {}
        for key in sorted(_keys(record)):
            for live in by_key.get(key, []):
                candidates.setdefault(live.name, (live, set()))[1].add(key.split(":", 1)[0])
        if candidates:
            out.append((record, candidates))
    return out


def compare(session: Session, name: str | None = None) -> list[Comparison]:
    """Every catalogue record beside the servers it describes (or only those involving the
    server or record ``name``), each with the tools on which they part.

    A record and a server sharing a remote URL are the same endpoint: compared whatever their
    tools (a server that renamed every tool is the worst drift, not another server).  Sharing
    only a repository, they must share at least half of the smaller tool list, and of several
    servers of one repository the record goes with the one whose tools match best."""
    rows = list(session.scalars(select(Server).where(Server.removed_at.is_(None)).order_by(Server.name)))
    by_key: dict[str, list[Server]] = defaultdict(list)
    records: list[Server] = []
    for row in rows:
        if row.name.startswith(CATALOGUE_NAMESPACES):
            records.append(row)
        else:
            for key in _keys(row):
                by_key[key].append(row)
    pairs = [
        (record, candidates)
        for record, candidates in _pairs(records, by_key)
        if name is None or record.name == name or name in candidates
    ]
    involved = {r.name for r, _ in pairs} | {n for _, c in pairs for n in c}
    tools: dict[str, list[ToolView]] = defaultdict(list)
    if len(involved) > ONE_QUERY_ABOVE:
        for view in current_tools(session):
            if view.server in involved:
                tools[view.server].append(view)
    else:
        for server_name in sorted(involved):
            tools[server_name] = current_tools(session, server=server_name)
    listing: dict[int, str | None] = {}

    def answered(server: Server) -> bool:
        # Only a server that answered here: one whose stored list is itself a catalogue's
        # says nothing about the server.
        if server.id not in listing:
            listing[server.id] = latest_listing(session, server)
        return listing[server.id] == "server"

    out: list[Comparison] = []
    for record, candidates in pairs:
        claimed = tools[record.name]
        names = {v.name for v in claimed}
        if not names:
            continue  # a record without tools claims nothing (its own introspection failed)
        scored: list[tuple[bool, float, int, Server, set[str]]] = []
        for live, how in candidates.values():
            served = {v.name for v in tools[live.name]}
            common = names & served
            same_endpoint = "remote" in how
            if not same_endpoint and (not common or len(common) < MIN_OVERLAP * min(len(names), len(served))):
                continue
            if answered(live):
                scored.append((same_endpoint, len(common) / max(len(names | served), 1), len(common), live, how))
        if not scored:
            continue
        best = max((endpoint, score) for endpoint, score, *_ in scored)
        for endpoint, score, common_count, live, how in scored:
            if (endpoint, score) < best:
                continue  # another server matches the record better
            if name is not None and name not in (record.name, live.name):
                continue
            served_views = tools[live.name]
            out.append(
                Comparison(
                    catalogue=record.name,
                    server=live.name,
                    matched_by=sorted(how),
                    common=common_count,
                    catalogue_tools=len(claimed),
                    server_tools=len(served_views),
                    tools=disagreements(claimed, served_views),
                )
            )
    return out
