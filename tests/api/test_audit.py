"""``/api/audit`` end to end on SQLite and PostgreSQL: roles, proofs that verify, verification, export."""

from __future__ import annotations

import base64
import dataclasses
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from synthguard.accounts.roles import Role
from synthguard.api.app import create_app
from synthguard.audit import inspector, merkle, record_event
from synthguard.config import Settings
from synthguard.store import Store
from tests.api.conftest import ClientFactory


@pytest.fixture(scope="module")
def checkpoint_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


@pytest.fixture
def api_settings_overrides(checkpoint_key_pem: str) -> dict[str, Any]:
    return {"audit_checkpoint_key": checkpoint_key_pem, "audit_checkpoint_interval": 4}


def _b(value: str) -> bytes:
    return base64.b64decode(value)


def _fill(store: Store, settings: Settings, count: int = 9) -> None:
    with store.session(write=True) as session:
        for n in range(count):
            record_event(
                session,
                event="rumor.recorded",
                actor="user:rev",
                subject=f"rumor:R{n % 2}",
                data={"n": n},
                settings=settings,
            )


STAFF_ROUTES = [
    ("get", "/api/audit/head"),
    ("get", "/api/audit/records"),
    ("get", "/api/audit/records/0"),
    ("get", "/api/audit/checkpoints"),
    ("post", "/api/audit/checkpoints"),
    ("get", "/api/audit/proofs/inclusion?index=0"),
    ("get", "/api/audit/proofs/consistency?size1=1"),
    ("get", "/api/audit/verify"),
    ("get", "/api/audit/export"),
]


def test_staff_routes_refuse_anonymous_and_wrong_roles(client: TestClient, client_as: ClientFactory) -> None:
    reviewer = client_as(Role.REVIEWER)
    auditor = client_as(Role.AUDITOR)
    for method, url in STAFF_ROUTES:
        assert getattr(client, method)(url).status_code == 401, url
        assert getattr(reviewer, method)(url).status_code == 403, url
    assert auditor.post("/api/audit/checkpoints").status_code == 403


def test_without_a_key_the_routes_say_so_without_a_server_error(
    api_settings: Settings, api_store: Store
) -> None:
    keyless = create_app(dataclasses.replace(api_settings, audit_checkpoint_key=""), api_store)
    with TestClient(keyless) as anonymous:
        response = anonymous.get("/api/audit/public-key")
    assert response.status_code == 404 and "no audit checkpoint key" in response.json()["message"]


def test_an_auditor_reads_proves_verifies_exports_and_sees_tampering(
    client: TestClient, client_as: ClientFactory, api_store: Store, api_settings: Settings, tmp_path: Path
) -> None:
    _fill(api_store, api_settings)
    auditor = client_as(Role.AUDITOR)
    compliance = client_as(Role.COMPLIANCE)
    created = compliance.post("/api/audit/checkpoints")
    assert created.status_code == 201, created.text
    head = auditor.get("/api/audit/head").json()
    size = head["size"]
    assert size >= 9 and head["latest_checkpoint"]["size"] == size
    assert [c["size"] for c in auditor.get("/api/audit/checkpoints").json()][:2] == [4, 8]
    records = auditor.get("/api/audit/records", params={"subject": "rumor:R1"}).json()
    assert [r["subject"] for r in records] == ["rumor:R1"] * 4
    record = records[0]
    proof = auditor.get("/api/audit/proofs/inclusion", params={"index": record["index"], "size": 8}).json()
    assert proof["leaf_hash"] == record["leaf_hash"]
    assert merkle.verify_inclusion(
        _b(proof["leaf_hash"]), record["index"], 8, [_b(p) for p in proof["proof"]], _b(proof["root"])
    )
    consistency = auditor.get("/api/audit/proofs/consistency", params={"size1": 4}).json()
    assert merkle.verify_consistency(
        4, size, _b(consistency["root1"]), _b(consistency["root2"]), [_b(p) for p in consistency["proof"]]
    )
    key = client.get("/api/audit/public-key").json()
    assert key["origin"] == "synthguard/audit" and "BEGIN PUBLIC KEY" in key["public_key_pem"]
    verified = auditor.get("/api/audit/verify").json()
    assert verified["ok"] is True and verified["size"] == size
    exported = auditor.get("/api/audit/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    bundle = tmp_path / "bundle"
    zipfile.ZipFile(io.BytesIO(exported.content)).extractall(bundle)
    report = inspector.verify_bundle(bundle, public_key=inspector.public_key_from_pem(key["public_key_pem"]))
    assert report.ok, report.failures
    assert auditor.get("/api/audit/records/999999").status_code == 404
    assert auditor.get("/api/audit/proofs/inclusion", params={"index": 5, "size": 3}).status_code == 404
    # tampering directly in the database: verification over the API names the record
    with api_store.session(write=True) as session:
        session.execute(
            sa.text("UPDATE audit_records SET data = '{}' WHERE idx = :i"), {"i": record["index"]}
        )
    report = auditor.get("/api/audit/verify").json()
    assert report["ok"] is False
    assert (report["first_problem"]["index"], report["first_problem"]["kind"]) == (record["index"], "edited")
