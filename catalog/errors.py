"""Errors a user can act on: each carries a one-line message the CLI prints as is."""


class CatalogError(Exception):
    """A fatal, explained error: the CLI prints ``str(exc)`` and exits non-zero."""

    exit_code = 1


class DatabaseError(CatalogError):
    exit_code = 3


class NotFound(CatalogError):
    exit_code = 2


class Ambiguous(CatalogError):
    exit_code = 2


class UsageError(CatalogError):
    """Arguments no run could use (as the CLI's own parser reports them): a schedule stops."""

    exit_code = 2
