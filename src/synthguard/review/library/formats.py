"""The import and export formats, CSV and JSON (``docs/library-format.md``): reading a file into
checked rows, every invalid row reported with its line number (never stopping at the first), and
writing export records. No database access: ``transfer`` and ``workflow`` write what this returns.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from synthguard.errors import UsageError
from synthguard.review.keywords import Action
from synthguard.review.library.match import (
    format_match,
    parse_match,
)
from synthguard.review.library.model import (
    _ACTOR_MAX,
    EntryKind,
    EntryState,
    FileFormat,
    LibraryEntry,
    RowError,
)
from synthguard.review.normalize import (
    Normalization,
    normalize_terms,
    term_forms,
)
from synthguard.review.risks import RiskCategory
from synthguard.review.rumors import RefutationNotice, RumorEntry, RumorIndex

#: The columns of the CSV format, in the order they are written; JSON objects use the same names.
COLUMNS: Final = (
    "id",
    "kind",
    "term",
    "category",
    "action",
    "match",
    "reason",
    "source",
    "effective_from",
    "lapses_at",
    "proposer",
    "approver",
    "state",
    "disabled_reason",
    "quality",
    "refutation_id",
    "refutation_title",
    "refutation_url",
    "refutation_published",
)
REQUIRED_COLUMNS: Final = ("term", "category", "action")
#: Extra names a JSON object may use: ``hash`` or ``pdq`` (an image) and ``claim`` (a rumor) for
#: ``term``, and a nested ``refutation`` (or ``notice``) object ``{id, title, url, published}``: the
#: names of the library file format of ``review/library_loader.py`` (the bundled sample).
JSON_ALIASES: Final = ("hash", "pdq", "claim", "refutation", "notice")
#: What rows of the ``images`` and ``rumors`` sections default to (the library file format lets them
#: leave out the action and the category).
_SECTION_DEFAULTS: Final = {
    EntryKind.IMAGE: {"action": Action.BLOCK.value, "category": RiskCategory.A1_8.value},
    EntryKind.RUMOR: {"action": Action.REVIEW.value, "category": RiskCategory.A1_7.value},
}
#: Sections of the JSON object format and the kind of their rows (``entries`` rows carry ``kind``).
JSON_SECTIONS: Final = {
    "entries": None,
    "keywords": EntryKind.KEYWORD,
    "images": EntryKind.IMAGE,
    "rumors": EntryKind.RUMOR,
}
#: Larger import files are refused (a library of 100,000 entries is about 20 MB of CSV).
MAX_IMPORT_BYTES: Final = 256 * 1024 * 1024
#: Images and rumors are blocked or sent to a person; masking and allow-listing are for keywords.
_ACTIONS: Final = {
    EntryKind.KEYWORD: frozenset(Action),
    EntryKind.IMAGE: frozenset({Action.BLOCK, Action.REVIEW}),
    EntryKind.RUMOR: frozenset({Action.BLOCK, Action.REVIEW}),
}
_ID_PREFIX: Final = {EntryKind.KEYWORD: "kw", EntryKind.IMAGE: "img", EntryKind.RUMOR: "rum"}
_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")


@dataclasses.dataclass(frozen=True)
class _Spec:
    """One valid import row: the entry's content and the provenance the file states."""

    line: int
    id: str
    kind: EntryKind
    term: str
    category: RiskCategory
    action: Action
    match: frozenset[Normalization]
    reason: str
    source: str
    effective_from: dt.datetime | None
    lapses_at: dt.datetime | None
    quality: int | None
    refutation: RefutationNotice | None
    proposer: str | None
    approver: str | None
    disabled: bool
    disabled_reason: str | None

    def content(self) -> tuple[Any, ...]:
        """What an entry is (not its procedure): compared with an existing entry of the same id."""
        return tuple(getattr(self, name) for name in _CONTENT_FIELDS)


#: The fields that say what an entry is; an import row equal to an entry in these is unchanged.
_CONTENT_FIELDS: Final = (
    "kind",
    "term",
    "category",
    "action",
    "match",
    "reason",
    "source",
    "effective_from",
    "lapses_at",
    "quality",
    "refutation",
)


