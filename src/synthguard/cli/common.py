"""What every command group shares: the two consoles, the ``--database`` option, and the mapping of
errors to messages and exit statuses for commands that use the store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from synthguard.cli.errors import EXIT_FILE_FAILED, describe, exit_status
from synthguard.errors import SynthguardError

__all__ = ["DatabaseOption", "err", "fail", "guard", "out"]

#: Messages and progress (standard error); results go to ``out`` (standard output).
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (default: SYNTHGUARD_DATABASE_URL, else SQLite in data_dir).",
        show_default=False,
    ),
]


def fail(message: str, status: int) -> typer.Exit:
    """Print ``message`` in red on standard error; the ``Exit`` to raise with ``status``."""
    err.print(message, style="red", markup=False)
    return typer.Exit(status)


def guard(body: Callable[[], None]) -> None:
    """Run a command's body: our errors, database errors and OS errors become one line and the exit
    status of the command contract, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError  # loaded when a store command runs, not at every start

    try:
        body()
    except SynthguardError as exc:
        raise fail(describe(exc), exit_status(exc)) from None
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise fail(
            f"database error ({type(exc).__name__}): {first[0] if first else ''}", EXIT_FILE_FAILED
        ) from None
    except OSError as exc:
        raise fail(describe(exc), EXIT_FILE_FAILED) from None
