"""Accounts: users, passwords, roles, login sessions and machine tokens.

Functions take a SQLAlchemy ``Session`` (the caller's transaction; nothing here commits) or, where a
slow step must run outside any transaction (an Argon2 verification) or a second short write is
needed (a token's last use), the ``Store``. Every change appends one audit record with
``synthguard.audit.record_event`` in the same transaction: ``account.user_created``,
``account.roles_changed``, ``account.password_changed``, ``account.user_disabled``,
``account.user_enabled``, ``account.login``, ``account.logout``, ``account.token_created``,
``account.token_revoked``. Audit data never holds a password, a hash or a token (a token's prefix
only).

Secrets:

- passwords: Argon2id through argon2-cffi's ``PasswordHasher`` with the parameters in settings; a
  hash made with other parameters is replaced at the next successful login. An unknown name costs
  the same hash as a known one, so timing does not tell which names exist.
- session cookies, CSRF tokens and machine tokens: 256 random bits from ``secrets``; only their
  SHA-256 is stored (the value has full entropy, so a fast hash is enough, unlike passwords).
  Machine tokens read ``sg_<43 url-safe characters>``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import getpass
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from typing import Any, Final

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2 import exceptions as argon2_errors
from sqlalchemy.orm import Session

from synthguard.accounts.models import (
    NAME_LENGTH,
    ApiTokenRow,
    SessionRow,
    TokenRoleRow,
    UserRoleRow,
    UserRow,
)
from synthguard.accounts.principal import Principal
from synthguard.accounts.roles import Role
from synthguard.config import Settings
from synthguard.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    NotFoundError,
    UsageError,
)
from synthguard.store import Store

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "TOKEN_PREFIX",
    "LoginResult",
    "NewToken",
    "authenticate_session",
    "authenticate_token",
    "check_name",
    "check_password",
    "cli_actor",
    "create_token",
    "create_user",
    "get_token",
    "get_user",
    "list_tokens",
    "list_users",
    "login",
    "logout",
    "password_hasher",
    "revoke_token",
    "session_id",
    "set_disabled",
    "set_password",
    "set_roles",
    "token_roles",
    "user_roles",
    "verify_password",
]

#: Shortest password accepted (NIST SP 800-63B asks for at least 8; staff accounts get more).
MIN_PASSWORD_LENGTH: Final = 12
#: Longest password accepted (Argon2 takes any length; this bounds the work per request).
MAX_PASSWORD_LENGTH: Final = 1024
#: Every machine token starts with this (secret scanners recognise it).
TOKEN_PREFIX: Final = "sg_"
#: A token's last-use time is written at most this often (a write per request would serialise them).
TOKEN_TOUCH_INTERVAL: Final = dt.timedelta(seconds=60)
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
_TOKEN_RE: Final = re.compile(r"sg_[A-Za-z0-9_-]{20,100}")
_SESSION_RE: Final = re.compile(r"[A-Za-z0-9_-]{20,100}")


@dataclasses.dataclass(frozen=True)
class LoginResult:
    """What a successful login gives the client: the cookie value and the CSRF token (once)."""

    principal: Principal
    session_token: str = dataclasses.field(repr=False)
    csrf_token: str = dataclasses.field(repr=False)
    expires_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class NewToken:
    """A machine token just made: ``value`` is shown once and never stored."""

    row: ApiTokenRow
    value: str = dataclasses.field(repr=False)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _audit(session: Session, *, event: str, actor: str, subject: str, data: dict[str, Any]) -> None:
    # imported here: the audit package is its own area, and accounts must load without it for the
    # models (migrations, schema test); a missing ``record_event`` fails loudly at the first change
    from synthguard.audit import record_event

    record_event(session, event=event, actor=actor, subject=subject, data=data)


def cli_actor() -> str:
    """The actor of a change made with the command line: ``system`` (the OS user goes in the data)."""
    return "system"


def _cli_data() -> dict[str, str]:
    try:
        return {"os_user": getpass.getuser()}
    except (KeyError, OSError):
        return {}


def check_name(name: str, what: str = "user") -> str:
    """A valid user or token name: letters, digits, ``._@-``, at most 64, starting alphanumeric."""
    if not isinstance(name, str) or not name:
        raise UsageError(f"a {what} name is required")
    if len(name) > NAME_LENGTH or not _NAME_RE.fullmatch(name):
        raise UsageError(
            f"{what} name {name[:80]!r} must be 1-{NAME_LENGTH} letters, digits or ._@- "
            "and start with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """A password of acceptable length (``MIN_PASSWORD_LENGTH``..``MAX_PASSWORD_LENGTH``)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UsageError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    if "\x00" in password:
        raise UsageError("a password may not contain NUL")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("a password must be valid Unicode text (no lone surrogates)") from None
    return password


