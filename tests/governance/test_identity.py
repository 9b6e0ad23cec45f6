"""Identity (Art. 9): parsers of untrusted numbers, states, SMS codes, verifiers, overrides, publishing."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from stdnum.cn import ric

from synthguard.config import Settings
from synthguard.errors import (
    ConflictError,
    ExternalServiceError,
    InvalidIdentifierError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UsageError,
)
from synthguard.governance import identity
from synthguard.governance.crypto import IdentityCipher
from synthguard.governance.identity import (
    IdentifierType,
    IdentityState,
    SmsOutcome,
    SubjectKind,
    can_publish,
    parse_mobile,
    parse_resident_id,
    parse_uscc,
)
from synthguard.governance.models import IdentifierRow, SmsChallengeRow, SubjectRow
from synthguard.governance.sms import ConsoleSmsSender
from synthguard.governance.verifiers import StaticIdentityVerifier
from synthguard.store import Store
from tests.governance.conftest import MOBILE, MOBILE_E164, RESIDENT_ID, RESIDENT_ID_2, USCC, audit_events

TODAY = dt.date(2026, 11, 28)
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
STAFF = "user:alice"
OTHER_STAFF = "user:bob"


def make_id(area: str = "110101", birth: str = "19900307", seq: str = "123") -> str:
    body = area + birth + seq
    return body + ric.calc_check_digit(body + "0")


# -- parsers -------------------------------------------------------------------------------------


def _request_override(
    session: Session, config: Settings, target: IdentityState, *, reason: str, **options: Any
) -> identity.OverrideView:
    """Staff ask for user ``u-1``'s identity state to be set to ``target``."""
    return identity.request_override(
        session, config, user_ref="u-1", target_state=target, reason=reason, actor=STAFF, **options
    )


def test_resident_id_accepts_well_formed_numbers_in_the_ways_people_type_them() -> None:
    assert parse_resident_id(RESIDENT_ID, today=TODAY).birth_date == dt.date(1949, 12, 31)
    assert parse_resident_id("11010519491231002x", today=TODAY).number == RESIDENT_ID
    assert parse_resident_id("110105 1949 1231 002X", today=TODAY).number == RESIDENT_ID
    assert parse_resident_id("110105-19491231-002X", today=TODAY).number == RESIDENT_ID
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in RESIDENT_ID)  # １１０１０５...
    assert parse_resident_id(full_width, today=TODAY).number == RESIDENT_ID
    parsed = parse_resident_id(RESIDENT_ID_2, today=TODAY)
    assert parsed.sex == "male" and parsed.area_code == "110101"
    assert RESIDENT_ID not in repr(parse_resident_id(RESIDENT_ID, today=TODAY))


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (RESIDENT_ID[:-1] + "1", "check character"),
        ("1101051949123100", "18 characters"),
        ("11010519491231002Y", "17 digits and a check character"),
        (make_id(birth="19900230"), "does not exist"),
        (make_id(birth="20270101"), "future"),
        (make_id(birth="18800101"), "not plausible"),
        (make_id(area="990101"), "area code 990101"),
        ("x" * 100, "too long"),
        ("", "18 characters"),
    ],
)
def test_resident_id_refusals_say_why_and_mask_the_number(number: str, message: str) -> None:
    with pytest.raises(InvalidIdentifierError, match=message) as caught:
        parse_resident_id(number, today=TODAY)
    if len(number) == 18:
        assert number not in str(caught.value)


def test_resident_id_future_birth_date_is_caught_where_stdnum_accepts_it() -> None:
    future = make_id(birth="20270101")
    assert ric.is_valid(future)  # python-stdnum lets it pass
    with pytest.raises(InvalidIdentifierError, match="future"):
        parse_resident_id(future, today=TODAY)


def test_residence_permits_of_hong_kong_macao_and_taiwan_residents_are_accepted() -> None:
    for area in ("810000", "820000", "830000"):
        number = make_id(area=area, birth="19800101")
        assert not ric.is_valid(number)  # stdnum rejects them (code younger than the holder, or unknown)
        assert parse_resident_id(number, today=TODAY).area_code == area


def test_area_code_created_after_the_birth_year_is_plausible() -> None:
    # 500101 (Wanzhou) exists from 1998: a person born in 1990 may hold it (assigned at issuance).
    number = make_id(area="500101", birth="19900101")
    assert parse_resident_id(number, today=TODAY).area_code == "500101"


