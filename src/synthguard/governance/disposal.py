"""Disposal measures against end users (Deep Synthesis Provisions Art. 10): strikes, the ladder,
automatic triggers, restrictions in force, and appeals decided by a second reviewer.

**Strikes.** Every violation is a strike against a ``user_ref`` (the provider's account key, the one
the identity records use), weighted per risk (``disposal_strike_weights``: the longest matching
prefix of the risk code wins, else ``disposal_default_weight``) and counting for
``disposal_strike_window_days``. The *points* of a user are the weights of the strikes that still
count (not expired, not voided).

**The ladder** (``disposal_ladder``, mildest first, ``POINTS=KIND[:DURATION]``): warning →
restriction → suspension → closure, as agreed in the service agreement, so all of it is
configuration. When a user's points reach a step that is higher than every step already in force or
imposed within the window (not lifted), that step is imposed automatically.

**Triggers.** The review engine calls ``record_review_outcome`` after each reviewed input. A
violating input is a strike of kind ``input``; ``disposal_consecutive_limit`` violations in a row
(the user's last N reviewed inputs all violated) or ``disposal_daily_limit`` violations in one UTC
day impose at least the first step of kind ``disposal_trigger_step``, and one step above the
highest imposed when that is already as high. A clean input resets the run (one UPDATE, and only
when a run was open: the common clean case writes nothing).

**Measures** carry their reason, evidence (digests, review hit ids, the strikes they rest on), actor
and trigger. ``current_restrictions`` tells the gateway whether the user may generate and publish
now. **Appeals**: one per measure; decided by a reviewer who is not the measure's actor
(``PermissionDeniedError`` otherwise); overturning lifts the measure and voids its strikes.

Every change writes exactly one audit record (``disposal.strike``, ``disposal.measure``,
``disposal.lifted``, ``disposal.appeal``, ``disposal.appeal_decided``) in the caller's transaction.
Functions take a ``Session`` and never commit. On PostgreSQL the per-user run counter is read with
``SELECT ... FOR UPDATE``, so concurrent reviews of one user count correctly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session

from synthguard.audit import record_event
from synthguard.config import Settings, load_settings
from synthguard.errors import ConfigError, ConflictError, NotFoundError, PermissionDeniedError, UsageError
from synthguard.governance.case_models import (
    AppealRow,
    AppealState,
    Function,
    MeasureKind,
    MeasureRow,
    MeasureState,
    StrikeRow,
    UserStateRow,
    aware_now,
    check_ref,
    check_text,
)

__all__ = [
    "Appeal",
    "DisposalPolicy",
    "LadderStep",
    "Measure",
    "Restrictions",
    "Strike",
    "StrikeOutcome",
    "active_points",
    "current_restrictions",
    "decide_appeal",
    "file_appeal",
    "get_appeal",
    "get_measure",
    "impose_measure",
    "lift_measure",
    "list_appeals",
    "list_measures",
    "list_strikes",
    "policy_from",
    "record_review_outcome",
    "record_strike",
]

_RANK: Final = {kind: rank for rank, kind in enumerate(MeasureKind)}
_DURATION_RE: Final = re.compile(r"(\d+)([dhm])")
_UNITS: Final = {"d": "days", "h": "hours", "m": "minutes"}
MAX_TEXT: Final = 4000
STRIKE_KINDS: Final = frozenset({"input", "output", "publish", "manual"})
#: Longest list a listing returns.
MAX_LIMIT: Final = 500


@dataclasses.dataclass(frozen=True, slots=True)
class LadderStep:
    """One rung: imposed when a user's points reach ``points``."""

    points: float
    kind: MeasureKind
    #: ``None``: until lifted (closure), or nothing to last (warning).
    duration: dt.timedelta | None

    def covers(self, kind: MeasureKind, duration: dt.timedelta | None) -> bool:
        """Whether a measure of ``kind`` and ``duration`` is at least as severe as this step."""
        if _RANK[kind] != _RANK[self.kind]:
            return _RANK[kind] > _RANK[self.kind]
        return duration is None or (self.duration is not None and duration >= self.duration)

    def describe(self) -> str:
        text = self.kind.value
        if self.duration is not None:
            text += f" for {_format_duration(self.duration)}"
        return text


