"""Run one file operation over files and folders: a process pool, a progress bar, a summary.

Folders are walked recursively in sorted order (hidden files and our own ``.part`` temporaries are
skipped). Each file's outcome is a ``FileOutcome``: a result dictionary or an error line; a failure in
one file never stops the others. Work is sent to the pool in chunks so that 10,000 small files cost
little more than their own processing.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthguard.cli.errors import describe, exit_status

__all__ = ["FileOutcome", "Job", "expand", "run_jobs"]


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """One file to process and, for writing commands, where its output goes (``None``: in place
    or nothing to write)."""

    source: Path
    output: Path | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FileOutcome:
    path: str
    result: dict[str, Any] | None = None
    error: str | None = None
    status: int = 0


def expand(inputs: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """Yield ``(file, relative path)`` for every file under the inputs (a file is its own root)."""
    for item in inputs:
        if item.is_dir():
            for root, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    path = Path(root) / name
                    yield path, path.relative_to(item)
        else:
            yield item, Path(item.name)


def _run_one(operation: Callable[[Job], dict[str, Any]], job: Job) -> FileOutcome:
    try:
        return FileOutcome(os.fspath(job.source), operation(job))
    except Exception as exc:  # one file's failure is reported, never fatal to the batch
        return FileOutcome(os.fspath(job.source), error=describe(exc), status=exit_status(exc))


def _run_chunk(operation: Callable[[Job], dict[str, Any]], jobs: list[Job]) -> list[FileOutcome]:
    return [_run_one(operation, job) for job in jobs]


def run_jobs(
    operation: Callable[[Job], dict[str, Any]],
    jobs: list[Job],
    *,
    workers: int,
    console: Console,
    label: str,
    on_outcome: Callable[[FileOutcome], None],
) -> list[FileOutcome]:
    """Run ``operation`` (a picklable top-level function) on every job; calls ``on_outcome`` in the
    parent, in input order, as results arrive. Shows a progress bar on ``console`` when it is a
    terminal or when there is more than one file."""
    outcomes: list[FileOutcome] = []
    show = len(jobs) > 1
    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not show,
    )
    with progress:
        task = progress.add_task(label, total=len(jobs))
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                outcome = _run_one(operation, job)
                outcomes.append(outcome)
                on_outcome(outcome)
                progress.advance(task)
            return outcomes
        size = max(1, min(64, len(jobs) // (workers * 8) or 1))
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_run_chunk, operation, chunk) for chunk in chunks]
            for future in futures:
                for outcome in future.result():
                    outcomes.append(outcome)
                    on_outcome(outcome)
                    progress.advance(task)
    return outcomes