def test_legacy_fifteen_digit_numbers_follow_the_policy() -> None:
    legacy = "110105491231002"
    with pytest.raises(InvalidIdentifierError, match="15-digit first-generation"):
        parse_resident_id(legacy, today=TODAY)
    converted = parse_resident_id(legacy, today=TODAY, accept_legacy=True)
    assert converted.number == RESIDENT_ID and converted.converted_from_legacy


def test_uscc_checks_both_check_characters_and_masks() -> None:
    assert parse_uscc(USCC) == USCC
    assert parse_uscc("91110102 macqd9k640") == USCC
    with pytest.raises(InvalidIdentifierError, match="check character") as caught:
        parse_uscc(USCC[:-1] + "1")
    assert USCC[:-1] not in str(caught.value)
    # organisation code check digit wrong, USCC check recomputed to be right
    from synthguard.aigc import _uscc_check_char

    body = USCC[:16] + ("0" if USCC[16] != "0" else "1")
    bad_org = body + _uscc_check_char(body)
    with pytest.raises(InvalidIdentifierError, match="organisation code") as caught:
        parse_uscc(bad_org)
    assert bad_org[8:17] not in str(caught.value)
    with pytest.raises(InvalidIdentifierError, match="18 characters"):
        parse_uscc("9111")


def test_mobile_numbers() -> None:
    assert parse_mobile(MOBILE) == MOBILE_E164
    assert parse_mobile("+86 138-1234-5678") == MOBILE_E164
    assert parse_mobile("１３８１２３４５６７８") == MOBILE_E164
    with pytest.raises(InvalidIdentifierError, match="not a mobile"):
        parse_mobile("010 6552 9988")  # Beijing fixed line
    with pytest.raises(InvalidIdentifierError, match="mainland China"):
        parse_mobile("+1 650 253 0000")
    with pytest.raises(InvalidIdentifierError):
        parse_mobile("hello")
    with pytest.raises(InvalidIdentifierError):
        parse_mobile("1" * 100)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parsers_only_ever_raise_invalid_identifier(text: str) -> None:
    for parse in (lambda t: parse_resident_id(t, today=TODAY, accept_legacy=True), parse_uscc, parse_mobile):
        with contextlib.suppress(InvalidIdentifierError):
            parse(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789X -", min_size=14, max_size=22))
def test_resident_id_parser_on_number_like_input(text: str) -> None:
    try:
        parsed = parse_resident_id(text, today=TODAY)
    except InvalidIdentifierError as exc:
        digits = text.replace(" ", "").replace("-", "")
        if len(digits) == 18:
            assert digits not in str(exc)
        return
    assert ric.calc_check_digit(parsed.number) == parsed.number[-1]
    assert parsed.birth_date <= TODAY


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXYIOSVZ", min_size=18, max_size=18))
def test_uscc_parser_on_code_like_input(text: str) -> None:
    try:
        assert parse_uscc(text) == text
    except InvalidIdentifierError as exc:
        assert text not in str(exc)


# -- services ------------------------------------------------------------------------------------


def _register(
    store: Store, settings: Settings, user_ref: str = "u-1", kind: SubjectKind = SubjectKind.PERSON
) -> None:
    with store.session(write=True) as session:
        identity.register_subject(
            session, settings, user_ref=user_ref, kind=kind, actor="token:gateway", now=NOW
        )


def test_register_and_view_with_nothing_unmasked(gov_store: Store, gov_settings: Settings) -> None:
    with gov_store.session(write=True) as session:
        view = identity.register_subject(
            session,
            gov_settings,
            user_ref="u-1",
            kind=SubjectKind.PERSON,
            name="张三",
            actor="token:gw",
            now=NOW,
        )
    assert view.state == IdentityState.UNVERIFIED and view.name_masked == "张*"
    assert not view.can_publish
    with gov_store.session(write=True) as session, pytest.raises(ConflictError):
        identity.register_subject(
            session, gov_settings, user_ref="u-1", kind=SubjectKind.PERSON, actor="system"
        )
    with gov_store.session() as session:
        assert not can_publish(session, "u-1")
        assert not can_publish(session, "nobody")
        assert not can_publish(session, "bad ref with spaces")
        with pytest.raises(NotFoundError):
            identity.get_identity(session, "nobody")
    events = audit_events(gov_store, subject="identity:u-1")
    assert [e["event"] for e in events] == ["identity.registered"]
    assert "张三" not in str(events)


def test_user_ref_is_checked(gov_store: Store, gov_settings: Settings) -> None:
    with gov_store.session(write=True) as session, pytest.raises(UsageError, match="user_ref"):
        identity.register_subject(
            session, gov_settings, user_ref="a b", kind=SubjectKind.PERSON, actor="system"
        )


def test_submit_with_a_verifier_match_verifies_and_encrypts(gov_store: Store, gov_settings: Settings) -> None:
    _register(gov_store, gov_settings)
    verifier = StaticIdentityVerifier([("resident_id", RESIDENT_ID, "张三")])
    with gov_store.session(write=True) as session:
        view = identity.submit_identity(
            session,
            gov_settings,
            user_ref="u-1",
            id_type=IdentifierType.RESIDENT_ID,
            number="11010519491231002x",
            name="张三",
            actor="token:gw",
            verifier=verifier,
            now=NOW,
        )
    assert view.state == IdentityState.VERIFIED and view.verified_method == "verifier:static"
    assert [i.masked for i in view.identifiers] == ["110105********002X"]
    with gov_store.session() as session:
        assert can_publish(session, "u-1")
        row = session.scalars(sa.select(IdentifierRow)).one()
        assert row.cipher is not None and RESIDENT_ID.encode() not in row.cipher
        assert RESIDENT_ID not in (row.lookup_hash or "")
    events = audit_events(gov_store, subject="identity:u-1")
    assert [e["event"] for e in events] == ["identity.registered", "identity.submitted", "identity.verified"]
    assert RESIDENT_ID not in str(events) and "张三" not in str(events)
    with gov_store.session() as session:
        revealed = identity.reveal_identity(
            session, gov_settings, user_ref="u-1", reason="request of the CAC, letter 12", actor=STAFF
        )
    assert revealed["name"] == "张三" and revealed["identifiers"][0]["number"] == RESIDENT_ID


def test_a_mismatch_rejects_and_releases_the_number(gov_store: Store, gov_settings: Settings) -> None:
    _register(gov_store, gov_settings, "thief")
    _register(gov_store, gov_settings, "owner")
    verifier = StaticIdentityVerifier([("resident_id", RESIDENT_ID, "张三")])
    with gov_store.session(write=True) as session:
        view = identity.submit_identity(
            session, gov_settings, user_ref="thief", id_type=IdentifierType.RESIDENT_ID,
            number=RESIDENT_ID, name="李四", actor="token:gw", verifier=verifier, now=NOW,
        )  # fmt: skip
    assert view.state == IdentityState.REJECTED and not view.can_publish
    with gov_store.session(write=True) as session:
        view = identity.submit_identity(
            session, gov_settings, user_ref="owner", id_type=IdentifierType.RESIDENT_ID,
            number=RESIDENT_ID, name="张三", actor="token:gw", verifier=verifier, now=NOW,
        )  # fmt: skip
    assert view.state == IdentityState.VERIFIED


def test_one_number_one_user_and_unavailable_verifier_stays_pending(
    gov_store: Store, gov_settings: Settings
) -> None:
    _register(gov_store, gov_settings, "a")
    _register(gov_store, gov_settings, "b")
    down = StaticIdentityVerifier(available=False)
    with gov_store.session(write=True) as session:
        view = identity.submit_identity(
            session, gov_settings, user_ref="a", id_type=IdentifierType.RESIDENT_ID,
            number=RESIDENT_ID, name="张三", actor="token:gw", verifier=down, now=NOW,
        )  # fmt: skip
    assert view.state == IdentityState.PENDING
    with (
        gov_store.session(write=True) as session,
        pytest.raises(ConflictError, match=r"110105\*+002X") as caught,
    ):
        identity.submit_identity(
            session, gov_settings, user_ref="b", id_type=IdentifierType.RESIDENT_ID,
            number=RESIDENT_ID, name="张三", actor="token:gw", now=NOW,
        )  # fmt: skip
    assert RESIDENT_ID not in str(caught.value)
    # the same user submitting the same number again is fine
    with gov_store.session(write=True) as session:
        identity.submit_identity(
            session, gov_settings, user_ref="a", id_type=IdentifierType.RESIDENT_ID,
            number=RESIDENT_ID, name="张三", actor="token:gw", now=NOW,
        )  # fmt: skip


def test_identifier_kinds_match_subject_kinds(gov_store: Store, gov_settings: Settings) -> None:
    _register(gov_store, gov_settings, "org", SubjectKind.ORGANISATION)
    _register(gov_store, gov_settings, "person")
    with gov_store.session(write=True) as session, pytest.raises(UsageError, match="organisation cannot"):
        identity.submit_identity(
            session, gov_settings, user_ref="org", id_type=IdentifierType.RESIDENT_ID,
            number=RESIDENT_ID, name="x", actor="system",
        )  # fmt: skip
    with gov_store.session(write=True) as session, pytest.raises(UsageError, match="SMS"):
        identity.submit_identity(
            session, gov_settings, user_ref="person", id_type=IdentifierType.MOBILE,
            number=MOBILE, name="x", actor="system",
        )  # fmt: skip
    with gov_store.session(write=True) as session:
        view = identity.submit_identity(
            session, gov_settings, user_ref="org", id_type=IdentifierType.USCC,
            number=USCC, name="北京某某科技有限公司", actor="system",
            verifier=StaticIdentityVerifier([("uscc", USCC, "北京某某科技有限公司")]),
        )  # fmt: skip
    assert view.state == IdentityState.VERIFIED and view.identifiers[0].masked == "911101********K640"


def test_sms_flow_verifies_and_counts_wrong_codes(
    gov_store: Store, gov_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    _register(gov_store, gov_settings)
    sender = ConsoleSmsSender()
    with caplog.at_level(logging.WARNING, logger="synthguard.sms"), gov_store.session(write=True) as session:
        challenge = identity.start_mobile_verification(
            session, gov_settings, user_ref="u-1", mobile=MOBILE, sender=sender, actor="token:gw", now=NOW
        )
    assert challenge.phone_masked == "+86 138****5678"
    ((phone, text),) = sender.outbox
    assert phone == MOBILE_E164
    code = "".join(c for c in text if c.isdigit())[:6]
    assert MOBILE not in caplog.text and "138****5678" in caplog.text
    with gov_store.session() as session:
        stored = session.get(SmsChallengeRow, challenge.challenge_id)
        assert stored is not None and code not in stored.code_hash
    wrong = "000000" if code != "000000" else "111111"
    with gov_store.session(write=True) as session:
        result = identity.confirm_mobile_verification(
            session, gov_settings, user_ref="u-1", challenge_id=challenge.challenge_id, code=wrong,
            actor="token:gw", now=NOW,
        )  # fmt: skip
    assert (
        result.outcome is SmsOutcome.WRONG_CODE
        and result.attempts_left == gov_settings.sms_code_max_attempts - 1
    )
    with gov_store.session(write=True) as session:
        result = identity.confirm_mobile_verification(
            session, gov_settings, user_ref="u-1", challenge_id=challenge.challenge_id, code=code,
            actor="token:gw", now=NOW + dt.timedelta(seconds=30),
        )  # fmt: skip
    assert result.outcome is SmsOutcome.VERIFIED and result.identity is not None
    assert result.identity.state == IdentityState.VERIFIED and result.identity.verified_method == "sms"
    with gov_store.session(write=True) as session:
        again = identity.confirm_mobile_verification(
            session, gov_settings, user_ref="u-1", challenge_id=challenge.challenge_id, code=code,
            actor="token:gw", now=NOW,
        )  # fmt: skip
    assert again.outcome is SmsOutcome.SPENT
    events = [e["event"] for e in audit_events(gov_store, subject="identity:u-1")]
    assert events == ["identity.registered", "identity.sms_sent", "identity.sms_failed", "identity.verified"]
    assert MOBILE not in str(audit_events(gov_store))


def test_sms_codes_expire_and_run_out_of_attempts(gov_store: Store, gov_settings: Settings) -> None:
    _register(gov_store, gov_settings)
    sender = ConsoleSmsSender()
    settings = dataclasses.replace(gov_settings, sms_code_max_attempts=2)
    with gov_store.session(write=True) as session:
        first = identity.start_mobile_verification(
            session, settings, user_ref="u-1", mobile=MOBILE, sender=sender, actor="system", now=NOW
        )
    with gov_store.session(write=True) as session:
        late = identity.confirm_mobile_verification(
            session, settings, user_ref="u-1", challenge_id=first.challenge_id, code="123456", actor="system",
            now=NOW + dt.timedelta(seconds=settings.sms_code_ttl_seconds),
        )  # fmt: skip
    assert late.outcome is SmsOutcome.EXPIRED
    with gov_store.session(write=True) as session:
        second = identity.start_mobile_verification(
            session, settings, user_ref="u-1", mobile=MOBILE, sender=sender, actor="system", now=NOW
        )
    code = "".join(c for c in sender.outbox[-1][1] if c.isdigit())[:6]
    wrong = "000000" if code != "000000" else "111111"
    outcomes = []
    for attempt in (wrong, wrong, code):
        with gov_store.session(write=True) as session:
            outcomes.append(
                identity.confirm_mobile_verification(
                    session,
                    settings,
                    user_ref="u-1",
                    challenge_id=second.challenge_id,
                    code=attempt,
                    actor="system",
                    now=NOW,
                ).outcome
            )
    assert outcomes == [SmsOutcome.WRONG_CODE, SmsOutcome.WRONG_CODE, SmsOutcome.SPENT]
    with gov_store.session(write=True) as session, pytest.raises(NotFoundError):
        identity.confirm_mobile_verification(
            session, settings, user_ref="u-1", challenge_id="nope", code=code, actor="system", now=NOW
        )


def test_sms_rate_limit_and_failed_sending_rolls_back(gov_store: Store, gov_settings: Settings) -> None:
    _register(gov_store, gov_settings)
    settings = dataclasses.replace(gov_settings, sms_max_per_hour=2)
    sender = ConsoleSmsSender()
    for minute in range(2):
        with gov_store.session(write=True) as session:
            identity.start_mobile_verification(
                session, settings, user_ref="u-1", mobile=MOBILE, sender=sender, actor="system",
                now=NOW + dt.timedelta(minutes=minute),
            )  # fmt: skip
    with gov_store.session(write=True) as session, pytest.raises(RateLimitError) as caught:
        identity.start_mobile_verification(
            session, settings, user_ref="u-1", mobile=MOBILE, sender=sender, actor="system",
            now=NOW + dt.timedelta(minutes=2),
        )  # fmt: skip
    assert 3400 < caught.value.retry_after <= 3600

    class Broken:
        name = "broken"

        def send(self, phone: str, text: str) -> None:
            raise ExternalServiceError("gateway down")

    with pytest.raises(ExternalServiceError), gov_store.session(write=True) as session:
        identity.start_mobile_verification(
            session, settings, user_ref="u-1", mobile="13912345678", sender=Broken(), actor="system",
            now=NOW + dt.timedelta(hours=2),
        )  # fmt: skip
    with gov_store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SmsChallengeRow)) == 2


