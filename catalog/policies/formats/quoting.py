"""Quoting tool and server names for the text formats (YAML, TOML) that exporters write."""

from __future__ import annotations

from catalog.display import UNSAFE

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def double_quoted(text: str) -> str:
    """A double-quoted string both YAML and TOML read back as ``text``: quotes, backslashes
    and line ends escaped, and every character either forbids raw (C0 and C1 controls, DEL,
    the Unicode line separators, a byte-order mark) as ``\\uXXXX``; a lone surrogate, which
    neither can hold, as U+FFFD.  Everything else is written as itself (an emoji is one
    character, not a JSON surrogate pair, which TOML rejects)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x20 or 0x7F <= code <= 0x9F or ch in "\ufffe\uffff" or UNSAFE.match(ch):
            # Invisible and bidi characters too, as every output shows them (catalog.display).
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
