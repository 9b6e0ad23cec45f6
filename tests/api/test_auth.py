"""Authentication: passwords, sessions with CSRF, machine tokens, rate limits, headers, audit records."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from synthguard.accounts import service
from synthguard.accounts.models import ApiTokenRow, SessionRow, UserRow
from synthguard.accounts.roles import Role
from synthguard.api.app import create_app
from synthguard.api.deps import CSRF_HEADER, SESSION_COOKIE, WriteSession, write_session
from synthguard.api.ratelimit import TokenBucketLimiter
from synthguard.audit.log import find_records, iter_records
from synthguard.audit.verify import verify_log
from synthguard.config import Settings
from synthguard.errors import AuthenticationError, ConfigError, ConflictError, RateLimitError, UsageError
from synthguard.store import Store, open_store
from tests.api.conftest import TEST_PASSWORD, ClientFactory, login, make_user


def _events(store: Store, subject: str) -> list[str]:
    with store.session() as session:
        return [record.event for record in find_records(session, subject=subject)]


def test_login_sets_a_strict_http_only_cookie_and_returns_a_csrf_token(
    client: TestClient, api_store: Store, api_settings: Settings
) -> None:
    name = make_user(api_store, api_settings, Role.REVIEWER)
    response = client.post("/api/auth/login", json={"name": name, "password": TEST_PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["roles"] == ["reviewer"] and body["kind"] == "session" and body["actor"] == f"user:{name}"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert client.get("/api/auth/me").json()["name"] == name
    # the cookie value and the CSRF token are stored as SHA-256 only
    token = client.cookies[SESSION_COOKIE]
    with api_store.session() as session:
        stored = session.scalars(sa.select(SessionRow)).one()
        assert token not in (stored.token_hash, stored.csrf_hash) and len(stored.token_hash) == 64
    assert _events(api_store, f"user:{name}") == ["account.user_created", "account.login"]


def test_the_cookie_is_secure_by_default(api_store: Store, api_settings: Settings) -> None:
    app = create_app(dataclasses.replace(api_settings, api_cookie_secure=True), api_store)
    name = make_user(api_store, api_settings, Role.AUDITOR)
    with TestClient(app, base_url="https://testserver") as secure:
        response = secure.post("/api/auth/login", json={"name": name, "password": TEST_PASSWORD})
        assert "Secure" in response.headers["set-cookie"]
        assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("password", ["wrong password!", TEST_PASSWORD.upper()])
def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(
    client: TestClient, api_store: Store, api_settings: Settings, password: str
) -> None:
    name = make_user(api_store, api_settings, Role.REVIEWER)
    wrong = client.post("/api/auth/login", json={"name": name, "password": password})
    unknown = client.post("/api/auth/login", json={"name": "nobody", "password": TEST_PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == "AuthenticationError"
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert SESSION_COOKIE not in client.cookies


def test_cookie_writes_need_the_csrf_token(client_as: ClientFactory) -> None:
    admin = client_as(Role.ADMIN)
    good = dict(admin.headers)
    del admin.headers[CSRF_HEADER]
    refused = admin.post("/api/accounts/tokens", json={"name": "ci", "roles": ["auditor"]})
    assert refused.status_code == 401 and CSRF_HEADER in refused.json()["message"]
    admin.headers[CSRF_HEADER] = "not-the-token"
    assert admin.post("/api/accounts/tokens", json={"name": "ci", "roles": ["auditor"]}).status_code == 401
    assert admin.get("/api/accounts/tokens").status_code == 200  # reads need none
    admin.headers[CSRF_HEADER] = good[CSRF_HEADER.lower()]
    assert admin.post("/api/accounts/tokens", json={"name": "ci", "roles": ["auditor"]}).status_code == 201


def test_logout_ends_the_session_for_good(client_as: ClientFactory, api_store: Store) -> None:
    reviewer = client_as(Role.REVIEWER)
    name = client_as.principal(reviewer).name
    cookie = reviewer.cookies[SESSION_COOKIE]
    assert reviewer.post("/api/auth/logout").status_code == 204
    assert SESSION_COOKIE not in reviewer.cookies
    reviewer.cookies.set(SESSION_COOKIE, cookie)
    replay = reviewer.get("/api/auth/me")
    assert replay.status_code == 401 and "ended" in replay.json()["message"]
    assert _events(api_store, f"user:{name}")[-1] == "account.logout"


def test_an_expired_session_is_refused(client_as: ClientFactory, api_store: Store) -> None:
    auditor = client_as(Role.AUDITOR)
    with api_store.session(write=True) as session:
        session.execute(
            sa.update(SessionRow).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert auditor.get("/api/auth/me").status_code == 401


def test_a_disabled_user_loses_its_sessions_and_cannot_log_in(
    client_as: ClientFactory, client: TestClient
) -> None:
    admin = client_as(Role.ADMIN)
    reviewer = client_as(Role.REVIEWER)
    name = client_as.principal(reviewer).name
    response = admin.patch(f"/api/accounts/users/{name}", json={"disabled": True})
    assert response.status_code == 200 and response.json()["disabled"] is True
    assert reviewer.get("/api/auth/me").status_code == 401
    assert client.post("/api/auth/login", json={"name": name, "password": TEST_PASSWORD}).status_code == 401
    assert admin.patch(f"/api/accounts/users/{name}", json={"disabled": False}).status_code == 200
    login(client, name)


def test_roles_take_effect_at_once(client_as: ClientFactory) -> None:
    admin = client_as(Role.ADMIN)
    auditor = client_as(Role.AUDITOR)
    name = client_as.principal(auditor).name
    assert auditor.get("/api/accounts/users").status_code == 403
    assert admin.patch(f"/api/accounts/users/{name}", json={"roles": ["admin"]}).status_code == 200
    assert auditor.get("/api/accounts/users").status_code == 200


def test_the_last_admin_cannot_lock_everyone_out(client_as: ClientFactory) -> None:
    admin = client_as(Role.ADMIN)
    name = client_as.principal(admin).name
    for change in ({"disabled": True}, {"roles": ["auditor"]}):
        response = admin.patch(f"/api/accounts/users/{name}", json=change)
        assert response.status_code == 409 and "last enabled admin" in response.json()["message"]
    other = client_as(Role.ADMIN)
    assert other.patch(f"/api/accounts/users/{name}", json={"roles": ["auditor"]}).status_code == 200


def test_changing_the_own_password_keeps_this_session_and_ends_the_others(
    client_as: ClientFactory, app: FastAPI
) -> None:
    first = client_as(Role.REVIEWER)
    name = client_as.principal(first).name
    with TestClient(app) as second:
        login(second, name)
        wrong = first.post("/api/auth/password", json={"current_password": "nope", "new_password": "x" * 20})
        assert wrong.status_code == 403
        short = first.post(
            "/api/auth/password", json={"current_password": TEST_PASSWORD, "new_password": "short"}
        )
        assert short.status_code == 400
        changed = first.post(
            "/api/auth/password",
            json={"current_password": TEST_PASSWORD, "new_password": "a new password 2026"},
        )
        assert changed.status_code == 204, changed.text
        assert first.get("/api/auth/me").status_code == 200
        assert second.get("/api/auth/me").status_code == 401
        login(second, name, "a new password 2026")


def test_a_hash_with_old_parameters_is_replaced_at_login(
    client: TestClient, api_store: Store, api_settings: Settings
) -> None:
    name = make_user(api_store, api_settings, Role.AUDITOR)
    old = PasswordHasher(time_cost=1, memory_cost=32, parallelism=1).hash(TEST_PASSWORD)
    with api_store.session(write=True) as session:
        session.execute(sa.update(UserRow).where(UserRow.name == name).values(password_hash=old))
    login(client, name)
    with api_store.session() as session:
        new = session.scalar(sa.select(UserRow.password_hash).where(UserRow.name == name))
    assert new != old and new is not None and "m=64,t=1,p=1" in new


def test_tokens_authenticate_until_revoked(client_as: ClientFactory, api_store: Store) -> None:
    admin = client_as(Role.ADMIN)
    made = admin.post("/api/accounts/tokens", json={"name": "ingest-1", "roles": ["reviewer"]})
    assert made.status_code == 201
    value = made.json()["token"]
    assert value.startswith("sg_") and made.json()["prefix"] == value[:9]
    with TestClient(admin.app, headers={"Authorization": f"Bearer {value}"}) as machine:
        me = machine.get("/api/auth/me").json()
        assert me == {"name": "ingest-1", "roles": ["reviewer"], "kind": "token", "actor": "token:ingest-1"}
        assert machine.get("/api/accounts/users").status_code == 403
        listed = {t["name"]: t for t in admin.get("/api/accounts/tokens").json()}
        assert "token" not in listed["ingest-1"] and listed["ingest-1"]["last_used_at"] is not None
        assert admin.post("/api/accounts/tokens/ingest-1/revoke").status_code == 200
        refused = machine.get("/api/auth/me")
        assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    with api_store.session() as session:
        stored = session.scalar(sa.select(ApiTokenRow.token_hash).where(ApiTokenRow.name == "ingest-1"))
    assert stored is not None and value not in stored
    assert _events(api_store, "token:ingest-1") == ["account.token_created", "account.token_revoked"]
    again = admin.post("/api/accounts/tokens", json={"name": "ingest-1", "roles": ["reviewer"]})
    assert again.status_code == 409


@pytest.mark.parametrize(
    "header",
    ["Bearer sg_unknownunknownunknownunknown", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer"],
)
def test_bad_authorization_headers_are_401_even_on_public_routes_that_check(
    client: TestClient, header: str
) -> None:
    response = client.get("/api/auth/me", headers={"Authorization": header})
    assert response.status_code == 401 and response.json()["error"] == "AuthenticationError"


def test_an_expired_token_is_refused(api_store: Store, app: FastAPI) -> None:
    with api_store.session(write=True) as session:
        made = service.create_token(session, name="short-lived", roles=[Role.AUDITOR], actor="system")
        made.row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with TestClient(app, headers={"Authorization": f"Bearer {made.value}"}) as machine:
        response = machine.get("/api/auth/me")
    assert response.status_code == 401 and "expired" in response.json()["message"]


def test_login_is_rate_limited_per_address_and_per_name(api_store: Store, api_settings: Settings) -> None:
    limited = dataclasses.replace(api_settings, api_login_rate_per_minute=3)
    app = create_app(limited, api_store)
    name = make_user(api_store, api_settings, Role.REVIEWER)
    with TestClient(app) as client:
        for _ in range(3):
            assert (
                client.post("/api/auth/login", json={"name": name, "password": "wrong!"}).status_code == 401
            )
        blocked = client.post("/api/auth/login", json={"name": name, "password": TEST_PASSWORD})
        assert blocked.status_code == 429 and blocked.json()["error"] == "RateLimitError"
        assert int(blocked.headers["retry-after"]) >= 1
    # another address is still limited for this name
    app.state.login_limiter.reset()
    with TestClient(app) as other:
        assert (
            other.post("/api/auth/login", json={"name": name, "password": TEST_PASSWORD}).status_code == 429
        )


def test_security_headers_and_error_body_on_every_response(client: TestClient) -> None:
    for response in (
        client.get("/api/health"),
        client.get("/api/no-such-route"),
        client.get("/openapi.json"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]
    missing = client.get("/api/no-such-route")
    assert missing.status_code == 404 and missing.json() == {"error": "HTTPError", "message": "Not Found"}


def test_request_bodies_over_the_limit_are_refused(api_store: Store, api_settings: Settings) -> None:
    app = create_app(dataclasses.replace(api_settings, api_max_request_bytes=1000), api_store)
    with TestClient(app) as client:
        big = client.post("/api/auth/login", json={"name": "x", "password": "p" * 2000})
        assert big.status_code == 413 and big.json()["error"] == "MediaLimitError"

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(20):
                yield b"p" * 100

        streamed = client.post(
            "/api/auth/login", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413


def test_health_is_public_and_names_the_schema_revision(client: TestClient) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["revision"] == Store.head_revision()


def test_the_app_refuses_a_database_that_is_not_migrated(api_settings: Settings, tmp_path) -> None:
    from synthguard.store import open_store

    with (
        open_store(f"sqlite:///{tmp_path / 'empty.db'}") as empty,
        pytest.raises(ConfigError, match="revision"),
    ):
        create_app(api_settings, empty)


def test_every_account_change_is_in_the_audit_log_and_it_verifies(
    client_as: ClientFactory, api_store: Store
) -> None:
    admin = client_as(Role.ADMIN)
    actor = client_as.principal(admin).actor
    created = admin.post(
        "/api/accounts/users", json={"name": "carol", "password": TEST_PASSWORD, "roles": ["reviewer"]}
    )
    assert created.status_code == 201 and created.json()["roles"] == ["reviewer"]
    assert "password_hash" not in created.json()
    admin.patch("/api/accounts/users/carol", json={"roles": ["reviewer", "auditor"]})
    admin.patch("/api/accounts/users/carol", json={"password": "another password 1"})
    admin.patch("/api/accounts/users/carol", json={"disabled": True})
    admin.patch("/api/accounts/users/carol", json={"disabled": False})
    assert _events(api_store, "user:carol") == [
        "account.user_created",
        "account.roles_changed",
        "account.password_changed",
        "account.user_disabled",
        "account.user_enabled",
    ]
    with api_store.session() as session:
        records = find_records(session, subject="user:carol")
        assert {r.actor for r in records} == {actor}
        assert all(TEST_PASSWORD not in r.data and "argon2" not in r.data for r in records)
        assert verify_log(session, public_key=None).ok


def test_service_refuses_bad_names_passwords_and_roles(api_store: Store, api_settings: Settings) -> None:
    with api_store.session(write=True) as session:
        for name in ("", "has space", "-dash-first", "x" * 65, "名字"):
            with pytest.raises(UsageError):
                service.create_user(
                    session,
                    name=name,
                    password=TEST_PASSWORD,
                    roles=["admin"],
                    actor="system",
                    settings=api_settings,
                )
        for password in ("short", "nul\x00" * 4, "\ud800" * 12):
            with pytest.raises(UsageError):
                service.create_user(
                    session,
                    name="ok",
                    password=password,
                    roles=["admin"],
                    actor="system",
                    settings=api_settings,
                )
        for roles in ([], ["root"]):
            with pytest.raises(UsageError):
                service.create_user(
                    session,
                    name="ok",
                    password=TEST_PASSWORD,
                    roles=roles,
                    actor="system",
                    settings=api_settings,
                )
    make_user(api_store, api_settings, Role.AUDITOR, name="dup")
    with pytest.raises(ConflictError), api_store.session(write=True) as session:
        service.create_user(
            session,
            name="dup",
            password=TEST_PASSWORD,
            roles=["auditor"],
            actor="system",
            settings=api_settings,
        )


def test_argon2_parameters_that_make_no_sense_are_a_config_error() -> None:
    with pytest.raises(ConfigError):
        service.password_hasher(Settings(api_argon2_memory_kib=4, api_argon2_parallelism=1))
    with pytest.raises(ConfigError):
        service.password_hasher(Settings(api_argon2_time_cost=0))


def test_authenticate_token_refuses_what_is_not_a_token(api_store: Store, api_settings: Settings) -> None:
    for value in ("", "sg_", "ghp_" + "a" * 40, "sg_" + "a" * 200, "sg_" + "!" * 30):
        with pytest.raises(AuthenticationError):
            service.authenticate_token(api_store, value, settings=api_settings)


# -- the rate limiter ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=6, per=60.0, clock=clock)
    for _ in range(6):
        limiter.hit("a")
    with pytest.raises(RateLimitError) as caught:
        limiter.hit("a")
    assert caught.value.retry_after == 10
    limiter.hit("b")  # keys are independent
    clock.now += 10
    limiter.hit("a")
    with pytest.raises(RateLimitError):
        limiter.hit("a")
    clock.now += 3600  # never more than the burst
    for _ in range(6):
        limiter.hit("a")
    with pytest.raises(RateLimitError):
        limiter.hit("a")


def test_token_bucket_forgets_the_quietest_keys_first() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=1, per=60.0, max_keys=3, clock=clock)
    for key in "abcd":
        limiter.hit(key)
    assert len(limiter) == 3
    limiter.hit("a")  # forgotten, so full again
    with pytest.raises(RateLimitError):
        limiter.hit("d")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(min_value=0, max_value=30)), max_size=60))
def test_token_bucket_never_admits_more_than_burst_plus_refill(steps: list[tuple[str, float]]) -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=5, per=60.0, clock=clock)
    admitted: dict[str, int] = {}
    start = clock.now
    for key, advance in steps:
        clock.now += advance
        try:
            limiter.hit(key)
        except RateLimitError as exc:
            assert exc.retry_after >= 1
        else:
            admitted[key] = admitted.get(key, 0) + 1
    elapsed = clock.now - start
    for count in admitted.values():
        assert count <= 5 + elapsed * 5 / 60 + 1e-9


def test_token_bucket_refuses_nonsense() -> None:
    for kwargs in ({"rate": 0}, {"rate": 1, "per": 0}, {"rate": 1, "burst": 0.5}):
        with pytest.raises(UsageError):
            TokenBucketLimiter(**kwargs)  # type: ignore[arg-type]


# -- client addresses ---------------------------------------------------------------------------------


def _request_from(peer: str, forwarded: str, trusted: tuple[str, ...]) -> Any:
    from fastapi import Request

    app = SimpleNamespace(state=SimpleNamespace(settings=Settings(api_trusted_proxies=trusted)))
    scope = {
        "type": "http",
        "app": app,
        "headers": [(b"x-forwarded-for", forwarded.encode())] if forwarded else [],
        "client": (peer, 50000),
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.5", "198.51.100.1", (), "203.0.113.5"),  # no trusted proxy: the header is ignored
        ("testclient", "198.51.100.1", ("10.0.0.0/8",), "testclient"),  # not an address: not trusted
        ("10.0.0.2", "203.0.113.9", ("10.0.0.0/8",), "203.0.113.9"),
        ("10.0.0.2", "198.51.100.1, 203.0.113.9", ("10.0.0.0/8",), "203.0.113.9"),  # client-sent hop ignored
        ("10.0.0.2", "203.0.113.9, 10.0.0.3", ("10.0.0.0/8",), "203.0.113.9"),  # proxies in a chain skipped
        ("192.0.2.7", "203.0.113.9", ("10.0.0.0/8",), "192.0.2.7"),  # not a trusted proxy
        ("10.0.0.2", "", ("10.0.0.0/8",), "10.0.0.2"),
        ("::1", "2001:db8::7", ("::1",), "2001:db8::7"),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: str, trusted: tuple[str, ...], expected: str
) -> None:
    from synthguard.api.deps import client_ip

    assert client_ip(_request_from(peer, forwarded, trusted)) == expected


def test_public_limiter_answers_429_with_retry_after(api_store: Store, api_settings: Settings) -> None:
    from synthguard.api.deps import PublicLimiter

    app = create_app(dataclasses.replace(api_settings, api_public_rate_per_minute=2), api_store)
    router = APIRouter()

    @router.get("/api/test-public", dependencies=[Depends(PublicLimiter)])
    def public() -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(router)
    with TestClient(app) as client:
        assert [client.get("/api/test-public").status_code for _ in range(3)] == [200, 200, 429]
        assert client.get("/api/test-public").headers["retry-after"] == "30"


# -- the accounts command line ------------------------------------------------------------------------


def _cli(
    args: list[str], database: str, env: dict[str, str] | None = None, prompt: str | None = None
) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from synthguard.cli.main import app as cli_app

    runner = CliRunner()
    merged = {
        "SYNTHGUARD_DATABASE_URL": database,
        "SYNTHGUARD_API_ARGON2_TIME_COST": "1",
        "SYNTHGUARD_API_ARGON2_MEMORY_KIB": "64",
        "SYNTHGUARD_API_ARGON2_PARALLELISM": "1",
        **(env or {}),
    }
    result = runner.invoke(cli_app, args, env=merged, input=prompt)
    return result.exit_code, result.stdout, result.stderr


def test_cli_creates_users_and_tokens_without_secrets_on_the_command_line(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    password = {"SYNTHGUARD_NEW_PASSWORD": TEST_PASSWORD}
    code, _out, err = _cli(["accounts", "create", "root", "--role", "admin"], database, password)
    assert code == 0, err
    code, _out, err = _cli(["accounts", "create", "root", "--role", "admin"], database, password)
    assert code == 1 and "ConflictError" in err
    code, _out, err = _cli(
        ["accounts", "create", "weak", "-r", "auditor"], database, {"SYNTHGUARD_NEW_PASSWORD": "x"}
    )
    assert code == 2 and "at least 12" in err
    code, _out, err = _cli(["accounts", "create", "nobody", "-r", "superuser"], database, password)
    assert code == 2 and "known roles" in err
    # from the prompt, asked twice
    code, _out, err = _cli(
        ["accounts", "create", "bob", "-r", "reviewer"], database, prompt="a long password\na long password\n"
    )
    assert code == 0, err
    code, _out, err = _cli(
        ["accounts", "create", "eve", "-r", "reviewer"], database, prompt="a long password\ndifferent one\n"
    )
    assert code == 2 and "differ" in err

    code, out, err = _cli(
        ["accounts", "token", "ingest", "--role", "reviewer", "--expires-days", "30"], database
    )
    assert code == 0, err
    token = out.strip()
    assert token.startswith("sg_") and "\n" not in token
    code, listing, _err = _cli(["accounts", "list"], database)
    assert code == 0 and "root" in listing and "ingest" in listing and token not in listing

    assert _cli(["accounts", "roles", "bob", "-r", "auditor", "-r", "reviewer"], database)[0] == 0
    assert _cli(["accounts", "disable", "bob"], database)[0] == 0
    assert _cli(["accounts", "enable", "bob"], database)[0] == 0
    assert (
        _cli(["accounts", "password", "bob"], database, {"SYNTHGUARD_NEW_PASSWORD": "yet another one"})[0]
        == 0
    )
    assert _cli(["accounts", "revoke", "ingest"], database)[0] == 0
    code, _out, err = _cli(["accounts", "disable", "root"], database)
    assert code == 1 and "last enabled admin" in err
    assert _cli(["accounts", "revoke", "missing"], database)[0] == 1

    with open_store(database) as store, store.session() as session:
        events = [(r.event, r.actor, r.subject) for r in iter_records(session)]
        assert ("account.user_created", "system", "user:root") in events
        assert ("account.token_created", "system", "token:ingest") in events
        assert ("account.token_revoked", "system", "token:ingest") in events
        assert ("account.password_changed", "system", "user:bob") in events
        assert verify_log(session, public_key=None).ok
        stored = session.scalar(sa.select(ApiTokenRow.token_hash).where(ApiTokenRow.name == "ingest"))
        assert stored is not None and token not in stored


def test_serve_refuses_an_old_schema_without_migrating(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'old.db'}"
    with open_store(database) as store:
        store.upgrade("0001")
    code, _out, err = _cli(["serve", "--no-migrate", "--port", "0"], database)
    assert code == 2 and "revision 0001" in err
    code, _out, err = _cli(["serve", "--log-level", "loud"], database)
    assert code == 2 and "--log-level" in err


def test_health_answers_503_when_the_database_is_gone(api_settings: Settings, tmp_path: Path) -> None:
    database = tmp_path / "gone.db"
    with open_store(f"sqlite:///{database}") as store:
        store.upgrade()
        app = create_app(api_settings, store)
        with TestClient(app) as client:
            store.engine.dispose()
            database.unlink()
            database.mkdir()  # not a database file any more
            response = client.get("/api/health")
    assert response.status_code == 503 and response.json()["error"] == "DatabaseUnavailable"


def test_malformed_trusted_proxies_fail_at_start() -> None:
    from synthguard.api.deps import trusted_networks

    with pytest.raises(ConfigError, match="api_trusted_proxies"):
        trusted_networks(Settings(api_trusted_proxies=("not-an-address",)))


def test_a_write_that_fails_to_commit_never_answers_2xx(
    api_store: Store, api_settings: Settings, client_as: ClientFactory
) -> None:
    existing = make_user(api_store, api_settings, Role.AUDITOR)
    app = create_app(api_settings, api_store)
    router = APIRouter()

    @router.post("/api/test-commit", status_code=201)
    def duplicate(session: WriteSession) -> dict[str, str]:
        now = dt.datetime.now(dt.UTC)
        # not flushed: the unique constraint fails only at the commit, after the handler returned
        session.add(UserRow(name=existing, password_hash="x", disabled=False, created_at=now,
                            updated_at=now, password_changed_at=now))  # fmt: skip
        return {"status": "created"}

    app.include_router(router)
    with TestClient(app) as client:
        response = client.post("/api/test-commit")
    assert response.status_code == 409 and response.json()["error"] == "ConflictError"


def test_the_app_refuses_a_session_that_would_commit_after_the_response() -> None:
    from synthguard.api import app as app_module

    app = FastAPI()
    router = APIRouter()

    @router.post("/api/test-late-commit")
    def late(session: Session = Depends(write_session)) -> dict[str, str]:  # noqa: B008 - the point
        return {}

    app.include_router(router)
    with pytest.raises(ConfigError, match=r"test-late-commit.*WriteSession"):
        app_module._check_session_scopes(app)


def test_logging_in_again_ends_the_previous_session(
    client: TestClient, api_store: Store, api_settings: Settings
) -> None:
    name = make_user(api_store, api_settings, Role.REVIEWER)
    login(client, name)
    first = client.cookies[SESSION_COOKIE]
    login(client, name)
    second = client.cookies[SESSION_COOKIE]
    assert first != second and client.get("/api/auth/me").status_code == 200
    with TestClient(client.app, cookies={SESSION_COOKIE: first}) as replay:
        assert replay.get("/api/auth/me").status_code == 401
    with TestClient(client.app, cookies={SESSION_COOKIE: second}) as current:
        assert current.get("/api/auth/me").status_code == 200
