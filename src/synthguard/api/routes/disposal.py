"""``/api/disposal``: strikes, measures, restrictions and appeals (Art. 10; ``governance.disposal``).

Reviewers and compliance officers record strikes, impose and lift measures, record appeals and
decide them (a second reviewer: not who imposed the measure or recorded the appeal); auditors read.
``POST /review-outcomes`` is the review engine's hook (a machine token with the reviewer role), and
``GET /users/{user_ref}/restrictions`` what the gateway asks before generating or publishing.
Every change writes one audit record through the service.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from synthguard.accounts.roles import Role
from synthguard.api.deps import AppSettings, Principal, ReadSession, WriteSession, require_roles
from synthguard.governance import disposal
from synthguard.governance.case_models import AppealState, Function, MeasureKind

__all__ = ["router"]

router = APIRouter(prefix="/api/disposal", tags=["disposal"])

Staff = Annotated[Principal, Depends(require_roles(Role.REVIEWER, Role.COMPLIANCE))]
Reader = Annotated[Principal, Depends(require_roles(Role.REVIEWER, Role.COMPLIANCE, Role.AUDITOR))]

USER_REF_PATTERN: Final = r"^[A-Za-z0-9._:@-]{1,128}$"
UserRef = Annotated[str, Field(pattern=USER_REF_PATTERN)]
UserRefPath = Annotated[str, Path(pattern=USER_REF_PATTERN)]
Risk = Annotated[str, Field(pattern=r"^A[1-5]\.[1-9]$")]
Text = Annotated[str, Field(min_length=1, max_length=disposal.MAX_TEXT)]
Scalar = Annotated[str, Field(max_length=500)] | int | float | bool | None
#: Digests, review hit ids, request ids: a flat JSON object.
Evidence = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=64)],
        Scalar | Annotated[list[Scalar], Field(max_length=100)],
    ],
    Field(max_length=32),
]
Id = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=disposal.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


class StrikeIn(BaseModel):
    """A violation to count against an end user."""

    model_config = ConfigDict(extra="forbid")

    user_ref: UserRef
    kind: Annotated[str, Field(pattern=r"^(input|output|publish|manual)$")]
    risk: Risk | None = None
    reason: Text
    evidence: Evidence = Field(default_factory=dict)
    #: Overrides the policy's weight for the risk.
    weight: Annotated[float, Field(ge=0, le=1000)] | None = None


class ReviewOutcomeIn(BaseModel):
    """One reviewed input of an end user (the review engine's call)."""

    model_config = ConfigDict(extra="forbid")

    user_ref: UserRef
    violated: bool
    risk: Risk | None = None
    evidence: Evidence = Field(default_factory=dict)


class MeasureIn(BaseModel):
    """A measure imposed by staff; ``duration_hours`` for a restriction or suspension."""

    model_config = ConfigDict(extra="forbid")

    user_ref: UserRef
    kind: MeasureKind
    reason: Text
    evidence: Evidence = Field(default_factory=dict)
    duration_hours: Annotated[int, Field(ge=1, le=24 * 3650)] | None = None
    #: What a restriction takes away (default: ``disposal_restricted_functions``).
    functions: Annotated[list[Function], Field(min_length=1, max_length=len(Function))] | None = None


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text


class AppealIn(BaseModel):
    """The end user's appeal, as recorded by staff."""

    model_config = ConfigDict(extra="forbid")

    statement: Text


class DecisionIn(BaseModel):
    """``overturn``: true lifts the measure and voids its strikes; false upholds it."""

    model_config = ConfigDict(extra="forbid")

    overturn: bool
    reason: Text


class StrikeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_ref: str
    at: dt.datetime
    kind: str
    risk: str | None
    weight: float
    expires_at: dt.datetime
    reason: str
    evidence: dict[str, Any]
    actor: str
    voided_at: dt.datetime | None
    voided_reason: str | None


class MeasureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_ref: str
    kind: MeasureKind
    functions: list[Function]
    reason: str
    evidence: dict[str, Any]
    strike_ids: list[int]
    trigger: str
    actor: str
    imposed_at: dt.datetime
    ends_at: dt.datetime | None
    state: str
    lifted_at: dt.datetime | None
    lifted_by: str | None
    lifted_reason: str | None


class AppealOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    measure_id: int
    filed_at: dt.datetime
    filed_by: str
    statement: str
    state: AppealState
    decided_at: dt.datetime | None
    decided_by: str | None
    decision_reason: str | None


class OutcomeOut(BaseModel):
    """A recorded violation and the measure it led to, if any."""

    model_config = ConfigDict(from_attributes=True)

    strike: StrikeOut
    measure: MeasureOut | None
    points: float


class RestrictionsOut(BaseModel):
    """What the user may do now."""

    model_config = ConfigDict(from_attributes=True)

    user_ref: str
    can_generate: bool
    can_publish: bool
    closed: bool
    until: dt.datetime | None
    measures: list[MeasureOut]


class UserOut(BaseModel):
    """An end user's disposal record."""

    restrictions: RestrictionsOut
    points: float
    measures: list[MeasureOut]
    strikes: list[StrikeOut]


def _strike(value: disposal.Strike) -> StrikeOut:
    return StrikeOut.model_validate(value)


def _measure(value: disposal.Measure) -> MeasureOut:
    return MeasureOut.model_validate(value)


def _appeal(value: disposal.Appeal) -> AppealOut:
    return AppealOut.model_validate(value)


def _outcome(value: disposal.StrikeOutcome) -> OutcomeOut:
    return OutcomeOut.model_validate(value)


def _restrictions(value: disposal.Restrictions) -> RestrictionsOut:
    return RestrictionsOut.model_validate(value)


@router.post("/strikes", status_code=201, summary="Record a violation against an end user")
def record_strike(body: StrikeIn, session: WriteSession, staff: Staff, settings: AppSettings) -> OutcomeOut:
    """Count a strike; the ladder step its points reach is imposed automatically."""
    outcome = disposal.record_strike(
        session, user_ref=body.user_ref, kind=body.kind, risk=body.risk, reason=body.reason,
        evidence=body.evidence, weight=body.weight, actor=staff.actor, settings=settings,
    )  # fmt: skip
    return _outcome(outcome)


@router.post("/review-outcomes", summary="Record one reviewed input (the review engine's hook)")
def record_review_outcome(
    body: ReviewOutcomeIn, session: WriteSession, _staff: Staff, settings: AppSettings
) -> OutcomeOut | None:
    """A clean input resets the run of violations (``null``); a violating one is a strike, and may
    trigger a measure (consecutive or daily limits)."""
    outcome = disposal.record_review_outcome(
        session, body.user_ref, body.violated, body.risk, body.evidence, settings=settings
    )
    return _outcome(outcome) if outcome else None


@router.get("/users/{user_ref}", summary="An end user's strikes, measures and restrictions")
def get_user(user_ref: UserRefPath, session: ReadSession, _reader: Reader) -> UserOut:
    """Points counting now, the 100 newest measures and strikes, and the restrictions in force."""
    return UserOut(
        restrictions=_restrictions(disposal.current_restrictions(session, user_ref)),
        points=disposal.active_points(session, user_ref),
        measures=[_measure(m) for m in disposal.list_measures(session, user_ref=user_ref)],
        strikes=[_strike(s) for s in disposal.list_strikes(session, user_ref=user_ref)],
    )


@router.get("/users/{user_ref}/restrictions", summary="May the user generate and publish now?")
def get_restrictions(user_ref: UserRefPath, session: ReadSession, _reader: Reader) -> RestrictionsOut:
    """The restrictions in force now (the gateway's check)."""
    return _restrictions(disposal.current_restrictions(session, user_ref))


@router.post("/measures", status_code=201, summary="Impose a measure")
def impose_measure(body: MeasureIn, session: WriteSession, staff: Staff, settings: AppSettings) -> MeasureOut:
    """Warning, restriction (``duration_hours``, ``functions``), suspension or closure."""
    measure = disposal.impose_measure(
        session, user_ref=body.user_ref, kind=body.kind, reason=body.reason, evidence=body.evidence,
        duration=dt.timedelta(hours=body.duration_hours) if body.duration_hours else None,
        functions=body.functions, actor=staff.actor, settings=settings,
    )  # fmt: skip
    return _measure(measure)


@router.get("/measures", summary="List measures")
def list_measures(
    session: ReadSession,
    _reader: Reader,
    user_ref: Annotated[str | None, Query(pattern=USER_REF_PATTERN)] = None,
    in_force: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[MeasureOut]:
    """Newest first; ``in_force``: only those in force now."""
    found = disposal.list_measures(
        session,
        user_ref=user_ref,
        in_force_at=dt.datetime.now(dt.UTC) if in_force else None,
        limit=limit,
        offset=offset,
    )
    return [_measure(m) for m in found]


@router.get("/measures/{measure_id}", summary="One measure")
def get_measure(measure_id: Id, session: ReadSession, _reader: Reader) -> MeasureOut:
    return _measure(disposal.get_measure(session, measure_id))


@router.post("/measures/{measure_id}/lift", summary="Lift a measure before its end")
def lift_measure(measure_id: Id, body: ReasonIn, session: WriteSession, staff: Staff) -> MeasureOut:
    """409 when it is already lifted."""
    return _measure(disposal.lift_measure(session, measure_id, actor=staff.actor, reason=body.reason))


@router.post("/measures/{measure_id}/appeal", status_code=201, summary="Record the user's appeal")
def file_appeal(measure_id: Id, body: AppealIn, session: WriteSession, staff: Staff) -> AppealOut:
    """One appeal per measure (409 for a second, or for a lifted measure)."""
    return _appeal(disposal.file_appeal(session, measure_id, statement=body.statement, actor=staff.actor))


@router.get("/appeals", summary="List appeals")
def list_appeals(
    session: ReadSession,
    _reader: Reader,
    state: AppealState | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AppealOut]:
    """Oldest first (the queue order); ``state=pending`` for the open ones."""
    return [_appeal(a) for a in disposal.list_appeals(session, state=state, limit=limit, offset=offset)]


@router.get("/appeals/{appeal_id}", summary="One appeal")
def get_appeal(appeal_id: Id, session: ReadSession, _reader: Reader) -> AppealOut:
    return _appeal(disposal.get_appeal(session, appeal_id))


@router.post("/appeals/{appeal_id}/decision", summary="Decide an appeal (a second reviewer)")
def decide_appeal(appeal_id: Id, body: DecisionIn, session: WriteSession, staff: Staff) -> AppealOut:
    """403 when the caller imposed the measure or recorded the appeal; 409 when already decided."""
    decided = disposal.decide_appeal(
        session, appeal_id, overturn=body.overturn, reason=body.reason, actor=staff.actor
    )
    return _appeal(decided)
