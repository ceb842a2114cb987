"""Findings that do not depend on the risk level: tool poisoning and annotation mismatch.

Poisoning is scanned in every text a model would read: the description, the title, and
every string inside the input and output schemas (descriptions, names, enum values, defaults,
extensions, and the keys of objects given as defaults or examples), plus what hides in
encoded blobs and look-alike letters.  Some rules read only the schema's property names or
only its values (``where`` in ``poisoning.toml``), each on a line of its own and as words:
what a parameter is called, or which value it offers, can be an instruction that the same
words in prose are not.  Invisible Unicode is a finding on its own: nobody needs a run of
zero-width characters in a tool description.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import unicodedata
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import unquote

from classifier.analysis import ActionChoice
from classifier.definition import (
    MAX_PROPERTY_NAMES,
    MAX_SCANNED_TEXT,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_VISITS,
    SchemaWalk,
    ToolDefinition,
    prose_pattern,
    schema_strings,
)
from classifier.instructions import MAX_PIECES, MAX_TEXT, InstructionReader, pieces_read
from classifier.rules import RuleSet, gate_text
from classifier.verdict import Finding

#: Zero-width, bidi-override and tag characters, and terminal control codes (ANSI escapes
#: can hide text on a terminal): invisible to a person, read by a model.
INVISIBLE = re.compile(
    "[\u200b-\u200f\u2060-\u2064\u180e\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f"
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f\xad\U000e0100-\U000e01ef]"
)

#: What a model reads through but a person does not see, beyond ``INVISIBLE``: the rest of
#: Unicode's default-ignorable characters (variation selectors, the combining grapheme joiner,
#: the Arabic letter mark, Mongolian selectors, Hangul and Khmer fillers, musical formatting
#: marks) and the interlinear annotation marks. A payload with one between every letter read as
#: nothing to every rule (a helper's hunt: 80 such characters did it). They are dropped from
#: the copy the rules read, not reported: U+FE0F follows half the emoji in honest descriptions.
IGNORABLE = re.compile(
    INVISIBLE.pattern[:-1] + "\u034f\u061c\u17b4\u17b5\u180b-\u180f\u2065\u206a-\u206f\ufe00-\ufe0f"
    "\ufff0-\ufffb\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0080-\U000e00ff\U000e01f0-\U000e0fff]"
)
#: Characters that show as a blank and are read as one: Hangul fillers (NFKC makes U+3164 and
#: U+FFA0 into U+1160) and the blank braille pattern, used in place of spaces.
_BLANKS = str.maketrans({"\u115f": " ", "\u1160": " ", "\u2800": " "})


ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\xad")
#: Cyrillic, Greek, Armenian and Cherokee letters that look Latin: a word mixing them with
#: Latin letters is a disguise.
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁһӏοαεικνρτυχАВЕКМНОРСТХІЈЅΑΒΕΖΗΙΚΜΝΟΡΤΥΧİı"
    "օոսհզցյՕՍ"
    "\u13aa\u13f4\u13df\u13ac\u13c0\u13bb\u13ab\u13e6\u13de\u13b7\u13e2\u13da\u13a2\u13d9\u13b3\u13c3"
    "\u13a0\u13a1\u13d2\u13a5\u13d4\u13d5\u13cf\u13c2",
    "aeopcyxijsdhloaeikvptuxABEKMHOPCTXIJSABEZHIKMNOPTYXIionuhqgjOUABCEGHJKLMPSTVWZDRRiWSbh",
)
# Cherokee small letters (U+AB70-ABBF, U+13F8-13FD) read as their capitals' look-alikes, in lower case.
_LOOKALIKES.update(
    {
        ord(chr(capital).lower()): ord(chr(latin).lower())
        for capital, latin in list(_LOOKALIKES.items())
        if 0x13A0 <= capital <= 0x13FF and chr(capital).lower() != chr(capital)
    }
)
_OTHER_SCRIPT = "\u0370-\u03ff\u0400-\u04ff\u0530-\u058f\u13a0-\u13ff\uab70-\uabbf"
_MIXED_SCRIPT = re.compile(rf"[A-Za-z][{_OTHER_SCRIPT}]|[{_OTHER_SCRIPT}][A-Za-z]|[İı]")
#: A lower-case letter or digit followed by a capital: where a camelCase name splits.
_CAMEL_STEP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
#: Keys whose string values are identifiers, not text a model is asked to read.
_IDENTIFIER_KEYS = frozenset(
    {"type", "format", "$schema", "$ref", "$id", "pattern", "contentEncoding", "contentMediaType"}
)
#: Caps per part, so a huge harmless description cannot push the parameters out of the scan.
DESCRIPTION_LIMIT = 150_000
TITLE_LIMIT = 10_000
#: Readable encoded runs decoded per kind (base64/hex, percent, HTML entities).
BLOB_LIMIT = 5
PART_LIMIT = 50_000
SCHEMA_LIMIT = 100_000


#: Schema keys whose string is a value the model may pick or send (the "values" rules read them),
#: also as vendor extensions (``x-default``); list items are values unless they are ``required``
#: property names or ``type`` names.
_VALUE_KEYS = frozenset({"default", "const", "examples", "example"})
_NOT_VALUE_LISTS = frozenset({"required", "type"})
#: Word boundaries inside an identifier: camelCase, and an acronym's end (``AWSCredentials``).
_WORD_STEP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _normalised(text: str) -> str:
    """The first half of what a model reads through a disguise: fullwidth letters folded
    (NFKC), invisible and default-ignorable characters dropped, blank fillers read as spaces.
    It can be many times longer: callers cap it."""
    return IGNORABLE.sub("", unicodedata.normalize("NFKC", text).translate(_BLANKS))


def _unmixed(text: str) -> str:
    """The second half: Latin look-alikes in mixed-script words mapped back."""
    return text.translate(_LOOKALIKES) if _MIXED_SCRIPT.search(text) else text


def _as_words(text: str) -> str:
    """A name or value as the names and values rules read it: through its disguise (as the
    ``hidden`` copy of the whole text is), then ``_``, ``-``, camelCase and acronym ends as
    spaces."""
    if not text.isascii():
        text = _unmixed(_normalised(text)[:PART_LIMIT])
    return _WORD_STEP.sub(" ", text.replace("_", " ").replace("-", " "))


def _schema_texts(schema: Any, walk: SchemaWalk | None = None) -> Iterator[tuple[str, str, str]]:
    """Every string a model reads in an input schema (:func:`classifier.definition.schema_strings`):
    descriptions, titles, defaults, enum values, examples, vendor extensions (``x-note``) and
    property names at every level, ``_`` read as a space outside descriptions and titles; each
    as (kind, text as the whole-text rules read it, the string as written).  The kind is
    ``"names"`` (a block of property names), ``"values"`` (an enum value, example, default or
    const) or ``"text"``."""
    for kind, key, text in schema_strings(schema, walk):
        if kind == "names":
            # One name per line, read as words: `note_read_dotenv_here` and
            # `contentsOfUserSshKey` are sentences, but `base64Content` and `codeSecret`
            # side by side are not one (the rules' windows stop at a line's end).
            yield "names", _CAMEL_STEP.sub(" ", text.replace("_", " ")), text
        elif kind == "item":
            yield ("text" if key in _NOT_VALUE_LISTS else "values"), text.replace("_", " "), text
        elif key not in _IDENTIFIER_KEYS or prose_pattern(key, text):
            if key in ("description", "title"):
                yield "text", text, text
            else:
                value = key in _VALUE_KEYS or (key.startswith("x-") and key[2:] in _VALUE_KEYS)
                yield ("values" if value else "text"), text.replace("_", " "), text


def _schema_read(schema: Any, which: str = "input") -> tuple[list[str], dict[str, list[str]], str]:
    """The ``which`` (input or output) schema's texts as the scan reads them (each within ``PART_LIMIT``, all within
    ``SCHEMA_LIMIT``), those among them that names-only and values-only rules read (by
    :func:`_schema_texts`' kinds), and what that walk left unread ("" when nothing): a text past
    ``PART_LIMIT``, text past ``SCHEMA_LIMIT`` in all, or the walk's own bounds (too many keys
    or list items, too deep, too many property names).  One walk does both, so the padding
    check costs no second pass over the schema."""
    walk = SchemaWalk()
    read: list[str] = []
    apart: dict[str, list[str]] = {"names": [], "values": []}
    budget, total = SCHEMA_LIMIT, 0
    unread = ""
    for kind, text, raw in _schema_texts(schema, walk):
        if budget > 0:
            part = text[:PART_LIMIT][:budget]
            budget -= len(part)
            read.append(part)
            if kind != "text":
                # As much of it as the whole-text rules read, as words: a name per line, a
                # value on one line.
                words = _as_words(raw[: len(part)])
                apart[kind].append((words if kind == "names" else " ".join(words.splitlines()))[:PART_LIMIT])
        if not unread and len(text) > PART_LIMIT:
            unread = f"an {which} schema text of {len(text):,} characters: text past {PART_LIMIT:,} is not read"
        total += len(text)
        if not unread and total > SCHEMA_LIMIT:
            unread = f"an {which} schema of more than {SCHEMA_LIMIT:,} characters of text: the rest is not read"
        if unread and budget <= 0:
            return read, apart, unread  # nothing more would be read, and the finding is decided
    if unread:
        return read, apart, unread
    if walk.left <= 0:
        return (
            read,
            apart,
            f"an {which} schema of more than {MAX_SCHEMA_VISITS:,} keys and list items: the rest is not read",
        )
    if walk.too_deep:
        return (
            read,
            apart,
            f"an {which} schema nested more than {MAX_SCHEMA_DEPTH} levels deep: the deeper levels are not read",
        )
    if walk.names_cut:
        return (
            read,
            apart,
            (
                f"an {which} schema with more than {MAX_PROPERTY_NAMES} properties in one object:"
                " the names past it are not read"
            ),
        )
    return read, apart, ""


def _unread(defn: ToolDefinition, scanned: Scanned) -> str:
    """What of the definition the readings leave unread ("" when they read it all): what the
    scan itself cut (:func:`scanned_parts`: the title, the schema, encoded runs, normalised
    text), or more sentences or characters than the learned reading scores.  Padding is how a
    payload would hide behind the bounds, so the padding itself is reported (the
    description's own bound is checked by :func:`poisoning`).  Each check is the bound its
    reading applies, not an estimate of it."""
    if scanned.cut:
        return scanned.cut
    # The learned reading's own bounds (MAX_PIECES pieces, MAX_TEXT characters): asked only
    # where the text could reach them, as a piece ends at a sentence end or a line break.
    text, hidden = scanned.text, scanned.hidden
    breaks = sum(text.count(c) + hidden.count(c) for c in ".!?\n。！？")
    if (breaks + 4 >= MAX_PIECES or len(text) + len(hidden) >= MAX_TEXT) and not pieces_read(defn, hidden)[1]:
        return (
            f"more than {MAX_PIECES:,} sentences or {MAX_TEXT:,} characters of them:"
            " the learned reading does not read past them"
        )
    return ""


def scanned_text(defn: ToolDefinition) -> str:
    """Every text of the definition a model reads, property names included (``_`` read as a
    space); each part has its own cap, so none can crowd another out of the scan."""
    return _joined(scanned_parts(defn))


class Scanned(NamedTuple):
    """What the poisoning readings read of a definition (:func:`scanned_parts`)."""

    text: str  # the definition's own text: description, title, every schema string
    hidden: str  # what decodes out of it: encoded blobs, ROT13 notes, the folded look-alikes
    cut: str = ""  # what the scan left unread, said for a finding ("" when nothing)
    names: str = ""  # the schema's property names as read (one per line): what `where = "names"` rules read
    values: str = ""  # its enum values, defaults, consts and examples (one per line): `where = "values"`
    #: (start, end, which part) of each part of ``text``: the description, the title, ...
    spans: tuple[tuple[int, int, str], ...] = ()


def _joined(parts: Scanned) -> str:
    return parts.text + "\n" + parts.hidden if parts.hidden else parts.text


def scanned_parts(defn: ToolDefinition, described_as: str = "the description") -> Scanned:
    """:func:`scanned_text` as its parts: the definition's own text (each part within its own
    cap, so the join needs none), what decodes out of it, and the first thing the scan left
    unread (the title, the schema, encoded runs, normalised text; the description's own cap
    has its finding in :func:`poisoning`).  ``described_as`` is what a finding calls the
    description (a server's instructions are read as one)."""
    title = defn.title or ""
    # The tool's own name, read as words, is text a model reads too: a tool named
    # `ignore_all_previous_instructions_and_...` passed where a parameter so named was caught.
    name = _as_words(defn.name[:TITLE_LIMIT])
    parts = [
        (defn.description[:DESCRIPTION_LIMIT], described_as),
        (title[:TITLE_LIMIT], "the title"),
        (name if name != defn.name else "", "the tool's name (read as words)"),
    ]
    schema_texts, apart, cut = _schema_read(defn.input_schema) if defn.input_schema else ([], {}, "")
    parts += [(t, "the input schema") for t in schema_texts]
    if defn.output_schema:
        # Its own budget: a large input schema cannot push a payload in the output one out.
        out_texts, out_apart, out_cut = _schema_read(defn.output_schema, "output")
        parts += [(t, "the output schema") for t in out_texts]
        apart = {kind: apart.get(kind, []) + out_apart[kind] for kind in out_apart}
        cut = cut or out_cut
    if len(title) > TITLE_LIMIT:  # said first: the title is read before the schema
        cut = f"a {len(title):,}-character title: text past {TITLE_LIMIT:,} is not read"
    # Where each part sits in the joined text, so a finding can say where it read what it quotes.
    spans: list[tuple[int, int, str]] = []
    at = 0
    for part, where in parts:
        if part:
            spans.append((at, at + len(part), where))
            at += len(part) + 1
    text = "\n".join(p for p, _ in parts if p)
    decoded, more = _decoded_blobs(text)
    extra = [decoded]
    if more and not cut:
        cut = f"more than {BLOB_LIMIT} encoded runs of one kind: the rest are not decoded"
    if not text.isascii():
        # What a model reads through the disguise: fullwidth letters folded, invisible
        # characters dropped, Latin look-alikes in mixed-script words mapped back.
        plain = _normalised(text)
        if len(plain) > MAX_SCANNED_TEXT:
            # Normalising can lengthen text many times over (one ligature, eighteen letters).
            cut = cut or f"text that grows past {MAX_SCANNED_TEXT:,} characters when normalised: the rest is not read"
            plain = plain[:MAX_SCANNED_TEXT]
        plain = _unmixed(plain)
        if plain != text:
            extra.append(plain)
    return Scanned(
        text,
        "\n".join(e for e in extra if e),
        cut,
        "\n".join(apart.get("names", ())),
        "\n".join(apart.get("values", ())),
        tuple(spans),
    )


_BASE64 = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


#: Hex written a byte at a time: `69 67 6e`, `69:67:6e`, `\\x69\\x67`, `0x69, 0x67`, `\\u0069`, a C
#: array over several lines (sixteen bytes or more).  Separators are no hex digits, so the
#: match is linear.
_SPACED_HEX = re.compile(r"(?:(?:\\x|\\u00|0[xX])?[0-9A-Fa-f]{2}(?:,\s{0,8}|[\s:;.-]{1,8})?){16,}")
_HEX_DRESSING = re.compile(r"\\x|\\u00|0[xX]|[^0-9A-Fa-f]")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2}[^\s%]{0,16}){6,}")
_ENTITIES = re.compile(r"(?:&#x?[0-9A-Fa-f]{1,6};){6,}")


