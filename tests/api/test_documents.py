"""``/api/documents`` end to end: publish, public reading, acceptances, assessments, the filing number."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from synthguard.accounts.roles import Role
from synthguard.store import Store
from tests.api.conftest import ClientFactory
from tests.governance.conftest import audit_events


@pytest.fixture
def api_settings_overrides() -> dict[str, Any]:
    return {"filing_number": "Beijing-SG-202601010001", "filing_link": "https://beian.example.cn/a/1"}


def test_filing_number_is_public(client: TestClient) -> None:
    response = client.get("/api/documents/filing")
    assert response.status_code == 200
    assert response.json() == {
        "filing_number": "Beijing-SG-202601010001",
        "filing_link": "https://beian.example.cn/a/1",
        "configured": True,
    }


def test_documents_acceptances_and_assessments(
    client: TestClient, client_as: ClientFactory, api_store: Store
) -> None:
    officer = client_as(Role.COMPLIANCE)
    reviewer = client_as(Role.REVIEWER)
    assert client.get("/api/documents/current/user_agreement").status_code == 404
    doc = {"kind": "user_agreement", "version": "2026.1", "title": "用户协议", "body": "第一条 ..."}
    assert reviewer.post("/api/documents", json=doc).status_code == 403
    assert client.post("/api/documents", json=doc).status_code == 401
    published = officer.post("/api/documents", json=doc)
    assert published.status_code == 201, published.text
    assert published.json()["sha256"] == hashlib.sha256("第一条 ...".encode()).hexdigest()
    assert officer.post("/api/documents", json=doc).status_code == 409

    current = client.get("/api/documents/current/user_agreement")
    assert current.status_code == 200 and current.json()["body"] == "第一条 ..."
    assert client.get("/api/documents/versions/user_agreement/2026.1").json()["version"] == "2026.1"
    assert client.get("/api/documents/versions/user_agreement/9").status_code == 404
    listed = reviewer.get("/api/documents").json()
    assert [d["version"] for d in listed] == ["2026.1"] and listed[0]["body"] is None

    accepted = officer.post(
        "/api/documents/acceptances", json={"user_ref": "u-1", "kind": "user_agreement", "version": "2026.1"}
    )
    assert accepted.status_code == 201 and accepted.json()["sha256"] == published.json()["sha256"]
    assert reviewer.get("/api/documents/acceptances/u-1").json()[0]["version"] == "2026.1"

    assessment = {
        "title": "人脸替换功能安全评估",
        "scope": "biometric_editing",
        "function_name": "face-swap v2",
        "assessor": "lab",
        "conclusion": "passed_with_conditions",
        "summary": "watermark strength raised",
        "assessed_at": "2026-11-01T00:00:00Z",
        "evidence": [
            {"name": "report.pdf", "sha256": "a" * 64, "size": 1000, "media_type": "application/pdf"}
        ],
    }
    made = officer.post("/api/documents/assessments", json=assessment)
    assert made.status_code == 201, made.text
    assert (
        reviewer.get(f"/api/documents/assessments/{made.json()['id']}").json()["evidence"][0]["sha256"]
        == "a" * 64
    )
    assert [a["id"] for a in reviewer.get("/api/documents/assessments").json()] == [made.json()["id"]]

    events = [
        e["event"] for e in audit_events(api_store) if e["subject"].startswith(("document:", "assessment:"))
    ]
    assert events == ["document.published", "document.accepted", "assessment.recorded"]
