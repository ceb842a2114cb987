"""Turning a definition into the sparse features the learned model reads.

Features are plain strings with a short prefix naming where the evidence sits, so a
weight can always be traced back to a word a person can find in the definition:

* ``n:`` name tokens (camelCase / snake_case split), ``n0:`` the first one (usually the
  verb), ``nb:`` adjacent name pairs (``cancel_batch``);
* ``d:`` description words (stop words dropped), ``d0:`` its opening words;
* ``p:`` input property name tokens, ``e:`` enum values of operation-like parameters;
* no annotations: the rubric lets them corroborate and raise a level, never lower one, and
  any claim the model reads can move its confidence across the doubt line or its category
  into a milder rule (a review found even spec-default claims making verdicts milder).
  Annotations act only through the risk rules (``destructiveHint: true`` raises a level) and
  the ``annotation_mismatch`` finding.  Server-grouped CV without them: category +0.8
  points, action -0.3;
* ``s:`` the server's own name tokens (``stripe``, ``kubernetes``);
* ``r*:`` what the rules concluded (category, action, verb and where it came from), so the
  model learns when to trust them and when the words say otherwise.

Extraction reuses the rules' :class:`~classifier.analysis.Facts`, so a definition is
tokenised once per classification.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from itertools import pairwise

from classifier.analysis import MODEL_WORDS, ActionChoice, CategoryChoice, Facts
from classifier.tokens import distinct

#: Words that say nothing about domain or action; dropping them keeps the vocabulary small.
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "by",
        "from",
        "at",
        "as",
        "is",
        "are",
        "be",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "you",
        "your",
        "we",
        "our",
        "can",
        "will",
        "may",
        "should",
        "must",
        "not",
        "no",
        "if",
        "then",
        "than",
        "when",
        "which",
        "who",
        "what",
        "how",
        "all",
        "any",
        "each",
        "into",
        "about",
        "over",
        "under",
        "via",
        "using",
        "use",
        "used",
        "such",
        "also",
        "only",
        "more",
        "most",
        "other",
        "some",
        "up",
        "out",
        "do",
        "does",
        "done",
        "has",
        "have",
        "had",
        "was",
        "were",
        "been",
        "being",
        "one",
        "two",
        "new",
        "given",
        "specified",
        "specific",
        "provided",
        "based",
        "optional",
        "required",
        "default",
        "e",
        "g",
        "i",
        "etc",
    }
)

OPENING_WORDS = 4


def extract(facts: Facts, category: CategoryChoice, action: ActionChoice) -> list[str]:
    """The model's features for one definition, deduplicated, in a stable order."""
    name = facts.name_tokens
    out = ["n:" + t for t in name]
    if name:
        out.append("n0:" + name[0])
        out.append("nl:" + name[-1])
        out.extend(f"nb:{a}_{b}" for a, b in pairwise(name))
    desc = facts.desc_words
    stop = STOP_WORDS
    out += ["d:" + w for w in desc[:MODEL_WORDS] if w not in stop and len(w) > 1]
    out += ["d0:" + w for w in desc[:OPENING_WORDS] if w not in stop]
    if not desc:
        out.append("d:<none>")
    out += ["p:" + t for t in sorted(facts.param_tokens)]
    if facts.operation_values:
        out += ["e:" + v.lower() for v in facts.operation_values[:16]]
    out += ["s:" + t for t in facts.server_tokens if t not in ("mcp", "server")]
    if facts.code_params:
        out.append("f:code-param")
    if facts.path_params:
        out.append("f:path-param")
    if facts.batch:
        out.append("f:batch")
    if facts.read_only_query:
        out.append("f:read-only-query")
    out.append("rc:" + (category.id if category.score > 0 else "<none>"))
    out.append("ra:" + action.id)
    out.append("rs:" + action.source)
    if action.verb:
        out.append("rv:" + action.verb)
    return list(dict.fromkeys(out))


