"""What changed between two definitions of a tool, in words a reviewer can check."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any


def _props(defn: Mapping[str, Any]) -> dict[str, Any]:
    props = (defn.get("inputSchema") or {}).get("properties") or {}
    return dict(props) if isinstance(props, Mapping) else {}


def describe_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Fields that changed, parameters added/removed/changed, annotation changes, a text diff."""
    fields = [
        f
        for f in ("description", "inputSchema", "annotations", "title", "outputSchema")
        if (old.get(f) or None) != (new.get(f) or None)
    ]
    old_p, new_p = _props(old), _props(new)
    summary: dict[str, Any] = {
        "fields": fields,
        "params_added": sorted(set(new_p) - set(old_p)),
        "params_removed": sorted(set(old_p) - set(new_p)),
        "params_changed": sorted(k for k in set(old_p) & set(new_p) if old_p[k] != new_p[k]),
    }
    old_a, new_a = dict(old.get("annotations") or {}), dict(new.get("annotations") or {})
    summary["annotations"] = {
        k: [old_a.get(k), new_a.get(k)] for k in sorted(set(old_a) | set(new_a)) if old_a.get(k) != new_a.get(k)
    }
    if "description" in fields:
        diff = difflib.unified_diff(
            str(old.get("description") or "").splitlines(),
            str(new.get("description") or "").splitlines(),
            "before",
            "after",
            lineterm="",
            n=1,
        )
        lines = [ln[:300] for ln in diff][:40]
        summary["description_diff"] = lines
    return summary