@dataclasses.dataclass(frozen=True)
class DisposalPolicy:
    """The disposal settings, parsed and checked once (``policy_from(settings)``)."""

    window: dt.timedelta
    weights: tuple[tuple[str, float], ...]
    default_weight: float
    ladder: tuple[LadderStep, ...]
    consecutive_limit: int
    daily_limit: int
    trigger_step: MeasureKind
    restricted_functions: frozenset[Function]

    @classmethod
    def from_settings(cls, settings: Settings) -> DisposalPolicy:
        """Parse the ``disposal_*`` settings; ``ConfigError`` naming the setting that is wrong."""
        if settings.disposal_strike_window_days <= 0:
            raise ConfigError("disposal_strike_window_days must be positive")
        weights = []
        for item in settings.disposal_strike_weights:
            prefix, sep, value = item.partition("=")
            try:
                weight = float(value)
            except ValueError:
                weight = -1.0
            if not sep or not prefix.strip() or not weight >= 0:
                raise ConfigError(f"disposal_strike_weights: {item!r} is not RISK=WEIGHT (weight >= 0)")
            weights.append((prefix.strip(), weight))
        weights.sort(key=lambda pair: -len(pair[0]))
        if not settings.disposal_default_weight >= 0:
            raise ConfigError("disposal_default_weight must be at least 0")
        ladder = tuple(_parse_step(item) for item in settings.disposal_ladder)
        if not ladder:
            raise ConfigError("disposal_ladder must have at least one step")
        for before, after in itertools.pairwise(ladder):
            if (
                after.points <= before.points
                or not before.covers(after.kind, after.duration)
                or after.covers(before.kind, before.duration)
            ):
                raise ConfigError(
                    f"disposal_ladder must rise: {after.describe()} at {after.points:g} points after "
                    f"{before.describe()} at {before.points:g}"
                )
        try:
            trigger = MeasureKind(settings.disposal_trigger_step)
        except ValueError:
            raise ConfigError(
                f"disposal_trigger_step must be one of {', '.join(MeasureKind)}, got "
                f"{settings.disposal_trigger_step!r}"
            ) from None
        if not any(step.kind == trigger for step in ladder):
            raise ConfigError(f"disposal_trigger_step {trigger.value!r} is not a step of disposal_ladder")
        if settings.disposal_consecutive_limit < 0 or settings.disposal_daily_limit < 0:
            raise ConfigError("disposal_consecutive_limit and disposal_daily_limit must be at least 0")
        return cls(
            window=dt.timedelta(days=settings.disposal_strike_window_days),
            weights=tuple(weights),
            default_weight=settings.disposal_default_weight,
            ladder=ladder,
            consecutive_limit=settings.disposal_consecutive_limit,
            daily_limit=settings.disposal_daily_limit,
            trigger_step=trigger,
            restricted_functions=_functions(
                settings.disposal_restricted_functions, "disposal_restricted_functions"
            ),
        )

    def weight(self, risk: str | None) -> float:
        """The weight of a strike for ``risk`` (longest matching prefix, else the default)."""
        if risk:
            for prefix, weight in self.weights:  # longest first
                if risk == prefix or risk.startswith(prefix.rstrip(".") + "."):
                    return weight
        return self.default_weight

    def step_reached(self, points: float) -> int:
        """Index of the highest step whose points are reached, -1 for none."""
        reached = -1
        for index, step in enumerate(self.ladder):
            if points >= step.points:
                reached = index
        return reached

    def first_step_of(self, kind: MeasureKind) -> int:
        return next(i for i, step in enumerate(self.ladder) if step.kind == kind)


def policy_from(settings: Settings | DisposalPolicy | None) -> DisposalPolicy:
    """A ``DisposalPolicy`` from settings (parsed once per distinct ``Settings``), or as given."""
    if isinstance(settings, DisposalPolicy):
        return settings
    return _cached_policy(settings if settings is not None else load_settings())


