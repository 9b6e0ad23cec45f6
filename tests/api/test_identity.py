"""``/api/identity`` end to end: registration, submissions, SMS codes, overrides, can-publish, masking."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from synthguard.accounts.roles import Role
from synthguard.api.routes.identity import identity_verifier, sms_sender
from synthguard.governance.crypto import generate_keys
from synthguard.governance.sms import ConsoleSmsSender
from synthguard.governance.verifiers import StaticIdentityVerifier
from synthguard.store import Store
from tests.api.conftest import ClientFactory
from tests.governance.conftest import MOBILE, RESIDENT_ID, USCC, audit_events

KEYS = generate_keys()


@pytest.fixture
def api_settings_overrides() -> dict[str, Any]:
    return {"identity_encryption_key": KEYS[0], "identity_hash_key": KEYS[1]}


@pytest.fixture
def outbox(app: FastAPI) -> ConsoleSmsSender:
    sender = ConsoleSmsSender()
    app.dependency_overrides[sms_sender] = lambda: sender
    app.dependency_overrides[identity_verifier] = lambda: StaticIdentityVerifier(
        [("resident_id", RESIDENT_ID, "张三"), ("uscc", USCC, "北京某某科技有限公司")]
    )
    return sender


def test_person_verified_by_resident_id_can_publish(
    client_as: ClientFactory, outbox: ConsoleSmsSender, api_store: Store
) -> None:
    officer = client_as(Role.COMPLIANCE)
    auditor = client_as(Role.AUDITOR)
    created = officer.post("/api/identity/subjects", json={"user_ref": "u-1", "kind": "person"})
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "unverified" and not created.json()["can_publish"]
    assert (
        officer.post("/api/identity/subjects", json={"user_ref": "u-1", "kind": "person"}).status_code == 409
    )
    assert auditor.get("/api/identity/subjects/u-1/can-publish").json() == {
        "user_ref": "u-1",
        "can_publish": False,
    }

    bad = officer.post(
        "/api/identity/subjects/u-1/submissions",
        json={"id_type": "resident_id", "number": RESIDENT_ID[:-1] + "1", "name": "张三"},
    )
    assert bad.status_code == 400 and "check character" in bad.json()["message"]
    assert RESIDENT_ID[:-1] not in bad.text

    verified = officer.post(
        "/api/identity/subjects/u-1/submissions",
        json={"id_type": "resident_id", "number": RESIDENT_ID.lower(), "name": "张三"},
    )
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["state"] == "verified" and body["can_publish"] and body["name_masked"] == "张*"
    assert body["identifiers"] == [
        {
            "id_type": "resident_id",
            "masked": "110105********002X",
            "verified": True,
            "checksum_ok": True,
            "purged": False,
        }
    ]
    assert RESIDENT_ID not in verified.text
    assert auditor.get("/api/identity/subjects/u-1/can-publish").json()["can_publish"] is True
    assert auditor.get("/api/identity/subjects/u-1").json()["verified_method"] == "verifier:static"
    assert (
        auditor.post("/api/identity/subjects", json={"user_ref": "u-2", "kind": "person"}).status_code == 403
    )
    assert auditor.get("/api/identity/subjects/nobody").status_code == 404

    officer_name = client_as.principal(officer).name
    events = audit_events(api_store, subject="identity:u-1")
    assert [e["event"] for e in events] == ["identity.registered", "identity.submitted", "identity.verified"]
    assert events[0]["actor"] == f"user:{officer_name}"
    assert RESIDENT_ID not in str(events)


def test_organisation_by_uscc_and_mobile_by_sms(client_as: ClientFactory, outbox: ConsoleSmsSender) -> None:
    gateway = client_as.token(Role.COMPLIANCE)
    assert (
        gateway.post(
            "/api/identity/subjects",
            json={"user_ref": "org-1", "kind": "organisation", "name": "北京某某科技有限公司"},
        ).status_code
        == 201
    )
    org = gateway.post(
        "/api/identity/subjects/org-1/submissions",
        json={"id_type": "uscc", "number": USCC, "name": "北京某某科技有限公司"},
    )
    assert (
        org.json()["state"] == "verified" and org.json()["identifiers"][0]["masked"] == "911101********K640"
    )

    assert (
        gateway.post("/api/identity/subjects", json={"user_ref": "p-1", "kind": "person"}).status_code == 201
    )
    sent = gateway.post("/api/identity/subjects/p-1/sms", json={"mobile": MOBILE})
    assert sent.status_code == 201, sent.text
    challenge = sent.json()
    assert challenge["phone_masked"] == "+86 138****5678"
    code = "".join(c for c in outbox.outbox[-1][1] if c.isdigit())[:6]
    wrong = "000000" if code != "000000" else "111111"
    url = f"/api/identity/subjects/p-1/sms/{challenge['challenge_id']}/confirm"
    miss = gateway.post(url, json={"code": wrong})
    assert (
        miss.status_code == 200
        and miss.json()["outcome"] == "wrong_code"
        and miss.json()["attempts_left"] == 4
    )
    hit = gateway.post(url, json={"code": code})
    assert hit.json()["outcome"] == "verified" and hit.json()["identity"]["can_publish"]
    assert gateway.post(url, json={"code": code}).json()["outcome"] == "spent"
    assert gateway.post(url, json={"code": "12"}).status_code == 422
    assert gateway.post("/api/identity/subjects/p-1/sms", json={"mobile": "010 6552 9988"}).status_code == 400
    assert (
        gateway.post("/api/identity/subjects/nobody/sms/abc/confirm", json={"code": code}).status_code == 404
    )


def test_manual_override_is_decided_by_a_second_reviewer(
    client_as: ClientFactory, outbox: ConsoleSmsSender
) -> None:
    officer = client_as(Role.COMPLIANCE)
    reviewer = client_as(Role.REVIEWER)
    officer.post("/api/identity/subjects", json={"user_ref": "u-9", "kind": "person"})
    requested = officer.post(
        "/api/identity/overrides",
        json={"user_ref": "u-9", "target_state": "verified", "reason": "verified the card at the counter"},
    )
    assert requested.status_code == 201, requested.text
    override_id = requested.json()["id"]
    assert reviewer.get("/api/identity/overrides").json()[0]["id"] == override_id
    # a compliance officer may not decide; the requester may not either (even as admin)
    assert (
        officer.post(
            f"/api/identity/overrides/{override_id}/decision", json={"approve": True, "reason": "x"}
        ).status_code
        == 403
    )
    decided = reviewer.post(
        f"/api/identity/overrides/{override_id}/decision", json={"approve": True, "reason": "copy checked"}
    )
    assert decided.status_code == 200 and decided.json()["decision"] == "approved"
    assert reviewer.get("/api/identity/subjects/u-9").json()["state"] == "verified"
    again = reviewer.post(
        f"/api/identity/overrides/{override_id}/decision", json={"approve": False, "reason": "x"}
    )
    assert again.status_code == 409
    closed = officer.post("/api/identity/subjects/u-9/close", json={"reason": "user asked"})
    assert closed.status_code == 200 and not closed.json()["can_publish"]
    assert reviewer.get("/api/identity/subjects/u-9/can-publish").json()["can_publish"] is False


def test_self_decided_override_is_refused(client_as: ClientFactory, outbox: ConsoleSmsSender) -> None:
    admin = client_as(Role.ADMIN)
    admin.post("/api/identity/subjects", json={"user_ref": "u-5", "kind": "person"})
    made = admin.post(
        "/api/identity/overrides", json={"user_ref": "u-5", "target_state": "verified", "reason": "trust me"}
    ).json()
    refused = admin.post(
        f"/api/identity/overrides/{made['id']}/decision", json={"approve": True, "reason": "ok"}
    )
    assert refused.status_code == 403 and "second staff member" in refused.json()["message"]


def test_missing_identity_keys_are_a_clear_error(
    client_as: ClientFactory, app: FastAPI, outbox: ConsoleSmsSender
) -> None:
    import dataclasses

    app.state.settings = dataclasses.replace(app.state.settings, identity_encryption_key="")
    officer = client_as(Role.COMPLIANCE)
    officer.post("/api/identity/subjects", json={"user_ref": "u-7", "kind": "person"})
    response = officer.post(
        "/api/identity/subjects/u-7/submissions",
        json={"id_type": "resident_id", "number": RESIDENT_ID, "name": "张三"},
    )
    assert response.status_code == 500 and "identity_encryption_key is not set" in response.json()["message"]
