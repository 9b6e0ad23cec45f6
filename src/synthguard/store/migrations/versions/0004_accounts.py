"""Staff accounts: users with argon2 password hashes, roles, sessions and machine tokens.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

Frozen once released: states the schema as of revision 0004 and never imports the models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ROLE_CHECK = "role IN ('admin', 'reviewer', 'compliance_officer', 'auditor')"


def _time(name: str, *, nullable: bool) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "account_users",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        _time("password_changed_at", nullable=False),
        _time("last_login_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_users")),
        sa.UniqueConstraint("name", name=op.f("uq_account_users_name")),
    )
    op.create_table(
        "account_user_roles",
        sa.Column("user_id", _BIG_ID, nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_account_user_roles")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["account_users.id"], name=op.f("fk_account_user_roles_user_id_account_users")
        ),
        sa.CheckConstraint(_ROLE_CHECK, name=op.f("ck_account_user_roles_role")),
    )
    op.create_table(
        "account_sessions",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("csrf_hash", sa.String(64), nullable=False),
        sa.Column("user_id", _BIG_ID, nullable=False),
        _time("created_at", nullable=False),
        _time("expires_at", nullable=False),
        _time("revoked_at", nullable=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_sessions_token_hash")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["account_users.id"], name=op.f("fk_account_sessions_user_id_account_users")
        ),
    )
    op.create_index(op.f("ix_account_sessions_user_id"), "account_sessions", ["user_id"])
    op.create_index(op.f("ix_account_sessions_expires_at"), "account_sessions", ["expires_at"])
    op.create_table(
        "account_tokens",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        _time("created_at", nullable=False),
        _time("expires_at", nullable=True),
        _time("revoked_at", nullable=True),
        _time("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_account_tokens_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
    )
    op.create_table(
        "account_token_roles",
        sa.Column("token_id", _BIG_ID, nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("token_id", "role", name=op.f("pk_account_token_roles")),
        sa.ForeignKeyConstraint(
            ["token_id"], ["account_tokens.id"], name=op.f("fk_account_token_roles_token_id_account_tokens")
        ),
        sa.CheckConstraint(_ROLE_CHECK, name=op.f("ck_account_token_roles_role")),
    )


def downgrade() -> None:
    op.drop_table("account_token_roles")
    op.drop_table("account_tokens")
    op.drop_table("account_sessions")
    op.drop_table("account_user_roles")
    op.drop_table("account_users")