def test_sms_to_a_number_bound_to_another_user_is_refused(gov_store: Store, gov_settings: Settings) -> None:
    _register(gov_store, gov_settings, "a")
    _register(gov_store, gov_settings, "b")
    sender = ConsoleSmsSender()
    with gov_store.session(write=True) as session:
        challenge = identity.start_mobile_verification(
            session, gov_settings, user_ref="a", mobile=MOBILE, sender=sender, actor="system", now=NOW
        )
    code = "".join(c for c in sender.outbox[-1][1] if c.isdigit())[:6]
    with gov_store.session(write=True) as session:
        identity.confirm_mobile_verification(
            session, gov_settings, user_ref="a", challenge_id=challenge.challenge_id, code=code,
            actor="system", now=NOW,
        )  # fmt: skip
    with gov_store.session(write=True) as session, pytest.raises(ConflictError, match="another user"):
        identity.start_mobile_verification(
            session, gov_settings, user_ref="b", mobile=MOBILE, sender=sender, actor="system", now=NOW
        )
    assert len(sender.outbox) == 1


def test_manual_override_needs_a_second_staff_member(gov_store: Store, gov_settings: Settings) -> None:
    _register(gov_store, gov_settings)
    genuine_but_unknown_area = make_id(area="990101")
    with gov_store.session(write=True) as session:
        request = _request_override(
            session,
            gov_settings,
            IdentityState.VERIFIED,
            reason="saw the card in person; area code is missing from the tables",
            id_type=IdentifierType.RESIDENT_ID,
            number=genuine_but_unknown_area,
            now=NOW,
        )
    assert request.identifier_masked == "990101********" + genuine_but_unknown_area[-4:]
    with gov_store.session(write=True) as session, pytest.raises(ConflictError, match="still pending"):
        _request_override(session, gov_settings, IdentityState.REJECTED, reason="x")
    with gov_store.session(write=True) as session, pytest.raises(PermissionDeniedError, match="second"):
        identity.decide_override(session, override_id=request.id, approve=True, reason="ok", actor=STAFF)
    with gov_store.session(write=True) as session:
        decided = identity.decide_override(
            session,
            override_id=request.id,
            approve=True,
            reason="checked the copy",
            actor=OTHER_STAFF,
            now=NOW,
        )
    assert decided.decision == "approved" and decided.decided_by == OTHER_STAFF
    with gov_store.session() as session:
        view = identity.get_identity(session, "u-1")
        assert view.state == IdentityState.VERIFIED and view.verified_method == f"manual:{request.id}"
        assert view.identifiers[0].verified and not view.identifiers[0].checksum_ok
        assert identity.list_overrides(session) == []
        assert len(identity.list_overrides(session, pending_only=False)) == 1
    with gov_store.session(write=True) as session, pytest.raises(ConflictError, match="already approved"):
        identity.decide_override(
            session, override_id=request.id, approve=False, reason="no", actor=OTHER_STAFF
        )
    events = [e["event"] for e in audit_events(gov_store, subject="identity:u-1")]
    assert events[-2:] == ["identity.override_requested", "identity.override_decided"]


