"""``/api/documents``: agreements and rules (Art. 7, 8; Measures Art. 9), acceptances, security
assessments (Art. 15, 20), and the public filing number (Art. 19); ``governance.documents``.

Public (no account, rate limited): ``GET /filing``, ``GET /current/{kind}`` and
``GET /versions/{kind}/{version}``, because the rules and agreements are published. Compliance
officers publish versions, record acceptances and assessments; reviewers and auditors read.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query
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
from synthguard.governance import documents
from synthguard.governance.consent import Evidence
from synthguard.governance.documents import AssessmentConclusion, AssessmentScope, DocumentKind, EvidenceItem
from synthguard.governance.identity import USER_REF_PATTERN

__all__ = ["router"]

router = APIRouter(prefix="/api/documents", tags=["documents"])

Writer = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE))]
Reader = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE, Role.REVIEWER, Role.AUDITOR))]

REF: Final = f"^{USER_REF_PATTERN}$"
VERSION: Final = r"^[0-9A-Za-z][0-9A-Za-z.\-_]{0,31}$"
Version = Annotated[str, Field(pattern=VERSION)]
VersionPath = Annotated[str, Path(pattern=VERSION)]
Id = Annotated[int, Path(ge=1, le=2**62)]


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DocumentKind
    version: Version
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(min_length=1, max_length=documents.MAX_BODY_LENGTH)]
    effective_from: dt.datetime | None = None


class DocumentOut(BaseModel):
    id: int
    kind: str
    version: str
    title: str
    sha256: str
    effective_from: dt.datetime
    published_by: str
    published_at: dt.datetime
    body: str | None = None


class AcceptanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ref: Annotated[str, Field(pattern=REF)]
    kind: DocumentKind
    version: Version


class AcceptanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_ref: str
    kind: str
    version: str
    sha256: str
    accepted_at: dt.datetime
    recorded_by: str


class EvidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
    size: Annotated[int, Field(ge=0, le=2**53)]
    media_type: Annotated[
        str, Field(min_length=3, max_length=129, pattern=r"^[A-Za-z0-9][^/\s]{0,63}/[^/\s]{1,64}$")
    ]


class AssessmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=200)]
    scope: AssessmentScope
    function_name: Annotated[str, Field(min_length=1, max_length=200)]
    assessor: Annotated[str, Field(min_length=1, max_length=200)]
    conclusion: AssessmentConclusion
    summary: Annotated[str, Field(max_length=20_000)] = ""
    assessed_at: dt.datetime
    evidence: Annotated[list[EvidenceIn], Field(max_length=100)] = Field(default_factory=list)


class EvidenceOut(BaseModel):
    name: str
    sha256: str
    size: int
    media_type: str


class AssessmentOut(BaseModel):
    id: int
    title: str
    scope: str
    function_name: str
    assessor: str
    conclusion: str
    summary: str
    assessed_at: dt.datetime
    recorded_by: str
    evidence: list[EvidenceOut]


class FilingOut(BaseModel):
    """The algorithm filing number (empty until configured) and the link to its public information."""

    filing_number: str
    filing_link: str
    configured: bool


def _document(view: documents.DocumentView, *, with_body: bool = True) -> DocumentOut:
    return DocumentOut.model_validate(view.to_dict(with_body=with_body))


def _assessment(view: documents.AssessmentView) -> AssessmentOut:
    return AssessmentOut.model_validate(view.to_dict())


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@router.get(
    "/filing",
    summary="The algorithm filing number and its public link (public)",
    dependencies=[Depends(PublicLimiter)],
)
def filing(settings: AppSettings) -> FilingOut:
    return FilingOut.model_validate(documents.filing_info(settings).to_dict())


@router.get(
    "/current/{kind}", summary="The version in effect now (public)", dependencies=[Depends(PublicLimiter)]
)
def current(kind: DocumentKind, session: ReadSession) -> DocumentOut:
    """404 when no version of that kind is in effect yet."""
    return _document(documents.current_document(session, kind))


@router.get(
    "/versions/{kind}/{version}",
    summary="One published version (public)",
    dependencies=[Depends(PublicLimiter)],
)
def get_version(kind: DocumentKind, version: VersionPath, session: ReadSession) -> DocumentOut:
    return _document(documents.get_document(session, kind, version))


@router.post("", status_code=201, summary="Publish a new version of a document")
def publish(body: DocumentIn, session: WriteSession, writer: Writer) -> DocumentOut:
    """409 when that kind and version exist (versions are immutable: publish a new one)."""
    view = documents.publish_document(
        session, kind=body.kind, version=body.version, title=body.title, body=body.body, actor=writer.actor,
        effective_from=_aware(body.effective_from) if body.effective_from else None,
    )  # fmt: skip
    return _document(view)


@router.get("", summary="List published versions (without their text)")
def list_documents(
    session: ReadSession, _reader: Reader, kind: DocumentKind | None = None
) -> list[DocumentOut]:
    return [_document(v, with_body=False) for v in documents.list_documents(session, kind)]


@router.post("/acceptances", status_code=201, summary="Record that a user accepted a version")
def accept(body: AcceptanceIn, session: WriteSession, writer: Writer) -> AcceptanceOut:
    """404 for an unknown version; 409 when already recorded."""
    view = documents.accept_document(
        session, user_ref=body.user_ref, kind=body.kind, version=body.version, actor=writer.actor
    )
    return AcceptanceOut.model_validate(view)


@router.get("/acceptances/{user_ref}", summary="Every version a user accepted")
def acceptances(
    user_ref: Annotated[str, Path(pattern=REF)], session: ReadSession, _reader: Reader
) -> list[AcceptanceOut]:
    return [AcceptanceOut.model_validate(v) for v in documents.acceptances_of(session, user_ref)]


@router.post("/assessments", status_code=201, summary="Record a security assessment")
def record_assessment(body: AssessmentIn, session: WriteSession, writer: Writer) -> AssessmentOut:
    view = documents.record_assessment(
        session, title=body.title, scope=body.scope, function_name=body.function_name, assessor=body.assessor,
        conclusion=body.conclusion, summary=body.summary, assessed_at=_aware(body.assessed_at),
        evidence=[EvidenceItem(e.name, Evidence(e.sha256, e.size, e.media_type)) for e in body.evidence],
        actor=writer.actor,
    )  # fmt: skip
    return _assessment(view)


@router.get("/assessments", summary="List security assessments, newest first")
def list_assessments(
    session: ReadSession,
    _reader: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[AssessmentOut]:
    return [_assessment(v) for v in documents.list_assessments(session, limit=limit, offset=offset)]


@router.get("/assessments/{assessment_id}", summary="One security assessment")
def get_assessment(assessment_id: Id, session: ReadSession, _reader: Reader) -> AssessmentOut:
    return _assessment(documents.get_assessment(session, assessment_id))
