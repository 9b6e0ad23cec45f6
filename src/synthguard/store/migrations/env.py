"""Alembic's environment for the synthguard store, run by ``Store.upgrade()`` without an ini file.

``Store`` passes its open connection (inside its transaction) as ``config.attributes["connection"]``;
the ``alembic`` command line can also be pointed here (``script_location`` = this folder, and
``sqlalchemy.url``), and ``--sql`` (offline mode) prints the SQL for a database administrator.
Imported outside an Alembic run (a documentation or import checker), it does nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from alembic.config import Config

from synthguard.store.schema import full_metadata

target_metadata = full_metadata()


def _configure_and_run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them ("batch" mode); PostgreSQL alters in place.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline(config: Config) -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(config: Config) -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or pass a connection in config.attributes")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as own:
            _configure_and_run(own)
    finally:
        engine.dispose()


def _running_config() -> Config | None:
    try:
        return context.config
    except AttributeError:  # alembic.context is only populated while Alembic runs this file
        return None


_config = _running_config()
if _config is not None:
    if context.is_offline_mode():
        run_offline(_config)
    else:
        run_online(_config)
