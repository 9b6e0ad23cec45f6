"""The characteristics database (Deep Synthesis Provisions Art. 10): entries, their procedure, records.

A ``Library`` keeps keyword, image-hash and rumor entries in the store (``store/models.py``). Each
entry carries its term (the keyword, the PDQ hash in hex, or the refuted claim), risk category
(``RiskCategory`` code), action, normalisation steps (keywords), reason, source, proposer, approver,
the time it takes effect and the time it lapses, and a state (``EntryState``):

::

    propose ──▶ proposed ──approve (a second person)──▶ approved ──effective_from──▶ active
                   │                                        │                          │
                   └──────────── disable / enable ──────────┴──────── lapses_at ──▶ lapsed
                                  (switched off, kept; enable returns it where it was)

- Nothing becomes active without an approval by someone other than its proposer
  (``LibraryPolicy.require_second_approver``, default true; when false, the proposer may approve).
  The rule is checked when approving and again whenever the active set is computed.
- ``approved`` and ``active`` (and ``lapsed``) follow from the clock: the active set is computed for
  the time a caller gives (``compile(now)``, ``coverage(now)``); ``refresh(now)`` writes the states
  that time has moved on into the table (with change records), so lists and reports show them.
- ``disable`` switches one entry off without deleting it (a false-positive fix that must not wait for
  a release); ``enable`` switches it back on.
- Every change (create, approve, activate, lapse, disable, enable, snapshot) is one row of the change
  log: who, when, which entry, and the entry's record before and after as JSON. Rows are never
  deleted or updated.

Bulk import (``import_file``) reads CSV or JSON (``docs/library-format.md``); every row is checked
and rows that are invalid are reported with their line numbers: then nothing is imported (one
transaction). ``approved_by`` records a bulk approval by a person other than the importing user, so a
vetted list becomes active at once. ``export`` writes the same formats: an export imported into an
empty library gives the same entries.

``snapshot(label, actor)`` freezes the active set: its canonical export (entries sorted by id,
canonical JSON) is stored with its SHA-256 under a version id (``v1``, ``v2``, ...).
``compile(now)`` builds the keyword, hash and rumor indexes from the active set into an immutable
``CompiledLibrary`` whose ``version`` is the id of the newest snapshot with the same digest, or else
``sha256:<digest>`` of the active set: a version always names exactly the entries that were used.

``LibraryWatcher`` hot-reloads a running reviewer: when the library's change counter moved (one
cheap query), or when an entry's effective or lapse time has passed, it compiles a new library and
calls ``reviewer.swap(new)``; reviews in progress keep the library they started with.

``coverage(now)`` counts active keywords (allow-list phrases do not count) per risk against the
TC260-003 minimums (``risks.LibraryMinimums``; figures marked (verify)). ``HitRecorder`` is the
``DecisionSink`` that stores every entry a review matched, with the library version, for the Art. 10
records.

>>> from synthguard.store import open_store
>>> with open_store("sqlite://") as store:
...     store.upgrade()
...     library = Library(store)
...     entry = library.propose("口交", "A1.6", "block", actor="alice", reason="sample")
...     _ = library.approve([entry.id], actor="bob")
...     [m.entry_id == entry.id for m in library.compile().keywords.scan("口 交")]
[True]
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import io
import itertools
import json
import logging
import re
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.config import Settings
from synthguard.errors import ConfigError, UsageError
from synthguard.review.engine import (
    CompiledLibrary,
    Decision,
    ImageDecision,
    ReviewPolicy,
    TextDecision,
    VideoDecision,
)
from synthguard.review.images import PdqHash
from synthguard.review.keywords import Action, KeywordEntry
from synthguard.review.normalize import (
    DEFAULT_STEPS,
    Normalization,
    normalize_terms,
    ordered,
    parse_steps,
    term_forms,
)
from synthguard.review.risks import LibraryMinimums, RiskCategory, is_a1, is_a2
from synthguard.review.rumors import RefutationNotice, RumorEntry, RumorIndex
from synthguard.store.db import Store, open_store
from synthguard.store.models import (
    LibraryChangeRow,
    LibraryEntryRow,
    LibrarySnapshotRow,
    LibraryStateRow,
    ReviewHitRow,
)

__all__ = [
    "COLUMNS",
    "CategoryCoverage",
    "ChangeKind",
    "ChangeRecord",
    "CoverageReport",
    "EntryKind",
    "EntryState",
    "FileFormat",
    "Hit",
    "HitRecorder",
    "ImportReport",
    "Library",
    "LibraryEntry",
    "LibraryPolicy",
    "LibraryWatcher",
    "RowError",
    "Snapshot",
    "Swappable",
    "format_match",
    "load_compiled_library",
    "parse_match",
]

_log = logging.getLogger(__name__)


class EntryKind(enum.Enum):
    """What an entry matches; the value is stored and exchanged."""

    KEYWORD = "keyword"
    IMAGE = "image"  # a PDQ hash of a known image
    RUMOR = "rumor"  # a refuted claim (Art. 11)


class EntryState(enum.Enum):
    """Where an entry is in its procedure; the value is stored. Only ``active`` entries are used."""

    PROPOSED = "proposed"
    APPROVED = "approved"  # approved, waiting for its effective time
    ACTIVE = "active"
    DISABLED = "disabled"  # switched off, kept
    LAPSED = "lapsed"  # past its lapse time


class ChangeKind(enum.Enum):
    """What a change-log row records; the value is stored."""

    CREATE = "create"
    APPROVE = "approve"
    ACTIVATE = "activate"
    LAPSE = "lapse"
    DISABLE = "disable"
    ENABLE = "enable"
    SNAPSHOT = "snapshot"


class FileFormat(enum.Enum):
    """Import and export formats (``docs/library-format.md``)."""

    CSV = "csv"
    JSON = "json"

    @classmethod
    def of(cls, path: str | Path, given: FileFormat | str | None = None) -> FileFormat:
        """``given`` if set, else the format named by the file's suffix; ``UsageError`` when neither."""
        if given is not None:
            try:
                return cls(given) if isinstance(given, str) else given
            except ValueError:
                raise UsageError(f"unknown format {given!r}: use csv or json") from None
        suffix = Path(path).suffix.lower().lstrip(".")
        try:
            return cls(suffix)
        except ValueError:
            raise UsageError(
                f"cannot tell the format of {path} from its name: give --format csv|json"
            ) from None


# Stored values back to members: a dict lookup is several times cheaper than calling the Enum, which
# counts when a compile reads 100,000 rows.
_KINDS: Final = {member.value: member for member in EntryKind}
_STATES: Final = {member.value: member for member in EntryState}
_CATEGORIES: Final = {member.value: member for member in RiskCategory}
_ACTION_VALUES: Final = {member.value: member for member in Action}

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
_ACTOR_MAX: Final = 128
_IN_CHUNK: Final = 500  # ids per IN (...) clause


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(now: dt.datetime | None) -> dt.datetime:
    """``now`` (default: the current time) as an aware UTC datetime; naive times are refused."""
    if now is None:
        return _utcnow()
    if not isinstance(now, dt.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise UsageError(f"a time must be a timezone-aware datetime, got {now!r}")
    return now.astimezone(dt.UTC)


def _actor(name: str, what: str = "actor") -> str:
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"the {what} must be named")
    name = name.strip()
    if len(name) > _ACTOR_MAX:
        raise UsageError(f"the {what} name is longer than {_ACTOR_MAX} characters")
    return name


