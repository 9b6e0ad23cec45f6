"""``/api/consent`` end to end: record, check (the gateway's question), revoke, list; roles."""

from __future__ import annotations

import hashlib

from synthguard.accounts.roles import Role
from synthguard.store import Store
from tests.api.conftest import ClientFactory
from tests.governance.conftest import audit_events

SHA = hashlib.sha256(b"signed form").hexdigest()
CHECK = "/api/consent/check?subject_ref=person-7&biometric=face&purpose=face_swap_advert"


def test_consent_lifecycle(client_as: ClientFactory, api_store: Store) -> None:
    officer = client_as(Role.COMPLIANCE)
    gateway = client_as.token(Role.REVIEWER)
    auditor = client_as(Role.AUDITOR)
    assert gateway.get(CHECK).json() == {
        "allowed": False,
        "reason": "no_consent",
        "consent_id": None,
        "expires_at": None,
    }

    body = {
        "subject_ref": "person-7",
        "biometric": "face",
        "purpose": "face_swap_advert",
        "purpose_detail": "spring campaign",
        "evidence": {"sha256": SHA, "size": 11, "media_type": "application/pdf"},
        "expires_at": "2099-01-01T00:00:00Z",
    }
    assert auditor.post("/api/consent/consents", json=body).status_code == 403
    created = officer.post("/api/consent/consents", json=body)
    assert created.status_code == 201, created.text
    consent_id = created.json()["id"]
    decision = gateway.get(CHECK).json()
    assert decision["allowed"] and decision["consent_id"] == consent_id and decision["reason"] == "granted"
    assert not gateway.get(CHECK.replace("face_swap_advert", "other")).json()["allowed"]
    assert gateway.get(CHECK.replace("biometric=face", "biometric=tail")).status_code == 422

    assert auditor.get("/api/consent/consents?subject_ref=person-7").json()[0]["id"] == consent_id
    assert auditor.get(f"/api/consent/consents/{consent_id}").json()["evidence"]["sha256"] == SHA
    assert auditor.get("/api/consent/consents/999999").status_code == 404

    revoked = officer.post(f"/api/consent/consents/{consent_id}/revoke", json={"reason": "withdrawn"})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert gateway.get(CHECK).json()["reason"] == "revoked"
    assert (
        officer.post(f"/api/consent/consents/{consent_id}/revoke", json={"reason": "again"}).status_code
        == 409
    )

    bad = officer.post("/api/consent/consents", json=body | {"expires_at": "2000-01-01T00:00:00Z"})
    assert bad.status_code == 400 and "expire after" in bad.json()["message"]
    assert officer.post("/api/consent/consents", json=body | {"surprise": 1}).status_code == 422

    events = [e["event"] for e in audit_events(api_store, subject=f"consent:{consent_id}")]
    assert events == ["consent.granted", "consent.revoked"]