def _decoded_blobs(text: str, limit: int = BLOB_LIMIT) -> tuple[str, bool]:
    """Readable text hidden in base64, hex, percent-encoded or HTML-entity runs, so the rules
    read what a model would decode; binary blobs (hashes, images) do not decode to text.  At
    most ``limit`` readable runs of each kind (no real tool has one); the flag says a kind had
    more, so the padding of decoy runs in front of a payload is reported."""
    found: list[str] = []
    more = False
    # ("-13" first: lower-casing the whole text for every tool would cost more than the check.)
    if "rot13" in text or "ROT13" in text or ("-13" in text and "rot-13" in text.lower()):
        # A note that says it is ROT13-encoded is read decoded, as a model asked to would.
        found.append(codecs.decode(text, "rot13"))
    if "%" in text:
        decoded = [d for d in (unquote(m.group()) for m in _PERCENT.finditer(text)) if " " in d]
        found += decoded[:limit]
        more = more or len(decoded) > limit
    if "&#" in text:
        decoded = [d for d in (html.unescape(m.group()) for m in _ENTITIES.finditer(text)) if " " in d]
        found += decoded[:limit]
        more = more or len(decoded) > limit
    blobs: list[str] = []
    for match in _SPACED_HEX.finditer(text):
        run = match.group()
        if run.isalnum():
            continue  # plain hex: read with base64 below
        if len(blobs) >= limit:
            more = True
            break
        try:
            plain = bytes.fromhex(_HEX_DRESSING.sub("", run)).decode("utf-8")
        except ValueError:
            continue
        if " " in plain and sum(ch.isprintable() for ch in plain) >= 0.95 * len(plain):
            blobs.append(plain)
    # One scan finds both: a hex run is a base64-alphabet run made of hex digits only.
    for match in _BASE64.finditer(text):
        if len(blobs) >= limit:
            more = True
            break
        blob = match.group()
        try:
            raw = bytes.fromhex(blob) if _HEX.fullmatch(blob) else _from_base64(blob)
            plain = raw.decode("utf-8")
        except (ValueError, binascii.Error):
            continue
        if " " in plain and sum(ch.isprintable() for ch in plain) >= 0.95 * len(plain):
            blobs.append(plain)
    return "\n".join(found + blobs), more


