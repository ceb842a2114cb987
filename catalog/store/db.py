"""Opening the store: URL resolution, friendly connection errors, migrations to head.

Read commands call this too, so it avoids importing Alembic when the schema is already
current (one ``SELECT`` on ``alembic_version``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import DatabaseError
from catalog.store import jsonvalues

DEFAULT_URL = "sqlite:///catalog.db"
ENV_VAR = "CATALOG_DATABASE_URL"
HEAD_REVISION = "0009"
MIGRATIONS = Path(__file__).parent / "migrations"


def resolve_url(url: str | None = None) -> str:
    """``--db`` beats ``$CATALOG_DATABASE_URL`` beats ``sqlite:///catalog.db``."""
    chosen = url or os.environ.get(ENV_VAR) or DEFAULT_URL
    if chosen.startswith("postgresql://") or chosen.startswith("postgres://"):
        chosen = "postgresql+psycopg://" + chosen.split("://", 1)[1]
    return chosen


def _one_line(exc: BaseException) -> str:
    msg = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return msg[0] if msg else exc.__class__.__name__


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]
    url: str

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # WAL: readers (catalog recommend) are not blocked by a crawl writing, and a commit costs
    # one fsync of the log instead of the database; a crash still loses no committed data.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    # SQLite's own lower() folds ASCII only: "Überweisung" would not match "überweisung" in
    # the unknown-tool hints. Python's folds as PostgreSQL's does.
    dbapi_conn.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _redacted(text: str) -> str:
    """``text`` with the password of any URL in it hidden (a URL that does not parse cannot
    be rendered without it by SQLAlchemy)."""
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise DatabaseError(f"invalid database URL {_redacted(url)!r}: {_redacted(_one_line(exc))}") from exc
    kwargs: dict[str, object] = {"future": True, "json_serializer": jsonvalues.dumps}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    try:
        engine = create_engine(parsed, **kwargs)  # type: ignore[arg-type]
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise DatabaseError(f"unsupported database URL {parsed.render_as_string()!r}: {_one_line(exc)}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def lock_for_writing(session: Session) -> None:
    """On SQLite, take the database's write lock now, where a transaction is about to read
    before it writes (elsewhere, nothing).

    A SQLite transaction that starts by reading (a savepoint, then a look for the server) and
    writes later fails its first write at once with "database is locked" if another process
    wrote in between: its snapshot is stale, and ``busy_timeout`` does not wait for that.
    Taken first, the lock is waited for (up to the busy timeout) instead.  Inside a transaction
    that already began, it is left as it is."""
    if session.get_bind().dialect.name != "sqlite":
        return
    dbapi = session.connection().connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:  # type: ignore[attr-defined]
        session.execute(text("BEGIN IMMEDIATE"))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            conn.rollback()
            return None


def migrate(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Upgrade the schema with Alembic (numbered migrations under migrations/versions), or
    with ``down=True`` take it back to ``revision`` (each migration's downgrade)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # SQLite migrations rebuild tables (batch mode): with foreign keys on, dropping the
            # old ``servers`` cascaded to every tool (a review lost them all going down past
            # 0003).  The pragma is a no-op inside a transaction, so it goes first.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()  # (ends the transaction SQLAlchemy opened for it)
        try:
            with conn.begin():
                # One process migrates at a time: two first uses of a new database both saw
                # no tables and both created them.  The others wait here, then find it done.
                if sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(7316290415)"))
                if not down and revision == "head" and _revision(conn) == HEAD_REVISION:
                    return
                cfg.attributes["connection"] = conn
                (command.downgrade if down else command.upgrade)(cfg, revision)
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def known_revisions() -> set[str]:
    """The schema revisions this version of mcp-catalog has migrations for."""
    return {p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py")}


def open_store(url: str | None = None, *, migrate_schema: bool = True) -> Store:
    """Connect, check, and bring the schema to head. Errors are one-line DatabaseErrors."""
    resolved = resolve_url(url)
    engine = make_engine(resolved)
    safe = engine.url.render_as_string(hide_password=True)
    try:
        found = current_revision(engine) if migrate_schema else HEAD_REVISION
        if found is not None and found != HEAD_REVISION and found not in known_revisions():
            engine.dispose()
            raise DatabaseError(
                f"database {safe} has schema revision {found}, newer than this mcp-catalog's {HEAD_REVISION}:"
                " upgrade mcp-catalog to use it"
            )
        if found != HEAD_REVISION:
            migrate(engine)
        else:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot open database {safe}: {_one_line(exc)}") from exc
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot open database {safe}: {_one_line(exc)}") from exc
    return Store(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False), url=safe)
