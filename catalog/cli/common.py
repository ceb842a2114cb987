"""Shared CLI pieces: the --db option and turning CatalogErrors into one-line exits."""

from __future__ import annotations

import functools
import os
import select
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog.display import printable
from catalog.errors import CatalogError
from catalog.store.db import open_store

F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: $CATALOG_DATABASE_URL or sqlite:///catalog.db).", show_default=False
    ),
]


SettingsOption = Annotated[
    str | None,
    typer.Option(
        "--settings",
        help="Policy settings TOML (default: $CATALOG_POLICY_SETTINGS or "
        "~/.config/mcp-catalog/policy.toml; built-in defaults otherwise).",
        show_default=False,
    ),
]


class TextOrJson(StrEnum):
    """What a read command prints: lines for people, or JSON for scripts (nothing else)."""

    TEXT = "text"
    JSON = "json"


FormatOption = Annotated[TextOrJson, typer.Option("--format", help="text or json")]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {printable(message, one_line=True)}", err=True)
    return typer.Exit(code)


def say(text: str) -> None:
    """Print a document (JSON, a report) with strangers' control characters shown, not obeyed."""
    typer.echo(printable(text))


def say_lines(lines: Iterable[str]) -> None:
    """Print lines of text, each kept to one line whatever the values in it hold."""
    typer.echo("\n".join(printable(line, one_line=True) for line in lines))


def friendly(func: F) -> F:
    """Print a CatalogError as one line on stderr and exit with its code; so too a file that
    cannot be read or written (exit 1) and a database that refuses a statement (exit 3, as
    a database that cannot be opened), which are the user's to fix, not tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CatalogError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except BrokenPipeError as exc:
            if not _reader_gone():
                raise fail(f"{exc.strerror or exc}") from None
            # `catalog classify big.jsonl | head`: the reader has what it wanted. Quiet, with
            # the status a program killed by SIGPIPE has, and nothing left to flush at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(128 + 13) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise fail(f"{exc.strerror or exc}{where}") from None
        except SQLAlchemyError as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
            raise fail(f"database error: {first[0][:300]}", 3) from None

    return wrapper  # type: ignore[return-value]


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end was closed (poll reports an error on it)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    poller = select.poll()
    poller.register(fd, 0)
    return any(event & select.POLLERR for _, event in poller.poll(0))


@contextmanager
def store_session(db: str | None) -> Iterator[Session]:
    """A session on the catalogue for one command; the engine is closed when it ends."""
    store = open_store(db)
    try:
        with store.session() as session:
            yield session
    finally:
        store.dispose()