def _from_base64(blob: str) -> bytes:
    return base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)


def _line(lines: str, at: int) -> str:
    """The whole line of ``lines`` that holds position ``at`` (a name or a value), within 160 characters."""
    start = lines.rfind("\n", 0, at) + 1
    end = lines.find("\n", at)
    line = " ".join(lines[start : end if end >= 0 else len(lines)].split())
    return line if len(line) <= 160 else line[:159] + "…"


def _part_at(scanned: Scanned, at: int) -> tuple[int, int, str]:
    """(start, end, name) of the part of the scanned text that holds position ``at``."""
    for lo, hi, place in scanned.spans:
        if lo <= at < hi:
            return lo, hi, place
    start = len(scanned.text) + 1
    if at >= start:
        return start, start + len(scanned.hidden), "text decoded or unmasked from the definition"
    return 0, len(scanned.text), "the definition"


def _snippet(text: str, start: int, end: int, lo: int = 0, hi: int | None = None) -> str:
    """The match with up to 20 characters either side, within ``lo``..``hi`` (its own part: a
    quote never runs from one parameter's text into the next one's)."""
    lo, hi = max(lo, start - 20), min(len(text) if hi is None else hi, end + 20)
    s = " ".join(text[lo:hi].split())
    return s if len(s) <= 160 else s[:159] + "…"


