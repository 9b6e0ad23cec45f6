"""Generation records: the watermark's ProduceID leads back to the user; the Measures Art. 9 log."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from synthguard.aigc import ProduceID
from synthguard.config import Settings
from synthguard.errors import ConflictError, NotFoundError, UsageError
from synthguard.governance import documents, generation, identity
from synthguard.governance.documents import DocumentKind
from synthguard.governance.identity import IdentifierType, SubjectKind
from synthguard.governance.verifiers import StaticIdentityVerifier
from synthguard.store import Store
from tests.governance.conftest import RESIDENT_ID, audit_events

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
DIGEST = hashlib.sha256(b"generated image").hexdigest()

KNOWS_ZHANG_SAN = StaticIdentityVerifier([("resident_id", RESIDENT_ID, "张三")])


def _record(store: Store, **overrides: object) -> generation.GenerationView:
    values: dict[str, object] = {
        "produce_id": ProduceID.new(),
        "user_ref": "u-1",
        "modality": "image",
        "content_digest": DIGEST,
        "labels": ["metadata", "visible", "watermark"],
        "unlabeled_agreement_version": None,
        "now": NOW,
    }
    values.update(overrides)
    with store.session(write=True) as session:
        return generation.record_generation(session, **values)  # type: ignore[arg-type]


def test_a_watermark_produce_id_leads_back_to_the_masked_real_name_user(
    gov_store: Store, gov_settings: Settings
) -> None:
    with gov_store.session(write=True) as session:
        identity.register_subject(
            session, gov_settings, user_ref="u-1", kind=SubjectKind.PERSON, actor="system"
        )
        identity.submit_identity(
            session, gov_settings, user_ref="u-1", id_type=IdentifierType.RESIDENT_ID, number=RESIDENT_ID,
            name="张三", actor="system", verifier=KNOWS_ZHANG_SAN,
        )  # fmt: skip
    pid = ProduceID.new()
    recorded = _record(gov_store, produce_id=pid.lower())
    assert recorded.produce_id == pid and recorded.explicit_label
    with gov_store.session() as session:
        trace = generation.find_generation(session, pid)
        assert trace.generation.user_ref == "u-1" and trace.identity is not None
        assert (
            trace.identity.name_masked == "张*"
            and trace.identity.identifiers[0].masked == "110105********002X"
        )
        assert RESIDENT_ID not in str(trace.to_dict())
        assert [g.produce_id for g in generation.find_generations_by_digest(session, DIGEST.upper())] == [pid]
        with pytest.raises(NotFoundError):
            generation.find_generation(session, ProduceID.new())
    (event,) = audit_events(gov_store, event="generation.recorded")
    assert event["subject"] == f"generation:{pid}" and event["actor"] == "system"
    assert event["data"]["labels"] == ["metadata", "visible", "watermark"]


def test_unregistered_users_trace_without_identity(gov_store: Store) -> None:
    pid = _record(gov_store, user_ref="anon-1").produce_id
    with gov_store.session() as session:
        assert generation.find_generation(session, pid).identity is None


def test_unlabeled_output_needs_an_accepted_agreement(gov_store: Store) -> None:
    with pytest.raises(UsageError, match=r"Measures Art\. 9"):
        _record(gov_store, labels=["metadata"])
    with pytest.raises(ConflictError, match="has not accepted"):
        _record(gov_store, labels=["metadata"], unlabeled_agreement_version="1")
    with gov_store.session(write=True) as session:
        documents.publish_document(
            session, kind=DocumentKind.UNLABELED_OUTPUT_AGREEMENT, version="1", title="不添加显式标识协议",
            body="用户承诺...", actor="user:carol", now=NOW - dt.timedelta(days=1),
        )  # fmt: skip
        documents.accept_document(
            session,
            user_ref="u-1",
            kind=DocumentKind.UNLABELED_OUTPUT_AGREEMENT,
            version="1",
            actor="token:gw",
        )
    unlabeled = _record(gov_store, labels=["metadata", "watermark"], unlabeled_agreement_version="1")
    labeled = _record(gov_store)
    assert not unlabeled.explicit_label and unlabeled.unlabeled_agreement_version == "1"
    with gov_store.session() as session:
        log = generation.unlabeled_log(
            session, since=NOW - dt.timedelta(hours=1), until=NOW + dt.timedelta(hours=1)
        )
        assert [g.produce_id for g in log] == [unlabeled.produce_id]
        assert generation.unlabeled_log(session, user_ref="u-2") == []
        assert labeled.produce_id not in {g.produce_id for g in generation.unlabeled_log(session)}
    with pytest.raises(UsageError, match="only for content without"):
        _record(gov_store, unlabeled_agreement_version="1")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"produce_id": "xyz"}, "16 hex"),
        ({"modality": "smell"}, "modality"),
        ({"content_digest": "abc"}, "SHA-256"),
        ({"labels": ["visible", "tattoo"]}, "unknown label"),
        ({"user_ref": "a b"}, "user_ref"),
    ],
)
def test_bad_records(gov_store: Store, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _record(gov_store, **overrides)


def test_a_produce_id_is_recorded_once(gov_store: Store) -> None:
    pid = ProduceID.new()
    _record(gov_store, produce_id=pid)
    with pytest.raises(ConflictError, match="already recorded"):
        _record(gov_store, produce_id=pid)
