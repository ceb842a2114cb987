"""Store -> policies: current tools with their verdicts, the user's overrides and settings."""

from __future__ import annotations

from sqlalchemy.orm import Session

from catalog.policies.generate import Override, ToolPolicy, build_policy
from catalog.policies.settings import PolicySettings
from catalog.store.instructions import with_instructions
from catalog.store.models import OverrideRow
from catalog.store.overrides import SERVERS_DIGEST, all_overrides, override_for, vouches
from catalog.store.repository import ToolView, current_tools


def as_override(
    row: OverrideRow | None, session: Session | None = None, view: ToolView | None = None
) -> Override | None:
    """The stored decision.  One decided for every server exposing a tool defined differently
    on each holds a digest of all their definitions (and the definitions themselves): while
    every definition it covers is one decided on, it vouches for the tool's current definition
    on this server; changed anywhere, or exposed by a new server, it asks for review."""
    if row is None:
        return None
    decided = row.definition_hash
    if decided and decided.startswith(SERVERS_DIGEST) and session is not None and view is not None:
        unchanged = vouches(session, row)
        decided = view.hash if unchanged else decided
    return Override(
        decision=row.decision,
        reason=row.reason,
        author=row.author,
        created_at=row.created_at,
        rule=row.rule,
        definition_hash=decided,
    )


def policy_for(
    view: ToolView, settings: PolicySettings, rows: list[OverrideRow], session: Session | None = None
) -> ToolPolicy:
    return build_policy(view, settings, as_override(override_for(rows, view.name, view.server), session, view))


def collect(
    session: Session, settings: PolicySettings, *, server: str | None = None, tool: str | None = None
) -> list[ToolPolicy]:
    rows = all_overrides(session)
    views = with_instructions(session, current_tools(session, name=tool, server=server))
    return [policy_for(view, settings, rows, session) for view in views]
