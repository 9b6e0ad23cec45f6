"""``synthguard audit``: the tamper-evident audit log from the command line.

::

    synthguard audit status [--json] [--database URL]
    synthguard audit verify [--public-key PEM] [--json] [--database URL]
    synthguard audit checkpoint [--size N] [--due] [--json] [--database URL]
    synthguard audit proof INDEX [--size N] [--json] [--database URL]
    synthguard audit consistency SIZE1 [--size2 N] [--json] [--database URL]
    synthguard audit export TARGET [--subject S] [--no-checkpoint] [--database URL]
    synthguard audit verify-bundle PATH [--public-key PEM] [--json]
    synthguard audit keygen FILE

Every command that opens the database migrates it to the newest revision first. Exit status: 0 done
(``verify``, ``verify-bundle``: the log or bundle verified); 1 the log or bundle did NOT verify, or
a database or file error; 2 usage (bad arguments or settings, e.g. no checkpoint key). Documented in
``docs/cli-audit.md``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from synthguard.cli.common import DatabaseOption, guard, out
from synthguard.cli.errors import EXIT_FILE_FAILED
from synthguard.config import Settings, load_settings
from synthguard.errors import UsageError

if TYPE_CHECKING:
    from synthguard.store import Store

__all__ = ["audit_app"]

audit_app = typer.Typer(
    help="The tamper-evident audit log: verify, checkpoint, prove, export for inspectors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        help="Ed25519 public key (PEM) of the checkpoints (default: from the configured checkpoint key).",
        show_default=False,
    ),
]


@contextlib.contextmanager
def _store(database: str | None) -> Iterator[tuple[Settings, Store]]:
    from synthguard.store import open_store

    settings = load_settings(database_url=database)
    with open_store(settings.resolved_database_url()) as store:
        store.upgrade()
        yield settings, store


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _public_key(settings: Settings, path: Path | None) -> bytes | None:
    from synthguard.audit import checkpoints

    if path is not None:
        return checkpoints.public_key_from_pem(path.read_text(encoding="ascii"))
    if checkpoints.has_signer(settings):
        return checkpoints.signer_from_settings(settings).public_key
    return None


def _print_json(value: Any) -> None:
    out.print(json.dumps(value, indent=2, ensure_ascii=False), markup=False)


@audit_app.command("status")
def status_command(json_output: JsonOption = False, database: DatabaseOption = None) -> None:
    """Show the log's size, root and latest checkpoint."""

    def body() -> None:
        from synthguard.audit import checkpoints, log

        with _store(database) as (_, store), store.session() as session:
            head = log.tree_head(session)
            latest = checkpoints.latest_checkpoint(session)
        result = {
            "size": head.size,
            "root": _b64(head.root),
            "latest_checkpoint": None if latest is None else {"size": latest.size, "root": _b64(latest.root)},
        }
        if json_output:
            _print_json(result)
        else:
            out.print(f"records {head.size}  root {result['root']}", markup=False)
            if latest is None:
                out.print("no checkpoint yet", markup=False)
            else:
                out.print(
                    f"latest checkpoint: size {latest.size}, signed {latest.created_at:%Y-%m-%d %H:%M:%S}Z"
                )

    guard(body)


@audit_app.command("verify")
def verify_command(
    public_key: PublicKeyOption = None, json_output: JsonOption = False, database: DatabaseOption = None
) -> None:
    """Re-check the whole log; name the first record edited, deleted or reordered (exit 1 if any)."""
    failed = False

    def body() -> None:
        nonlocal failed
        from synthguard.audit.verify import verify_log

        with _store(database) as (settings, store), store.session() as session:
            report = verify_log(
                session, public_key=_public_key(settings, public_key), key_name=settings.audit_origin
            )
        failed = not report.ok
        if json_output:
            _print_json(report.to_json())
            return
        out.print(
            f"records {report.size}: {report.records_checked} checked, {report.nodes_checked} tree nodes, "
            f"{report.checkpoints_checked} checkpoints",
            markup=False,
        )
        first = report.first
        if first is None:
            out.print(f"VERIFIED  root {_b64(report.root)}", markup=False)
            return
        where = "the log" if first.index is None else f"record {first.index}"
        out.print(f"NOT VERIFIED: first problem at {where} ({first.kind}): {first.message}", markup=False)
        for problem in report.problems:
            if problem is not first:
                out.print(f"  also: {problem.message}", markup=False)
        if report.truncated:
            out.print("  (more problems not listed)", markup=False)

    guard(body)
    if failed:
        raise typer.Exit(EXIT_FILE_FAILED)


