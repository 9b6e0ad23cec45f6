"""Declarative models of accounts (tables created only by the migrations in ``store/migrations``).

- ``account_users``: staff people: a unique name, an Argon2id password hash (PHC string), a
  disabled flag, times. Rows are never deleted (audit records name them): a user is disabled.
- ``account_user_roles``: the roles each user holds (``accounts.roles.Role`` values).
- ``account_sessions``: login sessions of people: the SHA-256 of the opaque cookie value and of the
  CSRF token (the values themselves are never stored), expiry, revocation (logout).
- ``account_tokens`` / ``account_token_roles``: named machine tokens: SHA-256 of the bearer value,
  the roles they are scoped to, revocation, last use.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from synthguard.store.models import ACTOR_LENGTH, Base

__all__ = [
    "NAME_LENGTH",
    "ROLE_CHECK",
    "ApiTokenRow",
    "Base",
    "SessionRow",
    "TokenRoleRow",
    "UserRoleRow",
    "UserRow",
]

#: Longest user or token name.
NAME_LENGTH: Final = 64
#: The closed vocabulary of ``Role`` as a CHECK constraint (kept equal to the enum by a test).
ROLE_CHECK: Final = "role IN ('admin', 'reviewer', 'compliance_officer', 'auditor')"

_BIG_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UserRow(Base):
    """A staff member who logs in with a password."""

    __tablename__ = "account_users"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), unique=True)
    #: Argon2id PHC string (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``).
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    password_changed_at: Mapped[dt.datetime]
    last_login_at: Mapped[dt.datetime | None]

    roles: Mapped[list[UserRoleRow]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="UserRoleRow.role"
    )


class UserRoleRow(Base):
    """One role held by one user."""

    __tablename__ = "account_user_roles"
    __table_args__ = (sa.CheckConstraint(ROLE_CHECK, name="role"),)

    user_id: Mapped[int] = mapped_column(_BIG_ID, sa.ForeignKey("account_users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(32), primary_key=True)


class SessionRow(Base):
    """A person's login session; the cookie value and CSRF token are stored as SHA-256 only."""

    __tablename__ = "account_sessions"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    csrf_hash: Mapped[str] = mapped_column(sa.String(64))
    user_id: Mapped[int] = mapped_column(_BIG_ID, sa.ForeignKey("account_users.id"), index=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    revoked_at: Mapped[dt.datetime | None]
    #: Client address at login (for the account's own history; not used to authenticate).
    client: Mapped[str] = mapped_column(sa.String(64), default="")


class ApiTokenRow(Base):
    """A named machine token; the bearer value is stored as SHA-256 only."""

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: The first characters of the token (``sg_`` and 6 more), to recognise it in a list.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_by: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]

    roles: Mapped[list[TokenRoleRow]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="TokenRoleRow.role"
    )


class TokenRoleRow(Base):
    """One role a token is scoped to."""

    __tablename__ = "account_token_roles"
    __table_args__ = (sa.CheckConstraint(ROLE_CHECK, name="role"),)

    token_id: Mapped[int] = mapped_column(_BIG_ID, sa.ForeignKey("account_tokens.id"), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
