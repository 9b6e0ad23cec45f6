"""Separate consent to biometric editing (Deep Synthesis Provisions Art. 14).

"Where a deep synthesis service provides functions for editing biometric information such as faces and
voices, it shall prompt the user to notify the individual being edited and obtain their separate
consent in accordance with the law." A consent here is one person (``subject_ref``), one biometric,
one purpose, with the digest of its evidence (a signed form, a recording), a time it was granted, an
optional expiry, and a revocation.

The gateway calls ``check_biometric_consent`` before every biometric edit; it returns a
``ConsentDecision`` value (allowed or not, and why), never raises for "no consent". Purposes are short
codes matched exactly after case-folding (``face_swap_advert``): a consent given for one purpose does
not cover another, and there is no wildcard, because consent must be specific.

Every change calls ``record_event`` once, in the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.audit import record_event
from synthguard.errors import ConflictError, NotFoundError, UsageError
from synthguard.governance.identity import aware_now, check_reason, check_user_ref
from synthguard.governance.models import ConsentRow

__all__ = [
    "Biometric",
    "ConsentDecision",
    "ConsentReason",
    "ConsentView",
    "Evidence",
    "check_biometric_consent",
    "get_consent",
    "grant_consent",
    "list_consents",
    "revoke_consent",
]

_PURPOSE_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,127}")
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE_RE: Final = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+\-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+\-]{0,63}")


class Biometric(enum.StrEnum):
    """Biometric information whose editing needs separate consent (stable values, stored)."""

    FACE = "face"
    VOICE = "voice"
    GAIT = "gait"
    FINGERPRINT = "fingerprint"
    IRIS = "iris"
    BODY = "body"


class ConsentReason(enum.StrEnum):
    """Why a check allowed or refused."""

    GRANTED = "granted"
    NO_CONSENT = "no_consent"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Evidence:
    """The consent's evidence by digest: SHA-256 (hex), size in bytes, media type."""

    sha256: str
    size: int
    media_type: str

    def checked(self) -> Evidence:
        sha = self.sha256.lower()
        if not _SHA256_RE.fullmatch(sha):
            raise UsageError("evidence sha256 must be 64 hex digits")
        if self.size < 0:
            raise UsageError("evidence size must not be negative")
        media_type = self.media_type.lower()
        if not _MEDIA_TYPE_RE.fullmatch(media_type):
            raise UsageError(f"evidence media type {self.media_type[:80]!r} is not a type/subtype")
        return Evidence(sha, self.size, media_type)


@dataclass(frozen=True, slots=True)
class ConsentView:
    id: int
    subject_ref: str | None
    biometric: str
    purpose: str
    purpose_detail: str
    requested_by_user_ref: str | None
    evidence: Evidence
    granted_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    recorded_by: str
    purged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subject_ref": self.subject_ref,
            "biometric": self.biometric,
            "purpose": self.purpose,
            "purpose_detail": self.purpose_detail,
            "requested_by_user_ref": self.requested_by_user_ref,
            "evidence": {
                "sha256": self.evidence.sha256,
                "size": self.evidence.size,
                "media_type": self.evidence.media_type,
            },
            "granted_at": self.granted_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
            "recorded_by": self.recorded_by,
            "purged": self.purged,
        }


def _view(row: ConsentRow) -> ConsentView:
    return ConsentView(
        id=row.id,
        subject_ref=row.subject_ref,
        biometric=row.biometric,
        purpose=row.purpose,
        purpose_detail=row.purpose_detail,
        requested_by_user_ref=row.requested_by_user_ref,
        evidence=Evidence(row.evidence_sha256, row.evidence_size, row.evidence_type),
        granted_at=row.granted_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
        recorded_by=row.recorded_by,
        purged=row.purged_at is not None,
    )


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """The answer to "may this biometric of this person be edited for this purpose now?"."""

    allowed: bool
    reason: ConsentReason
    consent_id: int | None = None
    expires_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason.value,
            "consent_id": self.consent_id,
            "expires_at": self.expires_at,
        }


