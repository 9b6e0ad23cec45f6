"""The complaint channel (Deep Synthesis Provisions Art. 12): filed by anyone, followed by tracking
number and secret, handled through a published process with deadlines, every step recorded.

**Filing** (``file_complaint``) needs no account: a category, what the complaint is about
(``target``: a URL, a ProduceID, where it was seen), a description, an optional contact, and
attachments already stored by ``attachments.AttachmentStore``. It returns the tracking number
(``SG-2026-000123``: the year of filing and the complaint's row id, so that filings never wait for
one another on a counter) and a random secret, returned this once and
kept only as its SHA-256 (a 192-bit random token needs no slow hash). ``public_status`` shows the
case to whoever holds both; a wrong secret and an unknown number are the same ``NotFoundError``.

**The process** (``ComplaintProcess``, published by ``process_document``): received →
acknowledged (within ``complaint_acknowledge_hours``) → in review → decided (within
``complaint_decide_days`` of receipt, with feedback to the complainant) → closed. Both deadlines
are fixed when the complaint is received. Every transition, and every feedback message without one,
is a ``case_complaint_events`` row with its time, actor, internal note and public note, and one
audit record (``complaint.filed``, ``complaint.acknowledged``, ``complaint.in_review``,
``complaint.decided``, ``complaint.closed``, ``complaint.feedback``, ``complaint.attachment``).

**Clocks** (``clocks``): every open complaint with the deadline it is running against (acknowledge
while received, decide until decided), ``overdue`` past it, ``due_soon`` within
``complaint_due_soon_hours``, so staff see cases before they are late.

The complaint's description and contact are personal information: the audit records hold their
SHA-256, not the text; staff listings mask the contact.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.audit import record_event
from synthguard.config import Settings
from synthguard.errors import ConfigError, ConflictError, NotFoundError, UsageError
from synthguard.governance.attachments import StoredFile, register
from synthguard.governance.case_models import (
    ComplaintAttachmentRow,
    ComplaintCategory,
    ComplaintEventRow,
    ComplaintOutcome,
    ComplaintRow,
    ComplaintState,
    aware_now,
    check_text,
)

__all__ = [
    "Clock",
    "ClockStatus",
    "Complaint",
    "ComplaintEvent",
    "ComplaintProcess",
    "FiledComplaint",
    "PublicStatus",
    "acknowledge",
    "add_attachment",
    "add_feedback",
    "clocks",
    "close",
    "decide",
    "file_complaint",
    "get_complaint",
    "list_complaints",
    "mask_contact",
    "public_status",
    "public_view",
    "start_review",
]

TRACKING_RE: Final = re.compile(r"SG-(\d{4})-(\d{6,})")
MAX_TARGET: Final = 2000
MAX_DESCRIPTION: Final = 10_000
MAX_CONTACT: Final = 256
MAX_NOTE: Final = 4000
MAX_LIMIT: Final = 500
_SECRET_BYTES: Final = 24

#: Allowed transitions: to -> the states it may come from.
_FROM: Final = {
    ComplaintState.ACKNOWLEDGED: frozenset({ComplaintState.RECEIVED}),
    ComplaintState.IN_REVIEW: frozenset({ComplaintState.RECEIVED, ComplaintState.ACKNOWLEDGED}),
    ComplaintState.DECIDED: frozenset({ComplaintState.IN_REVIEW}),
    ComplaintState.CLOSED: frozenset({ComplaintState.DECIDED}),
}
_OPEN: Final = (ComplaintState.RECEIVED, ComplaintState.ACKNOWLEDGED, ComplaintState.IN_REVIEW)


@dataclasses.dataclass(frozen=True)
class ComplaintProcess:
    """The published handling process and its deadlines (from the ``complaint_*`` settings)."""

    acknowledge_within: dt.timedelta
    decide_within: dt.timedelta
    due_soon: dt.timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ComplaintProcess:
        if settings.complaint_acknowledge_hours <= 0 or settings.complaint_decide_days <= 0:
            raise ConfigError("complaint_acknowledge_hours and complaint_decide_days must be positive")
        acknowledge = dt.timedelta(hours=settings.complaint_acknowledge_hours)
        decide = dt.timedelta(days=settings.complaint_decide_days)
        if acknowledge > decide:
            raise ConfigError("complaint_acknowledge_hours must not exceed complaint_decide_days")
        if settings.complaint_due_soon_hours < 0:
            raise ConfigError("complaint_due_soon_hours must be at least 0")
        return cls(acknowledge, decide, dt.timedelta(hours=settings.complaint_due_soon_hours))

    def document(self) -> dict[str, Any]:
        """The process as published to the public (Art. 12: announce process and time limits)."""
        hours = int(self.acknowledge_within.total_seconds() // 3600)
        days = self.decide_within.days
        return {
            "categories": [c.value for c in ComplaintCategory],
            "acknowledge_within_hours": hours,
            "decide_within_days": days,
            "steps": [
                {"state": ComplaintState.RECEIVED.value, "description": "The complaint is recorded and a "
                 "tracking number and secret are given to the complainant."},
                {"state": ComplaintState.ACKNOWLEDGED.value, "description": f"Staff acknowledge the "
                 f"complaint within {hours} hours of receipt."},
                {"state": ComplaintState.IN_REVIEW.value, "description": "Staff examine the content and "
                 "the evidence."},
                {"state": ComplaintState.DECIDED.value, "description": f"A decision and its reasons are "
                 f"given to the complainant within {days} days of receipt."},
                {"state": ComplaintState.CLOSED.value, "description": "The case is closed; its record is "
                 "kept."},
            ],
        }  # fmt: skip


class ClockStatus(enum.StrEnum):
    ON_TIME = "on_time"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


@dataclasses.dataclass(frozen=True, slots=True)
class ComplaintEvent:
    at: dt.datetime
    actor: str
    from_state: ComplaintState | None
    to_state: ComplaintState
    note: str
    public_note: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint as staff see it (``contact`` masked unless asked for)."""

    id: int
    tracking_number: str
    category: ComplaintCategory
    target: str
    description: str
    contact: str | None
    state: ComplaintState
    received_at: dt.datetime
    acknowledge_due: dt.datetime
    decide_due: dt.datetime
    acknowledged_at: dt.datetime | None
    review_started_at: dt.datetime | None
    decided_at: dt.datetime | None
    closed_at: dt.datetime | None
    assignee: str | None
    outcome: ComplaintOutcome | None
    feedback: str | None
    attachments: tuple[Mapping[str, Any], ...]
    events: tuple[ComplaintEvent, ...]


