"""Fixtures of the audit tests: a migrated store per backend, settings with a checkpoint key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from synthguard.config import Settings
from synthguard.store import Store
from tests.store import backends, migrated_store


@pytest.fixture(scope="session")
def checkpoint_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


@pytest.fixture
def audit_settings(checkpoint_key_pem: str, tmp_path: Path) -> Settings:
    return Settings(
        audit_checkpoint_key=checkpoint_key_pem,
        audit_checkpoint_interval=4,
        audit_origin="test.example/audit",
        data_dir=str(tmp_path / "data"),
    )


@pytest.fixture(scope="session", params=backends())
def _migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with migrated_store(request.param, tmp_path_factory.mktemp("audit-store")) as opened:
        yield opened


@pytest.fixture
def store(_migrated: Store) -> Store:
    """A migrated store (one per backend and session) with an empty audit log: migrating is slow."""
    with _migrated.session(write=True) as session:
        for table in ("audit_checkpoints", "audit_nodes", "audit_records"):
            session.execute(sa.text(f"DELETE FROM {table}"))
        session.execute(sa.text("DELETE FROM audit_state"))
        session.execute(sa.text("INSERT INTO audit_state (id, size, frontier) VALUES (1, 0, :f)"), {"f": b""})
    return _migrated
