"""Declarative models of the characteristics database (Art. 10) and its records.

The tables (created only by the migrations in ``store/migrations``; a test checks that the models
and the migrations describe the same schema):

- ``library_entries``: one row per keyword, image hash or rumor claim, with its risk category,
  action, normalisation steps, reason, source, proposer, approver, effective and lapse times, and
  stored state. Rows are never deleted: an entry is switched off by its state (``disabled``).
- ``library_changes``: the change log, append-only: who did what to which entry (or snapshot), when,
  with the entry's record before and after as JSON.
- ``library_snapshots``: frozen, digested copies of the active set (the library's versions).
- ``library_state``: one row; ``change_counter`` moves with every committed change, so a service
  notices in one cheap query that it must recompile.
- ``review_hits``: every entry that a review matched (Art. 10 records): entry, category, subject,
  time, library version and offsets.

Columns hold the stable string values of the Enums of ``review.library`` (``EntryState``,
``EntryKind``, ``ChangeKind``), ``keywords.Action`` and ``risks.RiskCategory``; CHECK constraints keep
the closed vocabularies closed in the database as well. Times are timezone-aware UTC on the Python
side (``UtcDateTime``), ``timestamptz`` on PostgreSQL and ISO text on SQLite.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "LibraryChangeRow",
    "LibraryEntryRow",
    "LibrarySnapshotRow",
    "LibraryStateRow",
    "ReviewHitRow",
    "UtcDateTime",
]

#: Constraint names follow one convention, so migrations can name what they alter on every database.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Long enough for a person's name or an account id.
ACTOR_LENGTH: Final = 128
#: Entry ids: generated ids are ~20 characters; imported ones may be longer.
ENTRY_ID_LENGTH: Final = 64

# An autoincrementing 64-bit key; SQLite only autoincrements a column declared INTEGER.
_BIG_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC ``datetime``; naive values are refused rather than guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware time")
        value = value.astimezone(dt.UTC)
        # SQLite stores text: one form (no offset) keeps comparisons in SQL correct.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """The metadata of every synthguard table."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: Final[dict[Any, Any]] = {dt.datetime: UtcDateTime()}


class LibraryEntryRow(Base):
    """One entry of the characteristics database; see ``review.library.LibraryEntry``."""

    __tablename__ = "library_entries"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('keyword', 'image', 'rumor')", name="kind"),
        sa.CheckConstraint("action IN ('block', 'review', 'mask', 'allow')", name="action"),
        sa.CheckConstraint("state IN ('proposed', 'approved', 'active', 'disabled', 'lapsed')", name="state"),
        sa.CheckConstraint("quality IS NULL OR (quality >= 0 AND quality <= 100)", name="quality"),
        sa.Index("ix_library_entries_kind_state", "kind", "state"),
    )

    id: Mapped[str] = mapped_column(sa.String(ENTRY_ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: The keyword, the PDQ hash in hex, or the rumor's claim.
    term: Mapped[str] = mapped_column(sa.Text)
    category: Mapped[str] = mapped_column(sa.String(8), index=True)
    action: Mapped[str] = mapped_column(sa.String(16))
    #: Normalisation steps, ``|``-separated stable values in application order (keywords only).
    match: Mapped[str] = mapped_column(sa.String(200), default="")
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    source: Mapped[str] = mapped_column(sa.Text, default="")
    proposer: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    approver: Mapped[str | None] = mapped_column(sa.String(ACTOR_LENGTH))
    approved_at: Mapped[dt.datetime | None]
    effective_from: Mapped[dt.datetime | None]
    lapses_at: Mapped[dt.datetime | None]
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: PDQ quality (0-100) of an image hash.
    quality: Mapped[int | None]
    refutation_id: Mapped[str | None] = mapped_column(sa.String(ENTRY_ID_LENGTH))
    refutation_title: Mapped[str | None] = mapped_column(sa.Text)
    refutation_url: Mapped[str | None] = mapped_column(sa.Text)
    refutation_published: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class LibraryChangeRow(Base):
    """One change to the library: append-only, never updated or deleted."""

    __tablename__ = "library_changes"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    #: ``review.library.ChangeKind`` value.
    kind: Mapped[str] = mapped_column(sa.String(16))
    entry_id: Mapped[str | None] = mapped_column(sa.ForeignKey("library_entries.id"), index=True)
    snapshot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("library_snapshots.id"))
    #: Groups the changes of one call (an import, a bulk approval).
    batch: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    note: Mapped[str] = mapped_column(sa.Text, default="")


class LibrarySnapshotRow(Base):
    """A frozen copy of the active set: its canonical export and that export's SHA-256."""

    __tablename__ = "library_snapshots"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(sa.Text)
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    created_at: Mapped[dt.datetime]
    #: The time the active set was computed for.
    as_of: Mapped[dt.datetime]
    digest: Mapped[str] = mapped_column(sa.String(64), index=True)
    entry_count: Mapped[int]
    change_counter: Mapped[int] = mapped_column(sa.BigInteger)
    #: The canonical JSON export of the active set (what ``digest`` is computed over).
    content: Mapped[str] = mapped_column(sa.Text)


class LibraryStateRow(Base):
    """The one row (``id`` 1) that says when the library last changed."""

    __tablename__ = "library_state"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    change_counter: Mapped[int] = mapped_column(sa.BigInteger)
    changed_at: Mapped[dt.datetime | None]


class ReviewHitRow(Base):
    """One library entry matched by one review (the Art. 10 records and web logs)."""

    __tablename__ = "review_hits"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    #: Who or what was reviewed: a request id, a user id, a file name (the caller's choice).
    subject: Mapped[str] = mapped_column(sa.String(255), index=True)
    #: Not a foreign key: a compiled library may come from a file, not from this database.
    entry_id: Mapped[str] = mapped_column(sa.String(ENTRY_ID_LENGTH), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: The entry's risk code and action where the decision or the library knows them (an image
    #: match carries neither; they are looked up in ``library_entries`` when the entry is there).
    category: Mapped[str | None] = mapped_column(sa.String(8))
    action: Mapped[str | None] = mapped_column(sa.String(16))
    library_version: Mapped[str] = mapped_column(sa.String(80))
    #: Offsets in the original text (keywords; rumors where known); NULL for images.
    start_offset: Mapped[int | None]
    end_offset: Mapped[int | None]
    #: Hamming distance of an image hash match.
    distance: Mapped[int | None]
    #: Similarity of a rumor match (0-1).
    score: Mapped[float | None] = mapped_column(sa.Float)
    #: The verdict this match called for (``engine.Verdict`` value).
    verdict: Mapped[str] = mapped_column(sa.String(16))
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
