"""Disposal (Art. 10): strikes, ladder, automatic triggers, restrictions, appeals; SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.audit.models import AuditRecordRow
from synthguard.config import Settings
from synthguard.errors import ConfigError, ConflictError, NotFoundError, PermissionDeniedError, UsageError
from synthguard.governance import disposal
from synthguard.governance.case_models import AppealState, Function, MeasureKind, MeasureState
from synthguard.store import Store
from tests.store import backends, migrated_store

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
SETTINGS = Settings(
    disposal_ladder=("2=warning", "4=restriction:7d", "6=suspension:1d", "10=suspension:30d", "20=closure"),
    disposal_strike_weights=("A1=2", "A1.6=3", "A2=1"),
    disposal_default_weight=1.0,
    disposal_consecutive_limit=3,
    disposal_daily_limit=5,
    disposal_trigger_step="suspension",
)


@pytest.fixture(scope="module", params=backends())
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One migrated store per backend for the module (tests use distinct user refs)."""
    with migrated_store(request.param, tmp_path_factory.mktemp("disposal")) as opened:
        yield opened


def _strike(
    session: Session,
    user_ref: str,
    *,
    kind: str = "manual",
    reason: str = "r",
    actor: str = "user:a",
    settings: Settings = SETTINGS,
    **options: Any,
) -> disposal.StrikeOutcome:
    """``disposal.record_strike`` with the tests' usual kind, reason, actor and policy."""
    return disposal.record_strike(
        session, user_ref=user_ref, kind=kind, reason=reason, actor=actor, settings=settings, **options
    )


def _audit_count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(AuditRecordRow)) or 0)


def test_policy_parses_and_refuses_bad_settings() -> None:
    policy = disposal.policy_from(SETTINGS)
    assert [s.kind for s in policy.ladder] == [
        MeasureKind.WARNING,
        MeasureKind.RESTRICTION,
        MeasureKind.SUSPENSION,
        MeasureKind.SUSPENSION,
        MeasureKind.CLOSURE,
    ]
    assert policy.ladder[1].duration == dt.timedelta(days=7)
    assert policy.weight("A1.6") == 3 and policy.weight("A1.1") == 2 and policy.weight("A2.3") == 1
    assert policy.weight("A10.1") == 1.0 == policy.weight(None) == policy.weight("A4.1")
    bad = [
        {"disposal_ladder": ("2=warning", "1=closure")},  # points must rise
        {"disposal_ladder": ("2=suspension:7d", "4=suspension:1d")},  # severity must rise
        {"disposal_ladder": ("2=restriction",)},  # needs a duration
        {"disposal_ladder": ("2=closure:3d",)},
        {"disposal_ladder": ("x=warning",)},
        {"disposal_ladder": ("2=warning:1w",)},
        {"disposal_ladder": ()},
        {"disposal_strike_weights": ("A1",)},
        {"disposal_strike_weights": ("A1=-1",)},
        {"disposal_trigger_step": "ban"},
        {"disposal_trigger_step": "closure", "disposal_ladder": ("2=warning",)},
        {"disposal_restricted_functions": ("fly",)},
        {"disposal_strike_window_days": 0},
    ]
    for change in bad:
        with pytest.raises(ConfigError):
            disposal.DisposalPolicy.from_settings(dataclasses.replace(SETTINGS, **change))


def test_points_climb_the_ladder_and_restrictions_follow(store: Store) -> None:
    with store.session(write=True) as session:
        first = _strike(
            session,
            "u-1",
            kind="output",
            risk="A1.1",
            reason="generated illegal text",
            evidence={"review_hit_ids": [7], "sha256": "ab" * 32},
            actor="user:alice",
            now=T0,
        )
        assert first.points == 2 and first.measure is not None
        assert first.measure.kind is MeasureKind.WARNING and first.measure.trigger == "auto:points"
        assert first.measure.strike_ids == (first.strike.id,)
        restrictions = disposal.current_restrictions(session, "u-1", T0)
        assert restrictions.unrestricted and not restrictions.closed  # a warning takes nothing
        second = _strike(
            session,
            "u-1",
            kind="output",
            risk="A2.1",
            reason="again",
            actor="user:alice",
            now=T0 + dt.timedelta(hours=1),
        )
        assert second.points == 3 and second.measure is None  # 3 points: no new step
        third = _strike(
            session,
            "u-1",
            kind="publish",
            risk="A2.2",
            reason="published it",
            actor="user:alice",
            now=T0 + dt.timedelta(hours=2),
        )
        assert third.measure is not None and third.measure.kind is MeasureKind.RESTRICTION
        assert third.measure.functions == frozenset({Function.PUBLISH})
        at = T0 + dt.timedelta(hours=3)
        restrictions = disposal.current_restrictions(session, "u-1", at)
        assert restrictions.can_generate and not restrictions.can_publish
        assert restrictions.until == T0 + dt.timedelta(hours=2, days=7)
        later = disposal.current_restrictions(session, "u-1", T0 + dt.timedelta(days=8))
        assert later.unrestricted
        assert disposal.current_restrictions(session, "nobody", at).unrestricted


