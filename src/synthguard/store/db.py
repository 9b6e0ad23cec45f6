"""Engine, sessions and migrations: one code path for SQLite (default) and PostgreSQL (production).

``open_store(url)`` returns a ``Store``, a context manager that holds one SQLAlchemy ``Engine`` and
its session factories and disposes of the engine's connections when it closes::

    with open_store("sqlite:///var/synthguard.db") as store:
        store.upgrade()                       # Alembic migrations up to the newest revision
        with store.session(write=True) as session:
            session.add(...)                  # committed when the block ends, rolled back on error

The URL defaults to ``Settings.resolved_database_url()`` (a SQLite file in ``data_dir``). A plain
``postgresql://`` URL means the psycopg 3 driver (``postgresql+psycopg://``), the one synthguard
installs; any other driver named in the URL is used as given.

The schema is created and changed ONLY by the Alembic migrations in ``store/migrations`` (run in code
by ``upgrade``; no ``alembic.ini`` is needed), never by ``metadata.create_all``.

SQLite, because it is a file shared by processes:

- every connection gets ``PRAGMA foreign_keys=ON`` (off by default in SQLite), ``journal_mode=WAL``
  (readers do not block the writer) for files, and a busy timeout;
- SQLAlchemy, not the ``sqlite3`` module, begins transactions (the sqlite3 module's legacy mode begins
  one only before DML, which breaks transactional DDL, repeatable reads and savepoints);
- ``session(write=True)`` begins with ``BEGIN IMMEDIATE``: it takes the write lock before reading,
  so a read-modify-write cannot fail half-way when another writer commits in between. On PostgreSQL
  the same code relies on row locks (``SELECT ... FOR UPDATE``) taken by the callers;
- an in-memory URL (``sqlite://``) keeps one connection for the store's life, so every session sees
  the same database.

PostgreSQL through psycopg: statements are not prepared on the server (``prepare_threshold=None``):
a generic plan of a large ``IN`` list is a sequential scan (measured 25 times slower on 10,000
entries), and a pooler in transaction mode cannot keep prepared statements.

Failures to open or migrate the database raise ``ConfigError`` (a URL that cannot be parsed, a driver
that is not installed, a server that cannot be reached).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool, StaticPool

from synthguard.config import Settings, load_settings
from synthguard.errors import ConfigError

__all__ = ["MIGRATIONS", "Store", "open_store"]

#: The Alembic script directory shipped inside the package.
MIGRATIONS: Final = Path(__file__).resolve().with_name("migrations")
#: Milliseconds a SQLite connection waits for another writer's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS: Final = 10_000
#: Connections a store's pool keeps open, and how many more it opens under load (SQLAlchemy's
#: defaults, named because the API sizes its session gate from them: ``Store.max_connections``).
POOL_SIZE: Final = 5
POOL_OVERFLOW: Final = 10
#: Seconds a session waits for a free pooled connection before ``sqlalchemy.exc.TimeoutError``.
POOL_TIMEOUT_S: Final = 30
# Any constant: serialises concurrent ``upgrade`` calls on one PostgreSQL database.
_PG_MIGRATION_LOCK: Final = 0x5347_4D49_4752  # "SGMIGR"


class Store:
    """An open database: the engine, the session factories, and the migrations.

    Use ``open_store`` to make one. Sessions from ``session`` are not shared between threads; the
    store itself is (its engine pools connections).
    """

    def __init__(self, url: URL, engine: Engine) -> None:
        self.url: Final = url
        self.engine: Final = engine
        #: Sessions for reading (and for writes that need no lock taken up front).
        self.sessions: Final = sessionmaker(engine, expire_on_commit=False)
        self._write_engine = engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else engine
        #: Sessions for read-modify-write transactions (``BEGIN IMMEDIATE`` on SQLite).
        self.write_sessions: Final = sessionmaker(self._write_engine, expire_on_commit=False)
        self._closed = False

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"`` (or another SQLAlchemy dialect name)."""
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def max_connections(self) -> int | None:
        """The most connections the pool hands out at once (1 for in-memory SQLite), ``None``: no limit.

        A caller that holds more sessions than this at once, each waiting for the next, waits for
        ``POOL_TIMEOUT_S`` and gets ``sqlalchemy.exc.TimeoutError``; the API bounds its sessions below it.
        """
        pool = self.engine.pool
        if isinstance(pool, StaticPool):
            return 1
        if isinstance(pool, QueuePool):
            # no public accessor: open_store sets it to POOL_OVERFLOW; -1 would mean no limit
            overflow = int(getattr(pool, "_max_overflow", POOL_OVERFLOW))
            return None if overflow < 0 else pool.size() + overflow
        return None

    def __repr__(self) -> str:
        return f"Store({self.url.render_as_string(hide_password=True)!r})"

    # -- sessions ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on an error."""
        if self._closed:
            raise ConfigError("the store is closed")
        factory = self.write_sessions if write else self.sessions
        with factory.begin() as session:
            yield session

    # -- migrations ----------------------------------------------------------------------------

    def alembic_config(self) -> Config:
        """An Alembic configuration built in code: the packaged scripts and this store's URL."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        # configparser interpolates '%': a password or path holding one must be escaped.
        url_text = self.url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url_text.replace("%", "%%"))
        return config

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema up to ``revision`` (default the newest); a no-op when it is there.

        Runs in one transaction (SQLite and PostgreSQL both have transactional DDL), so a failed
        migration leaves the schema as it was. Concurrent callers are serialised.
        """
        self._migrate(lambda config: command.upgrade(config, revision))

    def downgrade(self, revision: str) -> None:
        """Migrate the schema down to ``revision`` (``"base"``: no tables). Data in dropped tables is lost."""
        self._migrate(lambda config: command.downgrade(config, revision))

    def current_revision(self) -> str | None:
        """The revision the database is at, ``None`` for an empty database."""
        with _database_errors(self.url), self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        """The newest revision the migrations know."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        return ScriptDirectory.from_config(config).get_current_head()

    def _migrate(self, run: Any) -> None:
        config = self.alembic_config()
        with _database_errors(self.url), self._write_engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            config.attributes["connection"] = connection
            run(config)

    # -- life ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_store(
    url: str | URL | None = None, *, settings: Settings | None = None, echo: bool = False
) -> Store:
    """Open the database at ``url`` (default: the settings' ``resolved_database_url()``).

    Nothing is created but the SQLite file's folder; call ``Store.upgrade()`` for the schema.
    Raises ``ConfigError`` for a URL that cannot be parsed or a driver that is not installed.
    """
    if url is None:
        url = (settings if settings is not None else load_settings()).resolved_database_url()
    parsed = _parse_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.drivername.endswith("+psycopg"):
        # psycopg prepares a statement on the server after 5 runs, and PostgreSQL may then use a
        # generic plan: for ``id IN (500 parameters)`` a sequential scan, 25 times slower than the
        # plan made with the values. Statements here are few and cheap to plan; a pooler in
        # transaction mode (pgbouncer) cannot keep prepared statements anyway.
        kwargs["connect_args"] = {"prepare_threshold": None}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        if in_memory:
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"]["check_same_thread"] = False
        elif not database.startswith("file:"):
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    if kwargs.get("poolclass") is None:
        kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=POOL_TIMEOUT_S)
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise ConfigError(f"cannot use database URL {_safe(parsed)}: {error}") from error
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine, wal=not kwargs.get("poolclass"))
    return Store(parsed, engine)


def _parse_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise ConfigError(f"not a database URL: {error}") from error
    if parsed.drivername in ("postgresql", "postgres"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; synthguard ships psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _sqlite_setup(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (see ``on_begin``): take transaction control from sqlite3.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


@contextlib.contextmanager
def _database_errors(url: URL) -> Iterator[None]:
    """Turn a database that cannot be reached or opened into a ``ConfigError`` naming its URL."""
    try:
        yield
    except exc.OperationalError as error:
        raise ConfigError(f"cannot open database {_safe(url)}: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
