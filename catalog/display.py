"""Text from strangers, made safe to show.

Tool names, descriptions, rationales (which quote descriptions) and servers' error messages
are written by whoever published a server. Printed raw, an escape sequence in one can move
the cursor and overwrite the lines a reviewer reads ("Risk: low", "Decision: allow"), hide
the rest of the screen, or write to the clipboard (OSC 52); a bidi override can reverse what
is shown. Every read command's text goes through :func:`printable` on its way out.
"""

from __future__ import annotations

import re

#: C0 and C1 controls (not tab or newline), DEL, zero-width, bidi and other invisible
#: formatting characters, and the tag and variation characters (U+E0000-E01EF) that spell
#: hidden text. The YAML/TOML quoting (policies.formats.quoting) escapes the same set.
UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    "\ufff9-\ufffb\U000e0000-\U000e01ef]"
)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # as JSON spells a character past U+FFFF: a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control and invisible formatting character shown as ``\\uXXXX``
    (past U+FFFF as a surrogate pair); with ``one_line``, newlines and tabs become spaces too,
    so a value cannot start a line of its own (a description's "\\n  Risk : low"). A JSON
    document stays valid JSON, the same value: such characters only occur inside its strings,
    where this is their JSON spelling. Not for YAML or TOML, which spell them otherwise."""
    if one_line:
        text = " ".join(text.split("\n")).replace("\t", " ")
    return UNSAFE.sub(_escaped, text)
