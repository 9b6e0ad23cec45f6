"""``/api/reports``: reports to the authorities (Art. 10, 11; ``governance.reports``).

Compliance officers open a report, add the records it is made of, and submit it (which freezes the
exported document and its SHA-256); compliance officers and auditors read and export it as JSON or
as a printable PDF.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from synthguard.accounts.roles import Role
from synthguard.api.deps import AppSettings, Principal, ReadSession, WriteSession, require_roles
from synthguard.governance import reports
from synthguard.governance.case_models import ReportItemKind, ReportState

__all__ = ["router"]

router = APIRouter(prefix="/api/reports", tags=["reports"])

Officer = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE))]
Reader = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE, Role.AUDITOR))]

NUMBER_PATTERN: Final = r"^RPT-[0-9]{4}-[0-9]{6,12}$"
Number = Annotated[str, Path(pattern=NUMBER_PATTERN)]
Line = Annotated[str, Field(min_length=1, max_length=500)]
Limit = Annotated[int, Query(ge=1, le=reports.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


class ItemIn(BaseModel):
    """A record: a measure, strike, rumor or review hit by its number; a complaint by tracking number."""

    model_config = ConfigDict(extra="forbid")

    kind: ReportItemKind
    ref: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authority: Line
    title: Line
    summary: Annotated[str, Field(min_length=1, max_length=reports.MAX_TEXT)]
    items: Annotated[list[ItemIn], Field(max_length=200)] = Field(default_factory=list)


class SubmitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The authority's receipt or case number, when it gives one.
    authority_ref: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class ItemOut(BaseModel):
    kind: ReportItemKind
    ref: str


class ReportOut(BaseModel):
    number: str
    authority: str
    title: str
    summary: str
    state: ReportState
    created_at: dt.datetime
    created_by: str
    submitted_at: dt.datetime | None
    submitted_by: str | None
    authority_ref: str | None
    #: SHA-256 of the canonical JSON export as submitted.
    submitted_digest: str | None
    items: list[ItemOut]


def _report(value: reports.Report) -> ReportOut:
    return ReportOut(
        number=value.number,
        authority=value.authority,
        title=value.title,
        summary=value.summary,
        state=value.state,
        created_at=value.created_at,
        created_by=value.created_by,
        submitted_at=value.submitted_at,
        submitted_by=value.submitted_by,
        authority_ref=value.authority_ref,
        submitted_digest=value.submitted_digest,
        items=[ItemOut(kind=k, ref=r) for k, r in value.items],
    )


@router.post("", status_code=201, summary="Open a report to an authority")
def create_report(body: ReportIn, session: WriteSession, officer: Officer) -> ReportOut:
    """404 when an item names no record."""
    report = reports.create_report(
        session,
        authority=body.authority,
        title=body.title,
        summary=body.summary,
        items=[(i.kind, i.ref) for i in body.items],
        actor=officer.actor,
    )
    return _report(report)


@router.get("", summary="List reports")
def list_reports(
    session: ReadSession, _reader: Reader, limit: Limit = 100, offset: Offset = 0
) -> list[ReportOut]:
    """Newest first."""
    return [_report(r) for r in reports.list_reports(session, limit=limit, offset=offset)]


@router.get("/{number}", summary="One report")
def get_report(number: Number, session: ReadSession, _reader: Reader) -> ReportOut:
    return _report(reports.get_report(session, number))


@router.post("/{number}/items", status_code=201, summary="Add a record to a draft report")
def add_item(number: Number, body: ItemIn, session: WriteSession, officer: Officer) -> ReportOut:
    """409 once submitted, or when the record is already there."""
    return _report(reports.add_item(session, number, body.kind, body.ref, actor=officer.actor))


@router.post("/{number}/submit", summary="Submit a report (freezes it)")
def submit(number: Number, body: SubmitIn, session: WriteSession, officer: Officer) -> ReportOut:
    """The export is kept as submitted, with its SHA-256; 409 when already submitted."""
    return _report(reports.submit(session, number, actor=officer.actor, authority_ref=body.authority_ref))


@router.get("/{number}/export.json", summary="The report as JSON")
def export_json(number: Number, session: ReadSession, _reader: Reader) -> dict[str, Any]:
    """The case: measures, strikes, complaints, rumors, review hits and a sorted timeline."""
    return reports.export(session, number)


@router.get(
    "/{number}/export.pdf",
    summary="The report as a printable PDF",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def export_pdf(number: Number, session: ReadSession, _reader: Reader, settings: AppSettings) -> Response:
    """A4, text extractable; Chinese text needs a CJK font (``report_cjk_font``)."""
    data = reports.render_pdf(reports.export(session, number), settings=settings)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
    )
