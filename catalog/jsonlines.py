"""Reading one line of a JSONL file given by a user (``catalog classify``, ``catalog evaluate``).

Python's parser accepts what the rest of the pipeline cannot carry: numbers past a float's
range and ``NaN`` (written back they are not JSON), lone UTF-16 surrogates (``"\\ud800"``,
from servers that cut a string inside an emoji; they cannot be written as UTF-8, so the
output stopped at that line), and nesting deep enough to exhaust the recursion limit (one
such line lost the whole batch). Each is made a value the pipeline can carry, or one line's
clear error.
"""

from __future__ import annotations

import json
from typing import Any

from catalog.store.jsonvalues import finite


def parse(line: str) -> Any:
    """The value of one JSON line: out-of-range numbers and NaN as null, lone surrogates as
    U+FFFD. Raises ``ValueError`` with a one-line reason for a line that is not JSON or is
    nested too deeply to read."""
    try:
        return finite(json.loads(line))  # 1e999 and NaN parse as floats, which finite() makes null
    except RecursionError:
        raise ValueError("nested too deeply to read") from None
