"""The store: one schema on SQLite (default) or PostgreSQL (production), created only by migrations.

``open_store(url)`` gives a ``Store`` (a context manager holding the engine and a session factory);
``Store.upgrade()`` runs the Alembic migrations in ``store/migrations`` up to the newest revision.
"""

from synthguard.store.db import Store, open_store

__all__ = ["Store", "open_store"]
