"""``/api/identity``: real-name identity of end users (Art. 9; ``governance.identity``).

Compliance officers (and the provider's backend with a compliance token) register users, submit
resident ID numbers or unified social credit codes, send and confirm SMS codes, close accounts and ask
for manual overrides; reviewers decide overrides (a second staff member, never the requester);
auditors read. ``GET /subjects/{user_ref}/can-publish`` is the gateway's check. Numbers are answered
only masked. Every change writes one audit record through the service.

The SMS sender and the identity verifier come from the dependencies ``sms_sender`` and
``identity_verifier`` (settings: ``sms_gateway_url``, ``identity_verifier_url``); tests override them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from synthguard.accounts.roles import Role
from synthguard.api.deps import AppSettings, Principal, ReadSession, WriteSession, require_roles
from synthguard.governance import identity
from synthguard.governance.identity import IdentifierType, IdentityState, SubjectKind
from synthguard.governance.sms import SmsSender, sender_from_settings
from synthguard.governance.verifiers import IdentityVerifier, verifier_from_settings

__all__ = ["identity_verifier", "router", "sms_sender"]

router = APIRouter(prefix="/api/identity", tags=["identity"])

Writer = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE))]
Decider = Annotated[Principal, Depends(require_roles(Role.REVIEWER))]
Reader = Annotated[Principal, Depends(require_roles(Role.COMPLIANCE, Role.REVIEWER, Role.AUDITOR))]

USER_REF_PATTERN: Final = f"^{identity.USER_REF_PATTERN}$"
UserRef = Annotated[str, Field(pattern=USER_REF_PATTERN)]
UserRefPath = Annotated[str, Path(pattern=USER_REF_PATTERN)]
Reason = Annotated[str, Field(min_length=1, max_length=identity.MAX_REASON_LENGTH)]
Number = Annotated[str, Field(min_length=1, max_length=identity.MAX_INPUT_LENGTH)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Id = Annotated[int, Path(ge=1, le=2**62)]


def sms_sender(settings: AppSettings) -> Iterator[SmsSender]:
    """The configured SMS sender for one request (closed afterwards)."""
    sender = sender_from_settings(settings)
    try:
        yield sender
    finally:
        close = getattr(sender, "close", None)
        if close is not None:
            close()


def identity_verifier(settings: AppSettings) -> Iterator[IdentityVerifier | None]:
    """The configured identity verifier for one request, or ``None`` (manual review)."""
    verifier = verifier_from_settings(settings)
    try:
        yield verifier
    finally:
        close = getattr(verifier, "close", None)
        if close is not None:
            close()


Sender = Annotated[SmsSender, Depends(sms_sender)]
Verifier = Annotated[IdentityVerifier | None, Depends(identity_verifier)]


class SubjectIn(BaseModel):
    """A new end user; ``name`` (real or registered name) is stored encrypted, shown masked."""

    model_config = ConfigDict(extra="forbid")

    user_ref: UserRef
    kind: SubjectKind
    name: Name | None = None


class SubmissionIn(BaseModel):
    """A resident ID number (person) or unified social credit code (organisation) with the name."""

    model_config = ConfigDict(extra="forbid")

    id_type: Annotated[IdentifierType, Field(description="resident_id or uscc (mobile: use /sms)")]
    number: Number
    name: Name


class MobileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mobile: Annotated[str, Field(min_length=1, max_length=identity.MAX_INPUT_LENGTH)]


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class OverrideIn(BaseModel):
    """Ask a second staff member to set ``target_state``; optionally vouch for a number whose checksum
    fails (``id_type`` and ``number`` together)."""

    model_config = ConfigDict(extra="forbid")

    user_ref: UserRef
    target_state: Annotated[IdentityState, Field(description="verified or rejected")]
    reason: Reason
    id_type: IdentifierType | None = None
    number: Number | None = None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: Reason


class IdentifierOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id_type: str
    masked: str
    verified: bool
    checksum_ok: bool
    purged: bool


class IdentityOut(BaseModel):
    """An end user's identity, masked."""

    model_config = ConfigDict(from_attributes=True)

    user_ref: str
    kind: str
    state: str
    state_reason: str | None
    verified_method: str | None
    verified_at: dt.datetime | None
    name_masked: str | None
    created_at: dt.datetime
    closed_at: dt.datetime | None
    purged: bool
    can_publish: bool
    identifiers: list[IdentifierOut]


class CanPublishOut(BaseModel):
    user_ref: str
    can_publish: bool


class SmsChallengeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    challenge_id: str
    phone_masked: str
    expires_at: dt.datetime


class SmsConfirmationOut(BaseModel):
    """``outcome``: verified, wrong_code, expired or spent (a wrong code is counted, not an error)."""

    outcome: str
    attempts_left: int
    identity: IdentityOut | None


class OverrideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_ref: str
    target_state: str
    reason: str
    identifier_masked: str | None
    requested_by: str
    requested_at: dt.datetime
    decision: str | None
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None