def test_denied_override_and_override_to_rejected(gov_store: Store, gov_settings: Settings) -> None:
    _register(gov_store, gov_settings)
    with gov_store.session(write=True) as session:
        first = _request_override(session, gov_settings, IdentityState.VERIFIED, reason="vip")
        identity.decide_override(
            session, override_id=first.id, approve=False, reason="no evidence", actor=OTHER_STAFF
        )
        assert identity.get_identity(session, "u-1").state == IdentityState.UNVERIFIED
        second = _request_override(session, gov_settings, IdentityState.REJECTED, reason="fake")
        identity.decide_override(
            session, override_id=second.id, approve=True, reason="agreed", actor=OTHER_STAFF
        )
        assert identity.get_identity(session, "u-1").state == IdentityState.REJECTED
        with pytest.raises(UsageError):
            _request_override(session, gov_settings, IdentityState.PENDING, reason="x")
        with pytest.raises(UsageError, match="reason"):
            _request_override(session, gov_settings, IdentityState.VERIFIED, reason=" ")
        with pytest.raises(NotFoundError):
            identity.decide_override(session, override_id=999, approve=True, reason="x", actor=OTHER_STAFF)


def test_closed_accounts_cannot_publish_or_change(gov_store: Store, gov_settings: Settings) -> None:
    _register(gov_store, gov_settings)
    with gov_store.session(write=True) as session:
        request = _request_override(session, gov_settings, IdentityState.VERIFIED, reason="ok")
        identity.decide_override(
            session, override_id=request.id, approve=True, reason="ok", actor=OTHER_STAFF
        )
        assert can_publish(session, "u-1")
        identity.close_account(session, user_ref="u-1", reason="user asked", actor=STAFF, now=NOW)
        assert not can_publish(session, "u-1")
        with pytest.raises(ConflictError, match="closed"):
            identity.close_account(session, user_ref="u-1", reason="again", actor=STAFF)
        with pytest.raises(ConflictError, match="closed"):
            identity.submit_identity(
                session, gov_settings, user_ref="u-1", id_type=IdentifierType.RESIDENT_ID,
                number=RESIDENT_ID, name="张三", actor="system",
            )  # fmt: skip