def test_strikes_expire_after_the_window(store: Store) -> None:
    settings = dataclasses.replace(SETTINGS, disposal_strike_window_days=10)
    with store.session(write=True) as session:
        _strike(session, "u-2", risk="A1.1", settings=settings, now=T0)
        assert disposal.active_points(session, "u-2", now=T0 + dt.timedelta(days=9)) == 2
        assert disposal.active_points(session, "u-2", now=T0 + dt.timedelta(days=10)) == 0
        # the old warning lies outside the window too: new points start the ladder again
        again = _strike(session, "u-2", risk="A1.1", settings=settings, now=T0 + dt.timedelta(days=20))
        assert again.measure is not None and again.measure.kind is MeasureKind.WARNING


def test_consecutive_violations_trigger_a_suspension_and_a_clean_input_resets_the_run(store: Store) -> None:
    settings = dataclasses.replace(SETTINGS, disposal_default_weight=0.5)  # points alone stay low
    with store.session(write=True) as session:
        at = T0
        for violated in (True, True, False, True, True):
            at += dt.timedelta(minutes=1)
            outcome = disposal.record_review_outcome(
                session, "u-3", violated, "A4.1", {"request": str(at)}, settings=settings, now=at
            )
            assert outcome is None or outcome.measure is None or outcome.measure.kind is MeasureKind.WARNING
        assert disposal.current_restrictions(session, "u-3", at).unrestricted
        at += dt.timedelta(minutes=1)
        outcome = disposal.record_review_outcome(
            session, "u-3", True, "A4.1", None, settings=settings, now=at
        )
        assert outcome is not None and outcome.measure is not None
        assert (
            outcome.measure.kind is MeasureKind.SUSPENSION and outcome.measure.trigger == "auto:consecutive"
        )
        assert outcome.measure.ends_at == at + dt.timedelta(days=1)
        assert "3 consecutive" in outcome.measure.reason
        restrictions = disposal.current_restrictions(session, "u-3", at)
        assert not restrictions.can_generate and not restrictions.can_publish
        # the next run of three escalates one step (30 days), then closure
        for _ in range(3):
            at += dt.timedelta(minutes=1)
            outcome = disposal.record_review_outcome(
                session, "u-3", True, "A4.1", None, settings=settings, now=at
            )
        assert outcome is not None and outcome.measure is not None
        assert outcome.measure.ends_at == at + dt.timedelta(days=30)


def test_five_violations_in_one_day_trigger(store: Store) -> None:
    settings = dataclasses.replace(SETTINGS, disposal_consecutive_limit=0)
    with store.session(write=True) as session:
        at = T0
        measures = []
        for _ in range(5):
            at += dt.timedelta(hours=1)
            disposal.record_review_outcome(session, "u-4", False, settings=settings, now=at)
            outcome = disposal.record_review_outcome(
                session, "u-4", True, "A5.1", None, settings=settings, now=at
            )
            assert outcome is not None
            if outcome.measure is not None:
                measures.append(outcome.measure)
        assert [m.trigger for m in measures] == ["auto:points", "auto:points", "auto:daily"]
        assert measures[-1].kind is MeasureKind.SUSPENSION


def test_clean_reviews_write_nothing(store: Store) -> None:
    before = _audit_count(store)
    with store.session(write=True) as session:
        assert disposal.record_review_outcome(session, "u-5", False, settings=SETTINGS, now=T0) is None
    assert _audit_count(store) == before


def test_every_change_is_audited_once(store: Store) -> None:
    before = _audit_count(store)
    with store.session(write=True) as session:
        outcome = _strike(session, "u-6", risk="A1.1", now=T0)
        assert outcome.measure is not None
    assert _audit_count(store) == before + 2  # the strike and the warning
    with store.session() as session:
        events = session.scalars(sa.select(AuditRecordRow.event).order_by(AuditRecordRow.idx)).all()[-2:]
    assert list(events) == ["disposal.strike", "disposal.measure"]


