"""``/api/generation`` end to end: record, trace a ProduceID to the masked user, the unlabeled log."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi import FastAPI

from synthguard.accounts.roles import Role
from synthguard.aigc import ProduceID
from synthguard.api.routes.identity import identity_verifier
from synthguard.governance.crypto import generate_keys
from synthguard.governance.verifiers import StaticIdentityVerifier
from synthguard.store import Store
from tests.api.conftest import ClientFactory
from tests.governance.conftest import RESIDENT_ID, audit_events

KEYS = generate_keys()
DIGEST = hashlib.sha256(b"image bytes").hexdigest()


@pytest.fixture
def api_settings_overrides() -> dict[str, Any]:
    return {"identity_encryption_key": KEYS[0], "identity_hash_key": KEYS[1]}


def test_trace_and_unlabeled_log(client_as: ClientFactory, app: FastAPI, api_store: Store) -> None:
    app.dependency_overrides[identity_verifier] = lambda: StaticIdentityVerifier(
        [("resident_id", RESIDENT_ID, "张三")]
    )
    gateway = client_as.token(Role.COMPLIANCE)
    reviewer = client_as(Role.REVIEWER)
    gateway.post("/api/identity/subjects", json={"user_ref": "u-1", "kind": "person"})
    gateway.post(
        "/api/identity/subjects/u-1/submissions",
        json={"id_type": "resident_id", "number": RESIDENT_ID, "name": "张三"},
    )
    pid = ProduceID.new()
    record = {
        "produce_id": pid,
        "user_ref": "u-1",
        "modality": "image",
        "content_digest": DIGEST,
        "labels": ["visible", "metadata", "watermark"],
    }
    assert reviewer.post("/api/generation/records", json=record).status_code == 403
    made = gateway.post("/api/generation/records", json=record)
    assert made.status_code == 201, made.text
    assert gateway.post("/api/generation/records", json=record).status_code == 409

    trace = reviewer.get(f"/api/generation/records/{pid.lower()}")
    assert trace.status_code == 200
    assert trace.json()["identity"]["identifiers"][0]["masked"] == "110105********002X"
    assert RESIDENT_ID not in trace.text
    assert reviewer.get(f"/api/generation/records/{ProduceID.new()}").status_code == 404
    assert [
        r["produce_id"] for r in reviewer.get(f"/api/generation/records?content_digest={DIGEST}").json()
    ] == [pid]

    unlabeled = record | {
        "produce_id": ProduceID.new(),
        "labels": ["metadata"],
        "unlabeled_agreement_version": "1",
    }
    refused = gateway.post("/api/generation/records", json=unlabeled)
    assert refused.status_code == 409 and "has not accepted" in refused.json()["message"]
    gateway.post(
        "/api/documents",
        json={"kind": "unlabeled_output_agreement", "version": "1", "title": "协议", "body": "..."},
    )
    gateway.post(
        "/api/documents/acceptances",
        json={"user_ref": "u-1", "kind": "unlabeled_output_agreement", "version": "1"},
    )
    assert gateway.post("/api/generation/records", json=unlabeled).status_code == 201
    log = reviewer.get("/api/generation/unlabeled-log?user_ref=u-1").json()
    assert [r["produce_id"] for r in log] == [unlabeled["produce_id"]]

    (event, _) = audit_events(api_store, event="generation.recorded")
    assert (
        event["actor"] == f"token:{client_as.principal(gateway).name}"
        and event["subject"] == f"generation:{pid}"
    )
