"""Fixtures for API tests: a migrated store per backend, the app, anonymous and logged-in clients.

::

    def test_something(client, client_as):
        assert client.get("/api/things").status_code == 401
        reviewer = client_as(Role.REVIEWER)           # a new user with that role, logged in
        assert reviewer.post("/api/things", json={...}).status_code == 201

- ``api_store``: a migrated ``Store``, parametrised over ``tests.store.backends()`` (SQLite, and
  PostgreSQL when ``SYNTHGUARD_TEST_DATABASE_URL`` is set). SQLite stores are copies of one database
  migrated once per session; PostgreSQL ones are migrated per test, each in its own schema.
- ``api_settings``: ``Settings`` for tests (cheap Argon2, cookies over plain HTTP, generous rate
  limits, ``data_dir`` in ``tmp_path``) plus ``api_settings_overrides``, a dict a test module may
  override to add its own keys (``identity_encryption_key`` and so on).
- ``app``: ``create_app(api_settings, api_store)``.
- ``client``: an anonymous ``TestClient``.
- ``client_as(*roles)``: a ``TestClient`` logged in (through ``POST /api/auth/login``) as a new user
  holding ``roles``; it sends the CSRF token on every request. ``client_as.principal(client)`` gives
  the ``Principal`` of a client it made (for ``actor`` checks).
- ``token_client(*roles)``: a ``TestClient`` authenticated with a new machine token.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from synthguard.accounts import service
from synthguard.accounts.principal import Principal
from synthguard.accounts.roles import Role
from synthguard.api.app import create_app
from synthguard.api.deps import CSRF_HEADER
from synthguard.config import Settings
from synthguard.store import Store, open_store
from tests.store import backends, migrated_store

#: Password of every user the fixtures make.
TEST_PASSWORD = "correct horse battery staple"

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to the newest revision, copied for each test (migrating is slow)."""
    folder = tmp_path_factory.mktemp("api-template")
    path = folder / "template.db"
    with open_store(f"sqlite:///{path}") as store:
        store.upgrade()
    return path


@pytest.fixture(params=backends())
def api_store(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        target = tmp_path / "store" / "synthguard.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal"):  # the WAL is folded in when the last connection closes
            source = _sqlite_template.with_name(_sqlite_template.name + suffix)
            if source.exists():
                shutil.copyfile(source, target.with_name(target.name + suffix))
        with open_store(f"sqlite:///{target}") as store:
            assert store.current_revision() == Store.head_revision()
            yield store
        return
    with migrated_store(request.param, tmp_path) as store:
        yield store


@pytest.fixture
def api_settings_overrides() -> dict[str, Any]:
    """Override in a test module to add settings (keys) the routes under test need."""
    return {}


@pytest.fixture
def api_settings(tmp_path: Path, api_settings_overrides: dict[str, Any]) -> Settings:
    base = Settings(
        data_dir=str(tmp_path / "data"),
        api_cookie_secure=False,
        api_public_rate_per_minute=10_000,
        api_login_rate_per_minute=10_000,
        # cheap Argon2 parameters: tests make many users
        api_argon2_time_cost=1,
        api_argon2_memory_kib=64,
        api_argon2_parallelism=1,
    )
    return dataclasses.replace(base, **api_settings_overrides)


@pytest.fixture
def app(api_settings: Settings, api_store: Store) -> FastAPI:
    return create_app(api_settings, api_store)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as anonymous:
        yield anonymous


def make_user(store: Store, settings: Settings, *roles: Role | str, name: str | None = None) -> str:
    """Create a user with ``roles`` directly in the store (audited as ``system``); return its name."""
    name = name or f"{'-'.join(sorted(Role(r).value for r in roles)).replace('_', '-')}-{next(_counter)}"
    with store.session(write=True) as session:
        service.create_user(
            session, name=name, password=TEST_PASSWORD, roles=roles, actor="system", settings=settings
        )
    return name


def login(client: TestClient, name: str, password: str = TEST_PASSWORD) -> dict[str, Any]:
    """Log ``client`` in; it then sends the CSRF token with every request."""
    response = client.post("/api/auth/login", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    client.headers[CSRF_HEADER] = body["csrf_token"]
    return body


class ClientFactory:
    """``client_as(*roles)``: logged-in clients, closed at the end of the test."""

    def __init__(self, app: FastAPI, store: Store, settings: Settings) -> None:
        self.app, self.store, self.settings = app, store, settings
        self._clients: list[TestClient] = []
        self._principals: dict[int, Principal] = {}

    def __call__(self, *roles: Role | str, name: str | None = None) -> TestClient:
        if not roles:
            raise ValueError("client_as needs at least one role")
        user = make_user(self.store, self.settings, *roles, name=name)
        made = TestClient(self.app)
        made.__enter__()
        self._clients.append(made)
        login(made, user)
        self._principals[id(made)] = Principal(user, frozenset(Role(r) for r in roles), "session")
        return made

    def token(self, *roles: Role | str) -> TestClient:
        """A client authenticated with a new machine token scoped to ``roles``."""
        name = f"token-{next(_counter)}"
        with self.store.session(write=True) as session:
            made_token = service.create_token(session, name=name, roles=roles, actor="system")
        made = TestClient(self.app, headers={"Authorization": f"Bearer {made_token.value}"})
        made.__enter__()
        self._clients.append(made)
        self._principals[id(made)] = Principal(name, frozenset(Role(r) for r in roles), "token")
        return made

    def principal(self, client: TestClient) -> Principal:
        return self._principals[id(client)]

    def close(self) -> None:
        for made in self._clients:
            made.__exit__(None, None, None)


@pytest.fixture
def client_as(app: FastAPI, api_store: Store, api_settings: Settings) -> Iterator[ClientFactory]:
    factory = ClientFactory(app, api_store, api_settings)
    yield factory
    factory.close()


@pytest.fixture
def token_client(client_as: ClientFactory) -> Callable[..., TestClient]:
    return client_as.token
