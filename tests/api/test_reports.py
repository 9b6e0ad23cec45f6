"""``/api/reports`` end to end, on SQLite and PostgreSQL: assemble, submit (frozen), JSON and PDF."""

from __future__ import annotations

import hashlib
import io
import json

import pypdf
from fastapi.testclient import TestClient

from synthguard.accounts.roles import Role
from synthguard.store import Store
from tests.api.conftest import ClientFactory
from tests.api.test_rumors import RUMOR, add_library_rumor


def test_a_case_is_reported_submitted_and_exported(
    client_as: ClientFactory, client: TestClient, api_store: Store
) -> None:
    add_library_rumor(api_store)
    reviewer = client_as(Role.REVIEWER)
    officer = client_as(Role.COMPLIANCE)
    auditor = client_as(Role.AUDITOR)
    rumor = reviewer.post("/api/rumors", json=RUMOR).json()
    strike = reviewer.post(
        "/api/disposal/strikes",
        json={"user_ref": "acct-9", "kind": "output", "risk": "A1.7", "reason": "spread the rumor"},
    ).json()
    assert strike["measure"]["kind"] == "warning"
    complaint = client.post(
        "/api/complaints", json={"category": "rumor", "target": "https://v.example/9", "description": "谣言"}
    ).json()
    made = officer.post(
        "/api/reports",
        json={
            "authority": "市网信办",
            "title": "谣言处置报告",
            "summary": "已辟谣并处置",
            "items": [
                {"kind": "rumor", "ref": str(rumor["id"])},
                {"kind": "measure", "ref": str(strike["measure"]["id"])},
                {"kind": "complaint", "ref": complaint["tracking_number"]},
            ],
        },
    )
    assert made.status_code == 201, made.text
    number = made.json()["number"]
    assert (
        reviewer.post("/api/reports", json={"authority": "a", "title": "t", "summary": "s"}).status_code
        == 403
    )
    added = officer.post(
        f"/api/reports/{number}/items", json={"kind": "strike", "ref": str(strike["strike"]["id"])}
    )
    assert added.status_code == 201 and len(added.json()["items"]) == 4
    assert (
        officer.post(f"/api/reports/{number}/items", json={"kind": "strike", "ref": "999999"}).status_code
        == 404
    )
    draft = auditor.get(f"/api/reports/{number}/export.json").json()
    assert draft["report"]["state"] == "draft" and draft["rumors"][0]["claim"] == RUMOR["claim"]
    submitted = officer.post(f"/api/reports/{number}/submit", json={"authority_ref": "CAC-2026-1"})
    assert submitted.status_code == 200
    digest = submitted.json()["submitted_digest"]
    assert officer.post(f"/api/reports/{number}/submit", json={}).status_code == 409
    frozen = auditor.get(f"/api/reports/{number}/export.json").json()
    canonical = json.dumps(frozen, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    assert hashlib.sha256(canonical).hexdigest() == digest
    pdf = auditor.get(f"/api/reports/{number}/export.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    assert "谣言处置报告" in text.replace("\n", "") and number in text
    assert client.get(f"/api/reports/{number}/export.pdf").status_code == 401
    assert reviewer.get(f"/api/reports/{number}").status_code == 403
    assert auditor.get("/api/reports/RPT-2026-999999").status_code == 404
