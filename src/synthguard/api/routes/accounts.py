"""``/api/accounts``: staff users and machine tokens (admin only).

Users are never deleted (audit records name them): they are disabled. Token values are returned once,
by the request that makes them. Every change is audited (``accounts.service``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from synthguard.accounts import service
from synthguard.accounts.models import NAME_LENGTH, ApiTokenRow, UserRow
from synthguard.accounts.roles import Role
from synthguard.api.deps import AppSettings, Principal, ReadSession, WriteSession, require_roles

__all__ = [
    "TokenCreateIn",
    "TokenCreatedOut",
    "TokenOut",
    "UserCreateIn",
    "UserOut",
    "UserUpdateIn",
    "router",
]

router = APIRouter(prefix="/api/accounts", tags=["accounts"])

Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"
NameIn = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH, pattern=_NAME_PATTERN)]
NamePath = Annotated[str, Path(min_length=1, max_length=NAME_LENGTH, pattern=_NAME_PATTERN)]
Password = Annotated[
    str, Field(min_length=service.MIN_PASSWORD_LENGTH, max_length=service.MAX_PASSWORD_LENGTH)
]
Roles = Annotated[list[Role], Field(min_length=1, max_length=len(Role))]


class UserOut(BaseModel):
    """A staff user (never the password hash)."""

    name: str
    roles: list[Role]
    disabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    password_changed_at: dt.datetime
    last_login_at: dt.datetime | None


class UserCreateIn(BaseModel):
    """A new user: name, initial password (at least 12 characters), roles."""

    model_config = ConfigDict(extra="forbid")

    name: NameIn
    password: Password
    roles: Roles


class UserUpdateIn(BaseModel):
    """What to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    roles: Roles | None = None
    disabled: bool | None = None
    password: Password | None = None


class TokenOut(BaseModel):
    """A machine token (its prefix only, never the value)."""

    name: str
    prefix: str
    roles: list[Role]
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class TokenCreatedOut(TokenOut):
    """A new token; ``token`` is shown this once and cannot be retrieved again."""

    token: str


class TokenCreateIn(BaseModel):
    """A new token: its name, the roles it is scoped to, and optionally its life in days."""

    model_config = ConfigDict(extra="forbid")

    name: NameIn
    roles: Roles
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


def _user(row: UserRow) -> UserOut:
    return UserOut(
        name=row.name,
        roles=sorted(service.user_roles(row)),
        disabled=row.disabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        password_changed_at=row.password_changed_at,
        last_login_at=row.last_login_at,
    )


def _token(row: ApiTokenRow) -> TokenOut:
    return TokenOut(
        name=row.name,
        prefix=row.prefix,
        roles=sorted(service.token_roles(row)),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


@router.get("/users", summary="List staff users")
def list_users(session: ReadSession, _admin: Admin) -> list[UserOut]:
    """Every user, by name."""
    return [_user(row) for row in service.list_users(session)]


@router.post("/users", status_code=201, summary="Create a staff user")
def create_user(body: UserCreateIn, session: WriteSession, admin: Admin, settings: AppSettings) -> UserOut:
    """Add a user; 409 when the name is taken."""
    row = service.create_user(
        session,
        name=body.name,
        password=body.password,
        roles=body.roles,
        actor=admin.actor,
        settings=settings,
    )
    return _user(row)


@router.get("/users/{name}", summary="One staff user")
def get_user(name: NamePath, session: ReadSession, _admin: Admin) -> UserOut:
    """The user called ``name``; 404 when there is none."""
    return _user(service.get_user(session, name))


@router.patch("/users/{name}", summary="Change a user's roles, access or password")
def update_user(
    name: NamePath, body: UserUpdateIn, session: WriteSession, admin: Admin, settings: AppSettings
) -> UserOut:
    """Apply the changes given; 409 when that would leave no enabled admin."""
    row = service.get_user(session, name)
    if body.roles is not None:
        row = service.set_roles(session, name=name, roles=body.roles, actor=admin.actor)
    if body.password is not None:
        row = service.set_password(
            session, name=name, password=body.password, actor=admin.actor, settings=settings
        )
    if body.disabled is not None:
        row = service.set_disabled(session, name=name, disabled=body.disabled, actor=admin.actor)
    return _user(row)


@router.get("/tokens", summary="List machine tokens")
def list_tokens(session: ReadSession, _admin: Admin) -> list[TokenOut]:
    """Every token, revoked ones included, by name."""
    return [_token(row) for row in service.list_tokens(session)]


@router.post("/tokens", status_code=201, summary="Create a machine token")
def create_token(body: TokenCreateIn, session: WriteSession, admin: Admin) -> TokenCreatedOut:
    """Make a token scoped to ``roles``; the value is in the response, once."""
    expires = (
        dt.datetime.now(dt.UTC) + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    made = service.create_token(
        session, name=body.name, roles=body.roles, actor=admin.actor, expires_at=expires
    )
    return TokenCreatedOut(**_token(made.row).model_dump(), token=made.value)


@router.post("/tokens/{name}/revoke", summary="Revoke a machine token")
def revoke_token(name: NamePath, session: WriteSession, admin: Admin) -> TokenOut:
    """Revoke the token for good (its name stays taken); revoking twice is not an error."""
    return _token(service.revoke_token(session, name=name, actor=admin.actor))
