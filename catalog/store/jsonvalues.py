"""JSON the store (and every writer of JSON lines) can keep on every backend.

Python reads ``1e999`` as infinity and accepts ``NaN``; written back they are ``Infinity`` and
``NaN``, which are not JSON: PostgreSQL refuses the statement (and with it a crawl's whole
transaction), SQLite keeps text no strict reader takes. A catalogue entry or a server's raw
listing may hold them, so numbers a float cannot hold are kept as null, the way the SDK's
validated listings already come.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean_scalar(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def finite(value: Any) -> Any:
    """A copy of ``value`` that every JSON reader and UTF-8 writer takes: infinite and NaN
    floats as ``None``, lone surrogates (a string cut inside an emoji) as U+FFFD, in keys as
    in values. Walked with a stack, not recursion, however deep the document nests."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        holder, key = stack.pop()
        item = holder[key]
        if isinstance(item, dict):
            mapping = {_clean_scalar(k): v for k, v in item.items()}
            holder[key] = mapping
            stack.extend((mapping, k) for k in mapping)
        elif isinstance(item, list | tuple):
            items = list(item)
            holder[key] = items
            stack.extend((items, i) for i in range(len(items)))
        else:
            holder[key] = _clean_scalar(item)
    return root[0]


def dumps(value: Any) -> str:
    """The engines' JSON serializer: strict JSON, whatever floats came in."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False)
