"""``/api/disposal`` end to end, on SQLite and PostgreSQL: strikes, triggers, measures, appeals."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from synthguard.accounts.roles import Role
from synthguard.audit.models import AuditRecordRow
from synthguard.store import Store
from tests.api.conftest import ClientFactory


def _events(store: Store) -> list[tuple[str, str, str]]:
    with store.session() as session:
        rows = session.execute(
            sa.select(AuditRecordRow.event, AuditRecordRow.actor, AuditRecordRow.subject).order_by(
                AuditRecordRow.idx
            )
        ).all()
    return [tuple(row) for row in rows]


def test_review_engine_hook_triggers_a_suspension_the_gateway_sees(
    client_as: ClientFactory, api_store: Store
) -> None:
    engine = client_as.token(Role.REVIEWER)
    auditor = client_as(Role.AUDITOR)
    clean = engine.post("/api/disposal/review-outcomes", json={"user_ref": "acct-1", "violated": False})
    assert clean.status_code == 200 and clean.json() is None
    last = None
    for n in range(3):
        last = engine.post(
            "/api/disposal/review-outcomes",
            json={
                "user_ref": "acct-1",
                "violated": True,
                "risk": "A4.1",
                "evidence": {"review_hit_ids": [n]},
            },
        )
        assert last.status_code == 200, last.text
    assert last is not None
    measure = last.json()["measure"]
    assert measure["kind"] == "suspension" and measure["trigger"] == "auto:consecutive"
    assert measure["actor"] == "system"
    restrictions = auditor.get("/api/disposal/users/acct-1/restrictions").json()
    assert restrictions["can_generate"] is False and restrictions["can_publish"] is False
    record = auditor.get("/api/disposal/users/acct-1").json()
    assert len(record["strikes"]) == 3 and record["points"] == 3
    assert auditor.post("/api/disposal/strikes", json={}).status_code == 403  # auditors only read
    events = [e for e, _, _ in _events(api_store)]
    assert events.count("disposal.strike") == 3 and "disposal.measure" in events


def test_manual_measure_and_appeal_by_a_second_reviewer(client_as: ClientFactory, api_store: Store) -> None:
    alice = client_as(Role.REVIEWER)
    bob = client_as(Role.COMPLIANCE)
    made = alice.post(
        "/api/disposal/measures",
        json={
            "user_ref": "acct-2",
            "kind": "restriction",
            "reason": "repeated unlabeled uploads",
            "duration_hours": 48,
            "functions": ["publish"],
            "evidence": {"sha256": "ab" * 32},
        },
    )
    assert made.status_code == 201, made.text
    measure = made.json()
    assert measure["functions"] == ["publish"] and measure["actor"] == client_as.principal(alice).actor
    restrictions = alice.get("/api/disposal/users/acct-2/restrictions").json()
    assert restrictions["can_generate"] is True and restrictions["can_publish"] is False
    appeal = alice.post(
        f"/api/disposal/measures/{measure['id']}/appeal", json={"statement": "they were labeled"}
    )
    assert appeal.status_code == 201
    appeal_id = appeal.json()["id"]
    assert (
        alice.post(f"/api/disposal/measures/{measure['id']}/appeal", json={"statement": "x"}).status_code
        == 409
    )
    self_decided = alice.post(
        f"/api/disposal/appeals/{appeal_id}/decision", json={"overturn": True, "reason": "me"}
    )
    assert self_decided.status_code == 403
    pending = bob.get("/api/disposal/appeals", params={"state": "pending"}).json()
    assert [a["id"] for a in pending] == [appeal_id]
    decided = bob.post(
        f"/api/disposal/appeals/{appeal_id}/decision", json={"overturn": True, "reason": "labeled"}
    )
    assert decided.status_code == 200 and decided.json()["state"] == "overturned"
    assert (
        bob.post(
            f"/api/disposal/appeals/{appeal_id}/decision", json={"overturn": False, "reason": "x"}
        ).status_code
        == 409
    )
    after = bob.get(f"/api/disposal/measures/{measure['id']}").json()
    assert after["state"] == "lifted" and after["lifted_by"] == client_as.principal(bob).actor
    assert bob.get("/api/disposal/users/acct-2/restrictions").json()["can_publish"] is True
    actors = {(e, a) for e, a, _ in _events(api_store)}
    assert ("disposal.appeal_decided", client_as.principal(bob).actor) in actors


def test_bad_requests_are_4xx(client_as: ClientFactory) -> None:
    staff = client_as(Role.REVIEWER)
    bad_bodies = [
        {"user_ref": "a b", "kind": "warning", "reason": "r"},
        {"user_ref": "u", "kind": "ban", "reason": "r"},
        {"user_ref": "u", "kind": "suspension", "reason": "r"},  # needs a duration
        {"user_ref": "u", "kind": "warning", "reason": "r", "duration_hours": 3},
        {"user_ref": "u", "kind": "warning", "reason": "   "},
        {"user_ref": "u", "kind": "warning", "reason": "r", "extra": 1},
    ]
    for body in bad_bodies:
        response = staff.post("/api/disposal/measures", json=body)
        assert response.status_code in (400, 422), (body, response.text)
    assert staff.get("/api/disposal/measures/999999").status_code == 404
    assert staff.post("/api/disposal/measures/999999/lift", json={"reason": "x"}).status_code == 404


def test_anonymous_is_refused(client: TestClient) -> None:
    assert client.get("/api/disposal/users/acct-1/restrictions").status_code == 401
    assert (
        client.post("/api/disposal/review-outcomes", json={"user_ref": "u", "violated": True}).status_code
        == 401
    )
