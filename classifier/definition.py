"""The input side of the classifier: one MCP tool definition, normalised.

Catalogues and servers hand us tool definitions in several shapes (MCP ``inputSchema``,
Docker's ``arguments`` lists, half-empty JSON).  Everything is folded into one frozen
value here so the rest of the classifier never has to guess about types or sizes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Descriptions longer than this are cut before the (linear) keyword analysis; the
#: poisoning scan gets a larger window.  A 1 MB description must not cost seconds.
MAX_ANALYSED_DESCRIPTION = 8_000
MAX_SCANNED_TEXT = 260_000
#: Keys and list items one walk of an input schema visits at most (:func:`schema_strings`).
MAX_SCHEMA_VISITS = 20_000
#: Objects whose keys are names a model reads: properties, named sub-schemas, and vendor
#: extension objects (``x-notes: {...}``).
NAMING_KEYS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})
#: Keys whose value is data, not schema: an object under them (``"default": {"...": 1}``) has
#: keys a model reads as text, whatever they say.
DATA_KEYS = frozenset({"default", "const", "enum", "examples", "example"})
#: Property names read per ``properties`` block, and levels of nesting read.
MAX_PROPERTY_NAMES = 500
MAX_SCHEMA_DEPTH = 64


def _as_mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class ToolDefinition:
    """A tool as a server declares it (the fields the classifier reads) plus its server."""

    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=dict, hash=False)
    annotations: Mapping[str, Any] = field(default_factory=dict, hash=False)
    title: str | None = None
    server: str | None = None
    #: What the tool says it returns (MCP 2025-06-18).  Only the poisoning readings read it: a
    #: client may show it to a model, so a payload there is as planted as one in the input.
    output_schema: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], server: str | None = None) -> ToolDefinition:
        """Build from an MCP ``tools/list`` entry (or a JSONL line); tolerant of junk types."""
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("tool definition has no name")
        schema = data.get("inputSchema", data.get("input_schema"))
        annotations = _as_mapping(data.get("annotations"))
        title = data.get("title") or annotations.get("title")
        return cls(
            name=name.strip(),
            description=_as_text(data.get("description")),
            input_schema=_as_mapping(schema),
            annotations=annotations,
            title=title if isinstance(title, str) else None,
            server=server if server is not None else (_as_text(data.get("server")) or None),
            output_schema=_as_mapping(data.get("outputSchema", data.get("output_schema"))),
        )

    def properties(self) -> dict[str, Mapping[str, Any]]:
        """Top-level input properties, name -> schema (non-mapping schemas are dropped)."""
        props = self.input_schema.get("properties")
        if type(props) is not dict and not isinstance(props, Mapping):  # the ABC check only for the rare non-dict
            return {}
        # ``type(v) is dict`` first: an ABC isinstance check is slow and nearly every value is a dict.
        return {str(k): v for k, v in props.items() if type(v) is dict or isinstance(v, Mapping)}


def canonical_json(value: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, UTF-8 kept (so hashes match across runs)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


#: Fields hashed only when a definition has them (non-empty): a tool's display ``title``
#: (MCP 2025-06-18) and its ``outputSchema``.  Left out when absent, so every definition
#: without them keeps the hash it had before they counted (migration 0007 rehashes the rest).
OPTIONAL_HASHED = ("title", "outputSchema")


def definition_hash(definition: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a tool's name, description, inputSchema and
    annotations, and its title and outputSchema where it has them.

    Everything a client shows or a model reads counts: with the title outside, a poisoned
    title added later kept the hash, so no change was recorded and the stored verdict (keyed
    by this hash) stood for a definition it had never read."""
    body = {
        "name": definition.get("name"),
        "description": definition.get("description") or "",
        "inputSchema": definition.get("inputSchema") or {},
        "annotations": definition.get("annotations") or {},
    }
    for key in OPTIONAL_HASHED:
        value = definition.get(key)
        if value:
            body[key] = value
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def prose_pattern(key: str, text: str) -> bool:
    """Whether a schema string under ``pattern`` is prose a model reads rather than a regex: a
    regex has no spaces to speak of, so four words or more are prose."""
    return key == "pattern" and len(text.split()) >= 4


@dataclass
class SchemaWalk:
    """What one walk of an input schema left unread (:func:`schema_strings`): the visits left
    (at most 0: it stopped short), and whether it met a level deeper than ``MAX_SCHEMA_DEPTH``
    or a ``properties`` block with more than ``MAX_PROPERTY_NAMES`` names."""

    left: int = MAX_SCHEMA_VISITS
    too_deep: bool = False
    names_cut: bool = False


def schema_strings(node: Any, walk: SchemaWalk | None = None) -> Iterator[tuple[str, str, str]]:
    """Every string a model reads in an input schema, in document order, as (kind, key, text):
    ``("names", key, ...)`` the keys of a ``properties``, ``$defs`` (``NAMING_KEYS``) or
    ``x-*`` object, one per line; ``("text", key, ...)`` a string under a key (description, default, x-note, type...);
    ``("item", key, ...)`` a string in a list under ``key`` (enum values, examples, required names),
    or a key of an object given as data (``DATA_KEYS``: a default, const, enum value or example).

    The one walk behind both poisoning readings (the rules' scanned text and the learned
    reading's pieces), each keeping the kinds and keys it reads.  Bounded: fewer than
    ``walk.left`` keys and list items (a million-entry enum of one repeated string is not
    walked to its end), ``MAX_SCHEMA_DEPTH`` levels, ``MAX_PROPERTY_NAMES`` names per block;
    ``walk`` says afterwards what was left unread, so padding past the bounds can be reported."""
    yield from _walk(node, walk if walk is not None else SchemaWalk(), 0)


def _walk(
    node: Any, walk: SchemaWalk, depth: int, parent: str = "", data: bool = False
) -> Iterator[tuple[str, str, str]]:
    """``data``: ``node`` is (inside) a value given as data, where keys are text, not keywords."""
    if walk.left <= 0:
        return
    if depth > MAX_SCHEMA_DEPTH:
        walk.too_deep = True
        return
    if isinstance(node, Mapping):
        for key, value in node.items():
            walk.left -= 1
            if walk.left <= 0:
                return
            if data:
                # `"default": {"ignore previous instructions ...": 1}`: the key is the text.
                yield ("item", parent, str(key))
            if (
                not data
                and isinstance(value, Mapping)
                and (key in NAMING_KEYS or (isinstance(key, str) and key.startswith("x-")))
            ):
                names = list(value)
                if len(names) > MAX_PROPERTY_NAMES:
                    walk.names_cut = True
                joined = "\n".join(str(k) for k in names[:MAX_PROPERTY_NAMES])
                if joined:
                    yield ("names", str(key), joined)
            if isinstance(value, str):
                # Inside data a string is a value whatever its key (`type`, `pattern` too).
                yield ("item", parent, value) if data else ("text", str(key), value)
            elif isinstance(value, Mapping | list):
                # A property named `default` is a schema, not data: its parent names it.
                inner = data or (key in DATA_KEYS and parent not in NAMING_KEYS)
                yield from _walk(value, walk, depth + 1, parent if data else str(key), inner)
    elif isinstance(node, list):
        for item in node:
            walk.left -= 1
            if walk.left <= 0:
                return
            if isinstance(item, str):
                yield ("item", parent, item)
            else:
                yield from _walk(item, walk, depth + 1, parent, data)
