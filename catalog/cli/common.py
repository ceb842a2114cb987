"""Shared CLI pieces: the --db option and turning CatalogErrors into one-line exits."""

from __future__ import annotations

import errno
import functools
import os
import select
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

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


@contextmanager
def replaced_atomically(path: str) -> Iterator[TextIO]:
    """A file to write ``path``'s new content into. A regular file is replaced only once the
    new content is complete (a temporary file beside it, given the old one's owner, group and
    mode, renamed over it): a gateway watching a policy file never reads half of one, and a
    full disk or a failure midway leaves the old file as it was (writing in place had left
    4096 bytes of a policy, not JSON, where a valid one had been). Anything else is written in
    place as before: a device, a FIFO or ``/dev/stdout`` (a rename would have put a regular
    file where ``/dev/null`` was), a file with other hard links (they would keep the old
    content), and a file whose directory we may not write or whose owner we cannot give the
    new one. A link is written through to its target."""
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        target = Path(os.path.realpath(path))
        try:
            info: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            info = None
        special = path.startswith(("/dev/", "/proc/")) or str(target).startswith(("/dev/", "/proc/"))
        in_place = special or (info is not None and (not stat.S_ISREG(info.st_mode) or info.st_nlink > 1))
        beside = None if in_place else _new_file_beside(target, info)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    if beside is None:  # in place, as before
        with replaced_in_place(path) as out:
            yield out
        return
    fd, tmp = beside
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:  # a write of ours: name the file
            raise OSError(exc.errno, exc.strerror, path) from None
        raise


def _new_file_beside(target: Path, info: os.stat_result | None) -> tuple[int, str] | None:
    """An empty file beside ``target`` (open, and its name) with the target's owner, group and
    mode (a new one: the umask's), or None where that is not ours to make: a directory we may
    not write, an owner or group we cannot give."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except PermissionError:
        return None
    try:
        if info is not None:
            os.fchown(fd, info.st_uid, info.st_gid)
            mode = stat.S_IMODE(info.st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
    except PermissionError:
        os.close(fd)
        os.unlink(tmp)
        return None
    return fd, tmp


@contextmanager
def replaced_in_place(path: str) -> Iterator[TextIO]:
    """``path`` opened for writing as it is (truncated), write errors naming it."""
    try:
        with open(path, "w", encoding="utf-8") as out:
            yield out
    except OSError as exc:
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, path) from None


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