def _purpose(purpose: str) -> str:
    code = purpose.strip().casefold()
    if not _PURPOSE_RE.fullmatch(code):
        raise UsageError(
            "purpose must be a code of 1-128 letters, digits or _.- (for example face_swap_advert)"
        )
    return code


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def grant_consent(
    session: Session,
    *,
    subject_ref: str,
    biometric: Biometric,
    purpose: str,
    evidence: Evidence,
    actor: str,
    purpose_detail: str = "",
    requested_by_user_ref: str | None = None,
    granted_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> ConsentView:
    """Record a consent; ``UsageError`` for an expiry not after the grant or malformed evidence."""
    now = aware_now(now)
    granted = aware_now(granted_at) if granted_at is not None else now
    expires = aware_now(expires_at) if expires_at is not None else None
    if expires is not None and expires <= granted:
        raise UsageError("a consent must expire after it was granted")
    if granted > now + dt.timedelta(days=366):
        raise UsageError("a consent granted more than a year from now is not plausible")
    if len(purpose_detail) > 2000:
        raise UsageError("purpose_detail is longer than 2000 characters")
    checked = evidence.checked()
    row = ConsentRow(
        subject_ref=check_user_ref(subject_ref),
        biometric=Biometric(biometric).value,
        purpose=_purpose(purpose),
        purpose_detail=purpose_detail.strip(),
        requested_by_user_ref=check_user_ref(requested_by_user_ref) if requested_by_user_ref else None,
        evidence_sha256=checked.sha256,
        evidence_size=checked.size,
        evidence_type=checked.media_type,
        granted_at=granted,
        expires_at=expires,
        recorded_by=actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        event="consent.granted",
        actor=actor,
        subject=f"consent:{row.id}",
        data={
            "subject_ref": row.subject_ref,
            "biometric": row.biometric,
            "purpose": row.purpose,
            "evidence_sha256": row.evidence_sha256,
            "granted_at": granted.isoformat(),
            "expires_at": expires.isoformat() if expires else None,
        },
    )
    return _view(row)


def revoke_consent(
    session: Session, *, consent_id: int, reason: str, actor: str, now: dt.datetime | None = None
) -> ConsentView:
    """Revoke a consent from ``now`` on; ``ConflictError`` if already revoked."""
    now = aware_now(now)
    row = session.scalars(
        sa.select(ConsentRow).where(ConsentRow.id == consent_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no consent {consent_id}")
    if row.revoked_at is not None:
        raise ConflictError(f"consent {consent_id} was already revoked")
    row.revoked_at = now
    row.revoked_by = actor
    row.revoke_reason = check_reason(reason)
    record_event(
        session,
        event="consent.revoked",
        actor=actor,
        subject=f"consent:{row.id}",
        data={"reason": row.revoke_reason, "revoked_at": now.isoformat()},
    )
    return _view(row)


def get_consent(session: Session, consent_id: int) -> ConsentView:
    row = session.get(ConsentRow, consent_id)
    if row is None:
        raise NotFoundError(f"no consent {consent_id}")
    return _view(row)


def list_consents(
    session: Session, *, subject_ref: str | None = None, limit: int = 100, offset: int = 0
) -> list[ConsentView]:
    """Consents, newest first, optionally of one person."""
    query = sa.select(ConsentRow).order_by(ConsentRow.id.desc()).limit(limit).offset(offset)
    if subject_ref is not None:
        query = query.where(ConsentRow.subject_ref == check_user_ref(subject_ref))
    return [_view(row) for row in session.scalars(query)]


def check_biometric_consent(
    session: Session,
    subject_ref: str,
    biometric: Biometric | str,
    purpose: str,
    at: dt.datetime | None = None,
) -> ConsentDecision:
    """Whether a valid consent covers editing ``biometric`` of ``subject_ref`` for ``purpose`` at ``at``.

    Allowed when some consent of that person, biometric and purpose was granted at or before ``at``,
    has not expired and was not revoked by then. Otherwise the most telling reason is given: revoked,
    then expired, then not yet valid, then no consent at all. Malformed arguments raise ``UsageError``.
    """
    at = aware_now(at)
    kind = Biometric(biometric)
    code = _purpose(purpose)
    rows = session.scalars(
        sa.select(ConsentRow)
        .where(
            ConsentRow.subject_ref == check_user_ref(subject_ref),
            ConsentRow.biometric == kind.value,
            ConsentRow.purpose == code,
        )
        .order_by(ConsentRow.granted_at.desc())
    ).all()
    reasons: set[ConsentReason] = set()
    for row in rows:
        granted, expires, revoked = _aware(row.granted_at), _aware(row.expires_at), _aware(row.revoked_at)
        assert granted is not None
        if revoked is not None and revoked <= at:
            reasons.add(ConsentReason.REVOKED)
        elif expires is not None and expires <= at:
            reasons.add(ConsentReason.EXPIRED)
        elif granted > at:
            reasons.add(ConsentReason.NOT_YET_VALID)
        else:
            return ConsentDecision(True, ConsentReason.GRANTED, row.id, expires)
    for reason in (ConsentReason.REVOKED, ConsentReason.EXPIRED, ConsentReason.NOT_YET_VALID):
        if reason in reasons:
            return ConsentDecision(False, reason)
    return ConsentDecision(False, ConsentReason.NO_CONSENT)