def poisoning(defn: ToolDefinition, rules: RuleSet, parts: Scanned | None = None) -> list[Finding]:
    """The rules' poisoning findings; ``parts`` is :func:`scanned_parts` when the caller has it."""
    scanned = parts if parts is not None else scanned_parts(defn)
    text = _joined(scanned)
    found: list[Finding] = []
    gates = gate_text(text)
    apart = {"names": scanned.names, "values": scanned.values}
    apart_gates: dict[str, str] = {}
    own: str | None = None  # the tool's name (as words), description and title, read on demand
    for rule in rules.poisoning:
        if rule.where == "text":
            where, gated = text, gates
        else:
            where = apart[rule.where]
            if not where:
                continue
            if rule.where not in apart_gates:
                apart_gates[rule.where] = gate_text(where)
            gated = apart_gates[rule.where]
        if not rule.gated_in(gated, where):
            continue
        m = rule.find(where)
        if m and rule.unless_described is not None:
            if own is None:
                own = "\n".join(
                    (_as_words(defn.name), defn.description[:DESCRIPTION_LIMIT], (defn.title or "")[:TITLE_LIMIT])
                )
            if rule.unless_described.search(own):
                continue  # the tool says it works with that: its input may ask for it
        if m:
            if rule.where == "text":
                lo, hi, place = _part_at(scanned, m.start())
                quoted = _snippet(where, m.start(), m.end(), lo, hi)
                what = f"in {place} "
            else:
                quoted = _line(where, m.start())
                what = {"names": "the parameter or schema name (read as words) ", "values": "the schema value "}[
                    rule.where
                ]
            found.append(Finding("tool_poisoning", f"{rule.why}: {what}“{quoted}”", rule=rule.id, severe=True))
    if unread := _unread(defn, scanned):
        found.append(
            Finding(
                "tool_poisoning",
                f"{unread}, and nothing legitimate needs that much",
                rule="oversized-text",
                severe=True,
            )
        )
    if len(defn.description) > DESCRIPTION_LIMIT:
        found.append(
            Finding(
                "tool_poisoning",
                f"a {len(defn.description):,}-character description: text past {DESCRIPTION_LIMIT:,} is not read,"
                " and nothing legitimate needs that much",
                rule="oversized-text",
                severe=True,
            )
        )
    invisible = INVISIBLE.findall(text)
    # A stray zero-width space or BOM comes with copy-pasted docs; hiding text takes more of
    # them, or characters that have no innocent use here (tags, bidi overrides, controls).
    if invisible and (len(invisible) >= 3 or any(ch not in ZERO_WIDTH for ch in invisible)):
        names = sorted({unicodedata.name(ch, f"U+{ord(ch):04X}") for ch in invisible})[:3]
        found.append(
            Finding(
                "tool_poisoning",
                f"{len(invisible)} invisible Unicode character(s) ({', '.join(names)})",
                rule="invisible-unicode",
                severe=True,
            )
        )
    return found


