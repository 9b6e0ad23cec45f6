"""Consent to biometric editing (Art. 14): granting, the gateway's check, expiry, revocation."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from synthguard.errors import ConflictError, NotFoundError, UsageError
from synthguard.governance import consent
from synthguard.governance.consent import Biometric, ConsentReason, Evidence, check_biometric_consent
from synthguard.store import Store
from tests.governance.conftest import audit_events

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
EVIDENCE = Evidence(hashlib.sha256(b"signed consent form").hexdigest(), 19, "application/pdf")


def _grant(store: Store, **overrides: object) -> int:
    values: dict[str, object] = {
        "subject_ref": "person-7",
        "biometric": Biometric.FACE,
        "purpose": "face_swap_advert",
        "evidence": EVIDENCE,
        "actor": "user:carol",
        "purpose_detail": "spring campaign video",
        "now": NOW,
    }
    values.update(overrides)
    with store.session(write=True) as session:
        return consent.grant_consent(session, **values).id  # type: ignore[arg-type]


def _check(store: Store, at: dt.datetime = NOW, **overrides: str) -> consent.ConsentDecision:
    args = {"subject_ref": "person-7", "biometric": "face", "purpose": "face_swap_advert"} | overrides
    with store.session() as session:
        return check_biometric_consent(
            session, args["subject_ref"], args["biometric"], args["purpose"], at=at
        )


def test_no_consent_refuses(gov_store: Store) -> None:
    decision = _check(gov_store)
    assert not decision.allowed and decision.reason is ConsentReason.NO_CONSENT


def test_granted_consent_covers_only_its_person_biometric_and_purpose(gov_store: Store) -> None:
    consent_id = _grant(gov_store, expires_at=NOW + dt.timedelta(days=30))
    decision = _check(gov_store)
    assert decision.allowed and decision.consent_id == consent_id and decision.reason is ConsentReason.GRANTED
    assert _check(gov_store, purpose="FACE_SWAP_ADVERT").allowed  # purposes are case-folded codes
    assert not _check(gov_store, biometric="voice").allowed
    assert not _check(gov_store, purpose="political_speech").allowed
    assert not _check(gov_store, subject_ref="person-8").allowed
    expired = _check(gov_store, at=NOW + dt.timedelta(days=30))
    assert not expired.allowed and expired.reason is ConsentReason.EXPIRED
    early = _check(gov_store, at=NOW - dt.timedelta(seconds=1))
    assert not early.allowed and early.reason is ConsentReason.NOT_YET_VALID
    (event,) = audit_events(gov_store, subject=f"consent:{consent_id}")
    assert event["event"] == "consent.granted" and event["data"]["evidence_sha256"] == EVIDENCE.sha256


def test_revocation_ends_consent_from_then_on(gov_store: Store) -> None:
    consent_id = _grant(gov_store)
    with gov_store.session(write=True) as session:
        revoked = consent.revoke_consent(
            session, consent_id=consent_id, reason="withdrawn by email", actor="user:carol",
            now=NOW + dt.timedelta(days=1),
        )  # fmt: skip
    assert revoked.revoked_by == "user:carol"
    assert _check(gov_store, at=NOW + dt.timedelta(hours=1)).allowed
    after = _check(gov_store, at=NOW + dt.timedelta(days=2))
    assert not after.allowed and after.reason is ConsentReason.REVOKED
    with gov_store.session(write=True) as session, pytest.raises(ConflictError, match="already revoked"):
        consent.revoke_consent(session, consent_id=consent_id, reason="again", actor="user:carol")
    with gov_store.session(write=True) as session, pytest.raises(NotFoundError):
        consent.revoke_consent(session, consent_id=9999, reason="x", actor="user:carol")
    # a new consent after a revocation counts again
    _grant(gov_store, granted_at=NOW + dt.timedelta(days=3), now=NOW + dt.timedelta(days=3))
    assert _check(gov_store, at=NOW + dt.timedelta(days=4)).allowed
    events = [e["event"] for e in audit_events(gov_store) if e["subject"].startswith("consent:")]
    assert events == ["consent.granted", "consent.revoked", "consent.granted"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"expires_at": NOW}, "expire after"),
        ({"purpose": "face swap!"}, "purpose"),
        ({"evidence": Evidence("abc", 1, "image/png")}, "sha256"),
        ({"evidence": Evidence(EVIDENCE.sha256, -1, "image/png")}, "negative"),
        ({"evidence": Evidence(EVIDENCE.sha256, 1, "png")}, "type/subtype"),
        ({"subject_ref": ""}, "user_ref"),
        ({"purpose_detail": "x" * 2001}, "2000"),
    ],
)
def test_bad_consents_are_refused(gov_store: Store, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _grant(gov_store, **overrides)


def test_bad_checks_are_usage_errors(gov_store: Store) -> None:
    with pytest.raises(ValueError):
        _check(gov_store, biometric="tail")
    with pytest.raises(UsageError):
        _check(gov_store, purpose="")


def test_listing(gov_store: Store) -> None:
    first = _grant(gov_store)
    second = _grant(gov_store, subject_ref="person-8", biometric=Biometric.VOICE, purpose="dubbing")
    with gov_store.session() as session:
        assert [c.id for c in consent.list_consents(session)] == [second, first]
        assert [c.id for c in consent.list_consents(session, subject_ref="person-8")] == [second]
        assert consent.get_consent(session, first).to_dict()["evidence"]["size"] == 19
        with pytest.raises(NotFoundError):
            consent.get_consent(session, 12345)