def test_manual_measures_are_checked(store: Store) -> None:
    with store.session(write=True) as session:
        with pytest.raises(UsageError):
            disposal.impose_measure(
                session, user_ref="u", kind="ban", reason="r", actor="user:a", settings=SETTINGS
            )
        with pytest.raises(UsageError):
            disposal.impose_measure(
                session,
                user_ref="u",
                kind=MeasureKind.SUSPENSION,
                reason="r",
                actor="user:a",
                settings=SETTINGS,
            )
        with pytest.raises(UsageError):
            disposal.impose_measure(
                session,
                user_ref="u",
                kind="warning",
                reason="r",
                actor="user:a",
                duration=dt.timedelta(days=1),
                settings=SETTINGS,
            )
        with pytest.raises(UsageError):
            disposal.impose_measure(session, user_ref="has space", kind="warning", reason="r", actor="user:a")
        with pytest.raises(UsageError):
            disposal.impose_measure(session, user_ref="u", kind="warning", reason=" ", actor="user:a")
        restriction = disposal.impose_measure(
            session,
            user_ref="u",
            kind="restriction",
            reason="r",
            actor="user:a",
            duration=dt.timedelta(hours=5),
            functions=["generate"],
            settings=SETTINGS,
            now=T0,
        )
        restrictions = disposal.current_restrictions(session, "u", T0 + dt.timedelta(hours=1))
        assert not restrictions.can_generate and restrictions.can_publish
        closure = disposal.impose_measure(
            session, user_ref="u", kind="closure", reason="r", actor="user:a", now=T0
        )
        restrictions = disposal.current_restrictions(session, "u", T0 + dt.timedelta(days=365))
        assert restrictions.closed and restrictions.until is None
        lifted = disposal.lift_measure(session, closure.id, actor="user:b", reason="mistake", now=T0)
        assert lifted.state is MeasureState.LIFTED and lifted.lifted_by == "user:b"
        with pytest.raises(ConflictError):
            disposal.lift_measure(session, closure.id, actor="user:b", reason="again")
        with pytest.raises(NotFoundError):
            disposal.lift_measure(session, 999_999, actor="user:b", reason="x")
        assert disposal.current_restrictions(session, "u", T0 + dt.timedelta(days=365)).unrestricted
        assert [m.id for m in disposal.list_measures(session, user_ref="u")] == [closure.id, restriction.id]


def test_appeal_is_decided_by_a_second_reviewer_and_overturning_lifts_and_voids(store: Store) -> None:
    with store.session(write=True) as session:
        strike = _strike(session, "u-7", risk="A1.6", actor="user:alice", escalate=False, now=T0)
        measure = disposal.impose_measure(
            session,
            user_ref="u-7",
            kind="suspension",
            reason="manual suspension",
            actor="user:alice",
            duration=dt.timedelta(days=3),
            strike_ids=[strike.strike.id],
            settings=SETTINGS,
            now=T0,
        )
        appeal = disposal.file_appeal(session, measure.id, statement="I did not", actor="user:carol", now=T0)
        assert appeal.state is AppealState.PENDING
        with pytest.raises(ConflictError):
            disposal.file_appeal(session, measure.id, statement="again", actor="user:carol")
        with pytest.raises(PermissionDeniedError):
            disposal.decide_appeal(session, appeal.id, overturn=True, reason="self", actor="user:alice")
        with pytest.raises(PermissionDeniedError):
            disposal.decide_appeal(session, appeal.id, overturn=True, reason="self", actor="user:carol")
        decided = disposal.decide_appeal(
            session,
            appeal.id,
            overturn=True,
            reason="wrong match",
            actor="user:bob",
            now=T0 + dt.timedelta(hours=1),
        )
        assert decided.state is AppealState.OVERTURNED and decided.decided_by == "user:bob"
        with pytest.raises(ConflictError):
            disposal.decide_appeal(session, appeal.id, overturn=False, reason="x", actor="user:dave")
        after = disposal.get_measure(session, measure.id)
        assert after.state is MeasureState.LIFTED and "overturned on appeal" in (after.lifted_reason or "")
        assert disposal.current_restrictions(session, "u-7", T0 + dt.timedelta(hours=2)).unrestricted
        assert disposal.active_points(session, "u-7", now=T0 + dt.timedelta(hours=2)) == 0
        (voided,) = disposal.list_strikes(session, user_ref="u-7")
        assert voided.voided_at is not None
        with pytest.raises(ConflictError):  # a lifted measure cannot be appealed
            other = disposal.impose_measure(
                session, user_ref="u-7", kind="warning", reason="w", actor="user:a"
            )
            disposal.lift_measure(session, other.id, actor="user:b", reason="x")
            disposal.file_appeal(session, other.id, statement="s", actor="user:c")


def test_upheld_appeal_keeps_the_measure(store: Store) -> None:
    with store.session(write=True) as session:
        outcome = _strike(session, "u-8", risk="A1.1", actor="user:alice", now=T0)
        assert outcome.measure is not None and outcome.measure.actor == "system"
        appeal = disposal.file_appeal(session, outcome.measure.id, statement="s", actor="user:carol")
        decided = disposal.decide_appeal(
            session, appeal.id, overturn=False, reason="correct", actor="user:bob"
        )
        assert decided.state is AppealState.UPHELD
        assert disposal.get_measure(session, outcome.measure.id).state is MeasureState.ACTIVE
        assert [a.id for a in disposal.list_appeals(session, state=AppealState.UPHELD)] == [appeal.id]
        assert disposal.list_appeals(session, state=AppealState.PENDING) == []


def test_naive_times_are_refused(store: Store) -> None:
    with store.session() as session, pytest.raises(UsageError):
        disposal.current_restrictions(session, "u", dt.datetime(2026, 1, 1))
