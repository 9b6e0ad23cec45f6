"""Crash safety: kill -9 a real server in the middle of a burst of complaint submissions.

``synthguard serve`` runs as a separate process on a free port (SQLite file, and PostgreSQL when
configured). Threads file complaints through ``POST /api/complaints`` until the server is killed
with SIGKILL part-way through; the server is started again on the same database, and then:

- every complaint that got a 201 is there: its complainant can follow it with the tracking number
  and the secret the response gave (``POST /api/complaints/status``), and
- the audit log verifies (``synthguard.audit.verify.verify_log``), holding a ``complaint.filed``
  record for each of them: no half-written transaction survived the crash.

A request that got no answer may or may not have been committed; both are fine. What must never
happen is a 201 for a complaint that is not in the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import sqlalchemy as sa

from synthguard.audit.log import find_records
from synthguard.audit.verify import verify_log
from synthguard.store import open_store
from tests.store import backends, database_url

#: Threads filing complaints at the same time.
CLIENTS: Final = 8
#: Successful submissions seen before the server is killed.
KILL_AFTER: Final = 40
#: Seconds a server may take to answer its health check after starting.
START_TIMEOUT: Final = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _request(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@contextlib.contextmanager
def _server(url: str, tmp_path: Path, log_name: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNTHGUARD_")}
    env |= {
        "SYNTHGUARD_DATA_DIR": str(tmp_path / "data"),
        "SYNTHGUARD_API_PUBLIC_RATE_PER_MINUTE": "1000000",
        "SYNTHGUARD_API_COOKIE_SECURE": "false",
    }
    command = [sys.executable, "-m", "synthguard", "serve", "--port", str(port), "--database", url]
    command += ["--log-level", "warning"]
    with (tmp_path / log_name).open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if process.poll() is not None:
                    pytest.fail(
                        f"server exited with {process.returncode}: {(tmp_path / log_name).read_text()}"
                    )
                with contextlib.suppress(OSError):
                    if _request(base, "GET", "/api/health")[0] == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"server did not answer in {START_TIMEOUT} s: {(tmp_path / log_name).read_text()}"
                    )
                time.sleep(0.2)
            yield process, base
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _burst(base: str, process: subprocess.Popen[bytes]) -> tuple[dict[str, str], int]:
    """File complaints from ``CLIENTS`` threads; SIGKILL the server after ``KILL_AFTER`` successes.

    Returns the tracking numbers and secrets of every 201, and how many requests got no answer.
    """
    filed: dict[str, str] = {}
    unanswered = 0
    lock = threading.Lock()
    killed = threading.Event()

    def client(number: int) -> None:
        nonlocal unanswered
        sequence = 0
        while True:
            sequence += 1
            body = {
                "category": "rumor",
                "target": f"https://example.com/post/{number}-{sequence}",
                "description": f"complaint {sequence} from client {number}: 这是谣言",
            }
            try:
                status, answer = _request(base, "POST", "/api/complaints", body)
            except OSError:
                with lock:
                    unanswered += 1
                if killed.is_set():
                    return
                continue
            assert status == 201, (status, answer)
            with lock:
                filed[answer["tracking_number"]] = answer["secret"]
                if len(filed) >= KILL_AFTER and not killed.is_set():
                    process.send_signal(signal.SIGKILL)
                    killed.set()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return filed, unanswered


@pytest.mark.slow
@pytest.mark.parametrize("backend", backends())
def test_every_acknowledged_complaint_survives_kill_9(backend: str, tmp_path: Path) -> None:
    with database_url(backend, tmp_path) as url:
        with _server(url, tmp_path, "first.log") as (process, base):
            filed, unanswered = _burst(base, process)
        assert len(filed) >= KILL_AFTER
        assert unanswered >= 1  # the kill did land in the middle of the burst

        with _server(url, tmp_path, "second.log") as (_process, base):
            lost = [
                number
                for number, secret in filed.items()
                if _request(
                    base, "POST", "/api/complaints/status", {"tracking_number": number, "secret": secret}
                )[0]
                != 200
            ]
            assert not lost, f"{len(lost)} of {len(filed)} acknowledged complaints are missing: {lost[:5]}"
            # and the service goes on working after the crash
            status, _answer = _request(
                base, "POST", "/api/complaints", {"category": "other", "target": "x", "description": "after"}
            )
            assert status == 201

        with open_store(url) as store, store.session() as session:
            report = verify_log(session, public_key=None)
            assert report.ok, report.to_json()
            subjects = {
                record.subject for record in find_records(session, event="complaint.filed", limit=10**6)
            }
            assert {f"complaint:{number}" for number in filed} <= subjects
            stored = session.scalar(sa.text("SELECT count(*) FROM case_complaints"))
            assert stored is not None and stored >= len(filed) + 1
