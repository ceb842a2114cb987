"""How a poisoning case names the payload planted in it, in one place: scripts/build_dataset.py
writes the name into a planted row's ``provenance.derived``, and the evaluation and the tuning
scripts read the payload's group back from it (each group was written separately, so a group
measures wording the classifier had not seen)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NAMED = re.compile(r"\bpayload ([A-Z])\d+")


def planted_note(payload: Mapping[str, Any]) -> str:
    """``provenance.derived`` of a row planted with ``payload``: "payload G17 (technique) after source"."""
    return f"payload {payload['id']} ({payload['technique']}) after {payload['source']}"


def planted_group(row: Mapping[str, Any]) -> str | None:
    """The payload group (``A``, ``B``, ...) a poisoned row (``poisoned`` true) was planted
    with; ``None`` for a real tool or a row that does not name its payload."""
    if not row.get("poisoned"):
        return None
    provenance = row.get("provenance")
    derived = provenance.get("derived") if isinstance(provenance, Mapping) else None
    m = _NAMED.search(derived) if isinstance(derived, str) else None
    return m.group(1) if m else None
