"""``/api/complaints``: the public complaint channel and its staff side (Art. 12; ``governance.complaints``).

Public (no account, rate limited per client address by ``PublicLimiter``):

- ``GET /process``: the published handling process, categories and deadlines;
- ``POST /api/complaints``: file a complaint; the response (sent only after the commit) holds the
  tracking number and the secret, which is never shown again;
- ``POST /status``: the case as its complainant sees it (tracking number and secret in the body, so
  the secret stays out of URLs and access logs);
- ``POST /{tracking_number}/attachments``: add a file (multipart, secret in ``X-Complaint-Secret``);
  its type is found in its bytes, not taken from the client.

Staff: reviewers and compliance officers move a complaint through its states and give feedback;
auditors read. ``GET /clocks`` lists open complaints by the deadline they run against.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, File, Header, Path, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from synthguard.accounts.roles import Role
from synthguard.api.deps import (
    AppSettings,
    Principal,
    PublicLimiter,
    ReadSession,
    WriteSession,
    require_roles,
)
from synthguard.errors import NotFoundError
from synthguard.governance import complaints
from synthguard.governance.attachments import AttachmentStore
from synthguard.governance.case_models import (
    AttachmentRow,
    ComplaintCategory,
    ComplaintOutcome,
    ComplaintState,
)
from synthguard.media import Container

__all__ = ["router"]

router = APIRouter(prefix="/api/complaints", tags=["complaints"])

Staff = Annotated[Principal, Depends(require_roles(Role.REVIEWER, Role.COMPLIANCE))]
Reader = Annotated[Principal, Depends(require_roles(Role.REVIEWER, Role.COMPLIANCE, Role.AUDITOR))]
Public: Final = [Depends(PublicLimiter)]

TRACKING_PATTERN: Final = r"^SG-[0-9]{4}-[0-9]{6,12}$"
Tracking = Annotated[str, Path(pattern=TRACKING_PATTERN)]
Secret = Annotated[str, Field(min_length=1, max_length=100)]
Note = Annotated[str, Field(max_length=complaints.MAX_NOTE)]
Feedback = Annotated[str, Field(min_length=1, max_length=complaints.MAX_NOTE)]
Limit = Annotated[int, Query(ge=1, le=complaints.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=10**9)]

#: Content types of downloads, by the format found in the bytes.
_MEDIA_TYPES: Final = {
    Container.JPEG.value: "image/jpeg",
    Container.PNG.value: "image/png",
    Container.WEBP.value: "image/webp",
    Container.GIF.value: "image/gif",
    Container.PDF.value: "application/pdf",
    Container.MP4.value: "video/mp4",
    Container.MP3.value: "audio/mpeg",
    Container.WAV.value: "audio/wav",
}


class ComplaintIn(BaseModel):
    """A complaint from the public."""

    model_config = ConfigDict(extra="forbid")

    category: ComplaintCategory
    #: What it is about: a URL, a ProduceID, where the content was seen.
    target: Annotated[str, Field(min_length=1, max_length=complaints.MAX_TARGET)]
    description: Annotated[str, Field(min_length=1, max_length=complaints.MAX_DESCRIPTION)]
    #: How to reach the complainant for feedback (optional).
    contact: Annotated[str, Field(max_length=complaints.MAX_CONTACT)] | None = None


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_number: Annotated[str, Field(pattern=TRACKING_PATTERN)]
    secret: Secret


class StepOut(BaseModel):
    at: dt.datetime
    state: ComplaintState
    message: str | None


class StatusOut(BaseModel):
    """What the complainant sees."""

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
    steps: list[StepOut]


class FiledOut(StatusOut):
    """The filed complaint; keep ``secret``: it is shown only now and is needed to follow the case."""

    secret: str


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: dt.datetime
    actor: str
    from_state: ComplaintState | None
    to_state: ComplaintState
    note: str
    public_note: str | None


class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    digest: str
    filename: str


class ComplaintOut(BaseModel):
    """A complaint as staff see it (contact masked)."""

    model_config = ConfigDict(from_attributes=True)

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
    attachments: list[AttachmentOut]
    events: list[EventOut]


class ClockOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tracking_number: str
    state: ComplaintState
    deadline: str
    due: dt.datetime
    status: complaints.ClockStatus
    remaining_seconds: float
    assignee: str | None


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note = ""
    #: Shown to the complainant (default: the step's name).
    public_note: Note | None = None


class ReviewIn(NoteIn):
    assignee: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^\S+$")] | None = None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: ComplaintOutcome
    #: The decision and its reasons, as the complainant is told.
    feedback: Feedback
    note: Note = ""


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feedback: Feedback


def _status(value: complaints.PublicStatus) -> StatusOut:
    return StatusOut(
        tracking_number=value.tracking_number, category=value.category, state=value.state,
        received_at=value.received_at, acknowledge_due=value.acknowledge_due, decide_due=value.decide_due,
        acknowledged_at=value.acknowledged_at, decided_at=value.decided_at, closed_at=value.closed_at,
        outcome=value.outcome, feedback=value.feedback,
        steps=[StepOut(at=at, state=state, message=message) for at, state, message in value.steps],
    )  # fmt: skip


def _complaint(value: complaints.Complaint) -> ComplaintOut:
    return ComplaintOut.model_validate(value)


@router.get("/process", dependencies=Public, summary="The published complaint process and deadlines")
def get_process(settings: AppSettings) -> dict[str, Any]:
    """Categories, steps, and the acknowledge and decide deadlines (Art. 12)."""
    return complaints.ComplaintProcess.from_settings(settings).document()


@router.post("", status_code=201, dependencies=Public, summary="File a complaint (no account needed)")
def file_complaint(body: ComplaintIn, session: WriteSession, settings: AppSettings) -> FiledOut:
    """Returns the tracking number and the secret, once; sent only after the complaint is committed."""
    filed = complaints.file_complaint(
        session, settings, category=body.category, target=body.target, description=body.description,
        contact=body.contact,
    )  # fmt: skip
    return FiledOut(**_status(complaints.public_view(filed.complaint)).model_dump(), secret=filed.secret)


@router.post("/status", dependencies=Public, summary="Follow a complaint with its tracking number and secret")
def get_status(body: StatusIn, session: ReadSession) -> StatusOut:
    """404 for an unknown number and for a wrong secret alike."""
    return _status(complaints.public_status(session, body.tracking_number, body.secret))


@router.post(
    "/{tracking_number}/attachments",
    status_code=201,
    dependencies=Public,
    summary="Add a file to a complaint",
)
def add_attachment(
    tracking_number: Tracking,
    file: Annotated[UploadFile, File(description="the file; its type is read from its bytes")],
    secret: Annotated[str, Header(alias="X-Complaint-Secret", min_length=1, max_length=100)],
    session: WriteSession,
    settings: AppSettings,
) -> StatusOut:
    """Size and type limits from ``complaint_attachment_*``; the same file twice is stored once."""
    complaints.public_status(session, tracking_number, secret)  # check before storing anything
    stored = AttachmentStore.from_settings(settings).put(file.file)
    status = complaints.add_attachment(
        session, tracking_number, secret, stored, (file.filename or "")[:255],
        max_attachments=settings.complaint_attachment_max_count,
    )  # fmt: skip
    return _status(status)


@router.get("", summary="List complaints")
def list_complaints(
    session: ReadSession,
    _reader: Reader,
    state: ComplaintState | None = None,
    open_only: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ComplaintOut]:
    """Oldest first; ``open_only``: received, acknowledged or in review."""
    found = complaints.list_complaints(session, state=state, open_only=open_only, limit=limit, offset=offset)
    return [_complaint(c) for c in found]


@router.get("/clocks", summary="Open complaints by deadline: due soon and overdue")
def get_clocks(
    session: ReadSession, _reader: Reader, settings: AppSettings, limit: Limit = 500
) -> list[ClockOut]:
    """Soonest due first, each with ``on_time``, ``due_soon`` or ``overdue``."""
    return [ClockOut.model_validate(c) for c in complaints.clocks(session, settings, limit=limit)]


@router.get("/{tracking_number}", summary="One complaint with its steps")
def get_complaint(tracking_number: Tracking, session: ReadSession, _reader: Reader) -> ComplaintOut:
    return _complaint(complaints.get_complaint(session, tracking_number))


@router.get(
    "/{tracking_number}/attachments/{digest}",
    summary="Download an attachment",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_attachment(
    tracking_number: Tracking,
    digest: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    session: ReadSession,
    _reader: Reader,
    settings: AppSettings,
) -> FileResponse:
    """The stored bytes, with the content type found in them (sent as an attachment, never inline)."""
    complaint = complaints.get_complaint(session, tracking_number)
    named = {a["digest"]: a["filename"] for a in complaint.attachments}
    row = session.get(AttachmentRow, digest)
    if digest not in named or row is None:
        raise NotFoundError(f"complaint {tracking_number} has no attachment {digest}")
    path = AttachmentStore.from_settings(settings).path(digest)
    if not path.is_file():
        raise NotFoundError(f"attachment {digest} is missing from storage")
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES.get(row.media_type, "application/octet-stream"),
        filename=f"{digest}",
        content_disposition_type="attachment",
    )


@router.post("/{tracking_number}/acknowledge", summary="Acknowledge a complaint")
def acknowledge(tracking_number: Tracking, body: NoteIn, session: WriteSession, staff: Staff) -> ComplaintOut:
    """received → acknowledged (409 from any other state)."""
    done = complaints.acknowledge(
        session, tracking_number, actor=staff.actor, note=body.note,
        public_note=body.public_note if body.public_note is not None else "acknowledged",
    )  # fmt: skip
    return _complaint(done)


@router.post("/{tracking_number}/review", summary="Start reviewing a complaint")
def start_review(
    tracking_number: Tracking, body: ReviewIn, session: WriteSession, staff: Staff
) -> ComplaintOut:
    """received or acknowledged → in review; ``assignee`` defaults to the caller."""
    done = complaints.start_review(
        session, tracking_number, actor=staff.actor, assignee=body.assignee, note=body.note,
        public_note=body.public_note if body.public_note is not None else "in review",
    )  # fmt: skip
    return _complaint(done)


@router.post("/{tracking_number}/decision", summary="Decide a complaint, with feedback")
def decide(tracking_number: Tracking, body: DecisionIn, session: WriteSession, staff: Staff) -> ComplaintOut:
    """in review → decided; ``feedback`` is what the complainant is told."""
    done = complaints.decide(
        session,
        tracking_number,
        outcome=body.outcome,
        feedback=body.feedback,
        note=body.note,
        actor=staff.actor,
    )
    return _complaint(done)


@router.post("/{tracking_number}/close", summary="Close a decided complaint")
def close(tracking_number: Tracking, body: NoteIn, session: WriteSession, staff: Staff) -> ComplaintOut:
    done = complaints.close(
        session, tracking_number, actor=staff.actor, note=body.note,
        public_note=body.public_note if body.public_note is not None else "closed",
    )  # fmt: skip
    return _complaint(done)


@router.post("/{tracking_number}/feedback", summary="Tell the complainant something")
def add_feedback(
    tracking_number: Tracking, body: FeedbackIn, session: WriteSession, staff: Staff
) -> ComplaintOut:
    """A message on the public status page, without a state change (409 once closed)."""
    return _complaint(
        complaints.add_feedback(session, tracking_number, feedback=body.feedback, actor=staff.actor)
    )