@functools.lru_cache(maxsize=16)
def _cached_policy(settings: Settings) -> DisposalPolicy:
    return DisposalPolicy.from_settings(settings)


def _parse_step(item: str) -> LadderStep:
    points_text, sep, rest = item.partition("=")
    kind_text, _, duration_text = rest.partition(":")
    try:
        points = float(points_text)
        kind = MeasureKind(kind_text.strip())
    except ValueError:
        raise ConfigError(f"disposal_ladder: {item!r} is not POINTS=KIND[:DURATION]") from None
    if not sep or points <= 0:
        raise ConfigError(f"disposal_ladder: {item!r} needs positive points")
    duration = _parse_duration(duration_text.strip(), item) if duration_text.strip() else None
    if kind in (MeasureKind.RESTRICTION, MeasureKind.SUSPENSION) and duration is None:
        raise ConfigError(f"disposal_ladder: {item!r}: a {kind.value} needs a duration (7d, 12h, 30m)")
    if kind in (MeasureKind.WARNING, MeasureKind.CLOSURE) and duration is not None:
        raise ConfigError(f"disposal_ladder: {item!r}: a {kind.value} has no duration")
    return LadderStep(points, kind, duration)


def _parse_duration(text: str, item: str) -> dt.timedelta:
    match = _DURATION_RE.fullmatch(text)
    if match is None or int(match.group(1)) <= 0:
        raise ConfigError(f"disposal_ladder: {item!r}: duration must be like 7d, 12h or 30m")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _format_duration(duration: dt.timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _functions(values: Iterable[str], name: str) -> frozenset[Function]:
    try:
        found = frozenset(Function(value) for value in values)
    except ValueError:
        raise ConfigError(f"{name}: functions are {', '.join(Function)}, got {list(values)!r}") from None
    if not found:
        raise ConfigError(f"{name} must name at least one function")
    return found


# -- values ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Strike:
    id: int
    user_ref: str
    at: dt.datetime
    kind: str
    risk: str | None
    weight: float
    expires_at: dt.datetime
    reason: str
    evidence: Mapping[str, Any]
    actor: str
    voided_at: dt.datetime | None
    voided_reason: str | None

    @classmethod
    def of(cls, row: StrikeRow) -> Strike:
        return cls(
            row.id, row.user_ref, row.at, row.kind, row.risk, row.weight, row.expires_at, row.reason,
            dict(row.evidence), row.actor, row.voided_at, row.voided_reason,
        )  # fmt: skip

    def counts_at(self, now: dt.datetime) -> bool:
        return self.voided_at is None and self.at <= now < self.expires_at


@dataclasses.dataclass(frozen=True, slots=True)
class Measure:
    id: int
    user_ref: str
    kind: MeasureKind
    functions: frozenset[Function]
    reason: str
    evidence: Mapping[str, Any]
    strike_ids: tuple[int, ...]
    trigger: str
    actor: str
    imposed_at: dt.datetime
    ends_at: dt.datetime | None
    state: MeasureState
    lifted_at: dt.datetime | None
    lifted_by: str | None
    lifted_reason: str | None

    @classmethod
    def of(cls, row: MeasureRow) -> Measure:
        return cls(
            row.id, row.user_ref, MeasureKind(row.kind), frozenset(Function(f) for f in row.functions),
            row.reason, dict(row.evidence), tuple(row.strike_ids), row.trigger, row.actor, row.imposed_at,
            row.ends_at, MeasureState(row.state), row.lifted_at, row.lifted_by, row.lifted_reason,
        )  # fmt: skip

    def in_force(self, now: dt.datetime) -> bool:
        """Active, begun, and not yet ended."""
        return (
            self.state is MeasureState.ACTIVE
            and self.imposed_at <= now
            and (self.ends_at is None or now < self.ends_at)
        )

    @property
    def duration(self) -> dt.timedelta | None:
        return None if self.ends_at is None else self.ends_at - self.imposed_at


@dataclasses.dataclass(frozen=True, slots=True)
class Appeal:
    id: int
    measure_id: int
    filed_at: dt.datetime
    filed_by: str
    statement: str
    state: AppealState
    decided_at: dt.datetime | None
    decided_by: str | None
    decision_reason: str | None

    @classmethod
    def of(cls, row: AppealRow) -> Appeal:
        return cls(
            row.id, row.measure_id, row.filed_at, row.filed_by, row.statement, AppealState(row.state),
            row.decided_at, row.decided_by, row.decision_reason,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Restrictions:
    """What an end user may do now, and the measures in force that say so."""

    user_ref: str
    can_generate: bool
    can_publish: bool
    #: The account is closed (until a closure is lifted).
    closed: bool
    #: When the last function taken away comes back; ``None`` when nothing is taken away or a
    #: measure in force has no end.
    until: dt.datetime | None
    measures: tuple[Measure, ...]

    @property
    def unrestricted(self) -> bool:
        return self.can_generate and self.can_publish


@dataclasses.dataclass(frozen=True, slots=True)
class StrikeOutcome:
    """What recording a violation did: the strike, and the measure it led to (if any)."""

    strike: Strike
    measure: Measure | None
    points: float


# -- strikes and the ladder --------------------------------------------------------------------


def _check_actor(actor: str) -> str:
    return check_text("actor", actor, max_length=128, line=True)


def _evidence(evidence: Mapping[str, Any] | None) -> dict[str, Any]:
    if evidence is None:
        return {}
    if not isinstance(evidence, Mapping):
        raise UsageError("evidence must be a mapping")
    return dict(evidence)


def record_strike(
    session: Session,
    *,
    user_ref: str,
    kind: str,
    reason: str,
    actor: str,
    risk: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    weight: float | None = None,
    settings: Settings | DisposalPolicy | None = None,
    now: dt.datetime | None = None,
    escalate: bool = True,
) -> StrikeOutcome:
    """Count one violation against ``user_ref`` and impose the ladder step its points reach.

    ``kind``: ``input``, ``output``, ``publish`` or ``manual``; ``weight`` overrides the policy's
    weight for ``risk``. ``escalate=False`` records the strike only.
    """
    policy = policy_from(settings)
    now = aware_now(now)
    row = _add_strike(session, policy, user_ref, kind, reason, actor, risk, evidence, weight, now)
    measure = _escalate(session, policy, row.user_ref, now, trigger=None) if escalate else None
    return StrikeOutcome(Strike.of(row), measure, active_points(session, row.user_ref, now=now))


def _add_strike(
    session: Session,
    policy: DisposalPolicy,
    user_ref: str,
    kind: str,
    reason: str,
    actor: str,
    risk: str | None,
    evidence: Mapping[str, Any] | None,
    weight: float | None,
    now: dt.datetime,
) -> StrikeRow:
    user_ref = check_ref("user_ref", user_ref)
    if kind not in STRIKE_KINDS:
        raise UsageError(f"strike kind must be one of {', '.join(sorted(STRIKE_KINDS))}, got {kind!r}")
    if risk is not None:
        risk = check_ref("risk", risk, max_length=8)
    if weight is not None and not 0 <= weight <= 1000:
        raise UsageError("weight must be between 0 and 1000")
    row = StrikeRow(
        user_ref=user_ref,
        at=now,
        kind=kind,
        risk=risk,
        weight=policy.weight(risk) if weight is None else float(weight),
        expires_at=now + policy.window,
        reason=check_text("reason", reason, max_length=MAX_TEXT),
        evidence=_evidence(evidence),
        actor=_check_actor(actor),
        voided_at=None,
        voided_reason=None,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        event="disposal.strike",
        actor=row.actor,
        subject=f"strike:{row.id}",
        data={
            "user_ref": row.user_ref, "kind": row.kind, "risk": row.risk, "weight": row.weight,
            "expires_at": row.expires_at.isoformat(), "reason": row.reason, "evidence": row.evidence,
        },
    )  # fmt: skip
    return row


def record_review_outcome(
    session: Session,
    user_ref: str,
    violated: bool,
    risk: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    *,
    settings: Settings | DisposalPolicy | None = None,
    now: dt.datetime | None = None,
    reason: str = "",
) -> StrikeOutcome | None:
    """The review engine's hook, called once per reviewed input of ``user_ref``.

    A clean input (``violated=False``) ends the user's run of consecutive violations and returns
    ``None``. A violating one is a strike of kind ``input`` (actor ``system``), then the automatic
    triggers and the points ladder are checked; the outcome names the measure imposed, if any.
    """
    policy = policy_from(settings)
    now = aware_now(now)
    user_ref = check_ref("user_ref", user_ref)
    if not violated:
        session.execute(
            sa.update(UserStateRow)
            .where(UserStateRow.user_ref == user_ref, UserStateRow.consecutive_violations > 0)
            .values(consecutive_violations=0, updated_at=now)
        )
        return None
    state = _locked_state(session, user_ref, now)
    state.consecutive_violations += 1
    state.updated_at = now
    row = _add_strike(
        session, policy, user_ref, "input", reason or f"illegal input ({risk or 'risk not given'})",
        "system", risk, evidence, None, now,
    )  # fmt: skip
    trigger = None
    if policy.consecutive_limit and state.consecutive_violations >= policy.consecutive_limit:
        trigger = "auto:consecutive"
        state.consecutive_violations = 0  # the run is answered; the next one counts afresh
    elif policy.daily_limit:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        today = session.scalar(
            sa.select(sa.func.count())
            .select_from(StrikeRow)
            .where(
                StrikeRow.user_ref == user_ref,
                StrikeRow.kind == "input",
                StrikeRow.voided_at.is_(None),
                StrikeRow.at >= day,
                StrikeRow.at <= now,
            )
        )
        if today and today % policy.daily_limit == 0:
            trigger = "auto:daily"
    measure = _escalate(session, policy, user_ref, now, trigger=trigger)
    return StrikeOutcome(Strike.of(row), measure, active_points(session, user_ref, now=now))


def _locked_state(session: Session, user_ref: str, now: dt.datetime) -> UserStateRow:
    state = session.get(UserStateRow, user_ref, with_for_update=True)
    if state is not None:
        return state
    try:
        with session.begin_nested():
            state = UserStateRow(user_ref=user_ref, consecutive_violations=0, updated_at=now)
            session.add(state)
    except exc.IntegrityError:  # another transaction created it first: use theirs, locked
        state = session.get(UserStateRow, user_ref, with_for_update=True, populate_existing=True)
        if state is None:  # pragma: no cover - the row was just seen by the database
            raise
    return state


def active_points(session: Session, user_ref: str, *, now: dt.datetime | None = None) -> float:
    """The weights of ``user_ref`` 's strikes that count at ``now``."""
    now = aware_now(now)
    total = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(StrikeRow.weight), 0.0)).where(
            StrikeRow.user_ref == user_ref,
            StrikeRow.voided_at.is_(None),
            StrikeRow.at <= now,
            StrikeRow.expires_at > now,
        )
    )
    return float(total or 0.0)


