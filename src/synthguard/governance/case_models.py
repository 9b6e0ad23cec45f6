"""Declarative models of casework: disposal (Art. 10), complaints (Art. 12), rumors (Art. 11) and
reports to the authorities (Art. 10, 11). Tables are created only by migration ``0005_casework``.

- ``case_strikes``: one violation counted against an end user (``user_ref``), with its weight and the
  time it stops counting; voided, never deleted, when a measure built on it is overturned.
- ``case_user_states``: one row per end user who had a violation: the run of consecutive violating
  reviews (reset by a clean one). Bookkeeping for the automatic triggers, not a record of its own.
- ``case_measures``: warnings, restrictions, suspensions and closures, with reason, evidence, actor,
  trigger, end time and whether (and by whom) they were lifted.
- ``case_appeals``: one appeal per measure, decided by a second reviewer.
- ``case_complaints`` and ``case_complaint_events``: the public complaint channel, its clocks, and
  every step (state change or feedback) with its time and actor.
- ``case_attachments`` (content-addressed files by SHA-256) and ``case_complaint_attachments``.
- ``case_rumors``, ``case_rumor_entries`` (links to the characteristics database's rumor entries) and
  ``case_rumor_occurrences`` (every piece of content that repeated the rumor).
- ``case_reports`` and ``case_report_items``: a case for the authorities and what it is made of.
- ``case_counters``: per-year sequences behind the public tracking numbers.

Closed vocabularies are the ``StrEnum`` s below, kept closed in the database by CHECK constraints.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from synthguard.errors import UsageError
from synthguard.store.models import ACTOR_LENGTH, ENTRY_ID_LENGTH, Base

__all__ = [
    "AppealRow",
    "AppealState",
    "AttachmentRow",
    "CaseCounterRow",
    "ComplaintAttachmentRow",
    "ComplaintCategory",
    "ComplaintEventRow",
    "ComplaintOutcome",
    "ComplaintRow",
    "ComplaintState",
    "Function",
    "MeasureKind",
    "MeasureRow",
    "MeasureState",
    "ReportItemKind",
    "ReportItemRow",
    "ReportRow",
    "ReportState",
    "RumorEntryLinkRow",
    "RumorOccurrenceRow",
    "RumorRow",
    "StrikeRow",
    "UserStateRow",
    "aware_now",
    "check_ref",
    "check_text",
    "next_number",
]

#: The end user's key, shared with the identity records (an account id of the provider's service).
USER_REF_LENGTH: Final = 128
#: Public tracking and report numbers (``SG-2026-000123``).
NUMBER_LENGTH: Final = 32

_BIG_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _in(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class MeasureKind(enum.StrEnum):
    """The disposal ladder's rungs (Art. 10), mildest first."""

    WARNING = "warning"
    RESTRICTION = "restriction"
    SUSPENSION = "suspension"
    CLOSURE = "closure"


class MeasureState(enum.StrEnum):
    ACTIVE = "active"
    #: Lifted before its end: overturned on appeal, or lifted by staff.
    LIFTED = "lifted"


class Function(enum.StrEnum):
    """What a restriction can take away."""

    GENERATE = "generate"
    PUBLISH = "publish"