def public_view(complaint: Complaint) -> PublicStatus:
    """What the complainant sees of ``complaint``: no internal notes, no actors, no contact."""
    return PublicStatus(
        tracking_number=complaint.tracking_number,
        category=complaint.category,
        state=complaint.state,
        received_at=complaint.received_at,
        acknowledge_due=complaint.acknowledge_due,
        decide_due=complaint.decide_due,
        acknowledged_at=complaint.acknowledged_at,
        decided_at=complaint.decided_at,
        closed_at=complaint.closed_at,
        outcome=complaint.outcome,
        feedback=complaint.feedback,
        steps=tuple((e.at, e.to_state, e.public_note) for e in complaint.events),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class FiledComplaint:
    """What filing returns: the complaint and its secret, which is never shown again."""

    complaint: Complaint
    secret: str


@dataclasses.dataclass(frozen=True, slots=True)
class PublicStatus:
    """What the complainant sees: states, times, deadlines, feedback; no internal notes."""

    tracking_number: str
    category: ComplaintCategory
    state: ComplaintState
    received_at: dt.datetime
    acknowledge_due: dt.datetime
    decide_due: dt.datetime
    acknowledged_at: dt.datetime | None
    decided_at: dt.datetime | None
    closed_at: dt.datetime | None
    outcome: ComplaintOutcome | None
    feedback: str | None
    steps: tuple[tuple[dt.datetime, ComplaintState, str | None], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Clock:
    tracking_number: str
    state: ComplaintState
    #: ``acknowledge`` or ``decide``: the deadline running.
    deadline: str
    due: dt.datetime
    status: ClockStatus
    #: Seconds until due (negative: overdue by that much).
    remaining_seconds: float
    assignee: str | None


def mask_contact(contact: str | None) -> str | None:
    """Keep the first and last characters of each part, star the rest (``a***e@e*****e.o*g``)."""
    if contact is None:
        return None

    def mask(part: str) -> str:
        return part if len(part) <= 2 else part[0] + "*" * (len(part) - 2) + part[-1]

    return re.sub(r"[^@.\s+]+", lambda m: mask(m.group(0)), contact)


def _contact(contact: str | None) -> str | None:
    if contact is None:
        return None
    return check_text("contact", contact, max_length=MAX_CONTACT, line=True, allow_empty=True) or None


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_complaint(
    session: Session,
    process: ComplaintProcess | Settings,
    *,
    category: ComplaintCategory | str,
    target: str,
    description: str,
    contact: str | None = None,
    attachments: Sequence[tuple[StoredFile, str]] = (),
    max_attachments: int | None = None,
    now: dt.datetime | None = None,
) -> FiledComplaint:
    """Record a complaint from the public; returns it with its secret (shown only now)."""
    if isinstance(process, Settings):
        max_attachments = (
            process.complaint_attachment_max_count if max_attachments is None else max_attachments
        )
        process = ComplaintProcess.from_settings(process)
    now = aware_now(now)
    try:
        category = ComplaintCategory(category)
    except ValueError:
        raise UsageError(f"category must be one of {', '.join(ComplaintCategory)}") from None
    if max_attachments is not None and len(attachments) > max_attachments:
        raise UsageError(f"at most {max_attachments} attachments")
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    row = ComplaintRow(
        # a unique stand-in until the id is known (a per-year counter row would serialise filings)
        tracking_number=f"pending-{secrets.token_hex(8)}",
        secret_hash=_hash_secret(secret),
        category=category.value,
        target=check_text("target", target, max_length=MAX_TARGET),
        description=check_text("description", description, max_length=MAX_DESCRIPTION),
        contact=_contact(contact),
        state=ComplaintState.RECEIVED.value,
        received_at=now,
        acknowledge_due=now + process.acknowledge_within,
        decide_due=now + process.decide_within,
        acknowledged_at=None,
        review_started_at=None,
        decided_at=None,
        closed_at=None,
        assignee=None,
        outcome=None,
        feedback=None,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    row.tracking_number = f"SG-{now.year}-{row.id:06d}"
    seen: set[str] = set()
    for stored, filename in attachments:
        if stored.digest in seen:
            continue
        seen.add(stored.digest)
        register(session, stored, now=now)
        name = check_text("filename", filename or stored.digest, max_length=255, line=True)
        session.add(ComplaintAttachmentRow(complaint_id=row.id, digest=stored.digest, filename=name))
    session.add(
        ComplaintEventRow(
            complaint_id=row.id, at=now, actor="public", from_state=None, to_state=row.state,
            note="", public_note="received",
        )
    )  # fmt: skip
    session.flush()
    # the view before the audit record: the log's lock is then held only for its own write
    view = _view(session, row, reveal_contact=True)
    record_event(
        session,
        event="complaint.filed",
        actor="public",
        subject=f"complaint:{row.tracking_number}",
        data={
            "category": row.category, "target_sha256": _sha256(row.target),
            "description_sha256": _sha256(row.description), "attachments": sorted(seen),
            "acknowledge_due": row.acknowledge_due.isoformat(), "decide_due": row.decide_due.isoformat(),
        },
    )  # fmt: skip
    return FiledComplaint(view, secret)


def _view(session: Session, row: ComplaintRow, *, reveal_contact: bool = False) -> Complaint:
    attachments = session.execute(
        sa.select(ComplaintAttachmentRow.digest, ComplaintAttachmentRow.filename).where(
            ComplaintAttachmentRow.complaint_id == row.id
        )
    ).all()
    events = session.scalars(
        sa.select(ComplaintEventRow)
        .where(ComplaintEventRow.complaint_id == row.id)
        .order_by(ComplaintEventRow.id)
    ).all()
    return Complaint(
        id=row.id,
        tracking_number=row.tracking_number,
        category=ComplaintCategory(row.category),
        target=row.target,
        description=row.description,
        contact=row.contact if reveal_contact else mask_contact(row.contact),
        state=ComplaintState(row.state),
        received_at=row.received_at,
        acknowledge_due=row.acknowledge_due,
        decide_due=row.decide_due,
        acknowledged_at=row.acknowledged_at,
        review_started_at=row.review_started_at,
        decided_at=row.decided_at,
        closed_at=row.closed_at,
        assignee=row.assignee,
        outcome=ComplaintOutcome(row.outcome) if row.outcome else None,
        feedback=row.feedback,
        attachments=tuple({"digest": d, "filename": f} for d, f in sorted(attachments)),
        events=tuple(
            ComplaintEvent(
                e.at, e.actor, ComplaintState(e.from_state) if e.from_state else None,
                ComplaintState(e.to_state), e.note, e.public_note,
            )
            for e in events
        ),
    )  # fmt: skip


def _row(session: Session, tracking_number: str, *, lock: bool = False) -> ComplaintRow:
    row = session.scalars(
        sa.select(ComplaintRow)
        .where(ComplaintRow.tracking_number == tracking_number)
        .with_for_update(nowait=False)
        if lock
        else sa.select(ComplaintRow).where(ComplaintRow.tracking_number == tracking_number)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no complaint {tracking_number[:40]}")
    return row


def get_complaint(session: Session, tracking_number: str, *, reveal_contact: bool = False) -> Complaint:
    """A complaint with its attachments and steps; the contact masked unless ``reveal_contact``."""
    return _view(session, _row(session, tracking_number), reveal_contact=reveal_contact)


def public_status(session: Session, tracking_number: str, secret: str) -> PublicStatus:
    """The case as its complainant sees it; ``NotFoundError`` for an unknown number or a wrong secret."""
    row = session.scalars(
        sa.select(ComplaintRow).where(ComplaintRow.tracking_number == tracking_number)
    ).one_or_none()
    expected = row.secret_hash if row is not None else "0" * 64
    if not hmac.compare_digest(expected, _hash_secret(secret)) or row is None:
        raise NotFoundError("no complaint with that tracking number and secret")
    return public_view(_view(session, row))


def list_complaints(
    session: Session,
    *,
    state: ComplaintState | str | None = None,
    open_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[Complaint]:
    """Complaints, oldest first (the handling order); contacts masked."""
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT}")
    query = sa.select(ComplaintRow).order_by(ComplaintRow.id)
    if state is not None:
        query = query.where(ComplaintRow.state == ComplaintState(state).value)
    if open_only:
        query = query.where(ComplaintRow.state.in_([s.value for s in _OPEN]))
    rows = session.scalars(query.limit(limit).offset(max(0, offset))).all()
    return [_view(session, row) for row in rows]


def _transition(
    session: Session,
    tracking_number: str,
    to: ComplaintState | None,
    *,
    actor: str,
    note: str,
    public_note: str | None,
    now: dt.datetime | None,
    data: Mapping[str, Any] | None = None,
    apply: Any = None,
) -> Complaint:
    now = aware_now(now)
    actor = check_text("actor", actor, max_length=128, line=True)
    note = check_text("note", note, max_length=MAX_NOTE, allow_empty=True)
    if public_note is not None:
        public_note = check_text("public_note", public_note, max_length=MAX_NOTE, allow_empty=True) or None
    row = _row(session, tracking_number, lock=True)
    current = ComplaintState(row.state)
    if to is not None and current not in _FROM[to]:
        raise ConflictError(
            f"complaint {row.tracking_number} is {current.value}: it cannot become {to.value}"
        )
    if to is None and current is ComplaintState.CLOSED:
        raise ConflictError(f"complaint {row.tracking_number} is closed")
    target = to or current
    if apply is not None:
        apply(row, now)
    if to is not None:
        row.state = to.value
    row.updated_at = now
    session.add(
        ComplaintEventRow(
            complaint_id=row.id, at=now, actor=actor, from_state=current.value, to_state=target.value,
            note=note, public_note=public_note,
        )
    )  # fmt: skip
    session.flush()
    record_event(
        session,
        event=f"complaint.{target.value if to is not None else 'feedback'}",
        actor=actor,
        subject=f"complaint:{row.tracking_number}",
        data={"from": current.value, "to": target.value, "note_sha256": _sha256(note), **(data or {})},
    )
    return _view(session, row)


def acknowledge(
    session: Session,
    tracking_number: str,
    *,
    actor: str,
    note: str = "",
    public_note: str | None = "acknowledged",
    now: dt.datetime | None = None,
) -> Complaint:
    """received → acknowledged."""

    def apply(row: ComplaintRow, at: dt.datetime) -> None:
        row.acknowledged_at = at

    return _transition(
        session, tracking_number, ComplaintState.ACKNOWLEDGED, actor=actor, note=note,
        public_note=public_note, now=now, apply=apply,
    )  # fmt: skip


def start_review(
    session: Session,
    tracking_number: str,
    *,
    actor: str,
    assignee: str | None = None,
    note: str = "",
    public_note: str | None = "in review",
    now: dt.datetime | None = None,
) -> Complaint:
    """received or acknowledged → in review (acknowledging it too, if it was not)."""
    if assignee is not None:
        assignee = check_text("assignee", assignee, max_length=128, line=True)

    def apply(row: ComplaintRow, at: dt.datetime) -> None:
        row.acknowledged_at = row.acknowledged_at or at
        row.review_started_at = at
        row.assignee = assignee or actor

    return _transition(
        session, tracking_number, ComplaintState.IN_REVIEW, actor=actor, note=note,
        public_note=public_note, now=now, apply=apply, data={"assignee": assignee or actor},
    )  # fmt: skip


def decide(
    session: Session,
    tracking_number: str,
    *,
    outcome: ComplaintOutcome | str,
    feedback: str,
    actor: str,
    note: str = "",
    now: dt.datetime | None = None,
) -> Complaint:
    """in review → decided, with the outcome and the feedback the complainant is given."""
    try:
        outcome = ComplaintOutcome(outcome)
    except ValueError:
        raise UsageError(f"outcome must be one of {', '.join(ComplaintOutcome)}") from None
    feedback = check_text("feedback", feedback, max_length=MAX_NOTE)

    def apply(row: ComplaintRow, at: dt.datetime) -> None:
        row.decided_at = at
        row.outcome = outcome.value
        row.feedback = feedback

    return _transition(
        session, tracking_number, ComplaintState.DECIDED, actor=actor, note=note, public_note=feedback,
        now=now, apply=apply, data={"outcome": outcome.value, "feedback_sha256": _sha256(feedback)},
    )  # fmt: skip


def close(
    session: Session,
    tracking_number: str,
    *,
    actor: str,
    note: str = "",
    public_note: str | None = "closed",
    now: dt.datetime | None = None,
) -> Complaint:
    """decided → closed."""

    def apply(row: ComplaintRow, at: dt.datetime) -> None:
        row.closed_at = at

    return _transition(
        session, tracking_number, ComplaintState.CLOSED, actor=actor, note=note,
        public_note=public_note, now=now, apply=apply,
    )  # fmt: skip


def add_feedback(
    session: Session, tracking_number: str, *, feedback: str, actor: str, now: dt.datetime | None = None
) -> Complaint:
    """Tell the complainant something without changing the state (not once it is closed)."""
    feedback = check_text("feedback", feedback, max_length=MAX_NOTE)

    def apply(row: ComplaintRow, at: dt.datetime) -> None:
        row.feedback = feedback

    return _transition(
        session, tracking_number, None, actor=actor, note="", public_note=feedback, now=now, apply=apply,
        data={"feedback_sha256": _sha256(feedback)},
    )  # fmt: skip


def add_attachment(
    session: Session,
    tracking_number: str,
    secret: str,
    stored: StoredFile,
    filename: str,
    *,
    max_attachments: int,
    now: dt.datetime | None = None,
) -> PublicStatus:
    """The complainant adds a stored file to an open complaint (tracking number and secret as for
    ``public_status``); the same file twice is one attachment. ``ConflictError`` once decided."""
    now = aware_now(now)
    public_status(session, tracking_number, secret)  # the same NotFoundError for a wrong secret
    row = _row(session, tracking_number, lock=True)
    if ComplaintState(row.state) not in _OPEN:
        raise ConflictError(f"complaint {row.tracking_number} is {row.state}: no more attachments")
    if session.get(ComplaintAttachmentRow, (row.id, stored.digest)) is None:
        count = session.scalar(
            sa.select(sa.func.count())
            .select_from(ComplaintAttachmentRow)
            .where(ComplaintAttachmentRow.complaint_id == row.id)
        )
        if (count or 0) >= max_attachments:
            raise UsageError(f"at most {max_attachments} attachments")
        register(session, stored, now=now)
        name = check_text("filename", filename or stored.digest, max_length=255, line=True)
        session.add(ComplaintAttachmentRow(complaint_id=row.id, digest=stored.digest, filename=name))
        session.add(
            ComplaintEventRow(
                complaint_id=row.id, at=now, actor="public", from_state=row.state, to_state=row.state,
                note=f"attachment {stored.digest} ({stored.media_type}, {stored.size} bytes)",
                public_note="attachment received",
            )
        )  # fmt: skip
        row.updated_at = now
        session.flush()
        record_event(
            session,
            event="complaint.attachment",
            actor="public",
            subject=f"complaint:{row.tracking_number}",
            data={"digest": stored.digest, "media_type": stored.media_type, "size": stored.size},
        )
    return public_status(session, tracking_number, secret)


def clocks(
    session: Session,
    process: ComplaintProcess | Settings,
    *,
    now: dt.datetime | None = None,
    limit: int = 500,
) -> list[Clock]:
    """Open complaints with their running deadline, soonest due first."""
    if isinstance(process, Settings):
        process = ComplaintProcess.from_settings(process)
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT}")
    now = aware_now(now)
    due = sa.case(
        (ComplaintRow.state == ComplaintState.RECEIVED.value, ComplaintRow.acknowledge_due),
        else_=ComplaintRow.decide_due,
    )
    rows = session.execute(
        sa.select(ComplaintRow.tracking_number, ComplaintRow.state, ComplaintRow.acknowledge_due,
                  ComplaintRow.decide_due, ComplaintRow.assignee)
        .where(ComplaintRow.state.in_([s.value for s in _OPEN]))
        .order_by(due, ComplaintRow.id)
        .limit(limit)
    ).all()  # fmt: skip
    found = []
    for number, state, acknowledge_due, decide_due, assignee in rows:
        received = state == ComplaintState.RECEIVED.value
        when = acknowledge_due if received else decide_due
        remaining = (when - now).total_seconds()
        status = (
            ClockStatus.OVERDUE
            if remaining < 0
            else ClockStatus.DUE_SOON
            if remaining <= process.due_soon.total_seconds()
            else ClockStatus.ON_TIME
        )
        found.append(
            Clock(number, ComplaintState(state), "acknowledge" if received else "decide", when, status,
                  remaining, assignee)
        )  # fmt: skip
    return found