def _highest_step(session: Session, policy: DisposalPolicy, user_ref: str, now: dt.datetime) -> int:
    """The highest ladder step covered by a measure in force, or imposed within the window."""
    rows = session.scalars(
        sa.select(MeasureRow).where(
            MeasureRow.user_ref == user_ref,
            MeasureRow.state == MeasureState.ACTIVE.value,
            sa.or_(
                MeasureRow.imposed_at > now - policy.window,
                MeasureRow.ends_at.is_(None),
                MeasureRow.ends_at > now,
            ),
        )
    ).all()
    highest = -1
    for row in rows:
        measure = Measure.of(row)
        if measure.kind is MeasureKind.WARNING and measure.imposed_at <= now - policy.window:
            continue  # a warning from before the window no longer counts
        for index, step in enumerate(policy.ladder):
            if step.covers(measure.kind, measure.duration):
                highest = max(highest, index)
    return highest


def _escalate(
    session: Session, policy: DisposalPolicy, user_ref: str, now: dt.datetime, *, trigger: str | None
) -> Measure | None:
    points = active_points(session, user_ref, now=now)
    highest = _highest_step(session, policy, user_ref, now)
    target = policy.step_reached(points)
    reason_parts = [f"{points:g} strike points"] if target > highest else []
    if trigger is not None:
        wanted = min(max(policy.first_step_of(policy.trigger_step), highest + 1), len(policy.ladder) - 1)
        if wanted > target:
            target = wanted
            reason_parts = [_TRIGGER_TEXT[trigger](policy)]
    if target <= highest:
        return None
    step = policy.ladder[target]
    strikes = session.scalars(
        sa.select(StrikeRow.id)
        .where(
            StrikeRow.user_ref == user_ref,
            StrikeRow.voided_at.is_(None),
            StrikeRow.at <= now,
            StrikeRow.expires_at > now,
        )
        .order_by(StrikeRow.id)
    ).all()
    return impose_measure(
        session,
        user_ref=user_ref,
        kind=step.kind,
        reason=f"automatic: {'; '.join(reason_parts)} → {step.describe()}",
        evidence={"points": points, "ladder_step": target},
        actor="system",
        duration=step.duration,
        strike_ids=strikes,
        trigger=trigger or "auto:points",
        settings=policy,
        now=now,
    )


