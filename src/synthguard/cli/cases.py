"""``synthguard cases``: the casework tasks that belong on a console or in a cron job.

::

    synthguard cases clocks [--json] [--database URL]
    synthguard cases restrictions USER_REF [--json] [--database URL]
    synthguard cases export REPORT_NUMBER -o OUT [--pdf] [--database URL]

``clocks`` lists open complaints by their running deadline (for a mail or chat alert from cron);
``restrictions`` what an end user may do now; ``export`` writes a report to the authorities as JSON
or PDF (atomically). Everything else (filing, steps, measures, appeals, rumors) is in the API. These
commands read the store; they never migrate it.

Exit status: 0 done (``clocks``: 3 when some complaint is overdue, for scripts), 1 a record not
found or a database error, 2 usage or settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.table import Table
from rich.text import Text

from synthguard._io import atomic_output
from synthguard.cli.common import DatabaseOption, err, out
from synthguard.cli.errors import describe, exit_status
from synthguard.config import load_settings
from synthguard.errors import ConfigError, SynthguardError

__all__ = ["EXIT_OVERDUE", "cases_app"]

#: ``clocks`` exit status when at least one complaint is overdue.
EXIT_OVERDUE: Final = 3

cases_app = typer.Typer(
    help="Casework: complaint clocks, end users' restrictions, report export.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on standard output.")]


def _fail(exc: SynthguardError) -> typer.Exit:
    err.print(Text(describe(exc), style="red"))
    return typer.Exit(exit_status(exc))


@cases_app.command("clocks")
def clocks(json_output: JsonOption = False, database: DatabaseOption = None) -> None:
    """Open complaints, soonest deadline first: on time, due soon, overdue."""
    from synthguard.governance import complaints
    from synthguard.store import open_store

    try:
        settings = load_settings(database_url=database)
        with open_store(settings=settings) as store, store.session() as session:
            found = complaints.clocks(session, settings)
    except SynthguardError as exc:
        raise _fail(exc) from None
    if json_output:
        rows = [
            {
                "tracking_number": c.tracking_number,
                "state": c.state.value,
                "deadline": c.deadline,
                "due": c.due.isoformat(),
                "status": c.status.value,
                "assignee": c.assignee,
            }
            for c in found
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False))
    else:
        table = Table("tracking number", "state", "deadline", "due (UTC)", "status", "assignee")
        for c in found:
            style = {"overdue": "red", "due_soon": "yellow"}.get(c.status.value, "")
            table.add_row(
                c.tracking_number,
                c.state.value,
                c.deadline,
                c.due.strftime("%Y-%m-%d %H:%M"),
                Text(c.status.value, style=style),
                c.assignee or "",
            )
        out.print(table)
    if any(c.status is complaints.ClockStatus.OVERDUE for c in found):
        raise typer.Exit(EXIT_OVERDUE)


@cases_app.command("restrictions")
def restrictions(
    user_ref: Annotated[str, typer.Argument(help="The end user's account key.")],
    json_output: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """What an end user may do now, and the measures in force."""
    from synthguard.governance import disposal
    from synthguard.store import open_store

    try:
        settings = load_settings(database_url=database)
        with open_store(settings=settings) as store, store.session() as session:
            found = disposal.current_restrictions(session, user_ref)
            points = disposal.active_points(session, user_ref)
    except SynthguardError as exc:
        raise _fail(exc) from None
    document = {
        "user_ref": found.user_ref,
        "can_generate": found.can_generate,
        "can_publish": found.can_publish,
        "closed": found.closed,
        "until": found.until.isoformat() if found.until else None,
        "points": points,
        "measures": [
            {
                "id": m.id,
                "kind": m.kind.value,
                "ends_at": m.ends_at.isoformat() if m.ends_at else None,
                "reason": m.reason,
            }
            for m in found.measures
        ],
    }
    if json_output:
        typer.echo(json.dumps(document, ensure_ascii=False))
        return
    for key, value in document.items():
        if key != "measures":
            out.print(f"{key}: {value}", markup=False)
    for m in found.measures:
        out.print(f"measure {m.id}: {m.kind.value} until {m.ends_at or 'lifted'}: {m.reason}", markup=False)


@cases_app.command("export")
def export(
    number: Annotated[str, typer.Argument(help="Report number, e.g. RPT-2026-000001.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (replaced atomically).")],
    pdf: Annotated[bool, typer.Option("--pdf", help="Write a printable PDF instead of JSON.")] = False,
    database: DatabaseOption = None,
) -> None:
    """Write a report to the authorities as canonical JSON, or as a PDF."""
    from synthguard.governance import reports
    from synthguard.store import open_store

    try:
        settings = load_settings(database_url=database)
        with open_store(settings=settings) as store, store.session() as session:
            document = reports.export(session, number)
        data = reports.render_pdf(document, settings=settings) if pdf else reports.export_json(document)
        try:
            with atomic_output(output) as fh:
                fh.write(data)
        except OSError as exc:
            raise ConfigError(f"cannot write {output}: {exc}") from exc
    except SynthguardError as exc:
        raise _fail(exc) from None
    err.print(f"{number}: {len(data)} bytes written to {output}")
