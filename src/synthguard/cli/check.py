"""``synthguard check FILE...``: find explicit labels people can see or hear in files of any origin.

::

    synthguard check PATH... [--json] [--thorough]      (files, or folders: every file under them)

Text by the wording rules, images and video frames by OCR, audio by the rhythm prompt (see
``synthguard.visible.checker``). ``--json`` prints one object per file, per line: ``found``,
``conforms``, ``findings`` (``method``, ``text``, ``where``, ``conforms``, ``details``),
``suggestion``, ``notes``; a file that could not be checked prints ``{"path": ..., "error": ...}``.

Exit status: 0 every file was checked, whatever was found; 1 a file could not be checked (the
others still are); 2 usage.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from synthguard.cli.batch import expand
from synthguard.cli.errors import EXIT_FILE_FAILED, EXIT_USAGE, describe
from synthguard.config import load_settings
from synthguard.errors import SynthguardError

__all__ = ["check"]

err = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def _human(report: dict[str, Any]) -> None:
    if not report["found"]:
        out.print(f"{report['path']}: no explicit label found ({report['modality']})")
    for finding in report["findings"]:
        details = finding["details"]
        facts = []
        if "height_fraction" in details:
            facts.append(f"height {details['height_fraction'] * 100:.1f}% of the shortest side")
        if "time_s" in details:
            facts.append(f"at {details['time_s']:.1f} s, {details.get('where_in_picture', '')}")
        if "start_s" in details:
            facts.append(f"{details['start_s']:.2f}-{details['end_s']:.2f} s")
        if "frequency_hz" in details:
            facts.append(f"{details['frequency_hz']:.0f} Hz")
        if "score" in details and finding["method"] == "speech":
            facts.append(f"match {details['score']:.2f}")
        verdict = "conforms" if finding["conforms"] else "does not conform"
        where = "; ".join([finding["where"], *facts])
        out.print(Text(f"{report['path']}: {finding['text']!r} ({where}) {verdict}"))
    if report["found"]:
        out.print(Text(report["suggestion"], style="yellow"))
    for note in report["notes"]:
        err.print(Text(f"{report['path']}: note: {note}", style="dim"))


def _files(paths: list[Path]) -> Iterator[Path]:
    """The files named, and those under the folders named (hidden ones skipped), in order."""
    for path in paths:
        if path.is_dir():
            yield from (found for found, _ in expand([path]))
        else:
            yield path


def check(
    files: Annotated[list[Path], typer.Argument(help="Files or folders to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file, per line.")] = False,
    thorough: Annotated[
        bool,
        typer.Option(
            "--thorough", help="Also read the edge bands at full resolution (small labels; slower)."
        ),
    ] = False,
) -> None:
    """Find explicit AI labels (text, OCR on images and video, the audio rhythm prompt)."""
    try:
        settings = load_settings()
    except SynthguardError as exc:
        err.print(Text(describe(exc), style="red"))
        raise typer.Exit(EXIT_USAGE) from None
    from synthguard.visible.checker import check_file

    failed = False
    for path in _files(files):
        try:
            if not path.is_file():
                raise FileNotFoundError(2, "no such file", str(path))
            report = check_file(path, settings, thorough=thorough).to_dict()
        except (SynthguardError, OSError) as exc:
            failed = True
            if as_json:
                sys.stdout.write(
                    json.dumps({"path": str(path), "error": describe(exc)}, ensure_ascii=False) + "\n"
                )
            else:
                err.print(Text(f"{path}: {describe(exc)}", style="red"))
            continue
        if as_json:
            sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        else:
            _human(report)
    sys.stdout.flush()
    if failed:
        raise typer.Exit(EXIT_FILE_FAILED)