def _entry_content(entry: LibraryEntry) -> tuple[Any, ...]:
    return tuple(getattr(entry, name) for name in _CONTENT_FIELDS)


def _generated_id(kind: EntryKind, category: RiskCategory, term: str) -> str:
    """A stable id from what an entry is: the same row imported twice is the same entry."""
    digest = hashlib.sha256(f"{kind.value}\x1f{category.value}\x1f{term}".encode()).hexdigest()
    return f"{_ID_PREFIX[kind]}-{digest[:16]}"


def _parse_time(value: str, field: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{field} {value!r} is not an ISO 8601 date or time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)  # documented: times without an offset are UTC
    return parsed.astimezone(dt.UTC)


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    """A field as stripped text, ``None`` when absent or empty; numbers are refused except where
    the format allows them (``quality``)."""
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UsageError(f"{name} must be text, got {type(value).__name__}")
    if isinstance(value, int):
        if name != "quality":
            raise UsageError(f"{name} must be text, got a number")
        return str(value)
    value = value.strip()
    return value or None


def _spec(fields: Mapping[str, Any], line: int, kind_hint: EntryKind | None) -> _Spec:
    """Check one row (a CSV row or a JSON object, by column name) and return its content."""
    kind_text = _text(fields, "kind")
    try:
        kind = EntryKind(kind_text.lower()) if kind_text else (kind_hint or EntryKind.KEYWORD)
    except ValueError:
        raise UsageError(f"kind {kind_text!r} is not keyword, image or rumor") from None
    if kind_hint is not None and kind is not kind_hint:
        raise UsageError(f"kind {kind.value!r} in the {kind_hint.value} section")
    term = fields.get("term")
    if term is None or (isinstance(term, str) and not term.strip()):
        raise UsageError("term is empty")
    if not isinstance(term, str):
        raise UsageError(f"term must be text, got {type(term).__name__}")
    term = term.strip()
    category_text = _text(fields, "category")
    if category_text is None:
        raise UsageError("category is empty (a risk code, e.g. A1.6)")
    try:
        category = RiskCategory(category_text.upper())
    except ValueError:
        raise UsageError(f"category {category_text!r} is not a risk code (A1.1 ... A5.2)") from None
    action_text = _text(fields, "action")
    if action_text is None:
        raise UsageError("action is empty (block, review, mask or allow)")
    try:
        action = Action(action_text.lower())
    except ValueError:
        raise UsageError(f"action {action_text!r} is not block, review, mask or allow") from None
    if action not in _ACTIONS[kind]:
        allowed = " or ".join(a.value for a in Action if a in _ACTIONS[kind])
        raise UsageError(f"action {action.value!r} does not apply to {kind.value} entries ({allowed})")
    raw_match = fields.get("match")
    if kind is EntryKind.KEYWORD:
        if raw_match is not None and not isinstance(raw_match, str | list):
            raise UsageError("match must be text (names separated by | or ,) or a list of names")
        match = parse_match(raw_match)
    else:
        if raw_match not in (None, "", []):
            raise UsageError(f"match (normalisation) applies to keywords, not {kind.value} entries")
        match = frozenset()
    quality: int | None = None
    quality_text = _text(fields, "quality")
    if kind is EntryKind.IMAGE:
        if not re.fullmatch(r"[0-9A-Fa-f]{64}", term):
            raise UsageError("an image entry's term is a PDQ hash: 64 hex digits")
        term = term.lower()
        quality = 100
        if quality_text is not None:
            if not re.fullmatch(r"\d{1,3}", quality_text) or int(quality_text) > 100:
                raise UsageError(f"quality {quality_text!r} is not an integer 0..100")
            quality = int(quality_text)
    elif quality_text is not None:
        raise UsageError(f"quality applies to image entries, not {kind.value} entries")
    refutation = _refutation(fields, kind)
    effective_text = _text(fields, "effective_from")
    lapses_text = _text(fields, "lapses_at")
    effective_from = _parse_time(effective_text, "effective_from") if effective_text else None
    lapses_at = _parse_time(lapses_text, "lapses_at") if lapses_text else None
    if effective_from is not None and lapses_at is not None and lapses_at <= effective_from:
        raise UsageError("lapses_at must be later than effective_from")
    entry_id = _text(fields, "id")
    if entry_id is None:
        entry_id = _generated_id(kind, category, term)
    elif not _ID_RE.fullmatch(entry_id):
        raise UsageError(
            f"id {entry_id!r}: 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
        )
    proposer = _text(fields, "proposer")
    approver = _text(fields, "approver")
    for who, name in (("proposer", proposer), ("approver", approver)):
        if name is not None and len(name) > _ACTOR_MAX:
            raise UsageError(f"{who} is longer than {_ACTOR_MAX} characters")
    state_text = _text(fields, "state")
    if state_text is not None:
        try:
            EntryState(state_text.lower())
        except ValueError:
            raise UsageError(
                f"state {state_text!r} is not one of {', '.join(s.value for s in EntryState)}"
            ) from None
    disabled = state_text is not None and state_text.lower() == EntryState.DISABLED.value
    return _Spec(
        line=line,
        id=entry_id,
        kind=kind,
        term=term,
        category=category,
        action=action,
        match=match,
        reason=_text(fields, "reason") or "",
        source=_text(fields, "source") or "",
        effective_from=effective_from,
        lapses_at=lapses_at,
        quality=quality,
        refutation=refutation,
        proposer=proposer,
        approver=approver,
        disabled=disabled,
        disabled_reason=_text(fields, "disabled_reason") if disabled else None,
    )