_TRIGGER_TEXT: Final = {
    "auto:consecutive": lambda p: f"{p.consecutive_limit} consecutive illegal inputs",
    "auto:daily": lambda p: f"{p.daily_limit} illegal inputs in one day",
}


# -- measures ----------------------------------------------------------------------------------


def impose_measure(
    session: Session,
    *,
    user_ref: str,
    kind: MeasureKind | str,
    reason: str,
    actor: str,
    evidence: Mapping[str, Any] | None = None,
    duration: dt.timedelta | None = None,
    functions: Iterable[Function | str] | None = None,
    strike_ids: Sequence[int] = (),
    trigger: str = "manual",
    settings: Settings | DisposalPolicy | None = None,
    now: dt.datetime | None = None,
) -> Measure:
    """Impose a measure. A restriction takes away ``functions`` (default: the policy's); a suspension
    takes generation and publishing, a closure everything; ``duration`` (restriction, suspension) is
    required, a warning and a closure have none."""
    policy = policy_from(settings)
    now = aware_now(now)
    try:
        kind = MeasureKind(kind)
    except ValueError:
        raise UsageError(f"measure kind must be one of {', '.join(MeasureKind)}, got {kind!r}") from None
    if kind in (MeasureKind.RESTRICTION, MeasureKind.SUSPENSION):
        if duration is None or duration <= dt.timedelta(0):
            raise UsageError(f"a {kind.value} needs a positive duration")
    elif duration is not None:
        raise UsageError(f"a {kind.value} has no duration")
    if kind is MeasureKind.RESTRICTION:
        taken = policy.restricted_functions if functions is None else _usage_functions(functions)
    elif kind is MeasureKind.WARNING:
        taken = frozenset()
    else:
        taken = frozenset(Function)
    if functions is not None and kind is not MeasureKind.RESTRICTION:
        raise UsageError("only a restriction names the functions it takes away")
    row = MeasureRow(
        user_ref=check_ref("user_ref", user_ref),
        kind=kind.value,
        functions=sorted(f.value for f in taken),
        reason=check_text("reason", reason, max_length=MAX_TEXT),
        evidence=_evidence(evidence),
        strike_ids=[int(i) for i in strike_ids],
        trigger=trigger,
        actor=_check_actor(actor),
        imposed_at=now,
        ends_at=None if duration is None else now + duration,
        state=MeasureState.ACTIVE.value,
        lifted_at=None,
        lifted_by=None,
        lifted_reason=None,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        event="disposal.measure",
        actor=row.actor,
        subject=f"measure:{row.id}",
        data={
            "user_ref": row.user_ref, "kind": row.kind, "functions": row.functions, "reason": row.reason,
            "evidence": row.evidence, "strike_ids": row.strike_ids, "trigger": row.trigger,
            "ends_at": row.ends_at.isoformat() if row.ends_at else None,
        },
    )  # fmt: skip
    return Measure.of(row)


