"""``synthguard review``: texts, images and videos against the characteristics database.

::

    synthguard review text (TEXT | --file F) [--lines] [--json] [--library FILE] [--database URL]
    synthguard review image FILE... [--json] [--library FILE] [--database URL]
    synthguard review video FILE [--every SECONDS] [--max-frames N] [--json] [--library FILE] [--database URL]

The library is loaded once per command (``review.library_loader.load``: ``--library``, else the
database, else the bundled SAMPLE library, announced on standard error). ``review text --json``
prints one JSON object: ``verdict``, ``matches`` (``term``, ``category``, ``action``, ``start``,
``end``, ...), ``masked`` (and ``library_version``, ``sample_library``, ``elapsed_ms``); with
``--lines`` one object per line of the file, in order, each with its ``line`` number (from 1), and
for a line that could not be reviewed ``{"line": N, "error": "..."}``. Offsets are Unicode code
points of the text (of the line, with ``--lines``).

Exit status: 0 reviewed, whatever the verdicts; 1 an input could not be processed (invalid UTF-8, a
text over the size limit, a file that is not an image; the other lines or files still are); 2 usage.
"""

from __future__ import annotations

import atexit
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Final

import typer
from rich.text import Text

from synthguard.cli.common import DatabaseOption, err, out
from synthguard.cli.errors import EXIT_FILE_FAILED, EXIT_USAGE, describe, exit_status
from synthguard.config import Settings, load_settings
from synthguard.errors import SynthguardError, UsageError

if TYPE_CHECKING:
    # the review modules build large tables on import: commands import them when they run, so that
    # every other synthguard command starts fast
    from synthguard.review.engine import CompiledLibrary, ImageDecision, Reviewer, TextDecision, Verdict

__all__ = ["review_app"]

review_app = typer.Typer(
    help="Review texts, images and videos against the characteristics database (Art. 10, 11).",
    no_args_is_help=True,
)


#: With --lines, standard output is flushed after this many lines (after each one from stdin).
FLUSH_EVERY: Final = 256
#: Text shown in full by the human rendering; longer texts show the matched passages only.
_SHOW_CHARS: Final = 600
#: Verdict values to Rich styles.
_STYLE: Final = {
    "allow": "green",
    "mask": "yellow",
    "review": "magenta",
    "block": "bold red",
}

JsonOption = Annotated[bool, typer.Option("--json", help="JSON output (one object per input, per line).")]
LibraryOption = Annotated[
    Path | None,
    typer.Option("--library", help="Review with this library file (synthguard-library/1 JSON)."),
]


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SynthguardError as exc:
        err.print(Text(describe(exc), style="red"))
        raise typer.Exit(EXIT_USAGE) from None


def _guard(body: Callable[[], None]) -> None:
    try:
        body()
    except SynthguardError as exc:
        err.print(Text(describe(exc), style="red"))
        raise typer.Exit(exit_status(exc)) from None


def _max_input_bytes() -> int:
    from synthguard.review.normalize import MAX_INPUT_BYTES

    return MAX_INPUT_BYTES


def _reviewer(database: str | None, library: Path | None) -> Reviewer:
    """A reviewer over the loaded library; with the characteristics database, every hit is also
    recorded in it (Art. 10 records)."""
    from synthguard.review.engine import Reviewer

    compiled = _load(database, library)
    if compiled.sample or library is not None:
        return Reviewer(compiled)
    from synthguard.review.library import HitRecorder
    from synthguard.store import open_store

    store = open_store(settings=_settings(database_url=database))
    atexit.register(store.close)
    return Reviewer(compiled, sink=HitRecorder(store))


def _load(database: str | None, library: Path | None) -> CompiledLibrary:
    settings = _settings(database_url=database)
    from synthguard.review import library_loader

    compiled = library_loader.load(settings, library)
    if compiled.sample:
        err.print(
            Text(
                "using the bundled SAMPLE library (no characteristics database with active entries "
                "was found): for trying the tool only",
                style="yellow",
            )
        )
    return compiled


