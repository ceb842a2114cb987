"""Splitting tool names and texts into comparable word stems.

Tool names come as ``camelCase``, ``snake_case``, ``kebab-case``, dotted paths and
acronym soup (``BinanceFuturesCancelBatchOrders``, ``getHTTPResponse``); descriptions are
prose.  Both are reduced to lower-case crude stems so that ``orders`` meets ``order``.

Descriptions are not all English: accented Latin (``Obtém informações``), Greek and Cyrillic
words are words too, and Chinese, Japanese and Korean text, written without spaces between
words (or, in Korean, with particles attached), is read as overlapping pairs of characters:
``获取股票价格`` -> ``获取 取股 股票 票价 价格``, so a two-character word of the rules
(``获取``, get; ``删除``, delete) is found wherever it stands.  Before, such text was
invisible: a Chinese description gave no word at all.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache
from itertools import islice

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9']*")
#: Letters of the scripts read as words beyond ASCII: Latin-1 and Latin Extended A/B (not the
#: signs × and ÷), Greek (not its question mark and middle dot), Cyrillic.
_LETTERS = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0370-\u037d\u037f-\u0386\u0388-\u03ff\u0400-\u04ff"
#: Kana (not the middle dot ・), CJK ideographs (and extension A), Hangul syllables: read as
#: character pairs.
_CJK = "\u3040-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_WORD_ANY = re.compile(f"[{_LETTERS}][{_LETTERS}0-9']*|[{_CJK}]+")
#: A letter ``_WORD_ANY`` reads that ``_WORD`` does not.
_LETTER_BEYOND_ASCII = re.compile(f"[{_LETTERS.removeprefix('A-Za-z')}]")
#: One character of those scripts (``CJK_CHAR.search`` finds any; the evaluation sorts by it).
CJK_CHAR = re.compile(f"[{_CJK}]")
#: Every letter ``_WORD_ANY`` reads as a word sorts below this, every CJK character at or above.
_CJK_FIRST = "\u3040"
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
    """Crude plural folding: enough to match keywords, never a linguistic claim.  Stems are
    interned: the tables that look them up (the rules', the model's) hold the same objects,
    so a hit compares pointers instead of reading a second string."""
    return sys.intern(_fold(word))


def _fold(word: str) -> str:
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


def distinct(keys: tuple[str, ...]) -> tuple[str, ...]:
    """``keys`` without repeats, first ones kept.  Most are a name's few tokens with none:
    comparing each with those before it costs a fraction of building a dict (compiled)."""
    n = len(keys)
    if n > 8:
        return tuple(dict.fromkeys(keys))
    for i in range(1, n):
        key = keys[i]
        for j in range(i):
            if keys[j] == key:
                return tuple(dict.fromkeys(keys))
    return keys


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
    # Most text is ASCII, and most of the rest has no CJK run to expand: one path each,
    # decided in C, so the common case costs what it did before other scripts were read.
    if limit is not None and limit <= 0:
        return []
    if text.isascii():
        return _split_words(text, limit)
    if not unicodedata.is_normalized("NFC", text):  # "Obte\u0301m" is one word, as "Obtém"
        text = unicodedata.normalize("NFC", text)
    if CJK_CHAR.search(text) is not None:
        return _words_cjk(text, limit)
    # Most other non-ASCII text is English with typographic quotes, dashes or emoji: with no
    # letter beyond ASCII in what is read, each of those characters is just a separator.
    if _LETTER_BEYOND_ASCII.search(text, 0, len(text) if limit is None else limit * 16) is None:
        return _split_words(text, limit, "replace")
    return _stems(_matches(_WORD_ANY, text, limit))


def _matches(pattern: re.Pattern[str], text: str, limit: int | None) -> list[str]:
    """The first ``limit`` (or all) matches of ``pattern`` in ``text``."""
    if limit is None:
        found = pattern.findall(text)
    else:
        # Tokenise only as much text as the limit needs (hostile megabyte inputs): a window
        # that holds ``limit`` words of ordinary prose, a wider one when it held too few, and
        # only then (leading junk) the rest match by match.  A window is trusted only when a
        # match follows the last word kept (the window's end may cut the last match short),
        # so the answer is the same as tokenising the whole text.
        window = limit * 8
        found = pattern.findall(text, 0, window)
        if len(found) <= limit and len(text) > window:
            window = limit * 16
            found = pattern.findall(text, 0, window)
            if len(found) <= limit and len(text) > window:
                found = [m.group() for m in islice(pattern.finditer(text), limit)]
        del found[limit:]
    return found


#: ASCII bytes -> themselves for what ``_WORD`` reads (letters, digits, the apostrophe), a
#: space for the rest: ``bytes.translate`` and ``split`` cut ASCII text where the regex
#: would.  Letters come out in lower case (a stem is), so ``Get`` and ``get`` share a piece.
_ASCII_TABLE = bytes(
    ord(chr(b).lower()) if chr(b).isascii() and (chr(b).isalnum() or b == 39) else 32 for b in range(256)
)
#: A piece of that split -> its stem, or "" for a piece with no word (``2024``, ``'``).  Keyed
#: by ``str``, not ``bytes``: CPython looks ``str`` keys up on a faster path.
_ASCII_STEMS: dict[str, str] = {}


def _split_words(text: str, limit: int | None, errors: str = "strict") -> list[str]:
    """:func:`words` for ``text`` with no letter beyond ASCII, without a regex: encoded one byte
    per character (with ``errors="replace"`` any other character a ``?``), a translate and a
    split cost half of ``_WORD.findall`` (scripts/bench_classify.py), and give the same words.
    Each piece holds only letters, digits and apostrophes, so ``_WORD`` finds in it exactly
    one match (from its first letter to its end: ``3d`` -> ``d``) or none (``2024``)."""
    if limit is None:
        return _ascii_stems(text.encode("ascii", errors).translate(_ASCII_TABLE).decode("ascii").split())
    # As in _matches(): a window that holds ``limit`` words of ordinary prose, trusted only
    # when a word follows the last one kept (the window's end may cut a piece short); only
    # the window is encoded (a megabyte of text must not be copied for 120 words).
    for window in (limit * 8, limit * 16):
        piece = text[:window].encode("ascii", errors)
        found = _ascii_stems(piece.translate(_ASCII_TABLE).decode("ascii").split())
        if len(found) > limit or len(text) <= window:
            del found[limit:]
            return found
    return _stems(_matches(_WORD_ANY, text, limit))


def _ascii_stems(pieces: list[str]) -> list[str]:
    # One pass in C for text whose every piece was seen before (a miss raises); the pieces
    # that hold no word have "" for a stem, which the filter drops.
    try:
        return list(filter(None, map(_ASCII_STEMS.__getitem__, pieces)))
    except KeyError:
        return [s for s in map(_learn_ascii, pieces) if s]


def _learn_ascii(piece: str) -> str:
    stemmed = _ASCII_STEMS.get(piece)
    if stemmed is None:
        word = piece.lstrip("0123456789'")
        stemmed = stem(word.strip("'")) if word else ""
        if len(_ASCII_STEMS) < _STEMS_MAX:
            _ASCII_STEMS[piece] = stemmed
    return stemmed


def _stems(found: list[str]) -> list[str]:
    out = list(map(_STEMS.get, found))
    if None in out:
        out = [s if s is not None else _learn(w) for w, s in zip(found, out, strict=True)]
    return out  # type: ignore[return-value]


def _pairs(match: str) -> list[str]:
    """A match as words: itself, or a run of CJK characters as its overlapping pairs."""
    if match[0] < _CJK_FIRST or len(match) == 1:
        return [match]
    return [match[i : i + 2] for i in range(len(match) - 1)]


def _words_cjk(text: str, limit: int | None) -> list[str]:
    """:func:`words` for text with CJK runs.  With a limit, the same windows as the ASCII path;
    a window is trusted when the words of its matches *before the last one* (which the
    window's end may cut short) already reach the limit."""
    if limit is None:
        return _stems([w for m in _WORD_ANY.findall(text) for w in _pairs(m)])
    found: list[str] = []
    for window in (limit * 8, limit * 16):
        matches = _WORD_ANY.findall(text, 0, window)
        found = [w for m in matches[:-1] for w in _pairs(m)]
        if len(found) >= limit or len(text) <= window:
            if len(text) <= window and matches:
                found += _pairs(matches[-1])
            return _stems(found[:limit])
    found = []
    for m in _WORD_ANY.finditer(text):
        # Only as much of a run as the limit still needs: a megabyte of ideographs must not
        # become a million pairs (the pairs of a run's start are the start of its pairs).
        start = m.start()
        end = m.end() if text[start] < _CJK_FIRST else min(m.end(), start + limit - len(found) + 1)
        found += _pairs(text[start:end])
        if len(found) >= limit:
            break
    return _stems(found[:limit])


def _learn(word: str) -> str:
    stemmed = stem(word.strip("'"))
    if len(_STEMS) < _STEMS_MAX:
        _STEMS[word] = stemmed
    return stemmed
