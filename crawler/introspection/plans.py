"""From a catalogue entry to the ways of reaching its server.

A ``server.json`` entry declares ``remotes`` (URLs) and ``packages`` (registry type,
identifier, version, transport, arguments, environment variables).  Each becomes a plan;
remotes come first (cheapest, no code of theirs runs here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_REGISTRIES = ("pypi", "npm")
PLACEHOLDER = "placeholder-not-a-real-secret"

#: What a registry's package name looks like (PEP 508; npm's, scoped or not). Anything else,
#: a URL, a path, ``git+https://...`` or ``--index-url=...``, would make pip or npm fetch and
#: build from wherever an entry says, or read it as an option.
PACKAGE_NAMES = {
    "pypi": re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,200}[A-Za-z0-9])?"),
    "npm": re.compile(r"(?:@[A-Za-z0-9~][A-Za-z0-9._~-]{0,100}/)?[A-Za-z0-9~][A-Za-z0-9._~-]{0,200}"),
}
#: A version or tag: PEP 440 and semver spellings, never an option or a URL.
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,100}")


@dataclass(frozen=True)
class RemotePlan:
    transport: str  # streamable-http | sse
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PackagePlan:
    registry: str  # pypi | npm
    identifier: str
    version: str | None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    placeholders: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.registry}:{self.identifier}" + (f"@{self.version}" if self.version else "")


@dataclass(frozen=True)
class SkippedPlan:
    """A declared way to run the server that this machine cannot use, kept so the reason is recorded."""

    label: str
    reason: str


def _value(arg: Mapping[str, Any], placeholders: list[str]) -> str | None:
    for key in ("value", "default"):
        if isinstance(arg.get(key), str) and "{" not in arg[key]:
            return str(arg[key])
    if arg.get("isRequired") or arg.get("type") == "positional":
        name = str(arg.get("name") or arg.get("valueHint") or "value")
        placeholders.append(name)
        return PLACEHOLDER
    return None


def _objects(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a list field; anything else (``"headers": 5``) declares none. An entry is
    the catalogue's, typed as it pleases: a wrong type must not sink the whole server."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _arguments(items: Sequence[Any], placeholders: list[str]) -> list[str]:
    out: list[str] = []
    for arg in items[:64]:
        if not isinstance(arg, Mapping):
            continue
        if arg.get("type") == "named":
            name = arg.get("name")
            if not isinstance(name, str):
                continue
            value = _value(arg, placeholders) if ("value" in arg or "default" in arg or arg.get("isRequired")) else None
            out.extend([name] if value is None else [name, value])
        else:
            value = _value(arg, placeholders)
            if value is not None:
                out.append(value)
    return out


def plans_for(packages: Sequence[Mapping[str, Any]], remotes: Sequence[Mapping[str, Any]]) -> list[Any]:
    plans: list[Any] = []
    for remote in remotes:
        kind, url = remote.get("type"), remote.get("url")
        if kind in ("streamable-http", "sse") and isinstance(url, str) and url.startswith(("http://", "https://")):
            if "{" in url:
                continue  # templated URL: needs user-specific values
            headers = {}
            for h in _objects(remote.get("headers")):
                if isinstance(h.get("name"), str):
                    headers[h["name"]] = str(h.get("value") or h.get("default") or PLACEHOLDER)
            plans.append(RemotePlan(kind, url, headers))
    for pkg in packages:
        registry = pkg.get("registryType") or pkg.get("registry_name")
        transport = (
            (pkg.get("transport") or {}).get("type", "stdio") if isinstance(pkg.get("transport"), Mapping) else "stdio"
        )
        ident = pkg.get("identifier") or pkg.get("name")
        if not isinstance(ident, str):
            continue
        if registry not in SUPPORTED_REGISTRIES or transport != "stdio":
            why = (
                f"transport {transport!r} of a package is not supported"
                if registry in SUPPORTED_REGISTRIES
                else f"registry type {registry!r} is not supported"
                + (" (needs a container runtime)" if registry == "oci" else "")
            )
            plans.append(SkippedPlan(f"{registry}:{ident}", why))
            continue
        version = pkg.get("version")
        version = version if isinstance(version, str) and version else None
        named = PACKAGE_NAMES[registry].fullmatch(ident) is not None
        if not named or (version and not VERSION.fullmatch(version)):
            what = "version" if named else "package name"
            plans.append(SkippedPlan(f"{registry}:{ident[:100]}", f"not a {registry} {what}: nothing is installed"))
            continue
        placeholders: list[str] = []
        args = _arguments(_objects(pkg.get("packageArguments") or pkg.get("package_arguments")), placeholders)
        env: dict[str, str] = {}
        for var in _objects(pkg.get("environmentVariables") or pkg.get("environment_variables")):
            if not isinstance(var.get("name"), str):
                continue
            value = _value({**var, "type": "env"}, placeholders)
            if value is not None:
                env[var["name"]] = value
        plans.append(PackagePlan(registry, ident, version, tuple(args), env, tuple(placeholders)))
    return _bounded(plans)


#: Ways to run one server tried at most (attempts stop at the first that lists tools), and
#: skipped ones recorded at most.  A hunt's entry listed one hanging package ten times: each
#: waited out its timeout, so one entry could hold a crawl slot for hours.
MAX_ATTEMPTS = 6
MAX_SKIPPED = 10


def _bounded(plans: list[Any]) -> list[Any]:
    """``plans`` without repeats, at most ``MAX_ATTEMPTS`` to try and ``MAX_SKIPPED`` skipped,
    and one skipped record saying how many more there were."""
    kept: list[Any] = []
    seen: set[str] = set()
    tried = skipped = dropped = 0
    for plan in plans:
        key = repr(plan)
        if key in seen:
            continue
        seen.add(key)
        if isinstance(plan, SkippedPlan):
            if skipped < MAX_SKIPPED:
                skipped += 1
                kept.append(plan)
            continue
        if tried < MAX_ATTEMPTS:
            tried += 1
            kept.append(plan)
        else:
            dropped += 1
    if dropped:
        kept.append(
            SkippedPlan(
                f"{dropped} more",
                f"{dropped} more packages or remotes not tried: one server is tried at most {MAX_ATTEMPTS} ways",
            )
        )
    return kept