@audit_app.command("checkpoint")
def checkpoint_command(
    size: Annotated[
        int | None,
        typer.Option("--size", help="Tree size to sign (default: the whole log).", show_default=False),
    ] = None,
    due: Annotated[
        bool,
        typer.Option(
            "--due", help="Sign every missing interval checkpoint instead (audit_checkpoint_interval)."
        ),
    ] = False,
    json_output: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Sign a checkpoint of the log now (or the missing interval checkpoints with --due)."""

    def body() -> None:
        from synthguard.audit import checkpoints

        if due and size is not None:
            raise UsageError("give --size or --due, not both")
        with _store(database) as (settings, store), store.session(write=True) as session:
            if due:
                made = checkpoints.make_due_checkpoints(session, settings)
            else:
                made = [checkpoints.make_checkpoint(session, settings, size=size, actor="system")]
        if json_output:
            _print_json([{"size": c.size, "root": _b64(c.root), "note": c.note} for c in made])
        elif not made:
            out.print("no checkpoint was due", markup=False)
        else:
            for checkpoint in made:
                out.print(checkpoint.note, markup=False, end="")

    guard(body)


@audit_app.command("proof")
def proof_command(
    index: Annotated[int, typer.Argument(help="The record's index (from 0).")],
    size: Annotated[
        int | None, typer.Option("--size", help="Tree size (default: the whole log).", show_default=False)
    ] = None,
    json_output: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Print the inclusion proof of one record (RFC 9162), with its leaf hash and the root."""

    def body() -> None:
        from synthguard.audit import log

        with _store(database) as (_, store), store.session() as session:
            head = log.root_at(session, size)
            record = log.get_record(session, index)
            proof = log.inclusion_proof(session, index, head.size)
        result: dict[str, Any] = {
            "index": index,
            "tree_size": head.size,
            "root": _b64(head.root),
            "leaf_hash": _b64(record.leaf_hash()),
            "record": record.to_json(),
            "proof": [_b64(h) for h in proof],
        }
        heading = f"record {index} in tree of size {head.size}, root {result['root']}"
        _print_proof(result, heading, json_output)

    guard(body)


def _print_proof(result: dict[str, Any], heading: str, json_output: bool) -> None:
    """A proof as JSON, or as a heading and one hash a line."""
    if json_output:
        _print_json(result)
        return
    out.print(heading, markup=False)
    for value in result["proof"]:
        out.print(f"  {value}", markup=False)


@audit_app.command("consistency")
def consistency_command(
    size1: Annotated[int, typer.Argument(help="The older tree size (at least 1).")],
    size2: Annotated[
        int | None,
        typer.Option("--size2", help="The newer tree size (default: the whole log).", show_default=False),
    ] = None,
    json_output: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Print the consistency proof between two tree sizes (RFC 9162)."""

    def body() -> None:
        from synthguard.audit import log

        with _store(database) as (_, store), store.session() as session:
            second = log.root_at(session, size2)
            first = log.root_at(session, size1)
            proof = log.consistency_proof(session, size1, second.size)
        result: dict[str, Any] = {
            "size1": first.size,
            "root1": _b64(first.root),
            "size2": second.size,
            "root2": _b64(second.root),
            "proof": [_b64(h) for h in proof],
        }
        _print_proof(result, f"{first.size} -> {second.size}", json_output)

    guard(body)


@audit_app.command("export")
def export_command(
    target: Annotated[Path, typer.Argument(help="A new (or empty) directory, or a .zip file.")],
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject", help="Export only this subject's records (with their proofs).", show_default=False
        ),
    ] = None,
    no_checkpoint: Annotated[
        bool, typer.Option("--no-checkpoint", help="Do not sign a checkpoint of the current size first.")
    ] = False,
    database: DatabaseOption = None,
) -> None:
    """Write a bundle an inspector verifies without the database (docs/audit.md)."""

    def body() -> None:
        from synthguard.audit.bundle import export_bundle

        with _store(database) as (settings, store), store.session(write=True) as session:
            summary = export_bundle(
                session, settings, target, subject=subject, checkpoint_now=not no_checkpoint
            )
        out.print(
            f"exported {summary.records} records, {summary.checkpoints} checkpoints (latest of size "
            f"{summary.latest_checkpoint}) to {summary.path}",
            markup=False,
        )

    guard(body)


@audit_app.command("verify-bundle")
def verify_bundle_command(
    path: Annotated[Path, typer.Argument(help="The bundle directory or .zip file.")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key", help="The provider's public key (PEM), obtained separately.", show_default=False
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Verify an export bundle without the database (the same checks as the bundle's own tool)."""
    from synthguard.audit import inspector

    arguments = [str(path)]
    if public_key is not None:
        arguments += ["--public-key", str(public_key)]
    if json_output:
        arguments.append("--json")
    status = inspector.main(arguments)
    if status:
        raise typer.Exit(status)


@audit_app.command("keygen")
def keygen_command(
    file: Annotated[
        Path, typer.Argument(help="Where to write the private key (PEM); FILE.pub gets the public key.")
    ],
) -> None:
    """Make an Ed25519 checkpoint key (set audit_checkpoint_key_file to FILE)."""

    def body() -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if file.exists():
            raise UsageError(f"{file} exists: not overwriting a key")
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(private)
        Path(f"{file}.pub").write_bytes(public)
        out.print(f"wrote {file} (private, mode 600) and {file}.pub", markup=False)

    guard(body)
