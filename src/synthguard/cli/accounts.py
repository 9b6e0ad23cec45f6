"""``synthguard accounts``: staff users and machine tokens from the server's console.

::

    synthguard accounts create NAME --role R [--role R2] [--database URL]
    synthguard accounts token NAME --role R [--expires-days N] [--database URL]
    synthguard accounts list [--database URL]
    synthguard accounts roles NAME --role R [--role R2] [--database URL]
    synthguard accounts password NAME [--database URL]
    synthguard accounts disable NAME | enable NAME [--database URL]
    synthguard accounts revoke TOKEN_NAME [--database URL]

A password never comes from the command line (other users see it in the process list, the shell
keeps it in its history): it comes from ``SYNTHGUARD_NEW_PASSWORD`` or from a prompt (hidden,
asked twice). A token is printed once, alone on standard output. These commands migrate the
database first (the first admin is made before the first ``serve``). Changes are audited with the
actor ``system`` and the OS user's name.

Exit status: 0 done, 1 a record conflict or a missing record, 2 usage.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Final

import typer
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from synthguard.cli.common import DatabaseOption, err, out
from synthguard.cli.errors import describe, exit_status
from synthguard.config import Settings, load_settings
from synthguard.errors import SynthguardError, UsageError

__all__ = ["PASSWORD_ENV", "accounts_app"]

#: Environment variable read for a new password before prompting.
PASSWORD_ENV: Final = "SYNTHGUARD_NEW_PASSWORD"

accounts_app = typer.Typer(
    help="Staff users (passwords, roles) and machine tokens of the HTTP API.", no_args_is_help=True
)

RoleOption = Annotated[
    list[str],
    typer.Option("--role", "-r", help="admin, reviewer, compliance_officer or auditor (repeatable)."),
]


def _guard(body: Callable[[], None]) -> None:
    try:
        body()
    except SynthguardError as exc:
        err.print(Text(describe(exc), style="red"))
        raise typer.Exit(exit_status(exc)) from None


@contextmanager
def _session(database: str | None) -> Iterator[tuple[Session, Settings]]:
    from synthguard.store import open_store

    settings = load_settings(database_url=database)
    with open_store(settings=settings) as store:
        store.upgrade()
        with store.session(write=True) as session:
            yield session, settings


def _new_password() -> str:
    from synthguard.accounts import service

    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        first = typer.prompt("Password", hide_input=True)
        second = typer.prompt("Repeat it", hide_input=True)
        if first != second:
            raise UsageError("the two passwords differ")
        password = first
    return service.check_password(password)


@accounts_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="User name.")], role: RoleOption, database: DatabaseOption = None
) -> None:
    """Create a staff user (password from SYNTHGUARD_NEW_PASSWORD or a prompt)."""

    def body() -> None:
        from synthguard.accounts import service

        service.check_name(name)
        password = _new_password()
        with _session(database) as (session, settings):
            service.create_user(
                session,
                name=name,
                password=password,
                roles=role,
                actor=service.cli_actor(),
                settings=settings,
            )
        err.print(f"user {name} created with roles {', '.join(sorted(role))}")

    _guard(body)


@accounts_app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="Token name (names the machine that uses it).")],
    role: RoleOption,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, max=3650, help="Expire after this many days.")
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Make a machine token; it is printed once, alone on standard output."""

    def body() -> None:
        from synthguard.accounts import service

        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_days) if expires_days else None
        with _session(database) as (session, _settings):
            made = service.create_token(
                session, name=name, roles=role, actor=service.cli_actor(), expires_at=expires
            )
            value = made.value
        print(value, flush=True)
        err.print(f"token {name} made; it is shown only this once (send it as 'Authorization: Bearer ...')")

    _guard(body)


@accounts_app.command("list")
def list_accounts(database: DatabaseOption = None) -> None:
    """List users and tokens (never a hash or a token value)."""

    def body() -> None:
        from synthguard.accounts import service

        with _session(database) as (session, _settings):
            users = Table("user", "roles", "disabled", "last login")
            for user in service.list_users(session):
                users.add_row(
                    user.name,
                    ", ".join(sorted(service.user_roles(user))),
                    "yes" if user.disabled else "",
                    user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "",
                )
            tokens = Table("token", "prefix", "roles", "revoked", "last used")
            for row in service.list_tokens(session):
                tokens.add_row(
                    row.name,
                    row.prefix,
                    ", ".join(sorted(service.token_roles(row))),
                    row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "",
                    row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "",
                )
        out.print(users)
        out.print(tokens)

    _guard(body)


@accounts_app.command("roles")
def roles(
    name: Annotated[str, typer.Argument(help="User name.")], role: RoleOption, database: DatabaseOption = None
) -> None:
    """Replace a user's roles."""

    def body() -> None:
        from synthguard.accounts import service

        with _session(database) as (session, _settings):
            service.set_roles(session, name=name, roles=role, actor=service.cli_actor())
        err.print(f"user {name} now has roles {', '.join(sorted(role))}")

    _guard(body)


@accounts_app.command("password")
def password(
    name: Annotated[str, typer.Argument(help="User name.")], database: DatabaseOption = None
) -> None:
    """Set a user's password (from SYNTHGUARD_NEW_PASSWORD or a prompt); ends the user's sessions."""

    def body() -> None:
        from synthguard.accounts import service

        new = _new_password()
        with _session(database) as (session, settings):
            service.set_password(
                session, name=name, password=new, actor=service.cli_actor(), settings=settings
            )
        err.print(f"password of {name} changed; their sessions ended")

    _guard(body)


def _set_disabled(name: str, disabled: bool, database: str | None) -> None:
    def body() -> None:
        from synthguard.accounts import service

        with _session(database) as (session, _settings):
            service.set_disabled(session, name=name, disabled=disabled, actor=service.cli_actor())
        err.print(f"user {name} {'disabled' if disabled else 'enabled'}")

    _guard(body)


@accounts_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="User name.")], database: DatabaseOption = None) -> None:
    """Disable a user (ends their sessions; the account and its history stay)."""
    _set_disabled(name, True, database)


@accounts_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="User name.")], database: DatabaseOption = None) -> None:
    """Enable a disabled user again."""
    _set_disabled(name, False, database)


@accounts_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="Token name.")], database: DatabaseOption = None) -> None:
    """Revoke a machine token for good."""

    def body() -> None:
        from synthguard.accounts import service

        with _session(database) as (session, _settings):
            service.revoke_token(session, name=name, actor=service.cli_actor())
        err.print(f"token {name} revoked")

    _guard(body)
