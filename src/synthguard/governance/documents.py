"""Agreements, rules, policies, acceptances, security assessments and the filing number.

- Art. 7, 8: the provider publishes management rules, platform conventions and its service agreement;
  Measures Art. 9: content goes out without an explicit label only to a user who signed an agreement
  for it (``DocumentKind.UNLABELED_OUTPUT_AGREEMENT``). Documents are versioned and never edited once
  published (a change is a new version); each stores the SHA-256 of its text, so an acceptance
  proves which words the user accepted.
- Art. 15, 20: security assessments of functions that edit biometrics, generate sensitive content, or
  have public-opinion attributes, with their evidence by digest.
- Art. 19: the algorithm filing number and its public link come from settings (``filing_info``).

Every change calls ``record_event`` once, in the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.audit import record_event
from synthguard.config import Settings
from synthguard.errors import ConflictError, NotFoundError, UsageError
from synthguard.governance.consent import Evidence
from synthguard.governance.identity import aware_now, check_user_ref, insert_unique
from synthguard.governance.models import AcceptanceRow, AssessmentEvidenceRow, AssessmentRow, DocumentRow

__all__ = [
    "AcceptanceView",
    "AssessmentConclusion",
    "AssessmentScope",
    "AssessmentView",
    "DocumentKind",
    "DocumentView",
    "EvidenceItem",
    "FilingInfo",
    "accept_document",
    "acceptances_of",
    "accepted_version",
    "current_document",
    "filing_info",
    "get_assessment",
    "get_document",
    "has_accepted",
    "list_assessments",
    "list_documents",
    "publish_document",
    "record_assessment",
]

_VERSION_RE: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z.\-_]{0,31}")
#: Largest document text, characters.
MAX_BODY_LENGTH: Final = 1_000_000


class DocumentKind(enum.StrEnum):
    """The published documents (stable values, stored)."""

    USER_AGREEMENT = "user_agreement"
    PLATFORM_RULES = "platform_rules"
    #: Measures Art. 9: the agreement under which content may go out without an explicit label.
    UNLABELED_OUTPUT_AGREEMENT = "unlabeled_output_agreement"
    PRIVACY_POLICY = "privacy_policy"


class AssessmentScope(enum.StrEnum):
    """What a security assessment covered (Art. 15, 20)."""

    BIOMETRIC_EDITING = "biometric_editing"
    SENSITIVE_CONTENT = "sensitive_content"
    PUBLIC_OPINION = "public_opinion"
    NEW_FUNCTION = "new_function"
    OTHER = "other"


class AssessmentConclusion(enum.StrEnum):
    PASSED = "passed"
    PASSED_WITH_CONDITIONS = "passed_with_conditions"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DocumentView:
    id: int
    kind: str
    version: str
    title: str
    body: str
    sha256: str
    effective_from: dt.datetime
    published_by: str
    published_at: dt.datetime

    def to_dict(self, *, with_body: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "version": self.version,
            "title": self.title,
            "sha256": self.sha256,
            "effective_from": self.effective_from,
            "published_by": self.published_by,
            "published_at": self.published_at,
        }
        if with_body:
            data["body"] = self.body
        return data


def _document_view(row: DocumentRow) -> DocumentView:
    return DocumentView(
        row.id,
        row.kind,
        row.version,
        row.title,
        row.body,
        row.sha256,
        row.effective_from,
        row.published_by,
        row.published_at,
    )


def publish_document(
    session: Session,
    *,
    kind: DocumentKind,
    version: str,
    title: str,
    body: str,
    actor: str,
    effective_from: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> DocumentView:
    """Publish a new version; ``ConflictError`` if that kind and version exist (versions are immutable)."""
    now = aware_now(now)
    kind = DocumentKind(kind)
    if not _VERSION_RE.fullmatch(version):
        raise UsageError("version must be 1-32 letters, digits or .-_ (for example 2026.1)")
    title = title.strip()
    if not title or len(title) > 200:
        raise UsageError("a title of 1-200 characters is required")
    if not body.strip() or len(body) > MAX_BODY_LENGTH:
        raise UsageError(f"a document text of 1-{MAX_BODY_LENGTH} characters is required")
    exists = session.scalars(
        sa.select(DocumentRow.id).where(DocumentRow.kind == kind.value, DocumentRow.version == version)
    ).first()
    if exists is not None:
        raise ConflictError(f"{kind.value} version {version} is already published; publish a new version")
    row = DocumentRow(
        kind=kind.value,
        version=version,
        title=title,
        body=body,
        sha256=hashlib.sha256(body.encode("utf-8")).hexdigest(),
        effective_from=aware_now(effective_from) if effective_from is not None else now,
        published_by=actor,
        published_at=now,
    )
    insert_unique(session, row, f"{kind.value} version {version} is already published")
    record_event(
        session,
        event="document.published",
        actor=actor,
        subject=f"document:{kind.value}/{version}",
        data={"title": title, "sha256": row.sha256, "effective_from": row.effective_from.isoformat()},
    )
    return _document_view(row)


def get_document(session: Session, kind: DocumentKind, version: str) -> DocumentView:
    row = session.scalars(
        sa.select(DocumentRow).where(
            DocumentRow.kind == DocumentKind(kind).value, DocumentRow.version == version
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no {DocumentKind(kind).value} version {version!r}")
    return _document_view(row)


def list_documents(session: Session, kind: DocumentKind | None = None) -> list[DocumentView]:
    """Every published version, by kind then publication order."""
    query = sa.select(DocumentRow).order_by(DocumentRow.kind, DocumentRow.published_at, DocumentRow.id)
    if kind is not None:
        query = query.where(DocumentRow.kind == DocumentKind(kind).value)
    return [_document_view(row) for row in session.scalars(query)]


def current_document(session: Session, kind: DocumentKind, *, at: dt.datetime | None = None) -> DocumentView:
    """The version in effect at ``at`` (the latest effective one); ``NotFoundError`` when none is."""
    at = aware_now(at)
    row = session.scalars(
        sa.select(DocumentRow)
        .where(DocumentRow.kind == DocumentKind(kind).value, DocumentRow.effective_from <= at)
        .order_by(DocumentRow.effective_from.desc(), DocumentRow.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFoundError(f"no {DocumentKind(kind).value} is in effect")
    return _document_view(row)


@dataclass(frozen=True, slots=True)
class AcceptanceView:
    user_ref: str
    kind: str
    version: str
    sha256: str
    accepted_at: dt.datetime
    recorded_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_ref": self.user_ref,
            "kind": self.kind,
            "version": self.version,
            "sha256": self.sha256,
            "accepted_at": self.accepted_at,
            "recorded_by": self.recorded_by,
        }


def accept_document(
    session: Session,
    *,
    user_ref: str,
    kind: DocumentKind,
    version: str,
    actor: str,
    now: dt.datetime | None = None,
) -> AcceptanceView:
    """Record that ``user_ref`` accepted that version; ``ConflictError`` if already recorded."""
    now = aware_now(now)
    check_user_ref(user_ref)
    document = get_document(session, kind, version)
    exists = session.scalars(
        sa.select(AcceptanceRow.id).where(
            AcceptanceRow.user_ref == user_ref, AcceptanceRow.document_id == document.id
        )
    ).first()
    if exists is not None:
        raise ConflictError(f"user {user_ref!r} already accepted {document.kind} version {version}")
    insert_unique(
        session,
        AcceptanceRow(user_ref=user_ref, document_id=document.id, accepted_at=now, recorded_by=actor),
        f"user {user_ref!r} already accepted {document.kind} version {version}",
    )
    record_event(
        session,
        event="document.accepted",
        actor=actor,
        subject=f"document:{document.kind}/{version}",
        data={"user_ref": user_ref, "sha256": document.sha256},
    )
    return AcceptanceView(user_ref, document.kind, version, document.sha256, now, actor)


def acceptances_of(session: Session, user_ref: str) -> list[AcceptanceView]:
    """Every acceptance of one user, oldest first."""
    rows = session.execute(
        sa.select(AcceptanceRow, DocumentRow)
        .join(DocumentRow, AcceptanceRow.document_id == DocumentRow.id)
        .where(AcceptanceRow.user_ref == check_user_ref(user_ref))
        .order_by(AcceptanceRow.accepted_at, AcceptanceRow.id)
    ).all()
    return [
        AcceptanceView(acc.user_ref, doc.kind, doc.version, doc.sha256, acc.accepted_at, acc.recorded_by)
        for acc, doc in rows
    ]


def has_accepted(session: Session, user_ref: str, kind: DocumentKind, version: str) -> bool:
    """Whether ``user_ref`` accepted that exact version."""
    return (
        session.scalars(
            sa.select(AcceptanceRow.id)
            .join(DocumentRow, AcceptanceRow.document_id == DocumentRow.id)
            .where(
                AcceptanceRow.user_ref == user_ref,
                DocumentRow.kind == DocumentKind(kind).value,
                DocumentRow.version == version,
            )
        ).first()
        is not None
    )


def accepted_version(session: Session, user_ref: str, kind: DocumentKind) -> str | None:
    """The version of ``kind`` the user accepted last (``None`` if never)."""
    return session.scalars(
        sa.select(DocumentRow.version)
        .join(AcceptanceRow, AcceptanceRow.document_id == DocumentRow.id)
        .where(
            AcceptanceRow.user_ref == check_user_ref(user_ref), DocumentRow.kind == DocumentKind(kind).value
        )
        .order_by(AcceptanceRow.accepted_at.desc(), AcceptanceRow.id.desc())
        .limit(1)
    ).first()


# -- assessments ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """A named piece of evidence by digest."""

    name: str
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.evidence.sha256,
            "size": self.evidence.size,
            "media_type": self.evidence.media_type,
        }


@dataclass(frozen=True, slots=True)
class AssessmentView:
    id: int
    title: str
    scope: str
    function_name: str
    assessor: str
    conclusion: str
    summary: str
    assessed_at: dt.datetime
    recorded_by: str
    evidence: tuple[EvidenceItem, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "scope": self.scope,
            "function_name": self.function_name,
            "assessor": self.assessor,
            "conclusion": self.conclusion,
            "summary": self.summary,
            "assessed_at": self.assessed_at,
            "recorded_by": self.recorded_by,
            "evidence": [item.to_dict() for item in self.evidence],
        }


def _assessment_view(session: Session, row: AssessmentRow) -> AssessmentView:
    items = session.scalars(
        sa.select(AssessmentEvidenceRow)
        .where(AssessmentEvidenceRow.assessment_id == row.id)
        .order_by(AssessmentEvidenceRow.id)
    ).all()
    return AssessmentView(
        row.id,
        row.title,
        row.scope,
        row.function_name,
        row.assessor,
        row.conclusion,
        row.summary,
        row.assessed_at,
        row.recorded_by,
        tuple(EvidenceItem(i.name, Evidence(i.sha256, i.size, i.media_type)) for i in items),
    )


def _text(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value or len(value) > limit:
        raise UsageError(f"{what} of 1-{limit} characters is required")
    return value


def record_assessment(
    session: Session,
    *,
    title: str,
    scope: AssessmentScope,
    function_name: str,
    assessor: str,
    conclusion: AssessmentConclusion,
    summary: str,
    assessed_at: dt.datetime,
    evidence: Sequence[EvidenceItem],
    actor: str,
    now: dt.datetime | None = None,
) -> AssessmentView:
    """Record a security assessment with its evidence (digests); ``UsageError`` for bad fields."""
    now = aware_now(now)
    assessed = aware_now(assessed_at)
    if assessed > now + dt.timedelta(minutes=5):
        raise UsageError("an assessment cannot be dated in the future")
    if len(evidence) > 100:
        raise UsageError("at most 100 pieces of evidence per assessment")
    items = [
        EvidenceItem(_text(item.name, "an evidence name", 200), item.evidence.checked()) for item in evidence
    ]
    if len(summary) > 20_000:
        raise UsageError("the summary is longer than 20000 characters")
    row = AssessmentRow(
        title=_text(title, "a title", 200),
        scope=AssessmentScope(scope).value,
        function_name=_text(function_name, "a function name", 200),
        assessor=_text(assessor, "an assessor", 200),
        conclusion=AssessmentConclusion(conclusion).value,
        summary=summary.strip(),
        assessed_at=assessed,
        recorded_by=actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    for item in items:
        session.add(
            AssessmentEvidenceRow(
                assessment_id=row.id,
                name=item.name,
                sha256=item.evidence.sha256,
                size=item.evidence.size,
                media_type=item.evidence.media_type,
            )
        )
    session.flush()
    record_event(
        session,
        event="assessment.recorded",
        actor=actor,
        subject=f"assessment:{row.id}",
        data={
            "title": row.title,
            "scope": row.scope,
            "function": row.function_name,
            "conclusion": row.conclusion,
            "assessed_at": assessed.isoformat(),
            "evidence": [item.evidence.sha256 for item in items],
        },
    )
    return _assessment_view(session, row)


def get_assessment(session: Session, assessment_id: int) -> AssessmentView:
    row = session.get(AssessmentRow, assessment_id)
    if row is None:
        raise NotFoundError(f"no assessment {assessment_id}")
    return _assessment_view(session, row)


def list_assessments(session: Session, *, limit: int = 100, offset: int = 0) -> list[AssessmentView]:
    """Assessments, newest first."""
    rows = session.scalars(
        sa.select(AssessmentRow)
        .order_by(AssessmentRow.assessed_at.desc(), AssessmentRow.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [_assessment_view(session, row) for row in rows]


# -- filing ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilingInfo:
    """The algorithm filing number (Art. 19) and the link to its public information."""

    number: str
    link: str

    @property
    def configured(self) -> bool:
        return bool(self.number)

    def to_dict(self) -> dict[str, Any]:
        return {"filing_number": self.number, "filing_link": self.link, "configured": self.configured}


def filing_info(settings: Settings) -> FilingInfo:
    """The filing number and link from settings (empty strings when not configured yet)."""
    return FilingInfo(settings.filing_number.strip(), settings.filing_link.strip())
