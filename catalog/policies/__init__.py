"""Recommended gateway policies: verdict + overrides + settings -> ToolPolicy -> an export format."""

from catalog.policies.generate import Override, ToolPolicy, seed_rule

__all__ = ["Override", "ToolPolicy", "seed_rule"]
