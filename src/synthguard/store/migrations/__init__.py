"""Alembic migrations of the synthguard store; run them with ``Store.upgrade()`` (``store/db.py``)."""
