"""The seed's JSON policy: ``{"version": "1", "default": "deny", "tools": {...}, "hide": [...]}``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from catalog.policies.formats import ExportOptions, Format, schema_errors
from catalog.policies.generate import ToolPolicy, dumps, hidden, merge_by_name, seed_rule


def seed_document(policies: Sequence[ToolPolicy], *, pin: bool = False) -> dict[str, Any]:
    by_name = merge_by_name(policies)
    tools: dict[str, Any] = {}
    hide = sorted({p.tool for p in by_name.values() if hidden(p, pin=pin)})
    for name in sorted(by_name):
        rule = seed_rule(by_name[name], pin=pin)
        if rule is not None:
            tools[name] = rule
    doc: dict[str, Any] = {"version": "1", "default": "deny", "tools": tools}
    if hide:
        doc["hide"] = hide
    return doc


class SeedExporter:
    format = Format.SEED
    suffix = ".json"

    def render(self, policies: Sequence[ToolPolicy], opts: ExportOptions) -> str:
        return dumps(seed_document(policies, pin=opts.pin), compact=False) + "\n"

    def validate(self, text: str) -> list[str]:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            return [f"not JSON: {exc}"]
        return schema_errors(doc, "seed.schema.json")