def _roles(roles: Iterable[Role | str]) -> frozenset[Role]:
    try:
        found = frozenset(Role(role) for role in roles)
    except ValueError as exc:
        raise UsageError(f"{exc}; known roles: {', '.join(r.value for r in Role)}") from None
    if not found:
        raise UsageError("give at least one role")
    return found


def _sorted(roles: Iterable[Role]) -> list[str]:
    return sorted(role.value for role in roles)


@functools.cache
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    try:
        return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    except argon2_errors.Argon2Error as exc:  # pragma: no cover - argon2-cffi validates lazily
        raise ConfigError(f"Argon2 parameters: {exc}") from exc


def password_hasher(settings: Settings) -> PasswordHasher:
    """The Argon2id hasher with the settings' parameters (``ConfigError`` when they make no sense)."""
    time_cost = settings.api_argon2_time_cost
    memory = settings.api_argon2_memory_kib
    lanes = settings.api_argon2_parallelism
    if time_cost < 1 or lanes < 1 or memory < 8 * lanes:
        raise ConfigError(
            f"Argon2 parameters t={time_cost}, m={memory} KiB, p={lanes}: need t >= 1, p >= 1, m >= 8*p"
        )
    return _hasher(time_cost, memory, lanes)


# -- users ---------------------------------------------------------------------------------------


def get_user(session: Session, name: str) -> UserRow:
    """The user called ``name`` (``NotFoundError`` when there is none)."""
    row = session.scalar(sa.select(UserRow).where(UserRow.name == name))
    if row is None:
        raise NotFoundError(f"no user {name[:80]!r}")
    return row


def list_users(session: Session) -> list[UserRow]:
    """Every user, by name."""
    return list(session.scalars(sa.select(UserRow).order_by(UserRow.name)))


def user_roles(row: UserRow) -> frozenset[Role]:
    """The roles a user holds."""
    return frozenset(Role(r.role) for r in row.roles)


def create_user(
    session: Session,
    *,
    name: str,
    password: str,
    roles: Iterable[Role | str],
    actor: str,
    settings: Settings,
) -> UserRow:
    """Add a staff user; ``ConflictError`` when the name is taken."""
    check_name(name)
    check_password(password)
    wanted = _roles(roles)
    if session.scalar(sa.select(UserRow.id).where(UserRow.name == name)) is not None:
        raise ConflictError(f"a user {name!r} exists")
    now = _now()
    row = UserRow(
        name=name,
        password_hash=password_hasher(settings).hash(password),
        disabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
        roles=[UserRoleRow(role=role.value) for role in wanted],
    )
    session.add(row)
    session.flush()
    data: dict[str, Any] = {"roles": _sorted(wanted)}
    if actor == "system":
        data |= _cli_data()
    _audit(session, event="account.user_created", actor=actor, subject=f"user:{name}", data=data)
    return row


def _ensure_an_admin_remains(session: Session, leaving: UserRow) -> None:
    """Refuse to take the last enabled admin user's role or access (nobody could give it back)."""
    others = session.scalar(
        sa.select(sa.func.count())
        .select_from(UserRow)
        .join(UserRoleRow, UserRoleRow.user_id == UserRow.id)
        .where(UserRoleRow.role == Role.ADMIN.value, UserRow.disabled.is_(False), UserRow.id != leaving.id)
    )
    if not others:
        raise ConflictError(f"{leaving.name!r} is the last enabled admin; make another admin first")


def set_roles(session: Session, *, name: str, roles: Iterable[Role | str], actor: str) -> UserRow:
    """Replace a user's roles (a no-op, not audited, when they are already those).

    ``ConflictError`` when that would leave no enabled user with the admin role.
    """
    row = get_user(session, name)
    wanted, before = _roles(roles), user_roles(row)
    if wanted == before:
        return row
    if Role.ADMIN in before and Role.ADMIN not in wanted and not row.disabled:
        _ensure_an_admin_remains(session, row)
    row.roles = [UserRoleRow(role=role.value) for role in sorted(wanted)]
    row.updated_at = _now()
    session.flush()
    _audit(
        session,
        event="account.roles_changed",
        actor=actor,
        subject=f"user:{name}",
        data={"before": _sorted(before), "after": _sorted(wanted)},
    )
    return row


def set_disabled(session: Session, *, name: str, disabled: bool, actor: str) -> UserRow:
    """Disable a user (ending every session) or enable one again; a no-op when already so.

    ``ConflictError`` when that would leave no enabled user with the admin role.
    """
    row = get_user(session, name)
    if row.disabled == disabled:
        return row
    if disabled and Role.ADMIN in user_roles(row):
        _ensure_an_admin_remains(session, row)
    now = _now()
    row.disabled = disabled
    row.updated_at = now
    ended = _end_sessions(session, row.id, now) if disabled else 0
    _audit(
        session,
        event="account.user_disabled" if disabled else "account.user_enabled",
        actor=actor,
        subject=f"user:{name}",
        data={"sessions_ended": ended} if disabled else {},
    )
    return row