def _refutation(fields: Mapping[str, Any], kind: EntryKind) -> RefutationNotice | None:
    names = ("refutation_id", "refutation_title", "refutation_url", "refutation_published")
    given = {name: _text(fields, name) for name in names}
    if kind is not EntryKind.RUMOR:
        if any(v is not None for v in given.values()):
            raise UsageError(f"refutation fields apply to rumor entries, not {kind.value} entries")
        return None
    title, url = given["refutation_title"], given["refutation_url"]
    if not title or not url:
        raise UsageError("a rumor needs its refutation notice: refutation_title and refutation_url")
    published = given["refutation_published"] or ""
    if published:
        try:
            dt.date.fromisoformat(published[:10])
        except ValueError:
            raise UsageError(f"refutation_published {published!r} is not an ISO 8601 date") from None
    notice_id = given["refutation_id"] or "n-" + hashlib.sha256(url.encode()).hexdigest()[:12]
    if not _ID_RE.fullmatch(notice_id):
        raise UsageError(f"refutation_id {notice_id!r}: 1-64 letters, digits, '.', '_', ':' or '-'")
    return RefutationNotice(notice_id, title, url, published)


def _flatten_json_row(value: Any, kind_hint: EntryKind | None) -> dict[str, Any]:
    """A JSON row object with its aliases (``hash``, ``claim``, nested ``refutation``) resolved."""
    if not isinstance(value, dict):
        raise UsageError(f"a row must be a JSON object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(COLUMNS) - set(JSON_ALIASES))
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}")
    fields = dict(value)
    for alias, kind in (("hash", EntryKind.IMAGE), ("pdq", EntryKind.IMAGE), ("claim", EntryKind.RUMOR)):
        if alias in fields:
            if "term" in fields:
                raise UsageError("give one of term, hash, pdq or claim, not several")
            fields["term"] = fields.pop(alias)
            if kind_hint is None and "kind" not in fields:
                fields["kind"] = kind.value
    if kind_hint is not None:
        for name, default in _SECTION_DEFAULTS.get(kind_hint, {}).items():
            fields.setdefault(name, default)
    if "refutation" in fields and "notice" in fields:
        raise UsageError("give refutation or notice, not both")
    notice = fields.pop("refutation", None) or fields.pop("notice", None)
    if notice is not None:
        if not isinstance(notice, dict):
            raise UsageError("refutation must be an object {id, title, url, published}")
        extra = sorted(set(notice) - {"id", "title", "url", "published"})
        if extra:
            raise UsageError(f"unknown refutation field {extra[0]!r}")
        for key in ("id", "title", "url", "published"):
            if key in notice:
                if f"refutation_{key}" in fields:
                    raise UsageError(f"refutation_{key} given twice")
                fields[f"refutation_{key}"] = notice[key]
    return fields