# -- match steps ---------------------------------------------------------------------------------


def format_match(steps: Iterable[Normalization]) -> str:
    """The stored and exported form of a set of steps: ``default`` for ``DEFAULT_STEPS`` (plus any
    extra steps, ``default|pinyin``), else the steps in application order, ``none`` for no step."""
    return _format_match(frozenset(steps))


@functools.lru_cache(maxsize=256)
def _format_match(chosen: frozenset[Normalization]) -> str:
    if not chosen:
        return "none"
    if chosen >= DEFAULT_STEPS:
        return "|".join(["default", *(s.value for s in ordered(chosen - DEFAULT_STEPS))])
    return "|".join(s.value for s in ordered(chosen))


def parse_match(text: str | Sequence[str] | None) -> frozenset[Normalization]:
    """Parse normalisation names separated by ``|`` or ``,`` (or a list of names); ``default`` stands
    for ``DEFAULT_STEPS``, ``none`` for no step, and an empty value means ``default``.

    >>> format_match(parse_match("default|pinyin")), format_match(parse_match("nfkc,case"))
    ('default|pinyin', 'nfkc|case')
    """
    if text is None:
        return DEFAULT_STEPS
    names = re.split(r"[|,]", text) if isinstance(text, str) else list(text)
    names = [n.strip().lower() for n in names if isinstance(n, str) and n.strip()]
    if isinstance(text, list | tuple) and len(names) != len(text):
        raise UsageError("match names must be non-empty strings")
    if not names:
        return DEFAULT_STEPS
    if names == ["none"]:
        return frozenset()
    steps: set[Normalization | str] = set()
    for name in names:
        if name == "none":
            raise UsageError("'none' cannot be combined with other normalisations")
        if name == "default":
            steps |= DEFAULT_STEPS
        else:
            steps.add(name)
    return parse_steps(steps)


@functools.lru_cache(maxsize=256)
def _stored_match(text: str) -> frozenset[Normalization]:
    """``parse_match`` of a stored value (a library uses a handful: parse each once)."""
    return parse_match(text)


# -- values --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LibraryEntry:
    """One entry as stored. ``state`` is the stored state; ``state_at(now)`` the effective one."""

    id: str
    kind: EntryKind
    #: The keyword, the PDQ hash (64 lower-case hex digits), or the rumor's claim.
    term: str
    category: RiskCategory
    action: Action
    match: frozenset[Normalization]
    reason: str
    source: str
    proposer: str
    approver: str | None
    approved_at: dt.datetime | None
    effective_from: dt.datetime | None
    lapses_at: dt.datetime | None
    state: EntryState
    disabled_reason: str | None
    quality: int | None
    refutation: RefutationNotice | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def approved(self, *, require_second_approver: bool = True) -> bool:
        """Whether the entry carries an approval that counts under the two-person rule."""
        if self.approver is None:
            return False
        return not (require_second_approver and self.approver == self.proposer)

    def state_at(self, now: dt.datetime, *, require_second_approver: bool = True) -> EntryState:
        """The state at ``now``: disabled and proposed entries stay so; an approved entry is active
        from ``effective_from`` (or its approval) until ``lapses_at``, then lapsed."""
        if self.state is EntryState.DISABLED:
            return EntryState.DISABLED
        if self.state is EntryState.PROPOSED or not self.approved(
            require_second_approver=require_second_approver
        ):
            return EntryState.PROPOSED
        if self.lapses_at is not None and now >= self.lapses_at:
            return EntryState.LAPSED
        if self.effective_from is None or now >= self.effective_from:
            return EntryState.ACTIVE
        return EntryState.APPROVED

    def to_record(self, *, state: EntryState | None = None) -> dict[str, Any]:
        """The entry in the export format: every column of ``COLUMNS``; ``None`` where empty,
        ``quality`` an integer, times ISO 8601 in UTC. ``state`` overrides the stored state."""
        notice = self.refutation
        return {
            "id": self.id,
            "kind": self.kind.value,
            "term": self.term,
            "category": self.category.value,
            "action": self.action.value,
            "match": format_match(self.match) if self.kind is EntryKind.KEYWORD else None,
            "reason": self.reason or None,
            "source": self.source or None,
            "effective_from": _iso(self.effective_from),
            "lapses_at": _iso(self.lapses_at),
            "proposer": self.proposer,
            "approver": self.approver,
            "state": (state or self.state).value,
            "disabled_reason": self.disabled_reason,
            "quality": self.quality,
            "refutation_id": notice.id if notice else None,
            "refutation_title": notice.title if notice else None,
            "refutation_url": notice.url if notice else None,
            "refutation_published": notice.published if notice else None,
        }

    def keyword_entry(self) -> KeywordEntry:
        return KeywordEntry(self.id, self.term, self.category, self.action, self.match)

    def pdq(self) -> PdqHash:
        return PdqHash.from_hex(self.term, quality=100 if self.quality is None else self.quality)

    def rumor_entry(self) -> RumorEntry:
        if self.refutation is None:
            raise UsageError(f"rumor entry {self.id!r} has no refutation notice")
        return RumorEntry(self.id, self.term, self.refutation, self.category)

    def _values(self) -> dict[str, Any]:
        """The entry as the column values of its ``library_entries`` row."""
        notice = self.refutation
        return {
            "id": self.id,
            "kind": self.kind.value,
            "term": self.term,
            "category": self.category.value,
            "action": self.action.value,
            "match": format_match(self.match) if self.kind is EntryKind.KEYWORD else "",
            "reason": self.reason,
            "source": self.source,
            "proposer": self.proposer,
            "approver": self.approver,
            "approved_at": self.approved_at,
            "effective_from": self.effective_from,
            "lapses_at": self.lapses_at,
            "state": self.state.value,
            "disabled_reason": self.disabled_reason,
            "quality": self.quality,
            "refutation_id": notice.id if notice else None,
            "refutation_title": notice.title if notice else None,
            "refutation_url": notice.url if notice else None,
            "refutation_published": notice.published if notice else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def _from_row(cls, row: Sequence[Any]) -> LibraryEntry:
        """From a row of ``_ENTRY_COLUMNS``, in that order (unpacked by position: attribute access
        on 100,000 rows costs more than the rest of reading them)."""
        (
            entry_id,
            kind_value,
            term,
            category,
            action,
            match,
            reason,
            source,
            proposer,
            approver,
            approved_at,
            effective_from,
            lapses_at,
            state,
            disabled_reason,
            quality,
            refutation_id,
            refutation_title,
            refutation_url,
            refutation_published,
            created_at,
            updated_at,
        ) = row
        notice = None
        if refutation_id is not None:
            notice = RefutationNotice(
                refutation_id, refutation_title or "", refutation_url or "", refutation_published or ""
            )
        kind = _KINDS[kind_value]
        return cls(
            id=entry_id,
            kind=kind,
            term=term,
            category=_CATEGORIES[category],
            action=_ACTION_VALUES[action],
            match=_stored_match(match) if kind is EntryKind.KEYWORD else frozenset(),
            reason=reason,
            source=source,
            proposer=proposer,
            approver=approver,
            approved_at=approved_at,
            effective_from=effective_from,
            lapses_at=lapses_at,
            state=_STATES[state],
            disabled_reason=disabled_reason,
            quality=quality,
            refutation=notice,
            created_at=created_at,
            updated_at=updated_at,
        )


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


@dataclasses.dataclass(frozen=True)
class RowError:
    """A rejected import row: its line in the file (1 is the CSV header), and what is wrong."""

    line: int
    message: str
    entry_id: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What an import did. When ``rejected`` is not empty, nothing was imported."""

    added: int = 0
    #: Rows identical to an entry already in the library (same id and content): left as they are.
    unchanged: int = 0
    #: Entries added approved (by the file's ``approver`` column or ``approved_by``).
    approved: int = 0
    rejected: tuple[RowError, ...] = ()
    #: The change-log batch of this import (``None`` when nothing was written).
    batch: str | None = None

    @property
    def ok(self) -> bool:
        return not self.rejected

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "added": self.added,
            "unchanged": self.unchanged,
            "approved": self.approved,
            "batch": self.batch,
            "rejected": [{"line": e.line, "message": e.message, "id": e.entry_id} for e in self.rejected],
        }


@dataclasses.dataclass(frozen=True)
class ChangeRecord:
    """One row of the change log."""

    id: int
    at: dt.datetime
    actor: str
    kind: ChangeKind
    entry_id: str | None
    snapshot: str | None
    batch: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": _iso(self.at),
            "actor": self.actor,
            "kind": self.kind.value,
            "entry_id": self.entry_id,
            "snapshot": self.snapshot,
            "batch": self.batch,
            "before": self.before,
            "after": self.after,
            "note": self.note,
        }


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A frozen version of the active set."""

    id: int
    label: str
    actor: str
    created_at: dt.datetime
    as_of: dt.datetime
    #: SHA-256 (hex) of the canonical export of the active set.
    digest: str
    entry_count: int
    change_counter: int

    @property
    def version(self) -> str:
        """The version id stamped on compiled libraries: ``v`` and the snapshot's number."""
        return f"v{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "label": self.label,
            "actor": self.actor,
            "created_at": _iso(self.created_at),
            "as_of": _iso(self.as_of),
            "digest": self.digest,
            "entry_count": self.entry_count,
        }

    @classmethod
    def _from_row(cls, row: LibrarySnapshotRow) -> Snapshot:
        return cls(
            row.id,
            row.label,
            row.actor,
            row.created_at,
            row.as_of,
            row.digest,
            row.entry_count,
            row.change_counter,
        )


