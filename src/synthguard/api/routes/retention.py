"""``/api/retention``: the retention policy and the purge of expired personal data (``governance.retention``).

Staff read the policy; an administrator or compliance officer runs the purge (also meant for a
scheduled ``POST`` by a machine token). The purge is recorded in the audit log with counts only.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from synthguard.accounts.roles import Role
from synthguard.api.deps import AppSettings, Principal, WriteSession, require_roles
from synthguard.governance import retention

__all__ = ["router"]

router = APIRouter(prefix="/api/retention", tags=["retention"])

Writer = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE))]
Reader = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE, Role.REVIEWER, Role.AUDITOR))]


class PolicyOut(BaseModel):
    """Days each kind of personal data is kept (see docs/governance.md)."""

    identity_days: int
    sms_days: int
    consent_days: int
    log_days: int
    min_log_days: int


class PurgeOut(BaseModel):
    at: dt.datetime
    subjects: int
    identifiers: int
    sms_challenges: int
    consents: int
    generations: int
    cutoffs: dict[str, str]


@router.get("/policy", summary="The retention policy in force")
def policy(_reader: Reader, settings: AppSettings) -> PolicyOut:
    """500 when the settings are out of bounds (logs kept less than 183 days)."""
    current = retention.RetentionPolicy.from_settings(settings)
    return PolicyOut(
        identity_days=current.identity_days,
        sms_days=current.sms_days,
        consent_days=current.consent_days,
        log_days=current.log_days,
        min_log_days=retention.MIN_LOG_DAYS,
    )


@router.post("/purge", summary="Erase personal data whose retention ended (audited)")
def purge(session: WriteSession, writer: Writer, settings: AppSettings) -> PurgeOut:
    report = retention.purge_expired(session, settings, actor=writer.actor)
    return PurgeOut.model_validate(report.to_dict())
