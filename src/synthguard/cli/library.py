"""``synthguard library``: the characteristics database (Art. 10) from the command line.

::

    synthguard library import FILE [--format csv|json] [--proposed-by NAME] [--approved-by NAME]
    synthguard library export FILE [--format csv|json]
    synthguard library coverage [--json]
    synthguard library approve ID... --by NAME
    synthguard library disable ID --by NAME --reason TEXT
    synthguard library enable ID --by NAME
    synthguard library snapshot --label TEXT --by NAME
    synthguard library list [--state STATE] [--category CODE] [--kind KIND] [--json]
    synthguard library history ID [--json]

Every command takes ``--database URL`` (else ``SYNTHGUARD_DATABASE_URL``, else a SQLite file in
``data_dir``, whose folder is created) and migrates the schema to the newest revision first.
Exit status: 0 done; 1 failed input (import rows rejected, a database error); 2 usage (bad
arguments or settings, an unknown entry, an approval the two-person rule refuses). Errors are one
line, never a traceback. Documented in ``docs/cli-library.md``.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from synthguard.cli.common import DatabaseOption, err, fail, guard, out
from synthguard.cli.errors import EXIT_FILE_FAILED, EXIT_USAGE
from synthguard.config import load_settings
from synthguard.errors import UsageError

if TYPE_CHECKING:
    # SQLAlchemy, Alembic and the review tables load when a library command runs, not at every start
    from synthguard.review.library import FileFormat, Library

__all__ = ["library_app"]

library_app = typer.Typer(
    help="The characteristics database (Art. 10): import, approve, disable, snapshot, coverage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="csv or json (default: from the file name).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ByOption = Annotated[str, typer.Option("--by", help="Who does this (recorded in the change log).")]


@contextlib.contextmanager
def _library(database: str | None) -> Iterator[Library]:
    """The library at the resolved database URL, its schema migrated to the newest revision."""
    from synthguard.review.library import Library
    from synthguard.store import open_store

    settings = load_settings(database_url=database)
    with open_store(settings.resolved_database_url()) as store:
        store.upgrade()
        yield Library(store)


def _check_format(value: str | None) -> FileFormat | None:
    from synthguard.review.library import FileFormat

    if value is None:
        return None
    try:
        return FileFormat(value.lower())
    except ValueError:
        raise fail(f"UsageError: unknown format {value!r}: use csv or json", EXIT_USAGE) from None


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (a container without passwd)
        raise UsageError("cannot tell who is importing: give --proposed-by NAME") from None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


@library_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV or JSON file of entries.", show_default=False)],
    format: FormatOption = None,
    proposed_by: Annotated[
        str | None,
        typer.Option(
            "--proposed-by", help="The importing user (default: the login name).", show_default=False
        ),
    ] = None,
    approved_by: Annotated[
        str | None,
        typer.Option(
            "--approved-by", help="Approve every row as this person (not the proposer).", show_default=False
        ),
    ] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Import entries, all or none: rejected rows are listed with their line numbers."""
    fmt = _check_format(format)

    def body() -> None:
        actor = proposed_by or _login_name()
        with _library(database) as library:
            report = library.import_file(file, actor, format=fmt, approved_by=approved_by)
        if as_json:
            _print_json({"file": str(file), **report.to_dict()})
        if not report.ok:
            if not as_json:
                for error in report.rejected:
                    err.print(f"{file}:{error.line}: {error.message}", style="red", markup=False)
            raise fail(f"nothing imported: {len(report.rejected)} row(s) rejected", EXIT_FILE_FAILED)
        if not as_json:
            out.print(
                f"{file}: {report.added} entries added ({report.approved} approved), "
                f"{report.unchanged} unchanged",
                markup=False,
            )

    guard(body)


@library_app.command()
def export(
    file: Annotated[Path, typer.Argument(help="Where to write ('-': standard output).", show_default=False)],
    format: FormatOption = None,
    database: DatabaseOption = None,
) -> None:
    """Write every entry (all states) as CSV or JSON; importing it back gives the same entries."""
    fmt = _check_format(format)

    def body() -> None:
        with _library(database) as library:
            if str(file) == "-":
                library.export(sys.stdout, fmt or _check_format("csv"))
                return
            count = library.export(file, fmt)
        err.print(f"{count} entries written to {file}", markup=False)

    guard(body)