def _feature_words(features: list[str]) -> str:
    """``c:secret+put``, ``b:note to``, ``w:assistant`` -> concepts secret+put; ‘note to’, ‘assistant’."""
    concepts = [f[2:] for f in features if f.startswith("c:")]
    words = [f"‘{f[2:]}’" for f in features if not f.startswith("c:")]
    return "; ".join(p for p in (f"concepts {', '.join(concepts)}" if concepts else "", ", ".join(words)) if p)


def learned_poisoning(
    defn: ToolDefinition, rules: RuleSet, reader: InstructionReader, parts: Scanned | None = None
) -> list[Finding]:
    """The learned instruction reading's finding: its most instruction-like sentence, when it
    reads like the planted payloads it learned from (:mod:`classifier.instructions`);
    ``parts`` is :func:`scanned_parts` when the caller has it."""
    scanned = parts if parts is not None else scanned_parts(defn)
    text, hidden = scanned.text, scanned.hidden
    p, piece, pushed = reader.strongest(defn, rules, hidden)
    if p < reader.threshold:
        return []
    quoted = " ".join(piece.split())
    quoted = quoted if len(quoted) <= 160 else quoted[:159] + "…"
    # A parameter name or enum value is scored split into words: say so rather than quote
    # words the definition does not contain in that form.
    # A window of a long sentence (marked "…" where cut) is quoted as the part that decided.
    if piece.strip("…") != piece:
        what = "this part of a sentence"
    else:
        what = "this sentence" if piece in text or piece in hidden else "this name or value, read as words,"
    return [
        Finding(
            "tool_poisoning",
            f"the learned instruction reading rates {what} {p:.2f} like the instructions planted for a"
            f" model it learned from ({_feature_words(pushed)}): “{quoted}”",
            rule="learned-instruction",
            severe=True,
        )
    ]


#: What the tool declares, per annotation_mismatch rule: the half of a finding's evidence that
#: stands whatever reading of the tool it is held against.
DECLARED = {
    "read-only-but-acts": "declares readOnlyHint: true",
    "non-destructive-but-destroys": "declares destructiveHint: false",
}


def annotation_mismatch(defn: ToolDefinition, action: ActionChoice) -> list[Finding]:
    ann = defn.annotations
    found: list[Finding] = []
    if action.source == "model":
        # The learned model chose the action; a verb the rules found is not what it "said".
        said = f"the learned model reads it as {action.id}"
    elif action.verb:
        said = f"the {action.source} says *{action.verb}* ({action.id})"
    else:
        said = f"it does {action.id}"
    if ann.get("readOnlyHint") is True and action.id != "read":
        found.append(
            Finding(
                "annotation_mismatch",
                f"{DECLARED['read-only-but-acts']} but {said}",
                rule="read-only-but-acts",
            )
        )
    if ann.get("destructiveHint") is False and action.id in ("delete", "transact"):
        found.append(
            Finding(
                "annotation_mismatch",
                f"{DECLARED['non-destructive-but-destroys']} but {said}",
                rule="non-destructive-but-destroys",
            )
        )
    return found
