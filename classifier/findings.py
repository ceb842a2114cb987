"""Findings that do not depend on the risk level: tool poisoning and annotation mismatch.

Poisoning is scanned in every text a model would read: the description, the title, and
each ``description`` inside the input schema (hidden instructions like to sit in
parameter docs).  Invisible Unicode is a finding on its own: nobody needs a zero-width
joiner in a tool description.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from classifier.analysis import ActionChoice
from classifier.definition import MAX_SCANNED_TEXT, ToolDefinition
from classifier.rules import RuleSet
from classifier.verdict import Finding

#: Zero-width, bidi-override and tag characters, and terminal control codes (ANSI escapes
#: can hide text on a terminal): invisible to a person, read by a model.
INVISIBLE = re.compile(
    "[\u200b-\u200f\u2060-\u2064\u180e\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f"
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f\xad\U000e0100-\U000e01ef]"
)


ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\xad")
#: Cyrillic and Greek letters that look Latin: a word mixing them with Latin letters is a disguise.
_LOOKALIKES = str.maketrans("аеорсухіјѕԁһӏοαεικνρτυχ", "aeopcyxijsdhloaeikvptux")
_MIXED_SCRIPT = re.compile(r"[A-Za-z][\u0400-\u04ff\u0370-\u03ff]|[\u0400-\u04ff\u0370-\u03ff][A-Za-z]")


def _schema_texts(node: Any, depth: int = 0) -> Iterator[str]:
    if depth > 12:
        return
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("description", "title") and isinstance(value, str):
                yield value
            elif key in ("default", "const") and isinstance(value, str):
                yield value.replace("_", " ")
            elif key in ("enum", "examples") and isinstance(value, list):
                # Enum values and examples reach the model too (full-schema poisoning).
                yield " ".join(v.replace("_", " ") for v in value[:64] if isinstance(v, str))
            elif isinstance(value, Mapping | list):
                yield from _schema_texts(value, depth + 1)
    elif isinstance(node, list):
        for item in node[:200]:
            yield from _schema_texts(item, depth + 1)


def scanned_text(defn: ToolDefinition) -> str:
    """Every text of the definition a model reads, property names included (``_`` read as a space)."""
    parts = [defn.description, defn.title or ""]
    parts.extend(_schema_texts(defn.input_schema))
    names = " ".join(list(defn.properties())[:200])
    if names:
        parts.append(names.replace("_", " "))
    text = "\n".join(p for p in parts if p)[:MAX_SCANNED_TEXT]
    extra = [_decoded_blobs(text)]
    if not text.isascii():
        # What a model reads through the disguise: fullwidth letters folded, invisible
        # characters dropped, Latin look-alikes in mixed-script words mapped back.
        plain = INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
        if _MIXED_SCRIPT.search(plain):
            plain = plain.translate(_LOOKALIKES)
        if plain != text:
            extra.append(plain)
    hidden = "\n".join(e for e in extra if e)
    return text + "\n" + hidden if hidden else text


_BASE64 = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2}[^\s%]{0,16}){6,}")
_ENTITIES = re.compile(r"(?:&#x?[0-9A-Fa-f]{1,6};){6,}")


def _decoded_blobs(text: str, limit: int = 5) -> str:
    """Readable text hidden in base64, hex, percent-encoded or HTML-entity runs, so the rules
    read what a model would decode; binary blobs (hashes, images) do not decode to text."""
    found: list[str] = []
    if "%" in text:
        found += [unquote(m.group()) for m in _PERCENT.finditer(text)][:limit]
    if "&#" in text:
        found += [html.unescape(m.group()) for m in _ENTITIES.finditer(text)][:limit]
    # One scan finds both: a hex run is a base64-alphabet run made of hex digits only.
    for match in _BASE64.finditer(text):
        if len(found) >= limit:
            break
        blob = match.group()
        try:
            raw = bytes.fromhex(blob) if _HEX.fullmatch(blob) else _from_base64(blob)
            plain = raw.decode("utf-8")
        except (ValueError, binascii.Error):
            continue
        if " " in plain and sum(ch.isprintable() for ch in plain) >= 0.95 * len(plain):
            found.append(plain)
    return "\n".join(found)


def _from_base64(blob: str) -> bytes:
    return base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)


def _snippet(text: str, start: int, end: int) -> str:
    lo, hi = max(0, start - 20), min(len(text), end + 20)
    s = " ".join(text[lo:hi].split())
    return s if len(s) <= 160 else s[:159] + "…"


def poisoning(defn: ToolDefinition, rules: RuleSet) -> list[Finding]:
    text = scanned_text(defn)
    found: list[Finding] = []
    lower = text.lower()
    for rule in rules.poisoning:
        if not all(any(word in lower for word in group) for group in rule.requires):
            continue
        m = rule.pattern.search(text)
        if m:
            found.append(
                Finding(
                    "tool_poisoning", f"{rule.why}: “{_snippet(text, m.start(), m.end())}”", rule=rule.id, severe=True
                )
            )
    hidden = INVISIBLE.findall(text)
    # A stray zero-width space or BOM comes with copy-pasted docs; hiding text takes more of
    # them, or characters that have no innocent use here (tags, bidi overrides, controls).
    if hidden and (len(hidden) >= 3 or any(ch not in ZERO_WIDTH for ch in hidden)):
        names = sorted({unicodedata.name(ch, f"U+{ord(ch):04X}") for ch in hidden})[:3]
        found.append(
            Finding(
                "tool_poisoning",
                f"{len(hidden)} invisible Unicode character(s) ({', '.join(names)})",
                rule="invisible-unicode",
                severe=True,
            )
        )
    return found


def annotation_mismatch(defn: ToolDefinition, action: ActionChoice) -> list[Finding]:
    ann = defn.annotations
    found: list[Finding] = []
    said = f"the {action.source} says *{action.verb}*" if action.verb else f"it does {action.id}"
    if ann.get("readOnlyHint") is True and action.id != "read":
        found.append(
            Finding(
                "annotation_mismatch",
                f"declares readOnlyHint: true but {said} ({action.id})",
                rule="read-only-but-acts",
            )
        )
    if ann.get("destructiveHint") is False and action.id in ("delete", "transact"):
        found.append(
            Finding(
                "annotation_mismatch",
                f"declares destructiveHint: false but {said} ({action.id})",
                rule="non-destructive-but-destroys",
            )
        )
    return found