@library_app.command()
def coverage(as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Active keywords per risk against the TC260-003 minimums (verify), and what is missing."""

    def body() -> None:
        with _library(database) as library:
            report = library.coverage()
        if as_json:
            _print_json(report.to_dict())
            return
        table = Table("risk", "active", "pending", "required", "missing", "description")
        for row in report.categories:
            if row.required or row.active or row.pending:
                table.add_row(
                    row.category.value,
                    str(row.active),
                    str(row.pending),
                    str(row.required),
                    str(row.missing) if row.missing else "",
                    row.category.description,
                )
        out.print(table)
        out.print(
            f"total: {report.total} active keywords, at least {report.total_required}"
            + (f", {report.total_missing} missing" if report.total_missing else ""),
            markup=False,
        )
        out.print(
            "meets every minimum" if report.ok else f"{len(report.shortfalls)} shortfall(s)", markup=False
        )

    guard(body)


@library_app.command()
def approve(
    ids: Annotated[list[str], typer.Argument(help="Entry ids.", show_default=False)],
    by: ByOption,
    database: DatabaseOption = None,
) -> None:
    """Approve proposed entries (all or none); the approver must not be the proposer."""

    def body() -> None:
        with _library(database) as library:
            approved = library.approve(ids, by)
        for entry in approved:
            out.print(f"{entry.id}: {entry.state.value} (approved by {entry.approver})", markup=False)

    guard(body)


@library_app.command()
def disable(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="Entry id.", show_default=False)],
    by: ByOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. a false positive).")],
    database: DatabaseOption = None,
) -> None:
    """Switch one entry off without deleting it."""

    def body() -> None:
        with _library(database) as library:
            entry = library.disable(entry_id, by, reason)
        out.print(f"{entry.id}: disabled ({entry.disabled_reason})", markup=False)

    guard(body)


@library_app.command()
def enable(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="Entry id.", show_default=False)],
    by: ByOption,
    database: DatabaseOption = None,
) -> None:
    """Switch a disabled entry back on."""

    def body() -> None:
        with _library(database) as library:
            entry = library.enable(entry_id, by)
        out.print(f"{entry.id}: {entry.state.value}", markup=False)

    guard(body)


@library_app.command()
def snapshot(
    label: Annotated[str, typer.Option("--label", help="What this version is (e.g. a week's update).")],
    by: ByOption,
    database: DatabaseOption = None,
) -> None:
    """Freeze the active set as a new version (id and SHA-256 of its canonical export)."""

    def body() -> None:
        with _library(database) as library:
            made = library.snapshot(label, by)
        out.print(f"{made.version}: {made.entry_count} active entries, sha256 {made.digest}", markup=False)

    guard(body)


@library_app.command("list")
def list_(
    state: Annotated[
        str | None,
        typer.Option("--state", help="proposed, approved, active, disabled or lapsed.", show_default=False),
    ] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="A risk code, e.g. A1.6.", show_default=False)
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="keyword, image or rumor.", show_default=False)
    ] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """List entries with their state now (one JSON object per line with --json)."""

    def body() -> None:
        with _library(database) as library:
            entries = library.entries(
                state=state.lower() if state else None,
                category=category.upper() if category else None,
                kind=kind.lower() if kind else None,
            )
            states = [library.state_of(e) for e in entries]
        if as_json:
            for entry, now_state in zip(entries, states, strict=True):
                _print_json(entry.to_record(state=now_state))
            return
        # Plain aligned lines, the term last: ids must never be cut (approve and history take them),
        # and a table squeezed to 80 columns would cut them.
        rows = [
            (
                e.id,
                e.kind.value,
                e.category.value,
                e.action.value,
                s.value,
                f"{e.proposer} → {e.approver or '-'}",
            )
            for e, s in zip(entries, states, strict=True)
        ]
        widths = [max((len(row[k]) for row in rows), default=0) for k in range(6)]
        for row, entry in zip(rows, entries, strict=True):
            cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            term = entry.term.replace("\n", "\\n")
            out.print(f"{cells}  {term}", markup=False)
        err.print(f"{len(entries)} entries", markup=False)

    guard(body)


@library_app.command()
def history(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="Entry id.", show_default=False)],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Every change to one entry, oldest first: who, when, what, before and after."""

    def body() -> None:
        with _library(database) as library:
            changes = library.history(entry_id)
        if as_json:
            for change in changes:
                _print_json(change.to_dict())
            return
        table = Table("when", "who", "what", "state", "note")
        for change in changes:
            before = (change.before or {}).get("state")
            after = (change.after or {}).get("state")
            moved = f"{before} → {after}" if before and before != after else str(after or "")
            table.add_row(
                change.at.isoformat(timespec="seconds"), change.actor, change.kind.value, moved, change.note
            )
        out.print(table)

    guard(body)
