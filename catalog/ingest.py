"""Storing one ad-hoc introspection (``catalog introspect``) the way a crawl would."""

from __future__ import annotations

from typing import Any

from catalog.history import MANUAL_SOURCE
from catalog.store.db import open_store
from catalog.store.models import Classification
from catalog.store.records import AttemptRecord, ServerRecord
from catalog.store.repository import current_tools, finish_run, record_attempt, record_tools, start_run, upsert_server
from catalog.verdicts import assess_changes, classify_pending, scan_pending_instructions


def store_introspection(db_url: str | None, server_name: str, result: Any) -> dict[str, Classification]:
    store = open_store(db_url)
    try:
        with store.session() as session, session.begin():
            run = start_run(session, MANUAL_SOURCE)
            server = upsert_server(
                session,
                ServerRecord(
                    name=server_name, source=MANUAL_SOURCE, description=result.server_info.get("instructions")
                ),
            )
            record_attempt(
                session,
                server,
                AttemptRecord(
                    result.transport,
                    result.target,
                    result.outcome,
                    result.seconds,
                    result.error,
                    len(result.tools),
                    result.protocol_version,
                    result.server_info,
                ),
                run.id,
            )
            counters = {"servers": 1, "tools": len(result.tools)}
            if result.ok:
                changes = record_tools(session, server, result.tools, complete=result.complete, run_id=run.id)
                counters["new_definitions"] = changes.new_definitions
                classify_pending(session)
                scan_pending_instructions(session)
                # Judge its definition changes now, as a crawl does: left for the next crawl,
                # a rug pull stored here was judged after that crawl began and `diff --severe`
                # never reported it.
                assess_changes(session)
            finish_run(session, run.id, "ok" if result.ok else "failed", counters, result.error)
        with store.session() as session:
            return {t.name: t.verdict for t in current_tools(session, server=server_name) if t.verdict}
    finally:
        store.dispose()
