"""Argument-aware conditions: what a tool's inputSchema lets a gateway check per call.

Each guard is one check with two spellings of the same rule: ``deny`` (the seed format's
``deny_if``: refuse when it holds) and ``allow`` (Intercept's ``evaluate``: pass only when it
holds, RE2 regular expressions, so no look-arounds).  Where a check cannot be spelled one
way (Intercept has no array length), that side is ``None`` and the exporter says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from catalog.policies.settings import PolicySettings

AMOUNT_PARAMS = {
    "amount",
    "quantity",
    "qty",
    "size",
    "value",
    "notional",
    "total",
    "volume",
    "sum",
    "budget",
    "price_amount",
    "amount_in",
    "amount_out",
    "sell_amount",
    "buy_amount",
    "units",
    "shares",
    "lots",
}
PATH_PARAMS = {
    "path",
    "file",
    "filepath",
    "file_path",
    "filename",
    "dir",
    "directory",
    "folder",
    "root",
    "source",
    "destination",
    "dest",
    "target",
    "cwd",
    "repo_path",
    "output_path",
    "input_path",
    "source_path",
    "destination_path",
    "working_directory",
}
RECIPIENT_PARAMS = {"to", "recipient", "recipients", "email", "email_address", "cc", "bcc", "to_address", "address"}
URL_PARAMS = {"url", "uri", "href", "endpoint", "link", "webhook", "webhook_url", "callback_url", "target_url"}
COMMAND_PARAMS = {"command", "cmd", "script", "shell", "commands", "code", "expression", "program"}
SQL_PARAMS = {"sql", "query", "statement", "stmt", "sql_query"}
#: A URL whose host is loopback, private, link-local or spelled to hide one, as URL parsers
#: (urllib3, curl, Node's WHATWG URL) read it: any case, leading blanks, ``\\`` or missing
#: slashes, any number of ``user@`` parts, full-width dots, and the spellings resolvers accept
#: (``0``, ``127.1``, a bare number, octal or hex parts, IPv4 inside IPv6); a percent-escape in
#: the host is refused outright.  Two reviews passed ``LOCALHOST``, ``user@127.0.0.1``,
#: ``2130706433``, ``[::ffff:127.0.0.1]``, then ``0177.0.0.1``, ``a@b@127.0.0.1`` and
#: ``%31%32%37.0.0.1`` through earlier versions.
_DOT = "[.\u3002\uff0e\uff61]"
_END = r"([:/?#\\]|$)"
PRIVATE_HOSTS = (
    rf"(?i)^\s*[a-z][a-z0-9+.-]*:[/\\]*([^/?#\\]*@)?("
    rf"[^/?#\\@]*%"
    rf"|([^/?#\\@:]*{_DOT})?localhost{_DOT}?{_END}"
    rf"|127{_DOT}|0{_DOT}|10{_DOT}|192{_DOT}168{_DOT}|169{_DOT}254{_DOT}|172{_DOT}(1[6-9]|2\d|3[01]){_DOT}"
    rf"|0[0-9]+{_DOT}|[0-9]+{_DOT}?{_END}|[0-9]+{_DOT}[0-9]+{_END}|[0-9]+{_DOT}[0-9]+{_DOT}[0-9]+{_END}"
    rf"|0x[0-9a-f]+({_DOT}[0-9x]|{_END})"
    r"|\[(::1?\]|::ffff:|0*:0*:|f[cd][0-9a-f]{0,2}:|fe[89ab][0-9a-f]?:)"
    r")"
)
#: A host name, label by label: what may stand before an allowed host (``api.example.com``).
#: ``[^/@]*`` let ``https://evil.com?.example.com`` through, whose host is evil.com.
_SUBDOMAINS = r"([A-Za-z0-9-]+\.)*"


@dataclass(frozen=True)
class Condition:
    path: str
    op: str
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Guard:
    id: str
    deny: Condition
    allow: Condition | None
    on_deny: str
    why: str


def _type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else ""


def _free_string(schema: Mapping[str, Any]) -> bool:
    return _type(schema) in ("string", "") and not {"enum", "const", "pattern"} & set(schema)


def _alternation(values: list[str]) -> str:
    return "|".join(re.escape(v) for v in values)


def guards_for(definition: Mapping[str, Any], category: str, action: str, settings: PolicySettings) -> list[Guard]:
    """All guards the tool's top-level arguments allow, in a stable order."""
    props = (definition.get("inputSchema") or {}).get("properties") or {}
    if not isinstance(props, Mapping):
        return []
    out: list[Guard] = []
    moves_value = action == "transact" or category == "financial"
    for name, schema in props.items():
        if not isinstance(schema, Mapping):
            continue
        key = str(name).lower()
        arg = f"args.{name}"
        kind = _type(schema)
        if moves_value and key in AMOUNT_PARAMS and kind in ("number", "integer"):
            cap = settings.max_amount
            out.append(
                Guard(
                    "amount-cap",
                    Condition(arg, "gt", cap),
                    Condition(arg, "lte", cap),
                    f"{name} above {cap:g} requires human approval.",
                    f"`{name}` is an amount: calls above {cap:g} (settings max_amount) are refused",
                )
            )
        if kind == "array" and action in ("transact", "delete", "send", "write", "execute"):
            n = settings.max_batch
            out.append(
                Guard(
                    "batch-size",
                    Condition(f"{arg}.length", "gt", n),
                    None,
                    f"At most {n} items per call.",
                    f"`{name}` is a list: batches over {n} items (settings max_batch) are refused",
                )
            )
        if (
            kind in ("string", "")
            and (key in PATH_PARAMS or key.endswith(("_path", "_dir", "_file")))
            and _free_string(schema)
            and category not in ("web_access", "browser_automation")
        ):
            out.append(
                Guard(
                    "path-traversal",
                    Condition(arg, "contains", ".."),
                    Condition(arg, "regex", r"^([^.]|\.[^.])*\.?$"),
                    f"{name} must not climb out with '..'.",
                    f"`{name}` is a free path: `..` segments are refused",
                )
            )
            if settings.allowed_roots:
                roots = [r.rstrip("/") or "/" for r in settings.allowed_roots]
                inside = f"({_alternation(roots)})(/|$)"
                out.append(
                    Guard(
                        "path-root",
                        Condition(arg, "regex", f"^(?!{inside})"),
                        Condition(arg, "regex", f"^{inside}"),
                        f"{name} must stay inside {', '.join(roots)}.",
                        f"`{name}` must stay inside the allowed roots ({', '.join(roots)})",
                    )
                )
        if (
            key in RECIPIENT_PARAMS
            and kind in ("string", "")
            and settings.allowed_email_domains
            and (category == "communication" or action == "send")
        ):
            domains = _alternation(settings.allowed_email_domains)
            # Every address in the value must be at an allowed domain: a list with one allowed
            # address last ("eve@evil.com, bob@example.com") passed the first version.
            address = rf"[^@,;\s]+@({domains})"
            out.append(
                Guard(
                    "recipient-domain",
                    Condition(arg, "regex", rf"(?i)^[^@]*$|@(?!({domains})\s*([,;]|$))"),
                    Condition(arg, "regex", rf"(?i)^\s*{address}(\s*[,;]\s*{address})*\s*$"),
                    f"{name} must be an address at {', '.join(settings.allowed_email_domains)}.",
                    f"`{name}` is a recipient: only {', '.join(settings.allowed_email_domains)} "
                    "(settings allowed_email_domains)",
                )
            )
        if (key in URL_PARAMS or key.endswith("_url")) and _free_string(schema):
            if settings.allowed_url_hosts:
                hosts = _alternation(settings.allowed_url_hosts)
                at_host = rf"https?://{_SUBDOMAINS}({hosts})(:\d+)?([/?#]|$)"
                allowed = f"(?i)^{at_host}"  # schemes and hosts have no case
                out.append(
                    Guard(
                        "url-host",
                        Condition(arg, "regex", f"(?i)^(?!{at_host})"),
                        Condition(arg, "regex", allowed),
                        f"{name} must point at an allowed host.",
                        f"`{name}` is a URL: only {', '.join(settings.allowed_url_hosts)} (settings allowed_url_hosts)",
                    )
                )
            else:
                out.append(
                    Guard(
                        "url-private",
                        Condition(arg, "regex", PRIVATE_HOSTS),
                        None,
                        f"{name} must not point at loopback or private addresses.",
                        f"`{name}` is a URL: loopback, private and link-local targets are refused (SSRF)",
                    )
                )
        if (
            key in COMMAND_PARAMS
            and _free_string(schema)
            and category in ("code_execution", "system_device", "infrastructure")
        ):
            out.append(
                Guard(
                    "command-blocklist",
                    Condition(arg, "regex", settings.blocked_commands),
                    None,
                    f"{name} contains a command that is never run unattended.",
                    f"`{name}` is a free-form command: destructive or privilege-raising commands "
                    "(settings blocked_commands) are refused",
                )
            )
        if key in SQL_PARAMS and _free_string(schema) and category == "database" and action == "execute":
            out.append(
                Guard(
                    "sql-mutation",
                    Condition(arg, "regex", settings.mutating_sql),
                    None,
                    f"{name} may only read.",
                    f"`{name}` is raw SQL: statements that change data or schema are refused",
                )
            )
    return out
