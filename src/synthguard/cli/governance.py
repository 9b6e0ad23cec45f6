"""``synthguard governance``: identity keys, the retention purge, and tracing a ProduceID.

::

    synthguard governance keygen [--json]
    synthguard governance purge [--json] [--database URL]
    synthguard governance trace PRODUCE_ID [--json] [--database URL]

``keygen`` prints a fresh ``identity_encryption_key`` and ``identity_hash_key`` (for the environment or
the config file; they are never written anywhere by synthguard). ``purge`` erases personal data whose
retention ended, as ``POST /api/retention/purge`` does (audited, actor ``system``): meant for cron.
``trace`` shows the generation record of a ProduceID found by ``synthguard detect`` and its user's
identity, masked. Exit status: 0 done; 1 a record not found or a database error; 2 usage or settings.
Documented in ``docs/cli-governance.md``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from synthguard.cli.common import DatabaseOption, guard, out
from synthguard.config import Settings, load_settings

if TYPE_CHECKING:
    from synthguard.store import Store

__all__ = ["governance_app"]

governance_app = typer.Typer(
    help="Governance records: identity keys, retention purge, ProduceID trace.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextlib.contextmanager
def _store(database: str | None) -> Iterator[tuple[Settings, Store]]:
    from synthguard.store import open_store

    settings = load_settings(database_url=database)
    with open_store(settings.resolved_database_url()) as store:
        store.upgrade()
        yield settings, store


def _print_json(value: Any) -> None:
    out.print(json.dumps(value, indent=2, ensure_ascii=False, default=str), markup=False)


@governance_app.command("keygen")
def keygen_command(json_output: JsonOption = False) -> None:
    """Print a fresh identity encryption key and lookup-hash key (base64)."""
    from synthguard.governance.crypto import generate_keys

    encryption, lookup = generate_keys()
    if json_output:
        _print_json({"identity_encryption_key": encryption, "identity_hash_key": lookup})
        return
    out.print(f"SYNTHGUARD_IDENTITY_ENCRYPTION_KEY={encryption}", markup=False)
    out.print(f"SYNTHGUARD_IDENTITY_HASH_KEY={lookup}", markup=False)


@governance_app.command("purge")
def purge_command(json_output: JsonOption = False, database: DatabaseOption = None) -> None:
    """Erase personal data whose retention ended (audited; counts only)."""

    def body() -> None:
        from synthguard.governance.retention import purge_expired

        with _store(database) as (settings, store), store.session(write=True) as session:
            report = purge_expired(session, settings)
        if json_output:
            _print_json(report.to_dict())
        else:
            out.print(
                f"purged: {report.subjects} users, {report.identifiers} identity numbers, "
                f"{report.sms_challenges} SMS codes, {report.consents} consents, {report.generations} "
                f"generation records",
                markup=False,
            )

    guard(body)


@governance_app.command("trace")
def trace_command(
    produce_id: Annotated[str, typer.Argument(help="The ProduceID (16 hex digits) from detect.")],
    json_output: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Show the generation record of PRODUCE_ID and its user's identity (masked)."""

    def body() -> None:
        from synthguard.governance.generation import find_generation

        with _store(database) as (_, store), store.session() as session:
            trace = find_generation(session, produce_id)
        data = trace.to_dict()
        if json_output:
            _print_json(data)
            return
        record = data["generation"]
        out.print(
            f"{record['produce_id']}  {record['modality']}  {record['created_at']}  "
            f"user {record['user_ref']}  labels {','.join(record['labels']) or '-'}",
            markup=False,
        )
        who = data["identity"]
        if who is None:
            out.print("identity: not registered", markup=False)
        else:
            numbers = ", ".join(f"{i['id_type']} {i['masked']}" for i in who["identifiers"]) or "-"
            out.print(f"identity: {who['state']}  {who['name_masked'] or '-'}  {numbers}", markup=False)

    guard(body)