@dataclasses.dataclass(frozen=True)
class CategoryCoverage:
    """Active keywords of one risk against its minimum; ``pending`` are proposed or approved ones."""

    category: RiskCategory
    active: int
    pending: int
    required: int

    @property
    def missing(self) -> int:
        return max(0, self.required - self.active)


@dataclasses.dataclass(frozen=True)
class CoverageReport:
    """Keyword counts per risk (all 31; the 17 of A.1 and A.2 have minimums) and what is missing."""

    as_of: dt.datetime
    categories: tuple[CategoryCoverage, ...]
    total: int
    total_required: int
    #: One line per gap (``risks.LibraryMinimums.shortfalls``); empty when every minimum is met.
    shortfalls: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.shortfalls

    @property
    def total_missing(self) -> int:
        return max(0, self.total_required - self.total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": _iso(self.as_of),
            "ok": self.ok,
            "total": self.total,
            "total_required": self.total_required,
            "total_missing": self.total_missing,
            "categories": [
                {
                    "category": c.category.value,
                    "description": c.category.description,
                    "active": c.active,
                    "pending": c.pending,
                    "required": c.required,
                    "missing": c.missing,
                }
                for c in self.categories
            ],
            "shortfalls": list(self.shortfalls),
        }


@dataclasses.dataclass(frozen=True)
class LibraryPolicy:
    """How the library's procedure is run."""

    #: Nothing becomes active without an approver other than its proposer.
    require_second_approver: bool = True
    #: (verify) The TC260-003 keyword minimums the coverage report measures against.
    minimums: LibraryMinimums = dataclasses.field(default_factory=LibraryMinimums)


class Swappable(Protocol):
    """What ``LibraryWatcher`` reloads: a reviewer that takes a new compiled library."""

    def swap(self, library: CompiledLibrary, /) -> Any: ...


# -- parsing import rows -------------------------------------------------------------------------


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
        rows.append((start, None, {n: (v if v.strip() else None) for n, v in zip(names, row, strict=True)}))
    return rows


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
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow(["" if record[c] is None else str(record[c]) for c in COLUMNS])
    return buffer.getvalue()


def _json_text(records: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(records), ensure_ascii=False, indent=1) + "\n"


def _canonical(records: Sequence[Mapping[str, Any]]) -> str:
    """The canonical export digested by snapshots: sorted by id, keys sorted, no state."""
    body = [{k: v for k, v in r.items() if k != "state"} for r in sorted(records, key=lambda r: r["id"])]
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the library ---------------------------------------------------------------------------------

_LIVE_STATES: Final = (EntryState.APPROVED.value, EntryState.ACTIVE.value, EntryState.LAPSED.value)


@dataclasses.dataclass(frozen=True)
class _Compiled:
    library: CompiledLibrary
    change_counter: int
    #: The next time an entry becomes active or lapses (``None``: none scheduled).
    next_transition: dt.datetime | None