class AppealState(enum.StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class ComplaintCategory(enum.StrEnum):
    """Categories of Art. 12 complaints and reports."""

    ILLEGAL_CONTENT = "illegal_content"
    RUMOR = "rumor"
    LABEL_MISSING = "label_missing"
    INFRINGEMENT = "infringement"
    PERSONAL_INFORMATION = "personal_information"
    OTHER = "other"


class ComplaintState(enum.StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    IN_REVIEW = "in_review"
    DECIDED = "decided"
    CLOSED = "closed"


class ComplaintOutcome(enum.StrEnum):
    UPHELD = "upheld"
    REJECTED = "rejected"
    #: Passed on to the authorities or another competent body.
    REFERRED = "referred"


class ReportState(enum.StrEnum):
    DRAFT = "draft"
    #: Frozen: the exported content and its digest are kept as submitted.
    SUBMITTED = "submitted"


class ReportItemKind(enum.StrEnum):
    MEASURE = "measure"
    STRIKE = "strike"
    COMPLAINT = "complaint"
    RUMOR = "rumor"
    REVIEW_HIT = "review_hit"


class StrikeRow(Base):
    """One violation counted against an end user."""

    __tablename__ = "case_strikes"
    __table_args__ = (
        sa.CheckConstraint("weight >= 0", name="weight"),
        sa.Index("ix_case_strikes_user_at", "user_ref", "at"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    user_ref: Mapped[str] = mapped_column(sa.String(USER_REF_LENGTH))
    at: Mapped[dt.datetime]
    #: What was violated: ``input`` (a prompt or upload), ``output``, ``publish``, ``manual``.
    kind: Mapped[str] = mapped_column(sa.String(32))
    #: Risk code (``A1.6``) when known.
    risk: Mapped[str | None] = mapped_column(sa.String(8))
    weight: Mapped[float] = mapped_column(sa.Float)
    expires_at: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(sa.Text)
    #: Digests, review hit ids, request ids: what the strike rests on.
    evidence: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    voided_at: Mapped[dt.datetime | None]
    voided_reason: Mapped[str | None] = mapped_column(sa.Text)


class UserStateRow(Base):
    """The run of consecutive violating reviews of one end user (reset by a clean review)."""

    __tablename__ = "case_user_states"

    user_ref: Mapped[str] = mapped_column(sa.String(USER_REF_LENGTH), primary_key=True)
    consecutive_violations: Mapped[int]
    updated_at: Mapped[dt.datetime]


class MeasureRow(Base):
    """One disposal measure against an end user."""

    __tablename__ = "case_measures"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", MeasureKind), name="kind"),
        sa.CheckConstraint(_in("state", MeasureState), name="state"),
        sa.Index("ix_case_measures_user_state", "user_ref", "state"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    user_ref: Mapped[str] = mapped_column(sa.String(USER_REF_LENGTH))
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: ``Function`` values taken away while the measure is in force.
    functions: Mapped[list[str]] = mapped_column(sa.JSON)
    reason: Mapped[str] = mapped_column(sa.Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: Ids of the strikes it rests on (voided if the measure is overturned).
    strike_ids: Mapped[list[int]] = mapped_column(sa.JSON)
    #: ``manual`` or ``auto:points`` / ``auto:consecutive`` / ``auto:daily``.
    trigger: Mapped[str] = mapped_column(sa.String(32))
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    imposed_at: Mapped[dt.datetime]
    #: NULL: until lifted (a closure, or a warning which takes nothing away).
    ends_at: Mapped[dt.datetime | None]
    state: Mapped[str] = mapped_column(sa.String(16))
    lifted_at: Mapped[dt.datetime | None]
    lifted_by: Mapped[str | None] = mapped_column(sa.String(ACTOR_LENGTH))
    lifted_reason: Mapped[str | None] = mapped_column(sa.Text)


class AppealRow(Base):
    """The appeal against one measure, decided by someone other than who imposed it."""

    __tablename__ = "case_appeals"
    __table_args__ = (sa.CheckConstraint(_in("state", AppealState), name="state"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    measure_id: Mapped[int] = mapped_column(sa.ForeignKey("case_measures.id"), unique=True)
    filed_at: Mapped[dt.datetime]
    #: Who recorded it (staff, on the user's behalf, or the user's channel).
    filed_by: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    statement: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    decided_at: Mapped[dt.datetime | None]
    decided_by: Mapped[str | None] = mapped_column(sa.String(ACTOR_LENGTH))
    decision_reason: Mapped[str | None] = mapped_column(sa.Text)


class ComplaintRow(Base):
    """One complaint or report from the public (Art. 12)."""

    __tablename__ = "case_complaints"
    __table_args__ = (
        sa.CheckConstraint(_in("category", ComplaintCategory), name="category"),
        sa.CheckConstraint(_in("state", ComplaintState), name="state"),
        sa.CheckConstraint(f"outcome IS NULL OR {_in('outcome', ComplaintOutcome)}", name="outcome"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    tracking_number: Mapped[str] = mapped_column(sa.String(NUMBER_LENGTH), unique=True)
    #: SHA-256 (hex) of the random secret handed to the complainant once.
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    category: Mapped[str] = mapped_column(sa.String(32))
    #: What the complaint is about: a URL, a ProduceID, a user, a description of where.
    target: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text)
    #: How to reach the complainant (optional; personal information, shown masked in lists).
    contact: Mapped[str | None] = mapped_column(sa.String(256))
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(index=True)
    acknowledge_due: Mapped[dt.datetime]
    decide_due: Mapped[dt.datetime]
    acknowledged_at: Mapped[dt.datetime | None]
    review_started_at: Mapped[dt.datetime | None]
    decided_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    assignee: Mapped[str | None] = mapped_column(sa.String(ACTOR_LENGTH))
    outcome: Mapped[str | None] = mapped_column(sa.String(16))
    #: The latest feedback shown to the complainant.
    feedback: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[dt.datetime]


class ComplaintEventRow(Base):
    """One step of a complaint: a state change, or feedback without one (append-only)."""

    __tablename__ = "case_complaint_events"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    complaint_id: Mapped[int] = mapped_column(sa.ForeignKey("case_complaints.id"), index=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    from_state: Mapped[str | None] = mapped_column(sa.String(16))
    to_state: Mapped[str] = mapped_column(sa.String(16))
    #: Internal note (staff only).
    note: Mapped[str] = mapped_column(sa.Text)
    #: Shown to the complainant on the public status page.
    public_note: Mapped[str | None] = mapped_column(sa.Text)


class AttachmentRow(Base):
    """A stored file, addressed by its SHA-256 (``data_dir/attachments/ab/cd/<digest>``)."""

    __tablename__ = "case_attachments"

    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    #: ``media.Container`` value found in the bytes (never the client's Content-Type).
    media_type: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime]


class ComplaintAttachmentRow(Base):
    __tablename__ = "case_complaint_attachments"

    complaint_id: Mapped[int] = mapped_column(sa.ForeignKey("case_complaints.id"), primary_key=True)
    digest: Mapped[str] = mapped_column(sa.ForeignKey("case_attachments.digest"), primary_key=True)
    #: The client's file name, for display only.
    filename: Mapped[str] = mapped_column(sa.String(255))


class RumorRow(Base):
    """A piece of false information and its refutation notice (Art. 11)."""

    __tablename__ = "case_rumors"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    claim: Mapped[str] = mapped_column(sa.Text)
    risk: Mapped[str] = mapped_column(sa.String(8))
    refutation_title: Mapped[str] = mapped_column(sa.Text)
    refutation_text: Mapped[str] = mapped_column(sa.Text)
    refutation_source: Mapped[str] = mapped_column(sa.Text)
    refutation_url: Mapped[str] = mapped_column(sa.Text)
    refuted_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))


class RumorEntryLinkRow(Base):
    """A rumor entry of the characteristics database that matches this rumor."""

    __tablename__ = "case_rumor_entries"

    rumor_id: Mapped[int] = mapped_column(sa.ForeignKey("case_rumors.id"), primary_key=True)
    #: ``library_entries.id`` (not a foreign key: a library may also be loaded from a file).
    entry_id: Mapped[str] = mapped_column(sa.String(ENTRY_ID_LENGTH), primary_key=True, index=True)
    #: The entry's claim when it was linked.
    term: Mapped[str] = mapped_column(sa.Text)
    linked_at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))


class RumorOccurrenceRow(Base):
    """One piece of content that repeated the rumor, and where."""

    __tablename__ = "case_rumor_occurrences"
    __table_args__ = (
        sa.CheckConstraint(
            "produce_id IS NOT NULL OR content_digest IS NOT NULL OR review_hit_id IS NOT NULL",
            name="content",
        ),
        sa.UniqueConstraint("rumor_id", "dedup_key", name="uq_case_rumor_occurrences_rumor_id"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    rumor_id: Mapped[int] = mapped_column(sa.ForeignKey("case_rumors.id"), index=True)
    produce_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    content_digest: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    #: Where it appeared: a URL, a channel, a request id.
    location: Mapped[str] = mapped_column(sa.Text)
    #: SHA-256 of (produce id, digest, location): one row per piece of content and place.
    dedup_key: Mapped[str] = mapped_column(sa.String(64))
    review_hit_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    found_at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    note: Mapped[str] = mapped_column(sa.Text)


class ReportRow(Base):
    """A report of a case to the cyberspace administration or another authority."""

    __tablename__ = "case_reports"
    __table_args__ = (sa.CheckConstraint(_in("state", ReportState), name="state"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(sa.String(NUMBER_LENGTH), unique=True)
    authority: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    summary: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(sa.String(ACTOR_LENGTH))
    submitted_at: Mapped[dt.datetime | None]
    submitted_by: Mapped[str | None] = mapped_column(sa.String(ACTOR_LENGTH))
    #: The authority's receipt or case number, when it gives one.
    authority_ref: Mapped[str | None] = mapped_column(sa.Text)
    #: The canonical JSON export as submitted, and its SHA-256.
    submitted_content: Mapped[str | None] = mapped_column(sa.Text)
    submitted_digest: Mapped[str | None] = mapped_column(sa.String(64))


class ReportItemRow(Base):
    """One record a report is made of."""

    __tablename__ = "case_report_items"
    __table_args__ = (sa.CheckConstraint(_in("kind", ReportItemKind), name="kind"),)

    report_id: Mapped[int] = mapped_column(sa.ForeignKey("case_reports.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    ref: Mapped[str] = mapped_column(sa.String(NUMBER_LENGTH), primary_key=True)
    added_at: Mapped[dt.datetime]


class CaseCounterRow(Base):
    """A sequence per name (``complaint:2026``): the numbers behind tracking and report numbers."""

    __tablename__ = "case_counters"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger)


# -- helpers shared by the casework services -------------------------------------------------------

_CONTROL: Final = frozenset(chr(c) for c in (*range(0x20), 0x7F))


def aware_now(now: dt.datetime | None) -> dt.datetime:
    """``now`` (which must be timezone-aware) in UTC, or the current time."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise UsageError(f"naive datetime {now!r}: give a timezone-aware time")
    return now.astimezone(dt.UTC)


def check_text(
    name: str, value: str, *, max_length: int, allow_empty: bool = False, line: bool = False
) -> str:
    """``value`` stripped, or ``UsageError`` when empty (unless allowed), too long, or holding control
    characters (``line``: no line breaks either; otherwise tabs and line breaks are kept)."""
    text = value.strip()
    if not text and not allow_empty:
        raise UsageError(f"{name} must not be empty")
    if len(text) > max_length:
        raise UsageError(f"{name} is longer than {max_length} characters")
    allowed = frozenset() if line else frozenset("\t\n\r")
    if any(ch in _CONTROL and ch not in allowed for ch in text):
        raise UsageError(f"{name} holds control characters")
    return text


def check_ref(name: str, value: str, *, max_length: int = USER_REF_LENGTH) -> str:
    """A reference used in audit subjects (a user ref, an entry id): no spaces, no control characters."""
    text = check_text(name, value, max_length=max_length, line=True)
    if any(ch.isspace() for ch in text):
        raise UsageError(f"{name} must not contain spaces: {text!r}")
    return text


def next_number(session: Session, name: str) -> int:
    """The next value (from 1) of the sequence ``name``, taken inside the caller's transaction.

    The row stays locked until the transaction ends (PostgreSQL row lock; SQLite's write lock), so
    numbers are unique and, when every transaction commits, without gaps.
    """
    bump = (
        sa.update(CaseCounterRow)
        .where(CaseCounterRow.name == name)
        .values(value=CaseCounterRow.value + 1)
        .returning(CaseCounterRow.value)
        .execution_options(synchronize_session=False)
    )
    value = session.execute(bump).scalar()
    if value is None:
        try:
            with session.begin_nested():
                session.execute(sa.insert(CaseCounterRow).values(name=name, value=1))
            return 1
        except sa.exc.IntegrityError:  # created meanwhile by another transaction
            value = session.execute(bump).scalar_one()
    return int(value)
