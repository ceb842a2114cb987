"""JSON the store can keep on every backend.

Python reads ``1e999`` as infinity and accepts ``NaN``; written back they are ``Infinity`` and
``NaN``, which are not JSON: PostgreSQL refuses the statement (and with it a crawl's whole
transaction), SQLite keeps text no strict reader takes. A catalogue entry or a server's raw
listing may hold them, so numbers a float cannot hold are kept as null, the way the SDK's
validated listings already come.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every infinite or NaN float replaced by ``None`` (a copy where needed)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """The engines' JSON serializer: strict JSON, whatever floats came in."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False)