def _usage_functions(values: Iterable[Function | str]) -> frozenset[Function]:
    try:
        found = frozenset(Function(v) for v in values)
    except ValueError:
        raise UsageError(f"functions are {', '.join(Function)}") from None
    if not found:
        raise UsageError("a restriction must take away at least one function")
    return found


def _measure_row(session: Session, measure_id: int, *, lock: bool = False) -> MeasureRow:
    row = session.get(MeasureRow, measure_id, with_for_update=lock or None)
    if row is None:
        raise NotFoundError(f"no measure {measure_id}")
    return row


def get_measure(session: Session, measure_id: int) -> Measure:
    return Measure.of(_measure_row(session, measure_id))


def lift_measure(
    session: Session, measure_id: int, *, actor: str, reason: str, now: dt.datetime | None = None
) -> Measure:
    """Lift a measure before its end (staff decision); ``ConflictError`` if already lifted."""
    now = aware_now(now)
    row = _measure_row(session, measure_id, lock=True)
    actor = _check_actor(actor)
    _lift(row, actor=actor, reason=check_text("reason", reason, max_length=MAX_TEXT), now=now)
    record_event(
        session,
        event="disposal.lifted",
        actor=actor,
        subject=f"measure:{row.id}",
        data={"user_ref": row.user_ref, "reason": row.lifted_reason},
    )
    return Measure.of(row)


