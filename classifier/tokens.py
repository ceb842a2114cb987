"""Splitting tool names and texts into comparable word stems.

Tool names come as ``camelCase``, ``snake_case``, ``kebab-case``, dotted paths and
acronym soup (``BinanceFuturesCancelBatchOrders``, ``getHTTPResponse``); descriptions are
prose.  Both are reduced to lower-case crude stems so that ``orders`` meets ``order``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import islice

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9']*")
_KEEP = frozenset(
    {
        "status",
        "process",
        "address",
        "access",
        "alias",
        "bus",
        "canvas",
        "class",
        "news",
        "series",
        "analysis",
        "its",
        "this",
        "has",
        "was",
        "is",
        "as",
        "us",
        "gas",
        "ens",
        "dns",
        "aws",
        "sms",
        "ads",
        "kubernetes",
        "iss",
        "https",
        "http",
        "pos",
        "macos",
        "ios",
        "os",
        "less",
        "previous",
    }
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Crude plural folding: enough to match keywords, never a linguistic claim."""
    w = word.lower()
    if len(w) <= 3 or w in _KEEP or w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "xes", "sses")):
        return w[:-2]
    if w.endswith("s"):
        return w[:-1]
    return w


def split_name(name: str) -> list[str]:
    """``BinanceFuturesCancelBatchOrders`` -> ``[binance, future, cancel, batch, order]``."""
    return list(name_parts(name))


def name_parts(name: str) -> tuple[str, ...]:
    """:func:`split_name` as a tuple, cached for ordinary names (parameter names repeat across
    thousands of tools); very long strings are split without being kept in memory."""
    parts = _PARTS.get(name)
    if parts is None:
        parts = _parts(name)
        if len(name) <= 200 and len(_PARTS) < _PARTS_MAX:
            _PARTS[name] = parts
    return parts


#: name -> its parts; a plain dict (not ``lru_cache``): this is the hot path of every
#: verdict, and the size bound keeps hostile input from growing it forever.
_PARTS: dict[str, tuple[str, ...]] = {}
_PARTS_MAX = 65_536


def _parts(name: str) -> tuple[str, ...]:
    out: list[str] = []
    for chunk in _SEPARATORS.split(name):
        for part in _CAMEL.findall(chunk):
            if not part.isdigit():
                out.append(stem(part))
    return tuple(out)


#: word -> stem, filled as texts are read; bounded so hostile input cannot grow it forever.
_STEMS: dict[str, str] = {}
_STEMS_MAX = 200_000


def words(text: str, limit: int | None = None) -> list[str]:
    """Stemmed words of a text, in order (``limit`` caps how many are returned)."""
    if limit is None:
        found = _WORD.findall(text)
    else:
        # Tokenise only as much text as the limit needs (hostile megabyte inputs): a window
        # that holds ``limit`` words of ordinary prose, a wider one when it held too few, and
        # only then (leading junk) the rest match by match.  A window is trusted only when a
        # match follows the last word kept (the window's end may cut the last match short),
        # so the answer is the same as tokenising the whole text.
        window = limit * 8
        found = _WORD.findall(text, 0, window)
        if len(found) <= limit and len(text) > window:
            window = limit * 16
            found = _WORD.findall(text, 0, window)
            if len(found) <= limit and len(text) > window:
                found = [m.group() for m in islice(_WORD.finditer(text), limit)]
        del found[limit:]
    out = list(map(_STEMS.get, found))
    if None in out:
        out = [s if s is not None else _learn(w) for w, s in zip(found, out, strict=True)]
    return out  # type: ignore[return-value]


def _learn(word: str) -> str:
    stemmed = stem(word.strip("'"))
    if len(_STEMS) < _STEMS_MAX:
        _STEMS[word] = stemmed
    return stemmed
