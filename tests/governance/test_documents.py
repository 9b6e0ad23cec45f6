"""Documents (Art. 7, 8; Measures Art. 9), acceptances, assessments (Art. 15, 20), filing (Art. 19)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from synthguard.config import Settings
from synthguard.errors import ConflictError, NotFoundError, UsageError
from synthguard.governance import documents
from synthguard.governance.consent import Evidence
from synthguard.governance.documents import AssessmentConclusion, AssessmentScope, DocumentKind, EvidenceItem
from synthguard.store import Store
from tests.governance.conftest import audit_events

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def _publish(store: Store, version: str, *, effective: dt.datetime = NOW, body: str = "条款") -> None:
    with store.session(write=True) as session:
        documents.publish_document(
            session, kind=DocumentKind.USER_AGREEMENT, version=version, title="用户协议", body=body,
            actor="user:carol", effective_from=effective, now=NOW,
        )  # fmt: skip


def test_versions_are_immutable_and_the_current_one_is_the_latest_in_effect(gov_store: Store) -> None:
    _publish(gov_store, "2026.1", effective=NOW - dt.timedelta(days=10), body="old terms")
    _publish(gov_store, "2026.2", effective=NOW + dt.timedelta(days=10), body="new terms")
    with pytest.raises(ConflictError, match="already published"):
        _publish(gov_store, "2026.1")
    with gov_store.session() as session:
        current = documents.current_document(session, DocumentKind.USER_AGREEMENT, at=NOW)
        assert current.version == "2026.1" and current.sha256 == hashlib.sha256(b"old terms").hexdigest()
        later = documents.current_document(
            session, DocumentKind.USER_AGREEMENT, at=NOW + dt.timedelta(days=11)
        )
        assert later.version == "2026.2"
        with pytest.raises(NotFoundError):
            documents.current_document(session, DocumentKind.PRIVACY_POLICY)
        assert [d.version for d in documents.list_documents(session)] == ["2026.1", "2026.2"]
        assert "body" not in documents.list_documents(session)[0].to_dict(with_body=False)
    events = audit_events(gov_store, event="document.published")
    assert [e["subject"] for e in events] == [
        "document:user_agreement/2026.1",
        "document:user_agreement/2026.2",
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("version", "v 1", "version"), ("title", "", "title"), ("body", "  ", "document text")],
)
def test_bad_documents(gov_store: Store, field: str, value: str, message: str) -> None:
    args = {
        "kind": DocumentKind.PLATFORM_RULES,
        "version": "1",
        "title": "rules",
        "body": "text",
        field: value,
    }
    with gov_store.session(write=True) as session, pytest.raises(UsageError, match=message):
        documents.publish_document(session, actor="user:carol", **args)  # type: ignore[arg-type]


def test_acceptances(gov_store: Store) -> None:
    _publish(gov_store, "2026.1")
    _publish(gov_store, "2026.2")
    with gov_store.session(write=True) as session:
        accepted = documents.accept_document(
            session,
            user_ref="u-1",
            kind=DocumentKind.USER_AGREEMENT,
            version="2026.1",
            actor="token:gw",
            now=NOW,
        )
        assert accepted.sha256 == hashlib.sha256("条款".encode()).hexdigest()
        documents.accept_document(
            session, user_ref="u-1", kind=DocumentKind.USER_AGREEMENT, version="2026.2", actor="token:gw",
            now=NOW + dt.timedelta(days=1),
        )  # fmt: skip
        with pytest.raises(ConflictError, match="already accepted"):
            documents.accept_document(
                session, user_ref="u-1", kind=DocumentKind.USER_AGREEMENT, version="2026.1", actor="token:gw"
            )
        with pytest.raises(NotFoundError):
            documents.accept_document(
                session, user_ref="u-1", kind=DocumentKind.USER_AGREEMENT, version="9", actor="token:gw"
            )
    with gov_store.session() as session:
        assert documents.has_accepted(session, "u-1", DocumentKind.USER_AGREEMENT, "2026.1")
        assert not documents.has_accepted(session, "u-2", DocumentKind.USER_AGREEMENT, "2026.1")
        assert documents.accepted_version(session, "u-1", DocumentKind.USER_AGREEMENT) == "2026.2"
        assert documents.accepted_version(session, "u-1", DocumentKind.PRIVACY_POLICY) is None
        assert [a.version for a in documents.acceptances_of(session, "u-1")] == ["2026.1", "2026.2"]
    assert len(audit_events(gov_store, event="document.accepted")) == 2


def test_assessments_with_evidence(gov_store: Store) -> None:
    report = Evidence(hashlib.sha256(b"report").hexdigest(), 6, "application/pdf")
    with gov_store.session(write=True) as session:
        view = documents.record_assessment(
            session, title="人脸替换功能安全评估", scope=AssessmentScope.BIOMETRIC_EDITING,
            function_name="face-swap v2", assessor="third-party lab", conclusion=AssessmentConclusion.PASSED,
            summary="all checks passed", assessed_at=NOW - dt.timedelta(days=1),
            evidence=[EvidenceItem("report.pdf", report)], actor="user:carol", now=NOW,
        )  # fmt: skip
    assert view.evidence[0].evidence.sha256 == report.sha256
    with gov_store.session() as session:
        assert documents.get_assessment(session, view.id).to_dict()["evidence"][0]["name"] == "report.pdf"
        assert [a.id for a in documents.list_assessments(session)] == [view.id]
        with pytest.raises(NotFoundError):
            documents.get_assessment(session, 999)
    (event,) = audit_events(gov_store, event="assessment.recorded")
    assert event["data"]["evidence"] == [report.sha256]
    with gov_store.session(write=True) as session, pytest.raises(UsageError, match="future"):
        documents.record_assessment(
            session, title="t", scope=AssessmentScope.OTHER, function_name="f", assessor="a",
            conclusion=AssessmentConclusion.FAILED, summary="", assessed_at=NOW + dt.timedelta(days=2),
            evidence=[], actor="user:carol", now=NOW,
        )  # fmt: skip


def test_filing_info_comes_from_settings(gov_settings: Settings) -> None:
    info = documents.filing_info(gov_settings)
    assert info.configured and info.number == "Beijing-SG-202601010001"
    assert not documents.filing_info(Settings()).configured
