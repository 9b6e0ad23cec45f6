"""``/api/consent``: separate consent to biometric editing (Art. 14; ``governance.consent``).

Compliance officers record and revoke consents (with the evidence's digest); reviewers, compliance
officers and auditors read them. ``GET /check`` is what the gateway asks before every face, voice or
other biometric edit: it answers ``allowed`` and why, never an error for "no consent".
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from synthguard.accounts.roles import Role
from synthguard.api.deps import Principal, ReadSession, WriteSession, require_roles
from synthguard.governance import consent
from synthguard.governance.consent import Biometric, Evidence
from synthguard.governance.identity import MAX_REASON_LENGTH, USER_REF_PATTERN

__all__ = ["router"]

router = APIRouter(prefix="/api/consent", tags=["consent"])

Writer = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE))]
Reader = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE, Role.REVIEWER, Role.AUDITOR))]

REF: Final = f"^{USER_REF_PATTERN}$"
PURPOSE: Final = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
Id = Annotated[int, Path(ge=1, le=2**62)]


class EvidenceIn(BaseModel):
    """The evidence of consent by digest (the file itself is kept by the provider)."""

    model_config = ConfigDict(extra="forbid")

    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
    size: Annotated[int, Field(ge=0, le=2**53)]
    media_type: Annotated[
        str, Field(min_length=3, max_length=129, pattern=r"^[A-Za-z0-9][^/\s]{0,63}/[^/\s]{1,64}$")
    ]


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_ref: Annotated[str, Field(pattern=REF, description="the person whose biometric is edited")]
    biometric: Biometric
    purpose: Annotated[str, Field(pattern=PURPOSE, description="a purpose code, matched exactly")]
    purpose_detail: Annotated[str, Field(max_length=2000)] = ""
    requested_by_user_ref: Annotated[str, Field(pattern=REF)] | None = None
    evidence: EvidenceIn
    granted_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_LENGTH)]


class EvidenceOut(BaseModel):
    sha256: str
    size: int
    media_type: str


class ConsentOut(BaseModel):
    id: int
    subject_ref: str | None
    biometric: str
    purpose: str
    purpose_detail: str
    requested_by_user_ref: str | None
    evidence: EvidenceOut
    granted_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    recorded_by: str
    purged: bool


class DecisionOut(BaseModel):
    """``reason``: granted, no_consent, not_yet_valid, expired or revoked."""

    allowed: bool
    reason: str
    consent_id: int | None
    expires_at: dt.datetime | None


def _out(view: consent.ConsentView) -> ConsentOut:
    return ConsentOut.model_validate(view.to_dict())


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # A time without an offset in a request is read as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@router.post("/consents", status_code=201, summary="Record a consent to biometric editing")
def grant(body: ConsentIn, session: WriteSession, writer: Writer) -> ConsentOut:
    """400 for an expiry not after the grant."""
    view = consent.grant_consent(
        session, subject_ref=body.subject_ref, biometric=body.biometric, purpose=body.purpose,
        evidence=Evidence(body.evidence.sha256, body.evidence.size, body.evidence.media_type),
        actor=writer.actor, purpose_detail=body.purpose_detail,
        requested_by_user_ref=body.requested_by_user_ref,
        granted_at=_aware(body.granted_at), expires_at=_aware(body.expires_at),
    )  # fmt: skip
    return _out(view)


@router.get("/consents", summary="List consents, newest first")
def list_consents(
    session: ReadSession,
    _reader: Reader,
    subject_ref: Annotated[str | None, Query(pattern=REF)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[ConsentOut]:
    return [
        _out(v) for v in consent.list_consents(session, subject_ref=subject_ref, limit=limit, offset=offset)
    ]


@router.get("/consents/{consent_id}", summary="One consent")
def get_consent(consent_id: Id, session: ReadSession, _reader: Reader) -> ConsentOut:
    return _out(consent.get_consent(session, consent_id))


@router.post("/consents/{consent_id}/revoke", summary="Revoke a consent from now on")
def revoke(consent_id: Id, body: ReasonIn, session: WriteSession, writer: Writer) -> ConsentOut:
    """409 when already revoked."""
    return _out(
        consent.revoke_consent(session, consent_id=consent_id, reason=body.reason, actor=writer.actor)
    )


@router.get("/check", summary="May this biometric of this person be edited for this purpose? (gateway)")
def check(
    session: ReadSession,
    _reader: Reader,
    subject_ref: Annotated[str, Query(pattern=REF)],
    biometric: Biometric,
    purpose: Annotated[str, Query(pattern=PURPOSE)],
    at: dt.datetime | None = None,
) -> DecisionOut:
    decision = consent.check_biometric_consent(session, subject_ref, biometric, purpose, at=_aware(at))
    return DecisionOut.model_validate(decision.to_dict())
