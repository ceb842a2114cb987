"""The catalogue's findings as a SARIF 2.1.0 log, the format security tools exchange findings in.

Why SARIF: a team already has a place where findings are triaged (GitHub code scanning,
DefectDojo, Azure DevOps, an IDE's SARIF viewer); ``catalog findings --format sarif`` puts a
poisoned tool there beside their own code's alerts, without a converter of their own.

What a location is here: a finding is about a tool of a server, not a line of a file.  Each
result names it twice: as a *logical* location (``SERVER/TOOL``, kind ``function``), which is
what it is, and as a *physical* one, the relative URI ``mcp/_SERVER/_TOOL``, because GitHub's
code scanning refuses a result without an artifact location and anything but a relative path in
it.  Each name is percent-escaped into one segment and prefixed with ``_``: a server may call its
tool ``..``, and a segment ``..`` (or ``%2E%2E``, which browsers' URL parsers read the same way)
would lead a consumer out of ``mcp/``.  ``partialFingerprints`` carries a digest of the server,
tool, finding, rule, definition hash (and the one a change replaced) and the finding's place
among the tool's findings by the same rule, so a consumer that tracks alerts across uploads sees
the same finding as the same alert, two findings as two, and a changed definition as a new one.

A message is SARIF *plain text*, in which ``{0}`` is a placeholder and ``[text](url)`` a link a
viewer makes clickable: strangers' names and descriptions are escaped (``{{``, ``\\[``), so a
tool named ``[sign in](https://…)`` is shown as what it is.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any
from urllib.parse import quote

from catalog import __version__
from catalog.findings import CatalogFinding
from classifier.verdict import FINDING_IDS

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/mcp-catalog/mcp-catalog"
FINGERPRINT = "mcpCatalogFinding/v1"

#: Per finding: a name, one-line and full descriptions (from the rubric, taxonomy.md), the
#: SARIF level, and GitHub's ``security-severity`` (0-10: 9+ critical, 7+ high, 4+ medium).
RULES: dict[str, dict[str, str]] = {
    "tool_poisoning": {
        "name": "ToolPoisoning",
        "short": "A tool's description, or a server's instructions, carry orders aimed at the model against the user.",
        "full": "Hidden tags, 'do not tell the user', requests to read credentials or other tools' data, "
        "invisible Unicode, or instructions to call other tools: text an agent may obey. The recommended "
        "policy hides the tool.",
        "level": "error",
        "severity": "9.5",
    },
    "annotation_mismatch": {
        "name": "AnnotationMismatch",
        "short": "The tool's declared annotations contradict what it does.",
        "full": "A tool that declares readOnlyHint: true but writes, or destructiveHint: false but deletes "
        "or moves money: a client that trusts the annotations would skip the confirmation it needs.",
        "level": "warning",
        "severity": "6.0",
    },
    "definition_changed": {
        "name": "DefinitionChanged",
        "short": "The tool's definition changed since an earlier crawl (rug-pull watch).",
        "full": "The server now serves another definition of a tool under the same name. Severe when the "
        "risk went up or poisoning was added; review it before trusting a decision made on the old one.",
        "level": "warning",
        "severity": "7.0",
    },
}


def _uri(server: str, tool: str) -> str:
    """``mcp/_SERVER/_TOOL``: each name one escaped segment that can never be a dot-segment."""
    return "mcp/_" + quote(server, safe="") + "/_" + quote(tool, safe="")


def _tool_location(server: str, tool: str) -> dict[str, Any]:
    return {
        "physicalLocation": {"artifactLocation": {"uri": _uri(server, tool)}},
        "logicalLocations": [{"name": tool, "fullyQualifiedName": f"{server}/{tool}", "kind": "function"}],
    }


def _server_location(server: str) -> dict[str, Any]:
    """A server's instructions: the server itself, ``mcp/_SERVER`` (a tool is one segment below)."""
    return {
        "physicalLocation": {"artifactLocation": {"uri": "mcp/_" + quote(server, safe="")}},
        "logicalLocations": [{"name": server, "fullyQualifiedName": server, "kind": "module"}],
    }


def plain_text(text: str) -> str:
    """``text`` as SARIF plain text shows it: braces doubled (no placeholder), square brackets
    escaped with the backslashes before them doubled (no embedded link)."""
    text = text.replace("{", "{{").replace("}", "}}")
    return re.sub(r"(\\*)([\[\]])", lambda m: m.group(1) * 2 + "\\" + m.group(2), text)


def _fingerprint(f: CatalogFinding, occurrence: int) -> str:
    parts = (f.server, f.tool, f.kind, f.rule, f.hash, f.old_hash or "", str(occurrence))
    # A server's instructions are a place of their own ("" cannot be a stored tool's name).
    key = "\x00".join((*parts, f.place) if f.place != "tool" else parts)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _result(f: CatalogFinding, index: dict[str, int], occurrence: int) -> dict[str, Any]:
    rule = RULES[f.kind]
    # Severe, or a change not judged yet (not known to be mild): an error.
    level = rule["level"] if f.severe is False else "error"
    instructions = f.place == "instructions"
    where = f"{f.server} (server instructions)" if instructions else f"{f.server} :: {f.tool}"
    text = f"{where}: {f.evidence}" if f.evidence else where
    properties: dict[str, Any] = {"server": f.server, "severe": f.severe}
    if instructions:
        properties["instructionsHash"] = f.hash
    else:
        properties |= {"tool": f.tool, "definitionHash": f.hash, "risk": f.risk, "category": f.category}
    if f.rule:
        properties["rule"] = f.rule
    if f.old_hash:
        properties["previousDefinitionHash"] = f.old_hash
    if f.detected_at:
        properties["detectedAt"] = f.detected_at.isoformat(timespec="seconds")
    return {
        "ruleId": f.kind,
        "ruleIndex": index[f.kind],
        "level": level,
        "message": {"text": plain_text(text)},
        "locations": [_server_location(f.server) if instructions else _tool_location(f.server, f.tool)],
        "partialFingerprints": {FINGERPRINT: _fingerprint(f, occurrence)},
        "properties": properties,
    }


def sarif_log(found: list[CatalogFinding]) -> dict[str, Any]:
    """One run of mcp-catalog holding every finding; every rule is declared, found or not."""
    index = {kind: i for i, kind in enumerate(FINDING_IDS)}
    seen: Counter[tuple[str, str, str, str]] = Counter()
    results = []
    for f in found:
        key = (f.server, f.tool, f.kind, f.rule)
        results.append(_result(f, index, seen[key]))
        seen[key] += 1
    rules = [
        {
            "id": kind,
            "name": RULES[kind]["name"],
            "shortDescription": {"text": RULES[kind]["short"]},
            "fullDescription": {"text": RULES[kind]["full"]},
            "helpUri": f"{INFORMATION_URI}#findings",
            "defaultConfiguration": {"level": RULES[kind]["level"]},
            "properties": {"tags": ["security", "mcp"], "security-severity": RULES[kind]["severity"]},
        }
        for kind in FINDING_IDS
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mcp-catalog",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
