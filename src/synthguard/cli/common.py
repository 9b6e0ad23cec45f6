"""What every command group shares: the two consoles and the ``--database`` option."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

__all__ = ["DatabaseOption", "err", "out"]

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