def set_password(
    session: Session,
    *,
    name: str,
    password: str,
    actor: str,
    settings: Settings,
    keep_session: int | None = None,
) -> UserRow:
    """Set a new password and end the user's sessions (but ``keep_session``, the caller's own)."""
    check_password(password)
    row = get_user(session, name)
    now = _now()
    row.password_hash = password_hasher(settings).hash(password)
    row.password_changed_at = row.updated_at = now
    ended = _end_sessions(session, row.id, now, keep=keep_session)
    _audit(
        session,
        event="account.password_changed",
        actor=actor,
        subject=f"user:{name}",
        data={"sessions_ended": ended},
    )
    return row


def _end_sessions(session: Session, user_id: int, now: dt.datetime, keep: int | None = None) -> int:
    query = sa.update(SessionRow).where(
        SessionRow.user_id == user_id, SessionRow.revoked_at.is_(None), SessionRow.expires_at > now
    )
    if keep is not None:
        query = query.where(SessionRow.id != keep)
    result = session.execute(query.values(revoked_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


# -- sessions ------------------------------------------------------------------------------------


def verify_password(store: Store, *, name: str, password: str, settings: Settings) -> str:
    """Check a user's password outside any transaction; return the stored hash that matched.

    ``AuthenticationError`` (one message for every cause) for an unknown name, a wrong password or a
    disabled account. An unknown name costs the same Argon2 work as a known one.
    """
    hasher = password_hasher(settings)
    with store.session() as session:
        row = (
            session.scalar(sa.select(UserRow).where(UserRow.name == name))
            if _NAME_RE.fullmatch(name)
            else None
        )
        stored = row.password_hash if row is not None else None
        disabled = row.disabled if row is not None else True
    ok = False
    try:
        if stored is None:
            hasher.verify(_dummy_hash(hasher), password)  # the same work for an unknown name
        else:
            ok = hasher.verify(stored, password)
    except (argon2_errors.VerificationError, argon2_errors.InvalidHashError):
        ok = False
    if not ok or stored is None or disabled:
        raise AuthenticationError("wrong name or password (or the account is disabled)")
    return stored


def login(store: Store, *, name: str, password: str, client: str, settings: Settings) -> LoginResult:
    """Check a password and open a session; ``AuthenticationError`` says nothing of which part failed.

    The Argon2 verification runs outside any transaction (it takes tens of milliseconds), then one
    write transaction records the session (and a rehash when the parameters changed).
    """
    hasher = password_hasher(settings)
    stored = verify_password(store, name=name, password=password, settings=settings)
    # rehashing is slow too: done before the write lock is taken
    rehashed = hasher.hash(password) if hasher.check_needs_rehash(stored) else None
    now = _now()
    session_token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + dt.timedelta(minutes=settings.api_session_ttl_minutes)
    with store.session(write=True) as session:
        user = get_user(session, name)
        if user.disabled or user.password_hash != stored:  # changed while we hashed
            raise AuthenticationError("wrong name or password (or the account is disabled)")
        if rehashed is not None:
            user.password_hash = rehashed
        user.last_login_at = now
        session.execute(
            sa.delete(SessionRow).where(SessionRow.user_id == user.id, SessionRow.expires_at < now)
        )
        record = SessionRow(
            token_hash=_sha256(session_token),
            csrf_hash=_sha256(csrf_token),
            user_id=user.id,
            created_at=now,
            expires_at=expires,
            revoked_at=None,
            client=client[:64],
        )
        session.add(record)
        session.flush()
        _audit(
            session,
            event="account.login",
            actor=f"user:{name}",
            subject=f"user:{name}",
            data={"session": record.id, "client": client[:64], "expires_at": expires.isoformat()},
        )
        principal = Principal(name=name, roles=user_roles(user), kind="session")
    return LoginResult(principal, session_token, csrf_token, expires)


@functools.cache
def _dummy_hash_for(hasher_id: int, hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(16))


def _dummy_hash(hasher: PasswordHasher) -> str:
    return _dummy_hash_for(id(hasher), hasher)


def _session_row(session: Session, session_token: str) -> tuple[SessionRow, UserRow] | None:
    if not _SESSION_RE.fullmatch(session_token):
        return None
    found = session.execute(
        sa.select(SessionRow, UserRow)
        .join(UserRow, UserRow.id == SessionRow.user_id)
        .where(SessionRow.token_hash == _sha256(session_token))
    ).one_or_none()
    return (found[0], found[1]) if found is not None else None


def authenticate_session(
    store: Store, session_token: str, *, csrf_token: str | None, settings: Settings
) -> tuple[Principal, bool]:
    """The person behind a session cookie, and whether ``csrf_token`` is that session's token.

    ``AuthenticationError`` for an unknown, expired or ended session, or a disabled user.
    """
    del settings  # sessions carry their own expiry
    with store.session() as session:
        found = _session_row(session, session_token)
        if found is None:
            raise AuthenticationError("unknown session; log in again")
        record, user = found
        if record.revoked_at is not None or record.expires_at <= _now():
            raise AuthenticationError("the session has ended; log in again")
        if user.disabled:
            raise AuthenticationError("the account is disabled")
        principal = Principal(name=user.name, roles=user_roles(user), kind="session")
        csrf_ok = csrf_token is not None and hmac.compare_digest(_sha256(csrf_token), record.csrf_hash)
    return principal, csrf_ok


def session_id(session: Session, session_token: str) -> int | None:
    """The row id of the session a cookie names (``None`` when none)."""
    found = _session_row(session, session_token)
    return found[0].id if found is not None else None


def logout(session: Session, session_token: str) -> bool:
    """End the session a cookie names; ``False`` when it had already ended (or never existed)."""
    found = _session_row(session, session_token)
    if found is None or found[0].revoked_at is not None:
        return False
    record, user = found
    record.revoked_at = _now()
    _audit(
        session,
        event="account.logout",
        actor=f"user:{user.name}",
        subject=f"user:{user.name}",
        data={"session": record.id},
    )
    return True


# -- machine tokens ------------------------------------------------------------------------------


def get_token(session: Session, name: str) -> ApiTokenRow:
    """The token called ``name`` (``NotFoundError`` when there is none)."""
    row = session.scalar(sa.select(ApiTokenRow).where(ApiTokenRow.name == name))
    if row is None:
        raise NotFoundError(f"no token {name[:80]!r}")
    return row


def list_tokens(session: Session) -> list[ApiTokenRow]:
    """Every token, revoked ones included, by name."""
    return list(session.scalars(sa.select(ApiTokenRow).order_by(ApiTokenRow.name)))


def token_roles(row: ApiTokenRow) -> frozenset[Role]:
    """The roles a token is scoped to."""
    return frozenset(Role(r.role) for r in row.roles)


def create_token(
    session: Session,
    *,
    name: str,
    roles: Iterable[Role | str],
    actor: str,
    expires_at: dt.datetime | None = None,
) -> NewToken:
    """Make a named machine token scoped to ``roles``; its value is in the result, once."""
    check_name(name, "token")
    wanted = _roles(roles)
    if session.scalar(sa.select(ApiTokenRow.id).where(ApiTokenRow.name == name)) is not None:
        raise ConflictError(f"a token {name!r} exists (names stay taken after revocation)")
    now = _now()
    if expires_at is not None and expires_at <= now:
        raise UsageError("a token's expiry must be in the future")
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(
        name=name,
        token_hash=_sha256(value),
        prefix=value[:9],
        created_by=actor,
        created_at=now,
        expires_at=expires_at,
        revoked_at=None,
        last_used_at=None,
        roles=[TokenRoleRow(role=role.value) for role in sorted(wanted)],
    )
    session.add(row)
    session.flush()
    data: dict[str, Any] = {
        "roles": _sorted(wanted),
        "prefix": row.prefix,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
    if actor == "system":
        data |= _cli_data()
    _audit(session, event="account.token_created", actor=actor, subject=f"token:{name}", data=data)
    return NewToken(row, value)


def revoke_token(session: Session, *, name: str, actor: str) -> ApiTokenRow:
    """Revoke a token (a no-op, not audited, when it already is)."""
    row = get_token(session, name)
    if row.revoked_at is None:
        row.revoked_at = _now()
        _audit(session, event="account.token_revoked", actor=actor, subject=f"token:{name}", data={})
    return row


def authenticate_token(store: Store, token: str, *, settings: Settings) -> Principal:
    """The machine behind a bearer token; ``AuthenticationError`` for an unknown, revoked or expired one."""
    del settings
    if not _TOKEN_RE.fullmatch(token):
        raise AuthenticationError(f"not a synthguard token (they start with {TOKEN_PREFIX!r})")
    digest = _sha256(token)
    now = _now()
    with store.session() as session:
        row = session.scalar(sa.select(ApiTokenRow).where(ApiTokenRow.token_hash == digest))
        if row is None:
            raise AuthenticationError("unknown token")
        if row.revoked_at is not None:
            raise AuthenticationError(f"token {row.name!r} was revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise AuthenticationError(f"token {row.name!r} has expired")
        principal = Principal(name=row.name, roles=token_roles(row), kind="token")
        stale = row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH_INTERVAL
    if stale:
        with store.session(write=True) as session:
            session.execute(
                sa.update(ApiTokenRow).where(ApiTokenRow.token_hash == digest).values(last_used_at=now)
            )
    return principal
