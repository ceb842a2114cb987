"""Typed tables of the catalogue.

A tool's definition is never overwritten: a changed definition is a new row, keyed by
the content hash of its canonical JSON, so history (and rug-pull detection) comes for free.
Verdicts are keyed by definition hash + classifier version, so re-classifying with the
same classifier is a no-op and a new classifier adds rows beside the old ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is in UTC and says so, on every backend. PostgreSQL keeps the zone;
    SQLite keeps text and gives back naive times, which printed without their "+00:00" and
    compared wrongly against aware ones. Stored in UTC, read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class StoredText(TypeDecorator[str]):
    """Text without NUL characters, on every backend. PostgreSQL refuses them in text (a
    description with one made the whole server unstorable there) while SQLite keeps them: a
    hostile catalogue entry or stderr line must store the same on both."""

    impl = Text
    cache_ok = True

    def __init__(self, length: int | None = None) -> None:
        super().__init__()
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(String(self.length) if self.length else Text())

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a time without a zone is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime(),
    }


class Server(Base):
    __tablename__ = "servers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(StoredText(400), unique=True)
    title: Mapped[str | None] = mapped_column(StoredText(400))
    description: Mapped[str | None] = mapped_column(StoredText())
    version: Mapped[str | None] = mapped_column(StoredText(100))
    repository_url: Mapped[str | None] = mapped_column(StoredText())
    website_url: Mapped[str | None] = mapped_column(StoredText())
    packages: Mapped[list[Any]] = mapped_column(default=list)
    remotes: Mapped[list[Any]] = mapped_column(default=list)
    sources: Mapped[list[Any]] = mapped_column(default=list)
    published_at: Mapped[str | None] = mapped_column(StoredText(64))
    #: When it was first listed, or listed again after it was removed (`diff` shows it as new).
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set when a complete crawl of every source that listed it no longer does.
    removed_at: Mapped[datetime | None] = mapped_column()

    tools: Mapped[list[Tool]] = relationship(back_populates="server", cascade="all, delete-orphan")


class Tool(Base):
    __tablename__ = "tools"
    __table_args__ = (UniqueConstraint("server_id", "name", name="uq_tools_server_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(StoredText(400), index=True)
    current_hash: Mapped[str] = mapped_column(StoredText(64))
    #: When it was first listed, or listed again after it was removed (`diff` shows it as new).
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column()

    server: Mapped[Server] = relationship(back_populates="tools")
    definitions: Mapped[list[ToolDefinitionRow]] = relationship(back_populates="tool", cascade="all, delete-orphan")


class ToolDefinitionRow(Base):
    __tablename__ = "tool_definitions"
    __table_args__ = (UniqueConstraint("tool_id", "hash", name="uq_tool_definitions_tool_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)
    hash: Mapped[str] = mapped_column(StoredText(64), index=True)
    definition: Mapped[dict[str, Any]] = mapped_column()
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)

    tool: Mapped[Tool] = relationship(back_populates="definitions")


class Classification(Base):
    __tablename__ = "classifications"
    __table_args__ = (
        UniqueConstraint(
            "definition_hash", "classifier_version", "context_hash", name="uq_classifications_hash_version_context"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_hash: Mapped[str] = mapped_column(StoredText(64), index=True)
    classifier_version: Mapped[str] = mapped_column(StoredText(64))
    #: The server context the verdict was made in (:func:`catalog.store.repository.context_hash`):
    #: a tool's category prior comes from its sibling tools, so a server whose tool set
    #: changed gets new verdicts.  Empty for a definition classified on its own.
    context_hash: Mapped[str] = mapped_column(StoredText(64), default="", server_default="")
    category: Mapped[str] = mapped_column(StoredText(40))
    action: Mapped[str] = mapped_column(StoredText(20))
    risk: Mapped[str] = mapped_column(StoredText(20))
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    risk_rule: Mapped[str] = mapped_column(StoredText(80), default="")
    #: The level the recommended policy follows (``Verdict.policy_risk``); "" means ``risk``.
    policy_risk: Mapped[str] = mapped_column(StoredText(20), default="", server_default="")
    rationale: Mapped[str] = mapped_column(StoredText())
    findings: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def policy_level(self) -> str:
        """As ``Verdict.policy_level``: the level the policy follows (verdicts stored before
        the column existed follow their risk)."""
        return self.policy_risk or self.risk

    @property
    def poisoned(self) -> bool:
        """Whether the verdict carries a ``tool_poisoning`` finding."""
        return any(isinstance(f, dict) and f.get("id") == "tool_poisoning" for f in self.findings or [])


class ServerInstructions(Base):
    """What a server told the model about using it: the ``instructions`` of its ``initialize``
    result, each distinct text once per server.  A client puts it in the model's context beside
    the tools, so it is scanned for poisoning as a description is, and a changed text is kept
    beside the old one (the same rug-pull watch as a tool's definition history)."""

    __tablename__ = "server_instructions"
    __table_args__ = (UniqueConstraint("server_id", "hash", name="uq_server_instructions_server_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    hash: Mapped[str] = mapped_column(StoredText(64), index=True)
    text: Mapped[str] = mapped_column(StoredText())
    #: The length the server sent: longer than ``text`` when the introspection kept only the start.
    length: Mapped[int] = mapped_column(Integer, default=0)
    #: What the server's latest successful ``initialize`` said (at most one row per server; none
    #: when it said nothing).  Kept here, not on ``servers``, so code that reads servers works on
    #: a catalogue at any revision.
    current: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    #: Since when it is current: the crawl that first saw it, or saw it come back.
    current_since: Mapped[datetime] = mapped_column(default=utcnow)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class InstructionScan(Base):
    """The poisoning findings in one instructions text by one classifier version against one
    tool set: keyed like a verdict, so an unchanged text on an unchanged server is never
    scanned twice by the same classifier."""

    __tablename__ = "instruction_scans"
    __table_args__ = (
        UniqueConstraint(
            "hash", "classifier_version", "context_hash", name="uq_instruction_scans_hash_version_context"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hash: Mapped[str] = mapped_column(StoredText(64), index=True)
    classifier_version: Mapped[str] = mapped_column(StoredText(64))
    #: The server's tool set it was scanned against (``catalog.store.instructions.tools_context``):
    #: an ordering of tools that are none of the server's own is shadowing.
    context_hash: Mapped[str] = mapped_column(StoredText(64), default="")
    findings: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrawlRun(Base):
    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(StoredText(100))
    #: One ``catalog crawl`` invocation may run several sources; they share a job id.
    job: Mapped[str | None] = mapped_column(StoredText(40), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(StoredText(20), default="running")
    counters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(StoredText())


class IntrospectionAttempt(Base):
    __tablename__ = "introspection_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id", ondelete="SET NULL"))
    transport: Mapped[str] = mapped_column(StoredText(20))
    target: Mapped[str] = mapped_column(StoredText())
    outcome: Mapped[str] = mapped_column(StoredText(32))
    error: Mapped[str | None] = mapped_column(StoredText())
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    tools_count: Mapped[int] = mapped_column(Integer, default=0)
    protocol_version: Mapped[str | None] = mapped_column(StoredText(40))
    #: The server's catalogue version when the attempt was made (None: before revision 0006).
    server_version: Mapped[str | None] = mapped_column(StoredText(100))
    server_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)


class OverrideRow(Base):
    """A person's decision about a tool: kept apart from generated rules, never touched by crawls."""

    __tablename__ = "overrides"
    __table_args__ = (UniqueConstraint("tool", "server", name="uq_overrides_tool_server"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tool: Mapped[str] = mapped_column(StoredText(400), index=True)
    #: "" means every server exposing the tool.
    server: Mapped[str] = mapped_column(StoredText(400), default="")
    decision: Mapped[str] = mapped_column(StoredText(10))  # allow | deny | rule
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(StoredText(), default="")
    author: Mapped[str] = mapped_column(StoredText(200))
    definition_hash: Mapped[str | None] = mapped_column(StoredText(64))
    #: For an override of every server: the [server, definition hash] pairs it was decided on
    #: (``definition_hash`` is then their digest).  None: decided on one server, or before 0008.
    covered: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DefinitionChange(Base):
    """A tool whose definition hash changed between two crawls (rug-pull watch).

    ``severe`` is decided once both definitions have verdicts: the risk went up, or the new
    definition carries poisoning the old one did not.  ``None`` until then.
    """

    __tablename__ = "definition_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)
    old_hash: Mapped[str] = mapped_column(StoredText(64))
    new_hash: Mapped[str] = mapped_column(StoredText(64), index=True)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id", ondelete="SET NULL"))
    severe: Mapped[bool | None] = mapped_column()
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