def test_wrong_key_on_reveal_is_a_typed_error(gov_store: Store, gov_settings: Settings) -> None:
    from synthguard.errors import DecryptionError
    from synthguard.governance.crypto import generate_keys

    with gov_store.session(write=True) as session:
        identity.register_subject(
            session, gov_settings, user_ref="u-1", kind=SubjectKind.PERSON, name="张三", actor="system"
        )
    enc, _ = generate_keys()
    rotated = dataclasses.replace(gov_settings, identity_encryption_key=enc)
    with gov_store.session() as session, pytest.raises(DecryptionError, match="configure the key"):
        identity.reveal_identity(session, rotated, user_ref="u-1", reason="audit", actor=STAFF)
    assert IdentityCipher.from_settings(rotated).key_id != IdentityCipher.from_settings(gov_settings).key_id
    with gov_store.session() as session:
        assert session.scalars(sa.select(SubjectRow.name_masked)).one() == "张*"


# -- adapters of third parties (httpx.MockTransport) ---------------------------------------------


def test_http_sms_sender_posts_json_and_reports_failures_without_the_number() -> None:
    import httpx

    from synthguard.governance.sms import HttpSmsSender, sender_from_settings

    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200 if b"ok" in request.content else 503)

    with HttpSmsSender(
        "https://sms.example/send", token="t0k", client=httpx.Client(transport=httpx.MockTransport(gateway))
    ) as sender:
        sender.send(MOBILE_E164, "ok 123456")
        assert seen[0].headers["Authorization"] == "Bearer t0k"
        assert seen[0].read() == b'{"phone":"+8613812345678","text":"ok 123456"}'
        with pytest.raises(ExternalServiceError, match="HTTP 503") as caught:
            sender.send(MOBILE_E164, "fail")
        assert MOBILE not in str(caught.value)

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    broken = HttpSmsSender(
        "https://sms.example/send", client=httpx.Client(transport=httpx.MockTransport(unreachable))
    )
    with pytest.raises(ExternalServiceError, match="could not be reached"):
        broken.send(MOBILE_E164, "x")
    assert isinstance(sender_from_settings(Settings()), ConsoleSmsSender)
    made = sender_from_settings(Settings(sms_gateway_url="https://sms.example/send"))
    assert isinstance(made, HttpSmsSender)
    made.close()


