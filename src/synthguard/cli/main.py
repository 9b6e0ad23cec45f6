"""``synthguard``: label, detect and relabel files; the command contract of DESIGN.md.

::

    synthguard label IN -o OUT [--producer CODE] [--produce-id ID] [--kinds metadata] [--json]
    synthguard detect PATH... [--json]
    synthguard relabel IN -o OUT --propagator CODE [--declared-ai] [--json]
    synthguard keys generate [--algorithm ed25519|sm2] [--out FILE]
    synthguard demo

Exit status: 0 done, 1 a file could not be processed (the others still are), 2 usage.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from typer.exceptions import Abort, TyperException

from synthguard import __version__
from synthguard.aigc import ProduceID
from synthguard.cli.accounts import accounts_app
from synthguard.cli.audit import audit_app
from synthguard.cli.batch import FileOutcome, Job, expand, run_jobs
from synthguard.cli.cases import cases_app
from synthguard.cli.check import check
from synthguard.cli.errors import EXIT_FILE_FAILED, EXIT_OK, EXIT_USAGE, describe, exit_status
from synthguard.cli.governance import governance_app
from synthguard.cli.library import library_app
from synthguard.cli.review import review_app
from synthguard.cli.serve import serve
from synthguard.config import Settings, load_settings
from synthguard.errors import SynthguardError, UsageError
from synthguard.labels.detect import Check, detect_file, parse_checks
from synthguard.labels.pipeline import check_producer, label_file, parse_kinds, relabel_file
from synthguard.labels.security import generate_key, load_signer

__all__ = ["app", "main"]

app = typer.Typer(
    name="synthguard",
    help="GB 45438-2025 labels for AI-generated content: label, detect, relabel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Signing keys for ReservedCode1/ReservedCode2.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(review_app, name="review")
app.add_typer(library_app, name="library")
app.add_typer(audit_app, name="audit")
app.add_typer(governance_app, name="governance")
app.add_typer(cases_app, name="cases")
app.command("check")(check)
app.add_typer(accounts_app, name="accounts")
app.command("serve")(serve)

err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes for folders.")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per file, per line.")]


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SynthguardError as exc:
        err.print(f"[red]{describe(exc)}")
        raise typer.Exit(EXIT_USAGE) from None


def _plan(inputs: list[Path], output: Path | None, in_place: bool) -> list[Job]:
    """Map inputs to outputs: a file to a file (or into an existing folder), a folder to a folder."""
    if output is None and not in_place:
        raise UsageError("give -o OUT, or --in-place")
    if output is not None and in_place:
        raise UsageError("-o and --in-place exclude each other")
    missing = [p for p in inputs if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {missing[0]}")
    if output is None:
        return [Job(path) for path, _ in expand(inputs)]
    many = len(inputs) > 1 or inputs[0].is_dir()
    if many and output.exists() and not output.is_dir():
        raise UsageError(f"{output} is a file; several inputs need an output folder")
    jobs = []
    for path, relative in expand(inputs):
        if many:
            target = output / relative
        elif output.is_dir():
            target = output / path.name
        else:
            target = output
        jobs.append(Job(path, target))
    return jobs


def _finish(outcomes: list[FileOutcome], verb: str, started: float) -> None:
    failed = [o for o in outcomes if o.error]
    elapsed = time.perf_counter() - started
    rate = len(outcomes) / elapsed if elapsed > 0 else 0.0
    if len(outcomes) > 1 or failed:
        err.print(
            f"{verb}: {len(outcomes) - len(failed)} done, {len(failed)} failed, "
            f"{elapsed:.2f} s ({rate:.0f} files/s)"
        )
    if failed:
        raise typer.Exit(max(o.status for o in failed))


def _emit(as_json: bool, human: Any) -> Any:
    def on_outcome(outcome: FileOutcome) -> None:
        if as_json:
            record = (
                outcome.result
                if outcome.result is not None
                else {"path": outcome.path, "error": outcome.error}
            )
            print(json.dumps(record, ensure_ascii=False), flush=False)
        elif outcome.error:
            err.print(f"[red]{outcome.error}")
        else:
            human(outcome)

    return on_outcome


def _run(operation: Any, jobs: list[Job], *, workers: int, verb: str, as_json: bool, human: Any) -> None:
    started = time.perf_counter()
    outcomes = run_jobs(
        operation, jobs, workers=workers, console=err, label=verb, on_outcome=_emit(as_json, human)
    )
    sys.stdout.flush()
    _finish(outcomes, verb, started)


# -- operations (top-level so that worker processes can run them) -------------------------------


def _label_job(
    job: Job,
    *,
    settings: Settings,
    producer: str | None,
    produce_id: str | None,
    kinds: str | None,
    frames: bool = False,
) -> dict[str, Any]:
    """Label one file; ``frames``: show a bar of the video frames labeled (one file, in-process)."""
    if job.output is not None:
        job.output.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        progress = None
        if frames:
            bar = stack.enter_context(
                Progress(
                    TextColumn("[bold]frames"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
                )
            )
            task = bar.add_task("frames", total=None)

            def progress(done: int, expected: int | None) -> None:
                bar.update(task, completed=done, total=expected)

        result = label_file(
            job.source,
            job.output,
            producer=producer,
            produce_id=produce_id,
            kinds=kinds,
            in_place=job.output is None,
            settings=settings,
            progress=progress,
        )
    return result.to_dict()


def _relabel_job(
    job: Job, *, settings: Settings, propagator: str | None, declared_ai: bool
) -> dict[str, Any]:
    if job.output is not None:
        job.output.parent.mkdir(parents=True, exist_ok=True)
    result = relabel_file(
        job.source,
        job.output,
        propagator=propagator,
        declared_ai=declared_ai,
        in_place=job.output is None,
        settings=settings,
    )
    return result.to_dict()


def _detect_job(
    job: Job, *, settings: Settings, verify: bool, checks: frozenset[Check], unlabeled_only: bool
) -> dict[str, Any]:
    return detect_file(
        job.source, settings=settings, verify=verify, checks=checks, visible_if_unlabeled=unlabeled_only
    ).to_dict()


def _guard(body: Any) -> None:
    try:
        body()
    except SynthguardError as exc:
        err.print(f"[red]{describe(exc)}")
        raise typer.Exit(exit_status(exc)) from None


# -- commands ----------------------------------------------------------------------------------


@app.command()
def label(
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders to label.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file or folder.")] = None,
    producer: Annotated[str | None, typer.Option(help="ContentProducer (provider code).")] = None,
    produce_id: Annotated[str | None, typer.Option(help="ProduceID (16 hex digits); one file only.")] = None,
    kinds: Annotated[
        str | None, typer.Option(help="Label kinds, comma-separated: visible,watermark,metadata.")
    ] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Edit the files themselves.")] = False,
    as_json: JsonOption = False,
    jobs: JobsOption = 1,
) -> None:
    """Label files as AI-generated (Label "1"): an explicit label, a watermark and the GB 45438
    metadata label, as the policy (``default_kinds``) or ``--kinds`` asks."""
    settings = _settings()

    def body() -> None:
        # settle what holds for every file before starting, so a usage error is said once
        check_producer(producer or settings.provider_code)
        parse_kinds(kinds, settings)
        load_signer(settings)
        planned = _plan(inputs, output, in_place)
        if produce_id is not None:
            if len(planned) != 1:
                raise UsageError("--produce-id names one file's content; give one file")
            if not ProduceID.is_valid(produce_id):
                raise UsageError("--produce-id must be 16 upper-case hex digits")
        operation = functools.partial(
            _label_job,
            settings=settings,
            producer=producer,
            produce_id=produce_id,
            kinds=kinds,
            frames=len(planned) == 1 and not as_json and err.is_terminal,
        )

        def human(outcome: FileOutcome) -> None:
            if len(planned) == 1 and outcome.result:
                got = outcome.result
                out.print(
                    f"{got['path']} → {got['output']}: {', '.join(got['kinds'])}; Label "
                    f"{got['label']['Label']}, ProduceID {got['label']['ProduceID']}"
                )
                if got["note"]:
                    out.print(f"[yellow]{got['note']}")

        _run(operation, planned, workers=jobs, verb="label", as_json=as_json, human=human)

    _guard(body)


@app.command()
def detect(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders.")],
    as_json: JsonOption = False,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Check signatures (hashes the payload).")
    ] = True,
    checks: Annotated[
        str | None,
        typer.Option(
            help="What to look for, comma-separated: metadata (always), watermark (needs watermark_key), "
            "visible (explicit labels: OCR, wording, rhythm prompt). Default: all three, visible only "
            "where no metadata label was found."
        ),
    ] = None,
    jobs: JobsOption = 1,
) -> None:
    """Report every label a file carries and the verdict ("1", "2", "3" or "none")."""
    settings = _settings()

    def body() -> None:
        chosen = parse_checks(checks if checks is not None else [c.value for c in Check])
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise UsageError(f"no such file or folder: {missing[0]}")
        planned = [Job(path) for path, _ in expand(paths)]
        rows: list[dict[str, Any]] = []
        operation = functools.partial(
            _detect_job, settings=settings, verify=verify, checks=chosen, unlabeled_only=checks is None
        )
        _run(
            operation,
            planned,
            workers=jobs,
            verb="detect",
            as_json=as_json,
            human=lambda o: rows.append(o.result or {}),
        )
        if not as_json and rows:
            _print_detections(rows)

    _guard(body)


def _seen(check: dict[str, Any], found: str) -> str:
    if not check.get("checked"):
        return "not checked"
    return found if check.get("found") else "none"


def _print_detections(rows: list[dict[str, Any]]) -> None:
    if len(rows) > 50:
        verdicts: dict[str, int] = {}
        for row in rows:
            verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + 1
        out.print(", ".join(f"verdict {k}: {v}" for k, v in sorted(verdicts.items())))
        return
    table = Table(
        "file", "container", "Label", "producer", "ProduceID", "signature", "watermark", "visible", "verdict"
    )
    for row in rows:
        found = row["metadata"]["label"] or {}
        table.add_row(
            row["path"],
            row["container"],
            found.get("Label", ""),
            found.get("ContentProducer", ""),
            found.get("ProduceID", ""),
            row["metadata"]["signature"],
            _seen(row["watermark"], row["watermark"].get("produce_id") or "found"),
            _seen(row["visible"], "found"),
            row["verdict"],
        )
    out.print(table)


@app.command()
def relabel(
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders uploaded to the platform.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file or folder.")] = None,
    propagator: Annotated[str | None, typer.Option(help="ContentPropagator (the platform's code).")] = None,
    declared_ai: Annotated[
        bool, typer.Option("--declared-ai", help="The uploader declared AI content.")
    ] = False,
    in_place: Annotated[bool, typer.Option("--in-place", help="Edit the files themselves.")] = False,
    as_json: JsonOption = False,
    jobs: JobsOption = 1,
) -> None:
    """Platform side (Measures Art. 6): keep the producer's label, add the propagator's members."""
    settings = _settings()

    def body() -> None:
        check_producer(propagator or settings.propagator_code, role="propagator")
        load_signer(settings)
        planned = _plan(inputs, output, in_place)
        operation = functools.partial(
            _relabel_job, settings=settings, propagator=propagator, declared_ai=declared_ai
        )

        def human(outcome: FileOutcome) -> None:
            got = outcome.result or {}
            if len(planned) == 1:
                if got.get("label"):
                    out.print(
                        f"{got['path']} → {got['output']}: Label {got['label']['Label']}, "
                        f"PropagateID {got['label']['PropagateID']}"
                    )
                else:
                    out.print(f"{got['path']}: {got['note']}")

        _run(operation, planned, workers=jobs, verb="relabel", as_json=as_json, human=human)

    _guard(body)


@keys_app.command("generate")
def keys_generate(
    algorithm: Annotated[str, typer.Option(help="ed25519 or sm2.")] = "ed25519",
    key_out: Annotated[
        Path | None, typer.Option("--out", help="Write the private key here (mode 600).")
    ] = None,
) -> None:
    """Make a signing key pair; prints the public key and its key id."""

    def body() -> None:
        from synthguard.labels.security import Signer

        private, public = generate_key(algorithm)
        kid = Signer(algorithm, private).public.kid
        if key_out is not None:
            if key_out.exists():
                raise UsageError(f"{key_out} exists; not overwriting a key")
            fd = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(private if private.endswith("\n") else private + "\n")
            out.print(f"private key written to {key_out}")
        else:
            out.print(private.rstrip())
        out.print(f"algorithm = {algorithm.lower()}\npublic_key = {public}\nkey_id = {kid}")

    _guard(body)


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--out", help="Where to write the labeled sample.")] = Path(
        ".synthguard/demo"
    ),
) -> None:
    """Label the bundled sample photo (explicit label, watermark, signed metadata label) with fresh
    keys, relabel it as a platform, and detect all three."""
    from synthguard.samples import DEMO_PROPAGATOR_CODE, DEMO_PROVIDER_CODE, sample_path

    def body() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        private, _ = generate_key("ed25519")
        settings = Settings(
            provider_code=DEMO_PROVIDER_CODE,
            propagator_code=DEMO_PROPAGATOR_CODE,
            signing_algorithm="ed25519",
            signing_key=private,
            watermark_key=secrets.token_urlsafe(24),
        )
        labeled = folder / "sample-labeled.jpg"
        relabeled = folder / "sample-relabeled.jpg"
        result = label_file(sample_path(), labeled, settings=settings)
        relabel_file(labeled, relabeled, settings=settings)
        out.print(
            f"labeled {sample_path().name} → {labeled} (ProduceID "
            f"{result.label.ProduceID if result.label else '?'})"
        )
        out.print(f"relabeled as a platform → {relabeled}")
        for path in (labeled, relabeled):
            report = detect_file(path, settings=settings, checks=set(Check)).to_dict()
            out.print_json(json.dumps(report))

    _guard(body)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def main() -> None:
    """Entry point: exit statuses per the contract (0, 1, 2), no tracebacks for our errors."""
    try:
        status = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except TyperException as exc:  # bad options and arguments
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(exc.format_message())
        sys.exit(EXIT_USAGE if exc.exit_code == EXIT_USAGE else EXIT_FILE_FAILED)
    except Abort:
        sys.exit(EXIT_FILE_FAILED)
    except Exception as exc:  # anything unexpected: one line, no traceback
        err.print(f"[red]{describe(exc)}")
        sys.exit(EXIT_FILE_FAILED)
    sys.exit(status if isinstance(status, int) else EXIT_OK)