#: The part of a feature before its first ``:`` (``d`` for ``d:order``) -> the rest -> row.
#: Concrete ``dict``/``tuple`` types (not ``Mapping``/``Iterable``) throughout: compiled with
#: mypyc they become direct C calls instead of generic method lookups.
Lookup = dict[str, dict[str, int]]
_EMPTY: dict[str, int] = {}


def split_index(index: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """A model's feature index by prefix, for :func:`known_rows`."""
    table: dict[str, dict[str, int]] = {}
    for feature, row in index.items():
        prefix, _, rest = feature.partition(":")
        table.setdefault(prefix, {})[sys.intern(rest)] = row  # as the stems are: see tokens.stem
    return table


def never_emitted(features: Iterable[str]) -> list[str]:
    """Features :func:`extract` filters out (stop words, one-letter description words, the
    server words ``mcp``/``server``): a model that knew one would make :func:`known_rows`,
    which skips those filters, disagree with :func:`extract`."""
    out = []
    for feature in features:
        prefix, _, rest = feature.partition(":")
        if (
            prefix == "a"  # annotations are not features (see the module docstring)
            or (prefix in ("d", "d0") and rest in STOP_WORDS)
            or (prefix == "d" and len(rest) <= 1)
            or (prefix == "s" and rest in ("mcp", "server"))
        ):
            out.append(feature)
    return out


def _add(rows: list[int], table: dict[str, int], keys: tuple[str, ...]) -> None:
    for key in keys:
        r = table.get(key)
        if r is not None:
            rows.append(r)


def _add_one(rows: list[int], table: dict[str, int], key: str) -> None:
    r = table.get(key)
    if r is not None:
        rows.append(r)


def known_rows(facts: Facts, category: CategoryChoice, action: ActionChoice, lookup: Lookup) -> list[int]:
    """``[index[f] for f in extract(...) if f in index]``, in the same order, without building a
    string per feature (the batch path's speed; a test checks both agree on every labelled
    definition).  Stop words need no filter here: :func:`extract` never emits them, so no
    model knows them.  Each kind of feature is deduplicated on its own (the description's
    words already are, in ``desc_distinct``): two kinds never share a feature, so that is
    :func:`extract`'s deduplication, without one over every row at the end."""
    rows: list[int] = []
    name = facts.name_tokens
    if name:
        _add(rows, lookup.get("n", _EMPTY), distinct(name))
        _add_one(rows, lookup.get("n0", _EMPTY), name[0])
        _add_one(rows, lookup.get("nl", _EMPTY), name[-1])
        if len(name) > 1:
            _add(rows, lookup.get("nb", _EMPTY), distinct(tuple([f"{a}_{b}" for a, b in pairwise(name)])))
    desc = facts.desc_words
    if desc:
        _add(rows, lookup.get("d", _EMPTY), facts.desc_distinct)
        _add(rows, lookup.get("d0", _EMPTY), distinct(desc[:OPENING_WORDS]))
    else:
        _add_one(rows, lookup.get("d", _EMPTY), "<none>")
    _add(rows, lookup.get("p", _EMPTY), tuple(sorted(facts.param_tokens)))
    if facts.operation_values:
        _add(rows, lookup.get("e", _EMPTY), distinct(tuple([v.lower() for v in facts.operation_values[:16]])))
    # "s:mcp" is never emitted, so never known
    _add(rows, lookup.get("s", _EMPTY), distinct(facts.server_tokens))
    flags = lookup.get("f", _EMPTY)
    if facts.code_params:
        _add_one(rows, flags, "code-param")
    if facts.path_params:
        _add_one(rows, flags, "path-param")
    if facts.batch:
        _add_one(rows, flags, "batch")
    if facts.read_only_query:
        _add_one(rows, flags, "read-only-query")
    _add_one(rows, lookup.get("rc", _EMPTY), category.id if category.score > 0 else "<none>")
    _add_one(rows, lookup.get("ra", _EMPTY), action.id)
    _add_one(rows, lookup.get("rs", _EMPTY), action.source)
    if action.verb:
        _add_one(rows, lookup.get("rv", _EMPTY), action.verb)
    return rows