def test_http_identity_verifier_maps_answers() -> None:
    import httpx

    from synthguard.governance.verifiers import (
        HttpIdentityVerifier,
        VerificationOutcome,
        VerificationRequest,
        verifier_from_settings,
    )

    answers = {
        "match": httpx.Response(200, json={"result": "match", "reference": "R1"}),
        "mismatch": httpx.Response(200, json={"result": "mismatch"}),
        "down": httpx.Response(502),
        "forbidden": httpx.Response(403),
        "garbage": httpx.Response(200, text="<html>"),
    }

    def service(request: httpx.Request) -> httpx.Response:
        import json

        return answers[json.loads(request.content)["name"]]

    verifier = HttpIdentityVerifier(
        "https://id.example/check", client=httpx.Client(transport=httpx.MockTransport(service))
    )

    def ask(name: str) -> VerificationOutcome:
        return verifier.verify(VerificationRequest("resident_id", RESIDENT_ID, name)).outcome

    assert verifier.verify(VerificationRequest("resident_id", RESIDENT_ID, "match")).reference == "R1"
    assert ask("mismatch") is VerificationOutcome.MISMATCH
    assert ask("down") is VerificationOutcome.UNAVAILABLE
    with pytest.raises(ExternalServiceError, match="HTTP 403"):
        ask("forbidden")
    with pytest.raises(ExternalServiceError, match="unknown shape"):
        ask("garbage")
    assert RESIDENT_ID not in repr(VerificationRequest("resident_id", RESIDENT_ID, "张三"))
    assert verifier_from_settings(Settings()) is None
    verifier.close()


def test_a_concurrent_duplicate_becomes_a_conflict_and_the_transaction_survives(
    gov_store: Store, gov_settings: Settings
) -> None:
    # What a second transaction sees when it passed the duplicate check at the same time as the first.
    _register(gov_store, gov_settings, "u-1")
    with gov_store.session(write=True) as session:
        duplicate = SubjectRow(
            user_ref="u-1", kind="person", state="unverified", created_at=NOW, updated_at=NOW
        )
        with pytest.raises(ConflictError, match="already registered"):
            identity.insert_unique(session, duplicate, "user 'u-1' is already registered")
        identity.register_subject(
            session, gov_settings, user_ref="u-2", kind=SubjectKind.PERSON, actor="system"
        )
    with gov_store.session() as session:
        assert sorted(session.scalars(sa.select(SubjectRow.user_ref))) == ["u-1", "u-2"]
