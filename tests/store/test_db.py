"""The store: migrations on a fresh database, models equal to migrations, SQLite settings, URLs."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError, StatementError

from synthguard.config import Settings
from synthguard.errors import ConfigError
from synthguard.store import Store, open_store
from synthguard.store.db import MIGRATIONS
from synthguard.store.models import LibraryEntryRow, LibraryStateRow
from synthguard.store.schema import full_metadata
from tests.store import backends, database_url, migrated_store

TABLES = {"library_entries", "library_changes", "library_snapshots", "library_state", "review_hits"}
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    with migrated_store(backend, tmp_path) as made:
        yield made


def _tables(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names()) - {"alembic_version"}


def _entry(**overrides: object) -> LibraryEntryRow:
    values: dict[str, object] = {
        "id": "kw-1",
        "kind": "keyword",
        "term": "词",
        "category": "A1.6",
        "action": "block",
        "match": "default",
        "reason": "",
        "source": "",
        "proposer": "alice",
        "state": "proposed",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return LibraryEntryRow(**values)


def test_migrations_build_the_schema_on_an_empty_database(backend: str, tmp_path: Path) -> None:
    with database_url(backend, tmp_path) as url, open_store(url) as store:
        assert store.current_revision() is None
        assert _tables(store) == set()
        store.upgrade()
        assert store.current_revision() == Store.head_revision() is not None
        assert _tables(store) == set(full_metadata().tables) >= TABLES
        store.upgrade()  # idempotent
        assert store.current_revision() == Store.head_revision()
        with store.session() as session:
            state = session.get(LibraryStateRow, 1)
            assert state is not None and state.change_counter == 0


def test_models_and_migrations_describe_the_same_schema(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, full_metadata()) == []


def test_downgrade_removes_everything_and_upgrade_restores_it(store: Store) -> None:
    store.downgrade("base")
    assert store.current_revision() is None
    assert _tables(store) == set()
    store.upgrade()
    assert _tables(store) == set(full_metadata().tables)


def test_session_commits_or_rolls_back_as_a_whole(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session(write=True) as session:
        session.add(_entry())
        session.flush()
        raise RuntimeError("abandon")
    with store.session() as session:
        assert session.get(LibraryEntryRow, "kw-1") is None
    with store.session(write=True) as session:
        session.add(_entry())
    with store.session() as session:
        assert session.get(LibraryEntryRow, "kw-1") is not None


def test_times_come_back_aware_in_utc_and_naive_times_are_refused(store: Store) -> None:
    beijing = dt.timezone(dt.timedelta(hours=8))
    local = dt.datetime(2025, 6, 1, 20, 0, tzinfo=beijing)
    with store.session(write=True) as session:
        session.add(_entry(effective_from=local))
    with store.session() as session:
        row = session.get(LibraryEntryRow, "kw-1")
        assert row is not None and row.effective_from == NOW
        assert row.effective_from.utcoffset() == dt.timedelta(0)
        # Comparisons in SQL see the same instant whatever offset it was given in.
        found = session.scalar(
            sa.select(sa.func.count()).where(LibraryEntryRow.effective_from <= NOW + dt.timedelta(seconds=1))
        )
        assert found == 1
    with pytest.raises(StatementError, match="naive datetime"), store.session(write=True) as session:
        session.add(_entry(id="kw-2", created_at=dt.datetime(2025, 1, 1)))


def test_constraints_keep_vocabularies_closed_and_references_whole(store: Store) -> None:
    with pytest.raises(IntegrityError), store.session(write=True) as session:
        session.add(_entry(state="forgotten"))
    with pytest.raises(IntegrityError), store.session(write=True) as session:
        session.execute(
            sa.text(
                "INSERT INTO library_changes (at, actor, kind, entry_id, note) "
                "VALUES (:at, 'x', 'create', 'no-such-entry', '')"
            ),
            {"at": NOW},
        )


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as store, store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_in_memory_sqlite_is_one_database_for_the_store() -> None:
    with open_store("sqlite://") as store:
        store.upgrade()
        with store.session(write=True) as session:
            session.add(_entry())
        with store.session() as session:
            assert session.get(LibraryEntryRow, "kw-1") is not None


def test_default_url_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "deep" / "data"
    settings = Settings(data_dir=str(data))
    with open_store(settings=settings) as store:
        store.upgrade()
        assert store.dialect == "sqlite"
    assert (data / "synthguard.db").is_file()


def test_urls_that_cannot_be_used_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        open_store("not a url")
    with pytest.raises(ConfigError, match="cannot use database URL"):
        open_store("nosuchdb://localhost/x")
    # A server that does not answer: reported when first used, with the password hidden.
    with open_store("postgresql://user:secret@127.0.0.1:1/x") as store:
        assert store.engine.dialect.driver == "psycopg"  # plain postgresql:// means psycopg 3
        with pytest.raises(ConfigError, match="cannot open database") as caught:
            store.upgrade()
        assert "secret" not in str(caught.value)
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        pass
    with pytest.raises(ConfigError, match="closed"), store.session():
        pass


def test_offline_mode_prints_the_sql_for_postgresql() -> None:
    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://nobody@localhost/none")
    command.upgrade(config, "head", sql=True)
    sql = buffer.getvalue()
    assert "CREATE TABLE library_entries" in sql
    assert "TIMESTAMP WITH TIME ZONE" in sql
    assert "INSERT INTO library_state" in sql


def test_write_sessions_serialise_read_modify_write(store: Store) -> None:
    """Two writers each read the counter and write it back plus one: none of the updates is lost
    (SQLite: BEGIN IMMEDIATE; PostgreSQL: the row lock of SELECT ... FOR UPDATE)."""
    rounds = 15
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(rounds):
                with store.session(write=True) as session:
                    query = sa.select(LibraryStateRow).where(LibraryStateRow.id == 1).with_for_update()
                    state = session.scalars(query).one()
                    state.change_counter = state.change_counter + 1
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    with store.session() as session:
        assert session.scalar(sa.select(LibraryStateRow.change_counter)) == 2 * rounds
