"""Retention: personal information erased when its time is up, logs kept at least six months.

PIPL Art. 19 keeps personal information no longer than its purpose needs; the Cybersecurity Law
Art. 21 and Measures Art. 9 keep logs at least six months. ``purge_expired`` applies the settings:

==========================  =================================================  ============================
setting                     what ends                                          what is erased
==========================  =================================================  ============================
``retention_identity_days`` after the account closed; for a number a verifier  name, numbers (cipher, hash,
                            rejected, after it was submitted                   masked form), SMS challenges
``retention_sms_days``      after an SMS code was sent                         the challenge row (deleted)
``retention_consent_days``  after a consent expired or was revoked             the edited person's ref,
                                                                               requester, purpose detail
``retention_log_days``      after content was generated (at least 183 days)    the generation's user_ref
==========================  =================================================  ============================

Rows are kept with ``purged_at`` set, so counts, digests and the audit log's references stay; the audit
log itself is never touched (its records hold no raw personal data). Each run appends one
``retention.purged`` record with the counts and cut-off times only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.audit import record_event
from synthguard.config import Settings
from synthguard.errors import ConfigError
from synthguard.governance.identity import aware_now
from synthguard.governance.models import ConsentRow, GenerationRow, IdentifierRow, SmsChallengeRow, SubjectRow

__all__ = ["MAX_DAYS", "MIN_LOG_DAYS", "PurgeReport", "RetentionPolicy", "purge_expired"]

#: Logs are kept at least six months (Cybersecurity Law Art. 21, Measures Art. 9): 183 days.
MIN_LOG_DAYS: Final = 183
#: Longest retention period accepted (a century): beyond it the setting is surely a mistake.
MAX_DAYS: Final = 36_525
#: What a purged identifier shows instead of its masked number.
PURGED_MASK: Final = "(purged)"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Retention periods in days, validated: none negative, logs at least ``MIN_LOG_DAYS``."""

    identity_days: int
    sms_days: int
    consent_days: int
    log_days: int

    def __post_init__(self) -> None:
        for name in ("identity_days", "sms_days", "consent_days", "log_days"):
            if not 0 <= getattr(self, name) <= MAX_DAYS:
                raise ConfigError(f"retention_{name} must be between 0 and {MAX_DAYS} days")
        if self.log_days < MIN_LOG_DAYS:
            raise ConfigError(
                f"retention_log_days must be at least {MIN_LOG_DAYS} (logs are kept 6 months), "
                f"got {self.log_days}"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            identity_days=settings.retention_identity_days,
            sms_days=settings.retention_sms_days,
            consent_days=settings.retention_consent_days,
            log_days=settings.retention_log_days,
        )


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one run erased (counts only) and the cut-off times it used."""

    at: dt.datetime
    subjects: int
    identifiers: int
    sms_challenges: int
    consents: int
    generations: int
    cutoffs: dict[str, str]

    @property
    def total(self) -> int:
        return self.subjects + self.identifiers + self.sms_challenges + self.consents + self.generations

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "subjects": self.subjects,
            "identifiers": self.identifiers,
            "sms_challenges": self.sms_challenges,
            "consents": self.consents,
            "generations": self.generations,
            "cutoffs": dict(self.cutoffs),
        }


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def purge_expired(
    session: Session, settings: Settings, now: dt.datetime | None = None, *, actor: str = "system"
) -> PurgeReport:
    """Erase the personal fields whose retention ended by ``now``; audited as ``retention.purged``.

    Idempotent: a second run at the same time erases nothing more (and records a run with zero counts).
    ``ConfigError`` when the settings are out of bounds (``RetentionPolicy``). Nothing here commits.
    """
    policy = RetentionPolicy.from_settings(settings)
    now = aware_now(now)
    identity_cut = now - dt.timedelta(days=policy.identity_days)
    sms_cut = now - dt.timedelta(days=policy.sms_days)
    consent_cut = now - dt.timedelta(days=policy.consent_days)
    log_cut = now - dt.timedelta(days=policy.log_days)

    subject_ids = list(
        session.scalars(
            sa.select(SubjectRow.id).where(
                SubjectRow.closed_at.is_not(None),
                SubjectRow.closed_at <= identity_cut,
                SubjectRow.purged_at.is_(None),
            )
        )
    )
    identifiers = 0
    subjects = 0
    challenges = 0
    if subject_ids:
        identifiers += _count(
            session.execute(
                sa.update(IdentifierRow)
                .where(IdentifierRow.subject_id.in_(subject_ids), IdentifierRow.purged_at.is_(None))
                .values(cipher=None, lookup_hash=None, masked=PURGED_MASK, purged_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        challenges += _count(
            session.execute(
                sa.delete(SmsChallengeRow)
                .where(SmsChallengeRow.subject_id.in_(subject_ids))
                .execution_options(synchronize_session=False)
            )
        )
        subjects = _count(
            session.execute(
                sa.update(SubjectRow)
                .where(SubjectRow.id.in_(subject_ids))
                .values(name_cipher=None, name_masked=None, state_reason=None, purged_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        )
    # Numbers a verifier rejected were released (no lookup hash): keep them no longer than identity data.
    identifiers += _count(
        session.execute(
            sa.update(IdentifierRow)
            .where(
                IdentifierRow.lookup_hash.is_(None),
                IdentifierRow.purged_at.is_(None),
                IdentifierRow.created_at <= identity_cut,
            )
            .values(cipher=None, masked=PURGED_MASK, purged_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    challenges += _count(
        session.execute(
            sa.delete(SmsChallengeRow)
            .where(SmsChallengeRow.created_at <= sms_cut)
            .execution_options(synchronize_session=False)
        )
    )
    consents = _count(
        session.execute(
            sa.update(ConsentRow)
            .where(
                ConsentRow.purged_at.is_(None),
                sa.or_(
                    sa.and_(ConsentRow.revoked_at.is_not(None), ConsentRow.revoked_at <= consent_cut),
                    sa.and_(ConsentRow.expires_at.is_not(None), ConsentRow.expires_at <= consent_cut),
                ),
            )
            .values(subject_ref=None, requested_by_user_ref=None, purpose_detail="", purged_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    generations = _count(
        session.execute(
            sa.update(GenerationRow)
            .where(GenerationRow.purged_at.is_(None), GenerationRow.created_at <= log_cut)
            .values(user_ref=None, purged_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    session.expire_all()
    report = PurgeReport(
        at=now,
        subjects=subjects,
        identifiers=identifiers,
        sms_challenges=challenges,
        consents=consents,
        generations=generations,
        cutoffs={
            "identity": identity_cut.isoformat(),
            "sms": sms_cut.isoformat(),
            "consent": consent_cut.isoformat(),
            "log": log_cut.isoformat(),
        },
    )
    record_event(
        session,
        event="retention.purged",
        actor=actor,
        subject=f"retention:{now.strftime('%Y%m%dT%H%M%SZ')}",
        data=report.to_dict(),
    )
    return report