def _identity(view: identity.IdentityView) -> IdentityOut:
    data: dict[str, Any] = view.to_dict()
    return IdentityOut.model_validate(data)


@router.post("/subjects", status_code=201, summary="Register an end user (unverified)")
def register_subject(
    body: SubjectIn, session: WriteSession, writer: Writer, settings: AppSettings
) -> IdentityOut:
    """409 when ``user_ref`` is registered already."""
    view = identity.register_subject(
        session, settings, user_ref=body.user_ref, kind=body.kind, name=body.name, actor=writer.actor
    )
    return _identity(view)


@router.get("/subjects/{user_ref}", summary="An end user's identity (masked)")
def get_subject(user_ref: UserRefPath, session: ReadSession, _reader: Reader) -> IdentityOut:
    return _identity(identity.get_identity(session, user_ref))


@router.get("/subjects/{user_ref}/can-publish", summary="May this user publish? (Art. 9)")
def can_publish(user_ref: UserRefPath, session: ReadSession, _reader: Reader) -> CanPublishOut:
    """False for unknown, unverified, rejected or closed users."""
    return CanPublishOut(user_ref=user_ref, can_publish=identity.can_publish(session, user_ref))


@router.post("/subjects/{user_ref}/submissions", summary="Submit a resident ID number or USCC")
def submit(
    user_ref: UserRefPath,
    body: SubmissionIn,
    session: WriteSession,
    writer: Writer,
    settings: AppSettings,
    verifier: Verifier,
) -> IdentityOut:
    """Parsed (400 with the reason, the number masked), bound to the user (409 if bound to another),
    then verified by the configured service when there is one; else pending."""
    view = identity.submit_identity(
        session, settings, user_ref=user_ref, id_type=body.id_type, number=body.number, name=body.name,
        actor=writer.actor, verifier=verifier,
    )  # fmt: skip
    return _identity(view)


@router.post("/subjects/{user_ref}/sms", status_code=201, summary="Send an SMS code to a mobile number")
def send_sms(
    user_ref: UserRefPath,
    body: MobileIn,
    session: WriteSession,
    writer: Writer,
    settings: AppSettings,
    sender: Sender,
) -> SmsChallengeOut:
    """429 after ``sms_max_per_hour`` codes to the number or the user; 409 when the number is bound to
    another user."""
    challenge = identity.start_mobile_verification(
        session, settings, user_ref=user_ref, mobile=body.mobile, sender=sender, actor=writer.actor
    )
    return SmsChallengeOut.model_validate(challenge)


@router.post("/subjects/{user_ref}/sms/{challenge_id}/confirm", summary="Confirm an SMS code")
def confirm_sms(
    user_ref: UserRefPath,
    challenge_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")],
    body: CodeIn,
    session: WriteSession,
    writer: Writer,
    settings: AppSettings,
) -> SmsConfirmationOut:
    """200 with the outcome; a wrong code is counted (and committed) against the attempt limit."""
    result = identity.confirm_mobile_verification(
        session, settings, user_ref=user_ref, challenge_id=challenge_id, code=body.code, actor=writer.actor
    )
    return SmsConfirmationOut(
        outcome=result.outcome.value,
        attempts_left=result.attempts_left,
        identity=_identity(result.identity) if result.identity is not None else None,
    )


@router.post("/subjects/{user_ref}/close", summary="Close the account (retention clock starts)")
def close_account(
    user_ref: UserRefPath, body: ReasonIn, session: WriteSession, writer: Writer
) -> IdentityOut:
    return _identity(
        identity.close_account(session, user_ref=user_ref, reason=body.reason, actor=writer.actor)
    )


@router.post("/overrides", status_code=201, summary="Request a manual identity override")
def request_override(
    body: OverrideIn, session: WriteSession, writer: Writer, settings: AppSettings
) -> OverrideOut:
    """Decided by a reviewer other than the requester; 409 while another override of the user is pending."""
    view = identity.request_override(
        session, settings, user_ref=body.user_ref, target_state=body.target_state, reason=body.reason,
        actor=writer.actor, id_type=body.id_type, number=body.number,
    )  # fmt: skip
    return OverrideOut.model_validate(view)


@router.get("/overrides", summary="List manual override requests")
def list_overrides(
    session: ReadSession,
    _reader: Reader,
    pending: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OverrideOut]:
    return [
        OverrideOut.model_validate(v)
        for v in identity.list_overrides(session, pending_only=pending, limit=limit)
    ]


@router.post("/overrides/{override_id}/decision", summary="Decide a manual override (second staff member)")
def decide_override(
    override_id: Id, body: DecisionIn, session: WriteSession, decider: Decider
) -> OverrideOut:
    """403 for the requester deciding their own request; 409 when already decided."""
    view = identity.decide_override(
        session, override_id=override_id, approve=body.approve, reason=body.reason, actor=decider.actor
    )
    return OverrideOut.model_validate(view)
