"""Fixtures for governance service tests: settings with fresh identity keys, a migrated store per backend.

- ``gov_keys``: a fresh ``(identity_encryption_key, identity_hash_key)`` pair (base64 text).
- ``gov_settings``: ``Settings`` with those keys and a filing number.
- ``gov_store``: a migrated store, parametrised over ``tests.store.backends()`` (SQLite, and
  PostgreSQL when ``SYNTHGUARD_TEST_DATABASE_URL`` is set).
- ``audit_events(store, subject=None)``: the audit records' ``(event, actor, subject, data)``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthguard.audit.log import find_records
from synthguard.config import Settings
from synthguard.governance.crypto import generate_keys
from synthguard.store import Store, open_store
from tests.store import backends, migrated_store

#: Well-formed numbers used across the tests (checksums valid; not real people or companies).
RESIDENT_ID = "11010519491231002X"
RESIDENT_ID_2 = "110101199003071233"
USCC = "91110102MACQD9K640"
MOBILE = "13812345678"
MOBILE_E164 = "+8613812345678"


@pytest.fixture(scope="session")
def gov_keys() -> tuple[str, str]:
    return generate_keys()


@pytest.fixture
def gov_settings(gov_keys: tuple[str, str]) -> Settings:
    return Settings(
        identity_encryption_key=gov_keys[0],
        identity_hash_key=gov_keys[1],
        filing_number="Beijing-SG-202601010001",
        filing_link="https://beian.example.cn/algorithm/202601010001",
    )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per session; each test gets a copy (migrating is the slow part)."""
    folder = tmp_path_factory.mktemp("gov-template")
    with migrated_store("sqlite", folder) as store:
        database = store.url.database
    assert database is not None
    return Path(database)


@pytest.fixture(params=backends())
def gov_store(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        copy = tmp_path / "gov.db"
        shutil.copyfile(sqlite_template, copy)
        with open_store(f"sqlite:///{copy}") as store:
            assert store.current_revision() == Store.head_revision()
            yield store
        return
    with migrated_store(request.param, tmp_path) as store:
        yield store


def audit_events(
    store: Store, *, subject: str | None = None, event: str | None = None
) -> list[dict[str, Any]]:
    """The audit records (oldest first) as dicts with the data parsed."""
    with store.session() as session:
        records = find_records(session, subject=subject, event=event, limit=10_000)
    return [
        {"event": r.event, "actor": r.actor, "subject": r.subject, "data": json.loads(r.data)}
        for r in records
    ]
