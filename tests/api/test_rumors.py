"""``/api/rumors`` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib

from fastapi.testclient import TestClient

from synthguard.accounts.roles import Role
from synthguard.store import Store
from tests.api.conftest import ClientFactory
from tests.governance.rows import review_hit, rumor_entry

T0 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
CLAIM = "本市自来水检测出致癌物质"


def add_library_rumor(store: Store, entry_id: str = "rumor-api") -> None:
    """A rumor entry in the characteristics database, and one review hit of it."""
    with store.session(write=True) as session:
        session.add(rumor_entry(entry_id, at=T0, term=CLAIM))
        session.flush()
        session.add(review_hit(entry_id, "req-1", at=T0, detail={"produce_id": "00000000000000aa"}, end=5))


RUMOR = {
    "claim": CLAIM,
    "refutation": {
        "title": "自来水安全",
        "text": "经检测符合国家标准",
        "source": "市水务局",
        "url": "https://example.gov.cn/n",
        "refuted_at": "2026-02-01T08:00:00+08:00",
    },
    "entry_ids": ["rumor-api"],
}


def test_rumor_refutation_links_and_occurrences(
    client_as: ClientFactory, client: TestClient, api_store: Store
) -> None:
    add_library_rumor(api_store)
    staff = client_as(Role.REVIEWER)
    made = staff.post("/api/rumors", json=RUMOR)
    assert made.status_code == 201, made.text
    rumor = made.json()
    assert rumor["entries"] == [{"entry_id": "rumor-api", "term": CLAIM}]
    assert rumor["refutation"]["refuted_at"].startswith("2026-02-01T00:00:00")
    rid = rumor["id"]
    linked = staff.post(f"/api/rumors/{rid}/link-review-hits")
    assert linked.status_code == 200 and [o["produce_id"] for o in linked.json()] == ["00000000000000aa"]
    digest = hashlib.sha256(b"copy").hexdigest()
    occurrence = staff.post(
        f"/api/rumors/{rid}/occurrences", json={"content_digest": digest, "location": "weibo"}
    )
    assert occurrence.status_code == 201
    assert staff.post(f"/api/rumors/{rid}/occurrences", json={"location": "nowhere"}).status_code == 400
    auditor = client_as(Role.AUDITOR)
    assert len(auditor.get(f"/api/rumors/{rid}/occurrences").json()) == 2
    found = auditor.get("/api/rumors/by-content", params={"content_digest": digest}).json()
    assert [r["id"] for r in found] == [rid]
    assert auditor.get("/api/rumors/by-content").status_code == 400
    assert auditor.post("/api/rumors", json=RUMOR).status_code == 403
    assert client.get(f"/api/rumors/{rid}").status_code == 401
    assert staff.post(f"/api/rumors/{rid}/entries", json={"entry_id": "rumor-api"}).status_code == 409
    assert staff.post(f"/api/rumors/{rid}/entries", json={"entry_id": "missing"}).status_code == 404


def test_bad_rumors_are_4xx(client_as: ClientFactory) -> None:
    staff = client_as(Role.COMPLIANCE)
    naive = {
        **RUMOR,
        "entry_ids": [],
        "refutation": {**RUMOR["refutation"], "refuted_at": "2026-02-01T08:00:00"},
    }  # type: ignore[dict-item]
    assert staff.post("/api/rumors", json=naive).status_code == 422
    bad_url = {**RUMOR, "entry_ids": [], "refutation": {**RUMOR["refutation"], "url": "ftp://x"}}  # type: ignore[dict-item]
    assert staff.post("/api/rumors", json=bad_url).status_code == 422
    assert staff.get("/api/rumors/999999").status_code == 404
