"""``/api/complaints`` end to end, on SQLite and PostgreSQL: the public channel, the staff side,
attachments, clocks, rate limits, and crash safety (kill -9 of a server in a burst of filings)."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from synthguard.accounts.roles import Role
from synthguard.audit.models import AuditRecordRow
from synthguard.audit.verify import verify_log
from synthguard.governance.case_models import ComplaintRow
from synthguard.store import Store, open_store
from tests.api.conftest import ClientFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
BODY = {
    "category": "label_missing",
    "target": "https://video.example/v/1",
    "description": "视频没有AI生成标识",
    "contact": "bob@example.org",
}


def _file(client: TestClient, **changes: Any) -> dict[str, Any]:
    response = client.post("/api/complaints", json={**BODY, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_anyone_files_and_follows_a_complaint_through_its_process(
    client: TestClient, client_as: ClientFactory, api_store: Store
) -> None:
    process = client.get("/api/complaints/process").json()
    assert process["acknowledge_within_hours"] == 24 and process["decide_within_days"] == 15
    filed = _file(client)
    number, secret = filed["tracking_number"], filed["secret"]
    assert filed["state"] == "received" and number.startswith("SG-")
    status = client.post("/api/complaints/status", json={"tracking_number": number, "secret": secret})
    assert status.status_code == 200 and "secret" not in status.json()
    wrong = client.post("/api/complaints/status", json={"tracking_number": number, "secret": "nope"})
    assert wrong.status_code == 404
    staff = client_as(Role.REVIEWER)
    assert client.get(f"/api/complaints/{number}").status_code == 401
    assert staff.get(f"/api/complaints/{number}").json()["contact"] == "b*b@e*****e.o*g"
    assert staff.post(f"/api/complaints/{number}/acknowledge", json={}).status_code == 200
    assert staff.post(f"/api/complaints/{number}/acknowledge", json={}).status_code == 409
    assert staff.post(f"/api/complaints/{number}/review", json={"note": "checking"}).status_code == 200
    assert staff.post(f"/api/complaints/{number}/feedback", json={"feedback": "正在处理"}).status_code == 200
    decided = staff.post(
        f"/api/complaints/{number}/decision",
        json={"outcome": "upheld", "feedback": "已补充标识", "note": "internal only"},
    )
    assert decided.status_code == 200 and decided.json()["state"] == "decided"
    assert staff.post(f"/api/complaints/{number}/close", json={}).status_code == 200
    seen = client.post("/api/complaints/status", json={"tracking_number": number, "secret": secret}).json()
    assert seen["state"] == "closed" and seen["feedback"] == "已补充标识" and seen["outcome"] == "upheld"
    assert [s["state"] for s in seen["steps"]] == [
        "received",
        "acknowledged",
        "in_review",
        "in_review",
        "decided",
        "closed",
    ]
    assert "internal only" not in str(seen)
    with api_store.session() as session:
        events = session.scalars(
            sa.select(AuditRecordRow.event)
            .where(AuditRecordRow.subject == f"complaint:{number}")
            .order_by(AuditRecordRow.idx)
        ).all()
        actors = set(
            session.scalars(
                sa.select(AuditRecordRow.actor).where(AuditRecordRow.subject == f"complaint:{number}")
            )
        )
    assert list(events) == [
        "complaint.filed",
        "complaint.acknowledged",
        "complaint.in_review",
        "complaint.feedback",
        "complaint.decided",
        "complaint.closed",
    ]
    assert actors == {"public", client_as.principal(staff).actor}


def test_attachments_are_checked_stored_once_and_downloadable_by_staff(
    client: TestClient, client_as: ClientFactory
) -> None:
    filed = _file(client)
    number, secret = filed["tracking_number"], filed["secret"]
    url = f"/api/complaints/{number}/attachments"
    headers = {"X-Complaint-Secret": secret}
    # the client's content type is ignored: the bytes say PNG
    added = client.post(url, headers=headers, files={"file": ("shot.txt", PNG, "text/plain")})
    assert added.status_code == 201, added.text
    again = client.post(url, headers=headers, files={"file": ("again.png", PNG, "image/png")})
    assert again.status_code == 201
    refused = client.post(
        url, headers=headers, files={"file": ("x.png", b"MZ\x90\x00not an image", "image/png")}
    )
    assert refused.status_code == 400
    assert (
        client.post(url, headers={"X-Complaint-Secret": "bad"}, files={"file": ("a", PNG)}).status_code == 404
    )
    staff = client_as(Role.COMPLIANCE)
    complaint = staff.get(f"/api/complaints/{number}").json()
    (attachment,) = complaint["attachments"]
    download = staff.get(f"/api/complaints/{number}/attachments/{attachment['digest']}")
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"].startswith("attachment")
    assert client.get(f"/api/complaints/{number}/attachments/{attachment['digest']}").status_code == 401


def test_clocks_list_open_complaints_for_staff_only(client: TestClient, client_as: ClientFactory) -> None:
    number = _file(client)["tracking_number"]
    assert client.get("/api/complaints/clocks").status_code == 401
    auditor = client_as(Role.AUDITOR)
    clocks = auditor.get("/api/complaints/clocks").json()
    mine = next(c for c in clocks if c["tracking_number"] == number)
    assert mine["deadline"] == "acknowledge" and mine["status"] in ("on_time", "due_soon")
    assert auditor.post(f"/api/complaints/{number}/acknowledge", json={}).status_code == 403
    listed = auditor.get("/api/complaints", params={"open_only": True}).json()
    assert number in [c["tracking_number"] for c in listed]


def test_bad_filings_are_4xx(client: TestClient) -> None:
    for change in ({"category": "spam"}, {"description": ""}, {"description": "x" * 10_001}, {"unknown": 1}):
        response = client.post("/api/complaints", json={**BODY, **change})
        assert response.status_code == 422, change
    assert client.post("/api/complaints", json={**BODY, "target": "a\x00b"}).status_code == 400


@pytest.mark.parametrize("api_settings_overrides", [{"api_public_rate_per_minute": 2}])
def test_public_routes_are_rate_limited(client: TestClient) -> None:
    codes = [client.post("/api/complaints", json=BODY).status_code for _ in range(4)]
    assert codes[:2] == [201, 201] and codes[-1] == 429


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_kill_9_in_a_burst_loses_no_acknowledged_complaint(api_store: Store, tmp_path: Path) -> None:
    """Every complaint that got a 201 is in the database after a kill -9, and the audit log verifies."""
    url = api_store.url.render_as_string(hide_password=False)
    port = _free_port()
    env = {
        **os.environ,
        "SYNTHGUARD_DATABASE_URL": url,
        "SYNTHGUARD_DATA_DIR": str(tmp_path / "data"),
        "SYNTHGUARD_API_PUBLIC_RATE_PER_MINUTE": "1000000",
        "SYNTHGUARD_API_COOKIE_SECURE": "false",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "synthguard.api.app:app_from_environment",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("the server did not start")
            time.sleep(0.1)
        acknowledged: list[str] = []

        def file_one(i: int) -> str | None:
            try:
                response = httpx.post(f"{base}/api/complaints", json={**BODY, "target": f"t-{i}"}, timeout=10)
            except httpx.TransportError:
                return None
            return str(response.json()["tracking_number"]) if response.status_code == 201 else None

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(file_one, i) for i in range(120)]
            while sum(f.done() for f in futures) < 15:  # kill it in the middle of the burst
                time.sleep(0.01)
            os.kill(server.pid, signal.SIGKILL)
            for future in futures:
                if (number := future.result()) is not None:
                    acknowledged.append(number)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)
    assert len(acknowledged) >= 15
    with open_store(url) as reopened, reopened.session() as session:
        stored = set(session.scalars(sa.select(ComplaintRow.tracking_number)))
        assert set(acknowledged) <= stored
        report = verify_log(session, public_key=None)
        assert report.ok, report.problems
