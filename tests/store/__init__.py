"""Tests of the store, and helpers that give other tests a migrated store on SQLite or PostgreSQL.

``backends()`` is ``["sqlite"]``, plus ``"postgresql"`` when ``SYNTHGUARD_TEST_DATABASE_URL`` names a
PostgreSQL server (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). ``migrated_store``
gives each test its own database: a SQLite file in ``tmp_path``, or a fresh PostgreSQL schema (the
connection's ``search_path``) dropped afterwards, so parallel runs never collide.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from synthguard.store import Store, open_store

TEST_DATABASE_ENV = "SYNTHGUARD_TEST_DATABASE_URL"


def backends() -> list[str]:
    """The databases the store tests run on."""
    return ["sqlite", "postgresql"] if os.environ.get(TEST_DATABASE_ENV) else ["sqlite"]


@contextlib.contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of ``backend`` that exists for the block."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'synthguard.db'}"
        return
    with postgres_schema_url(os.environ[TEST_DATABASE_ENV]) as url:
        yield url


@contextlib.contextmanager
def postgres_schema_url(server_url: str, prefix: str = "sgtest") -> Iterator[str]:
    """A URL of a fresh schema on the PostgreSQL server ``server_url`` (the connection's
    ``search_path``), dropped with everything in it when the block ends (tests and benches)."""
    base = make_url(server_url)
    if base.drivername in ("postgresql", "postgres"):
        base = base.set(drivername="postgresql+psycopg")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@contextlib.contextmanager
def migrated_store(backend: str, tmp_path: Path) -> Iterator[Store]:
    """A store of ``backend`` with the schema at the newest revision."""
    with database_url(backend, tmp_path) as url, open_store(url) as store:
        store.upgrade()
        yield store