def _lift(row: MeasureRow, *, actor: str, reason: str, now: dt.datetime) -> None:
    if row.state != MeasureState.ACTIVE.value:
        raise ConflictError(f"measure {row.id} is already lifted")
    row.state = MeasureState.LIFTED.value
    row.lifted_at = now
    row.lifted_by = actor
    row.lifted_reason = reason


def list_measures(
    session: Session,
    *,
    user_ref: str | None = None,
    in_force_at: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Measure]:
    """Measures, newest first; ``in_force_at``: only those in force then."""
    query = sa.select(MeasureRow).order_by(MeasureRow.id.desc())
    if user_ref is not None:
        query = query.where(MeasureRow.user_ref == user_ref)
    if in_force_at is not None:
        at = aware_now(in_force_at)
        query = query.where(
            MeasureRow.state == MeasureState.ACTIVE.value,
            MeasureRow.imposed_at <= at,
            sa.or_(MeasureRow.ends_at.is_(None), MeasureRow.ends_at > at),
        )
    rows = session.scalars(query.limit(_limit(limit)).offset(max(0, offset))).all()
    return [Measure.of(row) for row in rows]


def list_strikes(session: Session, *, user_ref: str, limit: int = 100, offset: int = 0) -> list[Strike]:
    """``user_ref`` 's strikes, newest first (expired and voided ones included)."""
    rows = session.scalars(
        sa.select(StrikeRow)
        .where(StrikeRow.user_ref == user_ref)
        .order_by(StrikeRow.id.desc())
        .limit(_limit(limit))
        .offset(max(0, offset))
    ).all()
    return [Strike.of(row) for row in rows]


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def current_restrictions(session: Session, user_ref: str, now: dt.datetime | None = None) -> Restrictions:
    """What ``user_ref`` may do at ``now`` (default: the current time). Warnings take nothing away."""
    now = aware_now(now)
    measures = tuple(
        m for m in list_measures(session, user_ref=user_ref, in_force_at=now, limit=MAX_LIMIT)
        if m.kind is not MeasureKind.WARNING
    )  # fmt: skip
    taken = frozenset().union(*(m.functions for m in measures)) if measures else frozenset()
    closed = any(m.kind is MeasureKind.CLOSURE for m in measures)
    ends = [m.ends_at for m in measures if m.functions]
    until = None if not ends or any(e is None for e in ends) else max(e for e in ends if e is not None)
    return Restrictions(
        user_ref=user_ref,
        can_generate=Function.GENERATE not in taken,
        can_publish=Function.PUBLISH not in taken,
        closed=closed,
        until=until,
        measures=measures,
    )


# -- appeals -----------------------------------------------------------------------------------


