"""Turning a definition into the sparse features the learned model reads.

Features are plain strings with a short prefix naming where the evidence sits, so a
weight can always be traced back to a word a person can find in the definition:

* ``n:`` name tokens (camelCase / snake_case split), ``n0:`` the first one (usually the
  verb), ``nb:`` adjacent name pairs (``cancel_batch``);
* ``d:`` description words (stop words dropped), ``d0:`` its opening words;
* ``p:`` input property name tokens, ``e:`` enum values of operation-like parameters;
* ``a:`` annotations as declared;
* ``s:`` the server's own name tokens (``stripe``, ``kubernetes``);
* ``r*:`` what the rules concluded (category, action, verb and where it came from), so the
  model learns when to trust them and when the words say otherwise.

Extraction reuses the rules' :class:`~classifier.analysis.Facts`, so a definition is
tokenised once per classification.
"""

from __future__ import annotations

from itertools import pairwise

from classifier.analysis import ActionChoice, CategoryChoice, Facts

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

#: How many description words feed the model: the opening states the purpose; later
#: paragraphs are usage notes that blur it (and long texts must stay cheap).
DESCRIPTION_WORDS = 80
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
    out += ["d:" + w for w in desc[:DESCRIPTION_WORDS] if w not in stop and len(w) > 1]
    out += ["d0:" + w for w in desc[:OPENING_WORDS] if w not in stop]
    if not desc:
        out.append("d:<none>")
    out += ["p:" + t for t in sorted(facts.param_tokens)]
    if facts.operation_values:
        out += ["e:" + v.lower() for v in facts.operation_values[:16]]
    out += ["s:" + t for t in facts.server_tokens if t not in ("mcp", "server")]
    if facts.annotations:
        out += [f"a:{key}={value}" for key, value in sorted(facts.annotations.items()) if isinstance(value, bool)]
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