_WS: Final = re.compile(r"[ \t\n\r]*")


def _json_rows(text: str) -> list[tuple[int, EntryKind | None, Any]]:
    """The row objects of a JSON import with the line each starts on, and the kind their section
    implies. ``text`` must be valid JSON (checked by the caller)."""
    decoder = json.JSONDecoder()

    def skip(pos: int) -> int:
        match = _WS.match(text, pos)
        return match.end() if match else pos

    def line(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def items(pos: int, kind: EntryKind | None) -> tuple[list[tuple[int, EntryKind | None, Any]], int]:
        found: list[tuple[int, EntryKind | None, Any]] = []
        pos = skip(pos + 1)  # after '['
        if text[pos] == "]":
            return found, pos + 1
        while True:
            start = pos
            value, pos = decoder.raw_decode(text, pos)
            found.append((line(start), kind, value))
            pos = skip(pos)
            if text[pos] == ",":
                pos = skip(pos + 1)
                continue
            return found, pos + 1  # ']'

    pos = skip(0)
    if text[pos] == "[":
        return items(pos, None)[0]
    if text[pos] != "{":
        raise _FileError(line(pos), "a JSON import is a list of entries or an object with an entries list")
    rows: list[tuple[int, EntryKind | None, Any]] = []
    sections = 0
    pos = skip(pos + 1)
    while text[pos] != "}":
        key, pos = decoder.raw_decode(text, pos)
        pos = skip(skip(pos) + 1)  # ':'
        if key in JSON_SECTIONS:
            if text[pos] != "[":
                raise _FileError(line(pos), f"{key!r} must be a list")
            found, pos = items(pos, JSON_SECTIONS[key])
            rows.extend(found)
            sections += 1
        else:
            _, pos = decoder.raw_decode(text, pos)  # other members (a name, a version) are ignored
        pos = skip(pos)
        if text[pos] == ",":
            pos = skip(pos + 1)
    if not sections:
        raise _FileError(1, f"a JSON library object needs one of: {', '.join(JSON_SECTIONS)}")
    return rows


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise _FileError(line, f"not UTF-8 (byte {error.start})") from None


class _FileError(Exception):
    """The whole file is unreadable at ``line`` (internal: becomes one ``RowError``)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _read_rows(data: bytes, fmt: FileFormat) -> tuple[list[_Spec], list[RowError]]:
    """Parse and check every row; the valid ones and the errors (never stops at the first)."""
    try:
        text = _decode(data)
        rows = _csv_rows(text) if fmt is FileFormat.CSV else _json_document(text)
    except _FileError as error:
        return [], [RowError(error.line, error.message)]
    specs: list[_Spec] = []
    errors: list[RowError] = []
    for line, kind, fields in rows:
        if isinstance(fields, RowError):
            errors.append(fields)
            continue
        try:
            if fmt is FileFormat.JSON:
                fields = _flatten_json_row(fields, kind)
            specs.append(_spec(fields, line, kind))
        except UsageError as error:
            entry_id = _text_or_none(fields, "id") if isinstance(fields, dict) else None
            errors.append(RowError(line, str(error), entry_id))
    return specs, errors


def _json_document(text: str) -> list[tuple[int, EntryKind | None, Any]]:
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise _FileError(error.lineno, f"not valid JSON: {error.msg} (column {error.colno})") from None
    return _json_rows(text)


def _text_or_none(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _csv_rows(text: str) -> list[tuple[int, EntryKind | None, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, EntryKind | None, Any]] = []
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise _FileError(1, f"not valid CSV: {error}") from None
    if header is None:
        raise _FileError(1, "the file is empty (a CSV import starts with a header row)")
    names = [h.strip().lower() for h in header]
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise _FileError(1, f"unknown column {unknown[0]!r} (known: {', '.join(COLUMNS)})")
    missing = [n for n in REQUIRED_COLUMNS if n not in names]
    if missing:
        raise _FileError(1, f"the header lacks the column {missing[0]!r}")
    repeated = [n for n, count in Counter(names).items() if count > 1]
    if repeated:
        raise _FileError(1, f"the column {repeated[0]!r} appears twice")
    previous_end = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            rows.append((previous_end + 1, None, RowError(previous_end + 1, f"not valid CSV: {error}")))
            break
        start, previous_end = previous_end + 1, reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(names):
            rows.append((start, None, RowError(start, f"{len(row)} fields, the header has {len(names)}")))
            continue
        cells = (_from_spreadsheet(v) for v in row)
        rows.append((start, None, {n: (v if v.strip() else None) for n, v in zip(names, cells, strict=True)}))
    return rows


#: What a spreadsheet takes for the start of a formula (OWASP "CSV injection").
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _formula_like(cell: str) -> bool:
    return cell.lstrip("'").startswith(_FORMULA_START)


def _to_spreadsheet(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula, after any quotes, gets one
    more leading ``'`` (so ``'=x`` itself survives the round trip)."""
    return "'" + cell if _formula_like(cell) else cell


def _from_spreadsheet(cell: str) -> str:
    """The inverse of ``_to_spreadsheet``: ``'=x`` reads as ``=x``; any other cell is as written."""
    return cell[1:] if cell.startswith("'") and _formula_like(cell) else cell


def _check_keywords(specs: Sequence[_Spec]) -> list[RowError]:
    """The checks ``KeywordIndex.build`` makes, per row: a term that normalises to nothing, and a
    ``repeat`` term with a doubled character."""
    errors: list[RowError] = []
    by_steps: dict[frozenset[Normalization], list[_Spec]] = defaultdict(list)
    for spec in specs:
        if spec.kind is EntryKind.KEYWORD:
            by_steps[spec.match].append(spec)
    for steps, group in by_steps.items():
        terms = [s.term for s in group]
        for spec, forms in zip(group, term_forms(terms, steps), strict=True):
            if not forms:
                names = format_match(steps)
                errors.append(
                    RowError(spec.line, f"the term {spec.term!r} normalises to nothing with {names}", spec.id)
                )
        if Normalization.REPEAT in steps:
            for spec, plain in zip(
                group, normalize_terms(terms, steps - {Normalization.REPEAT}), strict=True
            ):
                if any(a == b for a, b in itertools.pairwise(plain)):
                    errors.append(
                        RowError(
                            spec.line,
                            f"the term {spec.term!r} has a doubled character: it cannot ask for 'repeat'",
                            spec.id,
                        )
                    )
    return errors


def _check_rumors(specs: Sequence[_Spec]) -> list[RowError]:
    errors: list[RowError] = []
    for spec in specs:
        if spec.kind is EntryKind.RUMOR and spec.refutation is not None:
            try:
                RumorIndex.build([RumorEntry(spec.id, spec.term, spec.refutation, spec.category)])
            except UsageError as error:
                errors.append(RowError(spec.line, str(error), spec.id))
    return errors


# -- writing exports -----------------------------------------------------------------------------


def _csv_text(records: Iterable[Mapping[str, Any]]) -> str:
    """CSV for spreadsheets too: a cell that would start a formula is written with a leading ``'``."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow(["" if record[c] is None else _to_spreadsheet(str(record[c])) for c in COLUMNS])
    return buffer.getvalue()


def _json_text(records: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(records), ensure_ascii=False, indent=1) + "\n"


def _diff(found: LibraryEntry, spec: _Spec) -> str:
    pairs = zip(_CONTENT_FIELDS, _entry_content(found), spec.content(), strict=True)
    return ", ".join(name for name, a, b in pairs if a != b) + " differ"
