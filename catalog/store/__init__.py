"""The catalogue store: SQLAlchemy 2.x models, Alembic migrations and the write/read API."""

from catalog.store.db import DEFAULT_URL, open_store, resolve_url

__all__ = ["DEFAULT_URL", "open_store", "resolve_url"]