class Library:
    """The characteristics database on a ``Store`` (see the module docstring).

    Every method that changes something takes the ``actor`` (who does it) and an optional ``now``
    (default: the current time; aware datetimes only) and runs in one transaction.
    """

    def __init__(self, store: Store, *, policy: LibraryPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or LibraryPolicy()

    # -- reading ---------------------------------------------------------------------------------

    def get(self, entry_id: str) -> LibraryEntry:
        """The entry with ``entry_id``; ``UsageError`` when there is none."""
        with self.store.session() as session:
            found = _load_ids(session, [entry_id])
        if entry_id not in found:
            raise UsageError(f"no library entry {entry_id!r}")
        return found[entry_id]

    def entries(
        self,
        *,
        state: EntryState | str | None = None,
        category: RiskCategory | str | None = None,
        kind: EntryKind | str | None = None,
        now: dt.datetime | None = None,
    ) -> list[LibraryEntry]:
        """Entries sorted by id, filtered by their state at ``now``, category and kind."""
        at = _aware(now)
        wanted_state = _enum(EntryState, state, "state")
        wanted_category = _enum(RiskCategory, category, "category")
        wanted_kind = _enum(EntryKind, kind, "kind")
        where: list[sa.ColumnElement[bool]] = []
        if wanted_category is not None:
            where.append(_COLUMNS.category == wanted_category.value)
        if wanted_kind is not None:
            where.append(_COLUMNS.kind == wanted_kind.value)
        if wanted_state in (EntryState.APPROVED, EntryState.ACTIVE, EntryState.LAPSED):
            where.append(_COLUMNS.state.in_((*_LIVE_STATES, EntryState.PROPOSED.value)))
        elif wanted_state is EntryState.DISABLED:
            where.append(_COLUMNS.state == EntryState.DISABLED.value)
        with self.store.session() as session:
            found = _load(session, *where)
        if wanted_state is None:
            return found
        return [e for e in found if self._state(e, at) is wanted_state]

    def state_of(self, entry: LibraryEntry, now: dt.datetime | None = None) -> EntryState:
        """``entry``'s state at ``now`` under this library's policy."""
        return self._state(entry, _aware(now))

    def _state(self, entry: LibraryEntry, now: dt.datetime) -> EntryState:
        return entry.state_at(now, require_second_approver=self.policy.require_second_approver)

    def history(self, entry_id: str) -> list[ChangeRecord]:
        """Every change to ``entry_id``, oldest first; ``UsageError`` for an unknown entry."""
        with self.store.session() as session:
            if not _load_ids(session, [entry_id]):
                raise UsageError(f"no library entry {entry_id!r}")
            rows = session.scalars(
                sa.select(LibraryChangeRow)
                .where(LibraryChangeRow.entry_id == entry_id)
                .order_by(LibraryChangeRow.id)
            )
            return [_change(row) for row in rows]

    def changes(self, *, since_id: int = 0, limit: int | None = None) -> list[ChangeRecord]:
        """The change log after row ``since_id``, oldest first."""
        query = (
            sa.select(LibraryChangeRow).where(LibraryChangeRow.id > since_id).order_by(LibraryChangeRow.id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.store.session() as session:
            return [_change(row) for row in session.scalars(query)]

    def change_counter(self) -> int:
        """A number that moves with every committed change to the library."""
        with self.store.session() as session:
            return _counter(session)

    # -- the procedure ---------------------------------------------------------------------------

    def propose(
        self,
        term: str,
        category: RiskCategory | str,
        action: Action | str = Action.BLOCK,
        *,
        actor: str,
        kind: EntryKind | str = EntryKind.KEYWORD,
        match: Iterable[Normalization | str] | str | None = None,
        reason: str = "",
        source: str = "",
        effective_from: dt.datetime | None = None,
        lapses_at: dt.datetime | None = None,
        quality: int | None = None,
        refutation: RefutationNotice | None = None,
        entry_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> LibraryEntry:
        """Add one entry in state ``proposed`` (checked as an import row is); returns it."""
        fields: dict[str, Any] = {
            "id": entry_id,
            "kind": kind.value if isinstance(kind, EntryKind) else kind,
            "term": term,
            "category": category.value if isinstance(category, RiskCategory) else category,
            "action": action.value if isinstance(action, Action) else action,
            "match": _match_field(match),
            "reason": reason,
            "source": source,
            "effective_from": _iso(_aware(effective_from)) if effective_from is not None else None,
            "lapses_at": _iso(_aware(lapses_at)) if lapses_at is not None else None,
            "quality": quality,
        }
        if refutation is not None:
            fields.update(
                refutation_id=refutation.id,
                refutation_title=refutation.title,
                refutation_url=refutation.url,
                refutation_published=refutation.published,
            )
        spec = _spec(fields, 0, None)
        errors = _check_keywords([spec]) + _check_rumors([spec])
        if errors:
            raise UsageError(errors[0].message)
        report = self._import([spec], actor=actor, approved_by=None, now=now, existing_ok=False)
        if report.rejected:
            raise UsageError(report.rejected[0].message)
        return self.get(spec.id)

    def approve(
        self, entry_ids: Iterable[str], actor: str, *, now: dt.datetime | None = None
    ) -> list[LibraryEntry]:
        """Approve proposed entries, all or none: ``UsageError`` names the first that cannot be
        (unknown, not proposed, or proposed by ``actor`` under the two-person rule)."""
        actor = _actor(actor, "approver")
        at = _aware(now)
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            raise UsageError("name at least one entry to approve")
        batch = str(uuid.uuid4()) if len(ids) > 1 else None
        with self.store.session(write=True) as session:
            found = _load_ids(session, ids, lock=True)
            for entry_id in ids:
                entry = found.get(entry_id)
                if entry is None:
                    raise UsageError(f"no library entry {entry_id!r}")
                if entry.state is not EntryState.PROPOSED:
                    raise UsageError(
                        f"entry {entry_id!r} is {entry.state.value}, not proposed: nothing to approve"
                    )
                if self.policy.require_second_approver and entry.proposer == actor:
                    raise UsageError(
                        f"entry {entry_id!r} was proposed by {actor}: a second person must approve it"
                    )
            changes = []
            for entry_id in ids:
                before = found[entry_id]
                after = dataclasses.replace(
                    before, approver=actor, approved_at=at, updated_at=at, state=EntryState.APPROVED
                )
                after = dataclasses.replace(after, state=self._state(after, at))
                changes.append((before, after))
            _apply(session, at, actor, ChangeKind.APPROVE, changes, batch=batch)
        return [after for _, after in changes]

    def disable(
        self, entry_id: str, actor: str, reason: str, *, now: dt.datetime | None = None
    ) -> LibraryEntry:
        """Switch one entry off (kept, with ``reason``); ``UsageError`` if it is off already."""
        actor = _actor(actor)
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError("say why the entry is disabled (--reason)")
        at = _aware(now)
        with self.store.session(write=True) as session:
            before = _load_ids(session, [entry_id], lock=True).get(entry_id)
            if before is None:
                raise UsageError(f"no library entry {entry_id!r}")
            if before.state is EntryState.DISABLED:
                raise UsageError(f"entry {entry_id!r} is disabled already")
            after = dataclasses.replace(
                before, state=EntryState.DISABLED, disabled_reason=reason.strip(), updated_at=at
            )
            _apply(session, at, actor, ChangeKind.DISABLE, [(before, after)], note=reason.strip())
        return after

    def enable(self, entry_id: str, actor: str, *, now: dt.datetime | None = None) -> LibraryEntry:
        """Switch a disabled entry back on: approved entries return to their state at ``now``,
        entries disabled before any approval to ``proposed``."""
        actor = _actor(actor)
        at = _aware(now)
        with self.store.session(write=True) as session:
            before = _load_ids(session, [entry_id], lock=True).get(entry_id)
            if before is None:
                raise UsageError(f"no library entry {entry_id!r}")
            if before.state is not EntryState.DISABLED:
                raise UsageError(f"entry {entry_id!r} is {before.state.value}, not disabled")
            back = EntryState.PROPOSED if before.approver is None else EntryState.APPROVED
            after = dataclasses.replace(before, state=back, disabled_reason=None, updated_at=at)
            after = dataclasses.replace(after, state=self._state(after, at))
            _apply(session, at, actor, ChangeKind.ENABLE, [(before, after)])
        return after

    def refresh(self, now: dt.datetime | None = None, *, actor: str = "system") -> list[LibraryEntry]:
        """Persist the states that time moved on (approved -> active, -> lapsed) at ``now``, each
        with a change record; returns the entries changed."""
        actor = _actor(actor)
        at = _aware(now)
        forward = {
            (EntryState.APPROVED, EntryState.ACTIVE),
            (EntryState.APPROVED, EntryState.LAPSED),
            (EntryState.ACTIVE, EntryState.LAPSED),
        }
        with self.store.session(write=True) as session:
            live = _load(
                session, _COLUMNS.state.in_((EntryState.APPROVED.value, EntryState.ACTIVE.value)), lock=True
            )
            moved = [(e, self._state(e, at)) for e in live]
            moved = [(e, new) for e, new in moved if (e.state, new) in forward]
            activated = [(e, dataclasses.replace(e, state=new, updated_at=at)) for e, new in moved]
            _apply(
                session,
                at,
                actor,
                ChangeKind.ACTIVATE,
                [(b, a) for b, a in activated if a.state is EntryState.ACTIVE],
            )
            _apply(
                session,
                at,
                actor,
                ChangeKind.LAPSE,
                [(b, a) for b, a in activated if a.state is EntryState.LAPSED],
            )
        return sorted((a for _, a in activated), key=lambda e: e.id)

    # -- import and export -----------------------------------------------------------------------

    def import_file(
        self,
        path: str | Path,
        actor: str,
        *,
        format: FileFormat | str | None = None,
        approved_by: str | None = None,
        now: dt.datetime | None = None,
    ) -> ImportReport:
        """Import a CSV or JSON file (format from ``format`` or the suffix); see ``import_bytes``."""
        fmt = FileFormat.of(path, format)
        try:
            size = Path(path).stat().st_size
            if size > MAX_IMPORT_BYTES:
                raise UsageError(f"{path}: {size} bytes, more than the {MAX_IMPORT_BYTES} an import may be")
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise UsageError(f"no such file: {path}") from None
        except IsADirectoryError:
            raise UsageError(f"{path} is a folder, not a file") from None
        return self.import_bytes(data, fmt, actor, approved_by=approved_by, now=now)

    def import_bytes(
        self,
        data: bytes,
        format: FileFormat | str,
        actor: str,
        *,
        approved_by: str | None = None,
        now: dt.datetime | None = None,
    ) -> ImportReport:
        """Import entries from CSV or JSON ``data``, all or nothing.

        ``actor`` is the importing user and the proposer of rows without a ``proposer``. Rows with an
        ``approver`` arrive approved, and so do all rows when ``approved_by`` is given (a bulk
        approval, recorded as such); either way the approver must differ from the row's proposer
        under the two-person rule. A row equal to an entry already in the library is left alone
        (``unchanged``); one with the same id and other content is rejected.
        """
        fmt = FileFormat.of("", format)
        actor = _actor(actor, "importing user")
        if approved_by is not None:
            approved_by = _actor(approved_by, "approver")
        specs, errors = _read_rows(data, fmt)
        errors += _check_keywords(specs) + _check_rumors(specs)
        return self._import(
            specs, actor=actor, approved_by=approved_by, now=now, existing_ok=True, errors=errors
        )

    def _import(
        self,
        specs: Sequence[_Spec],
        *,
        actor: str,
        approved_by: str | None,
        now: dt.datetime | None,
        existing_ok: bool,
        errors: Sequence[RowError] = (),
    ) -> ImportReport:
        """Write ``specs`` in one transaction, or nothing when any row (or ``errors``) is rejected."""
        actor = _actor(actor)
        at = _aware(now)
        errors = list(errors)
        first_line: dict[str, int] = {}
        for spec in specs:
            if spec.id in first_line:
                errors.append(
                    RowError(spec.line, f"id {spec.id} repeats line {first_line[spec.id]}", spec.id)
                )
            else:
                first_line[spec.id] = spec.line
            proposer = spec.proposer or actor
            approver = approved_by or spec.approver
            if approver is not None and self.policy.require_second_approver and approver == proposer:
                errors.append(
                    RowError(
                        spec.line,
                        f"approver {approver} is the proposer: a second person must approve",
                        spec.id,
                    )
                )
        batch = str(uuid.uuid4())
        added = unchanged = approved = 0
        with self.store.session(write=True) as session:
            existing = _load_ids(session, [s.id for s in specs])
            new_specs: list[_Spec] = []
            for spec in specs:
                found = existing.get(spec.id)
                if found is None:
                    new_specs.append(spec)
                elif not existing_ok:
                    errors.append(RowError(spec.line, f"entry {spec.id} exists already", spec.id))
                elif _entry_content(found) == spec.content():
                    unchanged += 1
                else:
                    errors.append(
                        RowError(
                            spec.line,
                            f"entry {spec.id} exists with other content ({_diff(found, spec)})",
                            spec.id,
                        )
                    )
            if errors:
                return ImportReport(rejected=tuple(sorted(errors, key=lambda e: e.line)))
            rows: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            for spec in new_specs:
                approver = approved_by or spec.approver
                entry = _new_entry(spec, proposer=spec.proposer or actor, approver=approver, at=at)
                entry = dataclasses.replace(entry, state=self._state(entry, at))
                if spec.disabled:
                    reason = spec.disabled_reason or "disabled in the imported file"
                    entry = dataclasses.replace(entry, state=EntryState.DISABLED, disabled_reason=reason)
                rows.append(entry._values())
                note = ""
                if approver is not None:
                    approved += 1
                    note = (
                        f"bulk approval by {approved_by}" if approved_by else f"approved by {approver} (file)"
                    )
                changes.append(
                    _change_values(at, actor, ChangeKind.CREATE, None, entry, batch=batch, note=note)
                )
                added += 1
            if rows:
                session.execute(sa.insert(_TABLE), rows)
                session.execute(sa.insert(_CHANGES), changes)
                _bump(session, at)
        return ImportReport(
            added=added, unchanged=unchanged, approved=approved, batch=batch if added else None
        )

    def export_records(self, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Every entry (all states) as export records, sorted by id, with its state at ``now``."""
        at = _aware(now)
        with self.store.session() as session:
            entries = _load(session)
        return [e.to_record(state=self._state(e, at)) for e in entries]

    def export(
        self,
        target: str | Path | IO[str],
        format: FileFormat | str | None = None,
        *,
        now: dt.datetime | None = None,
    ) -> int:
        """Write every entry to ``target`` (a path, or a text stream with ``format``) as CSV or JSON;
        returns the number of entries. Importing the file into an empty library gives the same
        entries (content, proposer, approver, disabled switch)."""
        if isinstance(target, str | Path):
            fmt = FileFormat.of(target, format)
        elif format is None:
            raise UsageError("give the format when exporting to a stream")
        else:
            fmt = FileFormat.of("", format)
        records = self.export_records(now)
        text = _csv_text(records) if fmt is FileFormat.CSV else _json_text(records)
        if isinstance(target, str | Path):
            Path(target).write_text(text, encoding="utf-8", newline="")
        else:
            target.write(text)
        return len(records)

    # -- versions --------------------------------------------------------------------------------

    def snapshot(self, label: str, actor: str, *, now: dt.datetime | None = None) -> Snapshot:
        """Freeze the active set at ``now`` as a new version (see the module docstring)."""
        actor = _actor(actor)
        if not isinstance(label, str) or not label.strip():
            raise UsageError("a snapshot needs a label")
        at = _aware(now)
        with self.store.session(write=True) as session:
            counter = _counter(session)
            active = self._active(session, at)
            content = _canonical([e.to_record(state=EntryState.ACTIVE) for e in active])
            row = LibrarySnapshotRow(
                label=label.strip(),
                actor=actor,
                created_at=at,
                as_of=at,
                digest=_digest(content),
                entry_count=len(active),
                change_counter=counter + 1,
                content=content,
            )
            session.add(row)
            session.flush()
            snapshot = Snapshot._from_row(row)
            session.add(
                LibraryChangeRow(
                    at=at,
                    actor=actor,
                    kind=ChangeKind.SNAPSHOT.value,
                    entry_id=None,
                    snapshot_id=row.id,
                    batch=None,
                    before=None,
                    after=snapshot.to_dict(),
                    note=label.strip(),
                )
            )
            _bump(session, at)
        return snapshot

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot, oldest first."""
        with self.store.session() as session:
            rows = session.scalars(sa.select(LibrarySnapshotRow).order_by(LibrarySnapshotRow.id))
            return [Snapshot._from_row(row) for row in rows]

    def snapshot_records(self, version: str) -> list[dict[str, Any]]:
        """The entries frozen in snapshot ``version`` (``v3``), as export records without state."""
        with self.store.session() as session:
            row = session.get(LibrarySnapshotRow, _snapshot_number(version))
            if row is None:
                raise UsageError(f"no snapshot {version!r}")
            records: list[dict[str, Any]] = json.loads(row.content)
            return records

    def compile(
        self, now: dt.datetime | None = None, *, review_policy: ReviewPolicy | None = None
    ) -> CompiledLibrary:
        """Build the indexes of the entries active at ``now`` into an immutable ``CompiledLibrary``."""
        return self._compile(_aware(now), review_policy).library

    def compile_snapshot(self, version: str, *, review_policy: ReviewPolicy | None = None) -> CompiledLibrary:
        """Rebuild the library of snapshot ``version`` exactly as it was frozen (to re-check a past
        decision)."""
        records = self.snapshot_records(version)
        specs = [_spec(record, 0, None) for record in records]
        entries = [_spec_entry(spec) for spec in specs]
        return _build(entries, f"v{_snapshot_number(version)}", review_policy or ReviewPolicy())

    def _compile(self, now: dt.datetime, review_policy: ReviewPolicy | None) -> _Compiled:
        with self.store.session() as session:
            # The counter first: a change that lands while the entries are read moves it again,
            # so a watcher compiles once more rather than missing it.
            counter = _counter(session)
            live = _load(session, _COLUMNS.state.in_(_LIVE_STATES))
            active = [e for e in live if self._state(e, now) is EntryState.ACTIVE]
            digest = _digest(_canonical([e.to_record(state=EntryState.ACTIVE) for e in active]))
            snapshot_id = session.scalar(
                sa.select(sa.func.max(LibrarySnapshotRow.id)).where(LibrarySnapshotRow.digest == digest)
            )
        version = f"v{snapshot_id}" if snapshot_id is not None else f"sha256:{digest}"
        upcoming = [
            t
            for e in live
            if e.approved(require_second_approver=self.policy.require_second_approver)
            for t in (e.effective_from, e.lapses_at)
            if t is not None and t > now
        ]
        library = _build(active, version, review_policy or ReviewPolicy())
        return _Compiled(library, counter, min(upcoming, default=None))

    def _active(self, session: Session, now: dt.datetime) -> list[LibraryEntry]:
        live = _load(session, _COLUMNS.state.in_(_LIVE_STATES))
        return [e for e in live if self._state(e, now) is EntryState.ACTIVE]

    # -- coverage --------------------------------------------------------------------------------

    def coverage(self, now: dt.datetime | None = None) -> CoverageReport:
        """Active keywords per risk at ``now`` against ``policy.minimums`` (allow-list phrases, image
        hashes and rumors do not count)."""
        at = _aware(now)
        minimums = self.policy.minimums
        active: Counter[RiskCategory] = Counter()
        pending: Counter[RiskCategory] = Counter()
        with self.store.session() as session:
            entries = _load(
                session,
                _COLUMNS.kind == EntryKind.KEYWORD.value,
                _COLUMNS.action != Action.ALLOW.value,
                _COLUMNS.state.in_((*_LIVE_STATES, EntryState.PROPOSED.value)),
            )
            for entry in entries:
                state = self._state(entry, at)
                if state is EntryState.ACTIVE:
                    active[entry.category] += 1
                elif state in (EntryState.PROPOSED, EntryState.APPROVED):
                    pending[entry.category] += 1
        categories = tuple(
            CategoryCoverage(
                category,
                active[category],
                pending[category],
                minimums.per_a1_risk if is_a1(category) else minimums.per_a2_risk if is_a2(category) else 0,
            )
            for category in RiskCategory
        )
        return CoverageReport(
            as_of=at,
            categories=categories,
            total=sum(active.values()),
            total_required=minimums.total,
            shortfalls=tuple(minimums.shortfalls(active)),
        )


def _enum(cls: Any, value: Any, what: str) -> Any:
    if value is None or isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        known = ", ".join(member.value for member in cls)
        raise UsageError(f"unknown {what} {value!r} (known: {known})") from None


def _match_field(match: Iterable[Normalization | str] | str | None) -> str | list[str] | None:
    if match is None or isinstance(match, str):
        return match
    return [m.value if isinstance(m, Normalization) else m for m in match]


def _spec_entry(spec: _Spec) -> LibraryEntry:
    """A snapshot record back as an (active) entry, for ``compile_snapshot``."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return LibraryEntry(
        id=spec.id,
        kind=spec.kind,
        term=spec.term,
        category=spec.category,
        action=spec.action,
        match=spec.match,
        reason=spec.reason,
        source=spec.source,
        proposer=spec.proposer or "",
        approver=spec.approver,
        approved_at=None,
        effective_from=spec.effective_from,
        lapses_at=spec.lapses_at,
        state=EntryState.ACTIVE,
        disabled_reason=None,
        quality=spec.quality,
        refutation=spec.refutation,
        created_at=epoch,
        updated_at=epoch,
    )


def _build(entries: Sequence[LibraryEntry], version: str, policy: ReviewPolicy) -> CompiledLibrary:
    return CompiledLibrary.build(
        version,
        keywords=[e.keyword_entry() for e in entries if e.kind is EntryKind.KEYWORD],
        images=[(e.id, e.pdq()) for e in entries if e.kind is EntryKind.IMAGE],
        rumors=[e.rumor_entry() for e in entries if e.kind is EntryKind.RUMOR],
        policy=policy,
    )


def _snapshot_number(version: str) -> int:
    match = re.fullmatch(r"v?(\d{1,18})", version.strip()) if isinstance(version, str) else None
    if match is None:
        raise UsageError(f"not a snapshot version: {version!r} (e.g. v3)")
    return int(match.group(1))


def _diff(found: LibraryEntry, spec: _Spec) -> str:
    pairs = zip(_CONTENT_FIELDS, _entry_content(found), spec.content(), strict=True)
    return ", ".join(name for name, a, b in pairs if a != b) + " differ"


_TABLE: Final = cast(sa.Table, LibraryEntryRow.__table__)
_COLUMNS: Final = _TABLE.c
_CHANGES: Final = cast(sa.Table, LibraryChangeRow.__table__)
#: The columns a change of procedure (approve, disable, enable, refresh) writes.
_MUTABLE: Final = ("approver", "approved_at", "state", "disabled_reason", "updated_at")
#: The columns ``LibraryEntry._from_row`` unpacks, in its order.
_ENTRY_COLUMNS: Final = tuple(
    _COLUMNS[name]
    for name in (
        "id",
        "kind",
        "term",
        "category",
        "action",
        "match",
        "reason",
        "source",
        "proposer",
        "approver",
        "approved_at",
        "effective_from",
        "lapses_at",
        "state",
        "disabled_reason",
        "quality",
        "refutation_id",
        "refutation_title",
        "refutation_url",
        "refutation_published",
        "created_at",
        "updated_at",
    )
)


def _load(session: Session, *where: sa.ColumnElement[bool], lock: bool = False) -> list[LibraryEntry]:
    """Entries by id, read as plain rows (ORM objects cost more than the whole rest of a compile);
    ``lock`` takes row locks (PostgreSQL; SQLite's write sessions hold the database lock)."""
    query = sa.select(*_ENTRY_COLUMNS).where(*where).order_by(_COLUMNS.id)
    if lock:
        query = query.with_for_update()
    return [LibraryEntry._from_row(row) for row in session.execute(query)]


def _load_ids(session: Session, ids: Sequence[str], *, lock: bool = False) -> dict[str, LibraryEntry]:
    found: dict[str, LibraryEntry] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _IN_CHUNK):
        for entry in _load(session, _COLUMNS.id.in_(unique[start : start + _IN_CHUNK]), lock=lock):
            found[entry.id] = entry
    return found


def _new_entry(spec: _Spec, *, proposer: str, approver: str | None, at: dt.datetime) -> LibraryEntry:
    return LibraryEntry(
        id=spec.id,
        kind=spec.kind,
        term=spec.term,
        category=spec.category,
        action=spec.action,
        match=spec.match,
        reason=spec.reason,
        source=spec.source,
        proposer=proposer,
        approver=approver,
        approved_at=at if approver else None,
        effective_from=spec.effective_from,
        lapses_at=spec.lapses_at,
        state=EntryState.PROPOSED if approver is None else EntryState.APPROVED,
        disabled_reason=None,
        quality=spec.quality,
        refutation=spec.refutation,
        created_at=at,
        updated_at=at,
    )


def _change_values(
    at: dt.datetime,
    actor: str,
    kind: ChangeKind,
    before: LibraryEntry | None,
    after: LibraryEntry,
    *,
    batch: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "at": at,
        "actor": actor,
        "kind": kind.value,
        "entry_id": after.id,
        "snapshot_id": None,
        "batch": batch,
        "before": before.to_record() if before is not None else None,
        "after": after.to_record(),
        "note": note,
    }


def _apply(
    session: Session,
    at: dt.datetime,
    actor: str,
    kind: ChangeKind,
    changes: Sequence[tuple[LibraryEntry, LibraryEntry]],
    *,
    batch: str | None = None,
    note: str = "",
) -> None:
    """Write the procedure columns of each ``after``, one change record per entry, and move the
    change counter; nothing when ``changes`` is empty."""
    if not changes:
        return
    update = (
        sa.update(_TABLE)
        .where(_COLUMNS.id == sa.bindparam("b_id"))
        .values({name: sa.bindparam(f"b_{name}") for name in _MUTABLE})
    )
    params = []
    for _, after in changes:
        values = after._values()
        params.append({"b_id": after.id, **{f"b_{name}": values[name] for name in _MUTABLE}})
    session.execute(update, params)
    session.execute(
        sa.insert(_CHANGES),
        [_change_values(at, actor, kind, before, after, batch=batch, note=note) for before, after in changes],
    )
    _bump(session, at)


def _counter(session: Session) -> int:
    value = session.scalar(sa.select(LibraryStateRow.change_counter).where(LibraryStateRow.id == 1))
    if value is None:
        raise UsageError("the library tables are missing their state row: run the migrations (Store.upgrade)")
    return int(value)


def _bump(session: Session, at: dt.datetime) -> None:
    session.execute(
        sa.update(LibraryStateRow)
        .where(LibraryStateRow.id == 1)
        .values(change_counter=LibraryStateRow.change_counter + 1, changed_at=at)
    )


def _change(row: LibraryChangeRow) -> ChangeRecord:
    return ChangeRecord(
        id=row.id,
        at=row.at,
        actor=row.actor,
        kind=ChangeKind(row.kind),
        entry_id=row.entry_id,
        snapshot=f"v{row.snapshot_id}" if row.snapshot_id is not None else None,
        batch=row.batch,
        before=row.before,
        after=row.after,
        note=row.note,
    )


# -- hot reload ----------------------------------------------------------------------------------


class LibraryWatcher:
    """Keeps a reviewer on the current library: ``reload_if_changed`` compiles a new
    ``CompiledLibrary`` when the change counter moved or an effective or lapse time has passed, and
    hands it to ``reviewer.swap`` unless its version is the one the reviewer has (a change that
    did not touch the active set, such as a new proposal). ``run`` does that every ``interval``
    seconds until stopped (a service runs it in a thread); a failed reload is logged and the reviewer
    keeps its library::

        reviewer = Reviewer(library.compile(), sink=HitRecorder(store))
        watcher = LibraryWatcher(library, reviewer)
        threading.Thread(target=watcher.run, args=(stop, 5.0), daemon=True).start()
    """

    def __init__(
        self,
        library: Library,
        reviewer: Swappable,
        *,
        review_policy: ReviewPolicy | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.library = library
        self.reviewer = reviewer
        self.review_policy = review_policy
        self.clock = clock
        self._seen: int | None = None
        self._next: dt.datetime | None = None
        self._current: CompiledLibrary | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> CompiledLibrary | None:
        """The library last handed to the reviewer (``None`` before the first reload)."""
        return self._current

    def reload_if_changed(self, now: dt.datetime | None = None) -> CompiledLibrary | None:
        """Compile when something changed since the last reload, and swap when the active set did;
        the library swapped in, or ``None``."""
        at = _aware(now if now is not None else self.clock())
        with self._lock:
            due = self._next is not None and at >= self._next
            if self._seen is not None and not due and self.library.change_counter() == self._seen:
                return None
            compiled = self.library._compile(at, self.review_policy)
            self._seen, self._next = compiled.change_counter, compiled.next_transition
            if self._current is not None and compiled.library.version == self._current.version:
                return None
            self.reviewer.swap(compiled.library)
            self._current = compiled.library
            return compiled.library

    def run(self, stop: threading.Event, interval: float = 5.0) -> None:
        """Reload every ``interval`` seconds until ``stop`` is set."""
        if interval <= 0:
            raise UsageError("the reload interval must be positive")
        while not stop.is_set():
            try:
                self.reload_if_changed()
            except Exception:  # a database hiccup must not stop reviews: keep the old library
                _log.exception("library reload failed; the reviewer keeps its current library")
            stop.wait(interval)


# -- records of hits -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Hit:
    """One recorded match: which entry, in what, when, with which library version, and where."""

    id: int
    at: dt.datetime
    subject: str
    entry_id: str
    kind: EntryKind
    category: RiskCategory | None
    action: Action | None
    verdict: str
    library_version: str
    start: int | None
    end: int | None
    distance: int | None
    score: float | None
    detail: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": _iso(self.at),
            "subject": self.subject,
            "entry_id": self.entry_id,
            "kind": self.kind.value,
            "category": self.category.value if self.category else None,
            "action": self.action.value if self.action else None,
            "verdict": self.verdict,
            "library_version": self.library_version,
            "start": self.start,
            "end": self.end,
            "distance": self.distance,
            "score": self.score,
            "detail": self.detail,
        }


#: Subjects longer than the column are cut and tagged with their SHA-256, so they stay distinct.
_SUBJECT_MAX: Final = 255


def _subject(subject: str) -> str:
    if not isinstance(subject, str) or not subject:
        raise UsageError("a recorded hit needs a subject")
    if len(subject) <= _SUBJECT_MAX:
        return subject
    return subject[: _SUBJECT_MAX - 72] + "…sha256:" + hashlib.sha256(subject.encode()).hexdigest()


class HitRecorder:
    """The ``DecisionSink`` of the Art. 10 records: every entry a review matched becomes one row of
    ``review_hits`` (entry id, kind, risk category, action, the verdict it called for, subject, time,
    library version, offsets in the text, or the Hamming distance of an image, or the similarity of
    a rumor). One decision is one transaction. Image matches carry no category or action: they are
    looked up in the library when the entry is there::

        reviewer = Reviewer(library.compile(), sink=HitRecorder(store))
    """

    def __init__(self, store: Store, *, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.store = store
        self.clock = clock

    def record(self, decision: Decision, *, subject: str) -> None:
        at = _aware(self.clock())
        named = _subject(subject)
        version = decision.library_version
        extra = {"sample_library": True} if decision.sample_library else {}
        rows: list[dict[str, Any]] = []
        if isinstance(decision, TextDecision):
            for keyword in decision.keyword_matches:
                rows.append(
                    _hit(
                        at,
                        named,
                        version,
                        keyword.entry_id,
                        EntryKind.KEYWORD,
                        decision.verdict_of(keyword).value,
                        category=keyword.category.value,
                        action=keyword.action.value,
                        start=keyword.start,
                        end=keyword.end,
                        detail={"normalizations": [n.value for n in keyword.normalizations], **extra},
                    )
                )
            for rumor in decision.rumor_matches:
                rows.append(
                    _hit(
                        at,
                        named,
                        version,
                        rumor.entry_id,
                        EntryKind.RUMOR,
                        decision.verdict_of(rumor).value,
                        category=rumor.category.value,
                        start=rumor.start,
                        end=rumor.end,
                        score=rumor.similarity,
                        detail={"notice": rumor.notice.to_dict(), **extra},
                    )
                )
        elif isinstance(decision, ImageDecision | VideoDecision):
            for found in decision.matches:
                detail: dict[str, Any] = {"variant": found.variant.value, **extra}
                if isinstance(decision, VideoDecision):
                    detail["time"] = getattr(found, "time", None)
                rows.append(
                    _hit(
                        at,
                        named,
                        version,
                        found.entry_id,
                        EntryKind.IMAGE,
                        decision.verdict.value,
                        distance=found.distance,
                        detail=detail,
                    )
                )
        else:
            raise UsageError(f"not a review decision: {type(decision).__name__}")
        if not rows:
            return
        with self.store.session() as session:
            unknown = [r["entry_id"] for r in rows if r["category"] is None]
            if unknown:
                known = _load_ids(session, unknown)
                for row in rows:
                    entry = known.get(row["entry_id"])
                    if row["category"] is None and entry is not None:
                        row["category"], row["action"] = entry.category.value, entry.action.value
            session.execute(sa.insert(_HITS), rows)

    def hits(
        self,
        *,
        subject: str | None = None,
        entry_id: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[Hit]:
        """Recorded hits, oldest first, filtered by subject, entry and time."""
        query = sa.select(ReviewHitRow).order_by(ReviewHitRow.id)
        if subject is not None:
            query = query.where(ReviewHitRow.subject == _subject(subject))
        if entry_id is not None:
            query = query.where(ReviewHitRow.entry_id == entry_id)
        if since is not None:
            query = query.where(ReviewHitRow.at >= _aware(since))
        if limit is not None:
            query = query.limit(limit)
        with self.store.session() as session:
            return [
                Hit(
                    id=row.id,
                    at=row.at,
                    subject=row.subject,
                    entry_id=row.entry_id,
                    kind=_KINDS[row.kind],
                    category=_CATEGORIES.get(row.category or ""),
                    action=_ACTION_VALUES.get(row.action or ""),
                    verdict=row.verdict,
                    library_version=row.library_version,
                    start=row.start_offset,
                    end=row.end_offset,
                    distance=row.distance,
                    score=row.score,
                    detail=row.detail,
                )
                for row in session.scalars(query)
            ]


_HITS: Final = cast(sa.Table, ReviewHitRow.__table__)


def _hit(
    at: dt.datetime,
    subject: str,
    version: str,
    entry_id: str,
    kind: EntryKind,
    verdict: str,
    *,
    category: str | None = None,
    action: str | None = None,
    start: int | None = None,
    end: int | None = None,
    distance: int | None = None,
    score: float | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "at": at,
        "subject": subject,
        "entry_id": entry_id,
        "kind": kind.value,
        "category": category,
        "action": action,
        "verdict": verdict,
        "library_version": version,
        "start_offset": start,
        "end_offset": end,
        "distance": distance,
        "score": score,
        "detail": detail or None,
    }


# -- for the review commands ---------------------------------------------------------------------


def load_compiled_library(
    settings: Settings, *, now: dt.datetime | None = None, review_policy: ReviewPolicy | None = None
) -> CompiledLibrary | None:
    """The library active at ``now`` in the store ``settings`` name, or ``None`` for a database
    without the library's tables (reviewing never creates or migrates a database). Used by
    ``library_loader.load``; a store whose schema is behind the code raises ``ConfigError``."""
    with open_store(settings=settings) as store:
        revision = store.current_revision()
        if revision is None:
            return None
        if revision != Store.head_revision():
            raise ConfigError(
                f"the store is at schema revision {revision}, the code needs {Store.head_revision()}: "
                "run any `synthguard library` command to migrate it"
            )
        return Library(store).compile(now, review_policy=review_policy)
