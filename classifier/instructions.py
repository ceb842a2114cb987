"""The learned instruction reading: does one sentence of a definition speak to the agent?

Why a learned reading beside the regex rules: the rules find the phrasings they were written
for.  On a set of payloads written independently of them (group F, 70 payloads planted in
real tools) they found 31 (44 %).  A linear model over each sentence's words and word pairs,
and over *concepts* (a secret, the conversation, an outside address, concealment, an
override, a trigger on another tool, an address to the assistant, ...) and pairs of
concepts, trained without any group-F tool (``scripts/tune_instructions.py --with-dev``),
found 66 % of the dev split's group-F tools on its own and 77 % together with the rules
(49 % alone), flagging 0.3 % of the dev split's benign tools (``INSTRUCTION_THRESHOLD``;
measured on the final data of 2026-11-25;
the ``source`` concept and identifiers holding an address were added after reading the
group-F misses, so group G in the test split is the clean measure).  Six more groups written
the same way (H-M, 2026-11-26: unseen wording, documentation camouflage, terse payloads,
thirty languages, schema poisoning, social engineering) each found 43-80 % before it was
learned from; with all of them in training, F held out is caught 86-91 % (rules + learned,
at the thresholds 0.9 and 0.85).
The concepts generalise where words do not: "the API key from the environment, in this
field" and "la clave API en el parámetro" share ``secret+put``.

A definition is read as *pieces*: the sentences of its description, title and schema texts
(four words or more; CJK text by length), and every identifier (a parameter name, an enum
value, a default) of three name parts or more, split into words (a parameter called
``sshPrivateKeyFileText`` asks for something).  The tool is flagged by its most
instruction-like piece, which the finding quotes.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from classifier.definition import ToolDefinition, prose_pattern, schema_strings
from classifier.rules import RuleSet
from classifier.tokens import name_parts, stem

#: Probability above which a piece is reported.  Chosen by server-grouped cross-validation
#: over the 6,327 benign train + dev tools (scripts/tune_instructions.py --cv-false-alarms 5).
#: With groups A-M learned (2026-11-26): 0.49 % flagged at 0.85, 0.25 % at 0.9, 0.17 % at
#: 0.95, and the test split then showed 1.0 % at 0.9: cross-validation has run three to four
#: times below the test split.  Every group learned since raised it (more varied wording
#: reaches more ordinary sentences): with N, 0.41 % at 0.9; with O, 0.62 % at 0.9 and 0.52 %
#: at 0.95, and 0.58 % and 0.33 % once the conceal, outside and source concepts lost the
#: alternatives ordinary documentation uses (hidden files, omitted fields, Bcc, the
#: clipboard).  Held out a group at a time (--with-dev), 0.95 catches 0.842 of the thirteen
#: groups' dev cases with the rules where 0.9 caught 0.859: three points of recall for
#: nearly half the false alarms, taken because false alarms on ordinary tools are what makes
#: a scheduled scan ignored.  With groups P and Q learned (ninth session) it was 0.49 % at 0.95
#: (31 tools, 21 of them one server's protective sentence); with plural words read as their
#: singular too and the concepts widened on P and Q, 0.28 % (18 tools on 8 servers, 10 of them
#: that sentence) and 0.09 % at 0.97; held out a group at a time, the nine independently
#: written groups F and H-O not used to widen the concepts are caught 0.806 at 0.95 (0.792
#: before), 0.78 at 0.97.  With groups R-U learned (tenth session), the misreport and
#: tool-kind concepts and pagination tokens no longer read as secrets: 18 tools (0.28 %) at
#: 0.95, and the fifteen groups F, H-U held out one at a time are caught 0.784.  With groups
#: V-Y learned (twenty-second session; held out with ``--with-dev``): at 0.95 F, H-U 0.810 ->
#: 0.827 but 22 -> 27 cross-validated false alarms; at 0.96, 0.822 for 22, the false alarms of
#: before at more recall, taken.
INSTRUCTION_THRESHOLD = 0.96
#: Inverse regularisation strength of the instruction head (tune_instructions.py).
INSTRUCTION_C = 1.0
#: The two classes of the instruction head (the model checks them at load).
PLANTED, BENIGN = "planted", "benign"
#: Hostile inputs: at most this many pieces per definition, each at most this long.
MAX_PIECES = 1_000
MAX_PIECE = 2_000
MAX_TEXT = 200_000
#: A sentence the gate lets through is also read in windows of this many words (half
#: overlapping), each against the threshold after ``WINDOW_PENALTY`` is taken off its log-odds:
#: the head sums its words' weights, so ordinary words appended to a payload's own sentence
#: talked it down (the 772 development payloads written for descriptions, planted in one tool:
#: 629 found, 319 with eight schema words appended before the full stop, 463 with windows).
#: Held out a group at a time, recall 0.800 -> 0.807 at 0.95; cross-validated false
#: alarms 18 -> 22 of 6,327 tools.  Windows of 12 words without the penalty doubled the false
#: alarms (40); 8 words without it, 31; windows of the model's ``\w+`` words instead of
#: whitespace-separated tokens gained no recall for 30 dev false alarms.  Not cut: unspaced
#: scripts (a CJK sentence), and a filler joined by hyphens counts as one token.
WINDOW_WORDS = 8
WINDOW_PENALTY = 1.5
#: A whole piece of at most ``SHORT_WORDS`` whitespace-separated tokens (a terse line, a
#: title, a parameter name, a default or enum value) has ``SHORT_BONUS`` added to its
#: log-odds: a handful of words cannot add up the weight a sentence can, and terse payloads
#: were the weakest group (J, 1-13 words: 0.525 held out).  Held out a group at a time,
#: F, H-U 0.784 -> 0.796 (J 0.625, F 0.943) for cross-validated false alarms 18 -> 22 of
#: 6,327; 1.0 gave 0.808 for 28 ("Theme colors are not shown.", "The name of the contact's
#: assistant."), too many.
SHORT_WORDS = 10
SHORT_BONUS = 0.5
#: Windows per definition, spent on the most instruction-like sentences first, and per
#: sentence (hostile input: decoy sentences before the payload must not use them up).
MAX_WINDOWS = 1_024
MAX_PIECE_WINDOWS = 64

_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")
_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r"\S+")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_.@:/\-]{5,200}")
_TEXT_KEYS = frozenset({"description", "title", "default", "examples", "enum", "const"})


def _identifier_piece(value: str) -> str | None:
    """``sshPrivateKeyFileText`` -> ``ssh private key file text``; ``None`` for short names."""
    if not _IDENTIFIER.fullmatch(value):
        return None
    if "@" in value or "://" in value:  # an address inside: keep it whole, it is the point
        words = value.replace("_", " ").split()
        return " ".join(words) if len(words) >= 3 else None
    parts = name_parts(value)
    return " ".join(parts) if len(parts) >= 3 else None


def _sentences(text: str) -> Iterator[str]:
    for chunk in _SENTENCE.split(text[:MAX_TEXT]):
        chunk = chunk.strip()
        if not chunk:
            continue
        words = chunk.split()
        if len(words) >= 4 or (not chunk.isascii() and len(chunk) >= 12):
            # A run-on chunk is read in consecutive windows, so nothing after its first
            # MAX_PIECE characters goes unread (the bounds on pieces and text still hold).
            for start in range(0, len(chunk), MAX_PIECE):
                yield chunk[start : start + MAX_PIECE]
        elif len(words) == 1 and (piece := _identifier_piece(chunk)):
            yield piece


def _schema_pieces(schema: Any) -> Iterator[str]:
    """Pieces of the schema's texts (:func:`classifier.definition.schema_strings`): each
    property name as words, the sentences of text keys (description, title, vendor
    extensions ``x-*``...) and of list items (enum values, examples)."""
    for kind, key, text in schema_strings(schema):
        if kind == "names":
            for name in text.split("\n"):
                if piece := _identifier_piece(name):
                    yield piece
                elif len(name) > 200 or " " in name.strip():
                    # A name too long or too spaced to be an identifier is read as a sentence.
                    yield from _sentences(" ".join(name_parts(name)) if " " not in name.strip() else name)
        elif kind == "item" or key in _TEXT_KEYS or key.startswith("x-") or prose_pattern(key, text):
            yield from _sentences(text)


def pieces(defn: ToolDefinition, hidden: str = "") -> list[str]:
    """The pieces of a definition the instruction reading scores (:func:`pieces_read`)."""
    return pieces_read(defn, hidden)[0]


def pieces_read(defn: ToolDefinition, hidden: str = "") -> tuple[list[str], bool]:
    """The pieces of a definition the instruction reading scores, in reading order, without
    repeats, and whether that is all of it; ``hidden`` is text decoded out of the definition
    (base64, look-alikes).  Bounded like the rules' scan: ``MAX_PIECES`` pieces, ``MAX_TEXT``
    characters of each text and of all pieces together, ``MAX_SCHEMA_VISITS`` schema strings
    and keys; a definition the bounds cut short is ``False`` (findings report it)."""
    found: dict[str, None] = {}
    texts: list[Iterator[str]] = [
        _sentences(defn.description),
        _sentences(defn.title or ""),
        _schema_pieces(defn.input_schema),
        _schema_pieces(defn.output_schema),
        _sentences(hidden),
    ]
    whole = max(len(defn.description), len(defn.title or ""), len(hidden)) <= MAX_TEXT
    total = 0
    for source in texts:
        for piece in source:
            if piece not in found:
                found[piece] = None
                total += len(piece)
            if len(found) >= MAX_PIECES or total >= MAX_TEXT:
                return list(found), False
    return list(found), whole


ConceptPattern = tuple[str, re.Pattern[str]]  # (concept id, its pattern)
GatePlan = tuple[tuple[ConceptPattern, ...], tuple[tuple[ConceptPattern, ConceptPattern], ...]]


def gate_plan(rules: RuleSet) -> GatePlan:
    """The aimed concepts, and the pairs of the others (see :func:`_gate`), each as
    (id, pattern).

    A piece is reported only if it has an aimed concept (an address to the model, an outside
    destination, concealment, an override, a trigger, another tool, a shell line, steering)
    or a concept pair, however its words score ("Read the complete contents of a file" shares
    words with many payloads).  A pair with an aimed member needs that member, so the aimed
    patterns and the pairs of the others decide it exactly."""
    by_id = {c.id: (c.id, c.pattern) for c in rules.concepts}
    aimed = {c.id for c in rules.concepts if c.aimed}
    return (
        tuple(by_id[c.id] for c in rules.concepts if c.aimed),
        tuple((by_id[a], by_id[b]) for a, b in rules.concept_pairs if a not in aimed and b not in aimed),
    )


def _gate(lowered: str, plan: GatePlan, known: Mapping[str, bool] | None = None) -> dict[str, bool] | None:
    """Whether a piece has an aimed concept or a concept pair (:func:`gate_plan`): ``None``
    if not, else what the gate searched (concept id -> found), so :func:`concept_features`
    searches only the rest.  An aimed concept is looked for first, else a pair of the others,
    each only while it can still matter (most pieces have neither, and the secret and
    conversation patterns are the slowest).  ``known`` fixes concepts in advance (a window
    takes its whole sentence's value of the concepts anchored to a whole text)."""
    aimed, pairs = plan
    searched: dict[str, bool] = dict(known) if known else {}
    for concept, pattern in aimed:
        if (has := searched.get(concept)) is None:
            has = pattern.search(lowered) is not None
        if has:
            searched[concept] = True
            return searched
        searched[concept] = False
    for (a, pattern_a), (b, pattern_b) in pairs:
        if (has_b := searched.get(b)) is None:
            has_b = searched[b] = pattern_b.search(lowered) is not None
        if has_b:
            if (has_a := searched.get(a)) is None:
                has_a = searched[a] = pattern_a.search(lowered) is not None
            if has_a:
                return searched
    return None


def concept_features(lowered: str, rules: RuleSet, searched: Mapping[str, bool] | None = None) -> list[str]:
    """The concepts (``c:``) and concept pairs found in a lower-cased piece (the concept
    patterns are written in lower case and compiled without IGNORECASE: 1.7x faster).
    ``searched`` holds what the gate (:func:`_gate`) already looked for in the same piece."""
    known = searched or {}
    present = {
        concept.id
        for concept in rules.concepts
        if ((found := known.get(concept.id)) is None and concept.pattern.search(lowered)) or found
    }
    if not present:
        return []
    feats = [f"c:{c}" for c in sorted(present)]
    feats += [f"c:{a}+{b}" for a, b in rules.concept_pairs if a in present and b in present]
    return feats


def word_features(lowered: str) -> list[str]:
    """Words (``w:``) and adjacent word pairs (``b:``) of a lower-cased piece, each once: the
    head learned them present or absent, so a repeated word must not count again (padding a
    payload with "argument argument argument" would otherwise talk it down).  A plural word
    also reads as its singular ("passwords" adds ``w:password``), so it weighs what the
    singular learned; a singular is not doubled."""
    words = _WORD.findall(lowered)
    feats = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
    feats += [f"w:{s}" for w in words if (s := stem(w)) != w]
    return list(dict.fromkeys(feats))


def piece_features(piece: str, rules: RuleSet) -> list[str]:
    """Words, adjacent word pairs, concepts and concept pairs: what the instruction head reads."""
    lowered = piece.lower()
    return word_features(lowered) + concept_features(lowered, rules)


class InstructionReader:
    """Scores pieces with a trained instruction head (:class:`classifier.model.Head`): the
    head's margin of ``planted`` over ``benign`` per feature, summed in plain Python (a
    definition has a handful of pieces; numpy per piece would cost more than the sums)."""

    def __init__(self, head: Any, threshold: float = INSTRUCTION_THRESHOLD) -> None:
        k = head.classes.index(PLANTED)
        other = 1 - k
        column = head.weights[:, k] - head.weights[:, other]
        self.margins: dict[str, float] = {f: float(column[i]) for f, i in head.index.items()}
        self.bias = float(head.bias[k] - head.bias[other])
        self.threshold = threshold
        self._rules: RuleSet | None = None
        self._plan: GatePlan = ((), ())
        self._anchored: tuple[str, ...] = ()

    def probability(self, features: Sequence[str], offset: float = 0.0) -> float:
        margins = self.margins
        z = self.bias + offset + sum(margins.get(f, 0.0) for f in features)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def strongest(self, defn: ToolDefinition, rules: RuleSet, hidden: str = "") -> tuple[float, str, list[str]]:
        """The most instruction-like piece: (probability, piece, the features that pushed it).
        Where a window of a sentence decided, the piece is that window, marked "…" at a cut."""
        if self._rules is not rules:  # derived once per rule set (the reference keeps it alive)
            self._rules, self._plan = rules, gate_plan(rules)
            # Concepts anchored to a whole text (``^``): a window takes its sentence's value.
            self._anchored = tuple(
                c.id for c in rules.concepts if c.pattern.pattern.startswith("^") or "(^|" in c.pattern.pattern
            )
        plan = self._plan
        # Every sentence the gate lets through, whole; then windows of the most
        # instruction-like first, within the budgets.
        scored: list[tuple[float, str, list[str]]] = []
        for piece in pieces(defn, hidden):
            lowered = piece.lower()
            if (searched := _gate(lowered, plan)) is None:
                continue  # nothing in it turns to the model: a plain sentence about the tool
            feats = word_features(lowered) + concept_features(lowered, rules, searched)  # as in training
            short = SHORT_BONUS if len(piece.split(None, SHORT_WORDS)) <= SHORT_WORDS else 0.0
            scored.append((self.probability(feats, short), piece, feats))
        best: tuple[float, str, list[str]] = (0.0, "", [])
        left = MAX_WINDOWS
        for p, piece, feats in sorted(scored, key=lambda s: -s[0]):
            # The sentence's own features already say which anchored concepts it has.
            known = {c: f"c:{c}" in feats for c in self._anchored}
            for window in _windows(piece, min(left, MAX_PIECE_WINDOWS)):
                left -= 1
                low = window.strip("…").lower()
                if (found := _gate(low, plan, known)) is None:
                    continue
                window_feats = word_features(low) + concept_features(low, rules, found)
                if (q := self.probability(window_feats, -WINDOW_PENALTY)) > p:
                    p, piece, feats = q, window, window_feats
            if p > best[0]:
                best = (p, piece, self._pushed(feats))
        return best

    def _pushed(self, feats: Sequence[str]) -> list[str]:
        """What a person can check: concepts first, then word pairs, then words that are not
        function words ("so", "them" can weigh, but explain nothing)."""
        margins = self.margins
        pushed = sorted(
            (f for f in set(feats) if margins.get(f, 0.0) > 0 and (f[0] != "w" or len(f) > 6)),
            key=lambda f: (f[0] != "c", f[0] != "b", -margins[f], f),
        )
        return pushed[:4]


def _windows(piece: str, limit: int) -> Iterator[str]:
    """Half-overlapping windows of ``WINDOW_WORDS`` whitespace-separated tokens of a longer
    piece, as the piece's own text (marked "…" where cut); none for a piece that short; at
    most ``limit``; the last ends at the piece's end."""
    if limit <= 0:
        return
    spans = [m.span() for m in _TOKEN.finditer(piece)]
    n = len(spans)
    if n <= WINDOW_WORDS:
        return
    step = WINDOW_WORDS // 2
    starts = [*range(0, n - WINDOW_WORDS, step), n - WINDOW_WORDS]
    for start in starts[:limit]:
        first, last = spans[start][0], spans[start + WINDOW_WORDS - 1][1]
        yield ("…" if start else "") + piece[first:last] + ("…" if start + WINDOW_WORDS < n else "")


def training_pieces(
    rows: Sequence[Mapping[str, Any]], rules: RuleSet, also: Sequence[Mapping[str, Any]] = ()
) -> tuple[list[list[str]], list[str]]:
    """Features and labels for the instruction head from labelled rows: every piece of a
    benign tool is ``benign``; the pieces of a poisoned tool that no benign tool of its split
    has are the planted payload (as it reads in place) and are ``planted``.  ``also`` adds
    another split's planted pieces only, its benign tools kept out: how the held-out-group
    runs of scripts/tune_instructions.py keep the dev split's false alarms honest (the shipped
    head learns train and dev together, and its false alarms are measured by grouped
    cross-validation)."""
    if any(r.get("poisoned") for r in also) and all(r.get("poisoned") for r in also):
        raise ValueError("training_pieces: `also` needs its benign rows to tell the payloads from the tools")
    benign: dict[str, None] = {}
    planted: dict[str, None] = {}
    for split in (rows, also):
        base = {p for row in split if not row.get("poisoned") for p in pieces(ToolDefinition.from_mapping(row))}
        if split is rows:
            benign = dict.fromkeys(sorted(base))
        for row in split:
            if row.get("poisoned"):
                for piece in pieces(ToolDefinition.from_mapping(row)):
                    if piece not in base:
                        planted.setdefault(piece, None)
    feats = [piece_features(p, rules) for p in (*planted, *benign)]
    labels = [PLANTED] * len(planted) + [BENIGN] * len(benign)
    return feats, labels


__all__ = [
    "INSTRUCTION_C",
    "INSTRUCTION_THRESHOLD",
    "MAX_PIECES",
    "PLANTED",
    "InstructionReader",
    "piece_features",
    "pieces",
    "pieces_read",
    "training_pieces",
]
