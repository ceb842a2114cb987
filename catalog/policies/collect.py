"""Store -> policies: current tools with their verdicts, the user's overrides and settings."""

from __future__ import annotations

from sqlalchemy.orm import Session

from catalog.policies.generate import Override, ToolPolicy, build_policy
from catalog.policies.settings import PolicySettings
from catalog.store.models import OverrideRow
from catalog.store.overrides import all_overrides, override_for
from catalog.store.repository import ToolView, current_tools


def as_override(row: OverrideRow | None) -> Override | None:
    if row is None:
        return None
    return Override(
        decision=row.decision,
        reason=row.reason,
        author=row.author,
        created_at=row.created_at,
        rule=row.rule,
        definition_hash=row.definition_hash,
    )


def policy_for(view: ToolView, settings: PolicySettings, rows: list[OverrideRow]) -> ToolPolicy | None:
    return build_policy(view, settings, as_override(override_for(rows, view.name, view.server)))


def collect(
    session: Session, settings: PolicySettings, *, server: str | None = None, tool: str | None = None
) -> list[ToolPolicy]:
    rows = all_overrides(session)
    out = []
    for view in current_tools(session, name=tool, server=server):
        p = policy_for(view, settings, rows)
        if p is not None:
            out.append(p)
    return out