def _emit_json(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


# -- review text ----------------------------------------------------------------------------------


@review_app.command("text")
def review_text(
    text: Annotated[
        str | None, typer.Argument(help="The text to review (or --file).", show_default=False)
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the text from this file ('-': standard input).")
    ] = None,
    lines: Annotated[
        bool, typer.Option("--lines", help="Review each line of --file on its own, one result per line.")
    ] = False,
    as_json: JsonOption = False,
    library: LibraryOption = None,
    database: DatabaseOption = None,
) -> None:
    """Review a text (or each line of a file) for keywords and known rumors."""

    def body() -> None:
        if (text is None) == (file is None):
            raise UsageError("give the TEXT to review, or --file FILE")
        if lines and file is None:
            raise UsageError("--lines reviews the lines of a file: give --file FILE")
        if file is not None and str(file) != "-" and not file.is_file():
            raise UsageError(f"no such file: {file}")
        reviewer = _reviewer(database, library)
        if lines:
            assert file is not None
            _review_lines(reviewer, file, as_json)
            return
        try:
            from synthguard.review.normalize import coerce_text

            original = coerce_text(text if text is not None else _read_text(file))
            decision = reviewer.review_text(original, subject=f"cli:{file or 'text'}")
        except SynthguardError as exc:  # the input, not the command line: exit 1
            err.print(Text(describe(exc), style="red"))
            raise typer.Exit(EXIT_FILE_FAILED) from None
        if as_json:
            _emit_json(decision.to_dict())
        else:
            _print_text(decision, original)

    _guard(body)


def _open(file: Path) -> BinaryIO:
    if str(file) == "-":
        return sys.stdin.buffer
    try:
        return file.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot open {file}: {exc.strerror or exc}") from None


def _read_text(file: Path | None) -> bytes:
    """The file's bytes, refused (exit 1) beyond the text size limit without reading it all."""
    assert file is not None
    stream = _open(file)
    try:
        data = stream.read(_max_input_bytes() + 1)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if len(data) > _max_input_bytes():
        raise UsageError(f"{file}: text larger than the limit of {_max_input_bytes():,} bytes")
    return data


def _bounded_lines(stream: BinaryIO, limit: int) -> Iterator[bytes | SynthguardError]:
    """Each line without its line break, or an error for a line over ``limit`` bytes (skipped without
    holding it in memory)."""
    number = 0
    while True:
        line = stream.readline(limit + 2)  # the text, and room for "\r\n"
        if not line:
            return
        number += 1
        if not line.endswith(b"\n") and len(line) > limit:
            while True:  # the rest of an over-long line, in bounded pieces
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            yield UsageError(f"line {number}: longer than the limit of {limit:,} bytes")
            continue
        if line.endswith(b"\n"):
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if len(line) > limit:
            yield UsageError(f"line {number}: longer than the limit of {limit:,} bytes")
            continue
        yield line


def _review_lines(reviewer: Reviewer, file: Path, as_json: bool) -> None:
    from_stdin = str(file) == "-"
    stream = _open(file)
    failed = 0
    counts: dict[Verdict, int] = {}
    try:
        for number, item in enumerate(_bounded_lines(stream, _max_input_bytes()), 1):
            try:
                if isinstance(item, SynthguardError):
                    raise item
                decision = reviewer.review_text(item, subject=f"{file}:{number}")
            except SynthguardError as exc:
                failed += 1
                if as_json:
                    _emit_json({"line": number, "error": describe(exc)})
                else:
                    err.print(Text(f"line {number}: {describe(exc)}", style="red"))
            else:
                counts[decision.verdict] = counts.get(decision.verdict, 0) + 1
                if as_json:
                    _emit_json({"line": number, **decision.to_dict()})
                else:
                    _print_line(number, decision)
            if from_stdin or number % FLUSH_EVERY == 0:
                sys.stdout.flush()
    finally:
        sys.stdout.flush()
        if not from_stdin:
            stream.close()
    summary = ", ".join(f"{v.value} {counts[v]}" for v in sorted(counts)) or "no lines"
    err.print(f"review: {summary}" + (f", {failed} failed" if failed else ""))
    if failed:
        raise typer.Exit(EXIT_FILE_FAILED)


def _verdict_text(verdict: Verdict) -> Text:
    return Text(verdict.value.upper(), style=_STYLE[verdict.value])


def _print_line(number: int, decision: TextDecision) -> None:
    line = Text(f"{number}: ")
    line.append_text(_verdict_text(decision.verdict))
    if decision.matches:
        terms = ", ".join(dict.fromkeys(m["term"] for m in decision.to_dict()["matches"]))
        line.append(f"  {terms}")
    out.print(line)


def _print_text(decision: TextDecision, original: str) -> None:
    """The verdict, the text with its matches highlighted (when short), and one line per match."""
    record = decision.to_dict()
    head = Text("verdict: ")
    head.append_text(_verdict_text(decision.verdict))
    head.append(f"  ({len(record['matches'])} matches, library {decision.library_version}, ")
    head.append(f"{decision.elapsed_ms:.1f} ms)")
    out.print(head)
    short = len(original) <= _SHOW_CHARS
    if short and record["matches"]:
        body = Text(original)
        for m in record["matches"]:
            body.stylize("reverse " + _STYLE[m["verdict"]], m["start"], m["end"])
        out.print(body)
    for m in record["matches"]:
        line = Text(f"  {m['kind']:<7} ")
        line.append(str(m["term"]), style="bold")
        line.append(f"  {m['category']}  {m['action']}  [{m['start']}, {m['end']})")
        if not short:
            line.append(f"  {original[m['start'] : m['end']][:80]!r}")
        if m["kind"] == "rumor":
            notice = m["notice"]
            line.append(f"  similarity {m['similarity']:.2f}; refuted: {notice['title']} {notice['url']}")
        elif m.get("normalizations"):
            line.append(f"  via {', '.join(m['normalizations'])}")
        out.print(line)
    if short and decision.masked != original:
        out.print(Text("masked: ").append(decision.masked))


# -- review image / video -------------------------------------------------------------------------


@review_app.command("image")
def review_image(
    files: Annotated[list[Path], typer.Argument(help="Image files.", show_default=False)],
    as_json: JsonOption = False,
    library: LibraryOption = None,
    database: DatabaseOption = None,
) -> None:
    """Match images (all eight rotations and flips) against the known image hashes."""

    def body() -> None:
        for path in files:
            if not path.is_file():
                raise UsageError(f"no such file: {path}")
        reviewer = _reviewer(database, library)
        failed = 0
        for path in files:
            try:
                decision = reviewer.review_image(path, subject=str(path))
            except SynthguardError as exc:
                failed += 1
                _report_failure(path, exc, as_json)
                continue
            if as_json:
                _emit_json({"path": str(path), **decision.to_dict()})
            else:
                _print_image(path, decision)
        sys.stdout.flush()
        if failed:
            raise typer.Exit(EXIT_FILE_FAILED)

    _guard(body)


@review_app.command("video")
def review_video(
    file: Annotated[Path, typer.Argument(help="A video file.", show_default=False)],
    every: Annotated[float, typer.Option("--every", min=0.001, help="Seconds between sampled frames.")] = 1.0,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", min=1, help="Most frames hashed (default 1000).")
    ] = None,
    as_json: JsonOption = False,
    library: LibraryOption = None,
    database: DatabaseOption = None,
) -> None:
    """Match sampled video frames against the known image hashes."""

    def body() -> None:
        if not file.is_file():
            raise UsageError(f"no such file: {file}")
        reviewer = _reviewer(database, library)
        try:
            decision = reviewer.review_video(
                file, every_seconds=every, max_frames=max_frames, subject=str(file)
            )
        except SynthguardError as exc:
            _report_failure(file, exc, as_json)
            raise typer.Exit(EXIT_FILE_FAILED) from None
        if as_json:
            _emit_json({"path": str(file), **decision.to_dict()})
            return
        line = Text(f"{file}: ")
        line.append_text(_verdict_text(decision.verdict))
        line.append(f"  ({decision.frames} frames, {decision.low_quality_frames} below the quality gate)")
        out.print(line)
        for m in decision.matches:
            out.print(f"  {m.entry_id}  distance {m.distance}  {m.variant.value}  at {m.time:.2f} s")
        if decision.note:
            out.print(f"  {decision.note}")

    _guard(body)


def _report_failure(path: Path, exc: SynthguardError, as_json: bool) -> None:
    if as_json:
        _emit_json({"path": str(path), "error": describe(exc)})
    else:
        err.print(Text(describe(exc), style="red"))


def _print_image(path: Path, decision: ImageDecision) -> None:
    line = Text(f"{path}: ")
    line.append_text(_verdict_text(decision.verdict))
    line.append(f"  ({decision.status.value}, PDQ quality {decision.hash.quality})")
    out.print(line)
    for m in decision.matches:
        out.print(f"  {m.entry_id}  distance {m.distance}  {m.variant.value}")
    if decision.note:
        out.print(f"  {decision.note}")
