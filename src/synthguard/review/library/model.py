"""The library's vocabulary and values: the Enums whose values are stored and exchanged
(``EntryKind``, ``EntryState``, ``ChangeKind``, ``FileFormat``), an entry as stored (``LibraryEntry``,
with the two-person rule and the clock in ``state_at``), the values operations return
(``ImportReport``, ``RowError``, ``ChangeRecord``, ``Snapshot``, ``CoverageReport``), the
``LibraryPolicy``, and the checks of times and actor names every operation shares.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from synthguard.errors import UsageError
from synthguard.review.images import PdqHash
from synthguard.review.keywords import Action, KeywordEntry
from synthguard.review.library.match import (
    _stored_match,
    format_match,
)
from synthguard.review.normalize import Normalization
from synthguard.review.risks import LibraryMinimums, RiskCategory
from synthguard.review.rumors import RefutationNotice, RumorEntry
from synthguard.store.models import LibrarySnapshotRow


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


_ACTOR_MAX: Final = 128


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