def file_appeal(
    session: Session, measure_id: int, *, statement: str, actor: str, now: dt.datetime | None = None
) -> Appeal:
    """Record the user's appeal against a measure (one per measure; the measure must not be lifted)."""
    now = aware_now(now)
    measure = _measure_row(session, measure_id, lock=True)
    if measure.state != MeasureState.ACTIVE.value:
        raise ConflictError(f"measure {measure_id} is lifted: there is nothing to appeal")
    if session.scalar(sa.select(AppealRow.id).where(AppealRow.measure_id == measure_id)) is not None:
        raise ConflictError(f"measure {measure_id} already has an appeal")
    row = AppealRow(
        measure_id=measure_id,
        filed_at=now,
        filed_by=_check_actor(actor),
        statement=check_text("statement", statement, max_length=MAX_TEXT),
        state=AppealState.PENDING.value,
        decided_at=None,
        decided_by=None,
        decision_reason=None,
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except exc.IntegrityError:
        raise ConflictError(f"measure {measure_id} already has an appeal") from None
    record_event(
        session,
        event="disposal.appeal",
        actor=row.filed_by,
        subject=f"appeal:{row.id}",
        data={"measure_id": measure_id, "user_ref": measure.user_ref, "statement": row.statement},
    )
    return Appeal.of(row)


def _appeal_row(session: Session, appeal_id: int, *, lock: bool = False) -> AppealRow:
    row = session.get(AppealRow, appeal_id, with_for_update=lock or None)
    if row is None:
        raise NotFoundError(f"no appeal {appeal_id}")
    return row


def get_appeal(session: Session, appeal_id: int) -> Appeal:
    return Appeal.of(_appeal_row(session, appeal_id))


def list_appeals(
    session: Session, *, state: AppealState | None = None, limit: int = 100, offset: int = 0
) -> list[Appeal]:
    """Appeals, oldest first (the queue order)."""
    query = sa.select(AppealRow).order_by(AppealRow.id)
    if state is not None:
        query = query.where(AppealRow.state == AppealState(state).value)
    rows = session.scalars(query.limit(_limit(limit)).offset(max(0, offset))).all()
    return [Appeal.of(row) for row in rows]


def decide_appeal(
    session: Session,
    appeal_id: int,
    *,
    overturn: bool,
    reason: str,
    actor: str,
    now: dt.datetime | None = None,
) -> Appeal:
    """Decide an appeal: uphold the measure, or overturn it (lift it and void its strikes).

    The decider must be a second reviewer: ``PermissionDeniedError`` when ``actor`` imposed the
    measure or filed the appeal. ``ConflictError`` when it is already decided.
    """
    now = aware_now(now)
    actor = _check_actor(actor)
    row = _appeal_row(session, appeal_id, lock=True)
    if row.state != AppealState.PENDING.value:
        raise ConflictError(f"appeal {appeal_id} is already decided ({row.state})")
    measure = _measure_row(session, row.measure_id, lock=True)
    if actor in (measure.actor, row.filed_by):
        raise PermissionDeniedError(
            f"appeal {appeal_id} must be decided by a second reviewer, not {actor} who "
            f"{'imposed the measure' if actor == measure.actor else 'filed the appeal'}"
        )
    reason = check_text("reason", reason, max_length=MAX_TEXT)
    row.state = (AppealState.OVERTURNED if overturn else AppealState.UPHELD).value
    row.decided_at = now
    row.decided_by = actor
    row.decision_reason = reason
    voided: list[int] = []
    if overturn:
        if measure.state == MeasureState.ACTIVE.value:
            _lift(measure, actor=actor, reason=f"overturned on appeal {appeal_id}: {reason}", now=now)
        for strike in session.scalars(
            sa.select(StrikeRow).where(StrikeRow.id.in_(measure.strike_ids), StrikeRow.voided_at.is_(None))
        ):
            strike.voided_at = now
            strike.voided_reason = f"measure {measure.id} overturned on appeal {appeal_id}"
            voided.append(strike.id)
    session.flush()
    record_event(
        session,
        event="disposal.appeal_decided",
        actor=actor,
        subject=f"appeal:{row.id}",
        data={
            "measure_id": measure.id, "user_ref": measure.user_ref, "decision": row.state,
            "reason": reason, "voided_strike_ids": voided,
        },
    )  # fmt: skip
    return Appeal.of(row)
