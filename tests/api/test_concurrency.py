"""Concurrency of the API's database sessions: many clients at once against a real uvicorn server.

At 50 concurrent submissions the app used to deadlock until the pool's timeout (PostgreSQL) or
SQLite's busy timeout failed most of them: every anyio worker thread went to a request waiting for a
connection or the write lock while the requests holding them waited for a thread to validate their
response. ``deps.SessionGate`` bounds the sessions held at once; these tests fire more concurrent
requests than anyio has worker threads (40) and the pool has connections (15), and also run with
only 4 worker threads, where the old code stalled at once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import httpx2 as httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc

from synthguard.api import deps
from synthguard.audit import log as audit_log
from synthguard.governance.case_models import ComplaintRow
from synthguard.store import Store

CLIENTS = 50
BODY: dict[str, Any] = {
    "category": "label_missing",
    "target": "https://video.example/v/123",
    "description": "这个视频是AI生成的，但没有标识。",
    "contact": "someone@example.org",
}


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, in a thread; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, ws="none", lifespan="off"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, name="uvicorn", daemon=True)
    thread.start()
    for _ in range(600):
        if instance.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    assert instance.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(30)


async def _submit_all(base: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        return list(await asyncio.gather(*(client.post("/api/complaints", json=BODY) for _ in range(count))))


def _stored(store: Store) -> tuple[int, int]:
    """(complaints, audit records) in the store."""
    with store.session() as session:
        complaints = session.execute(sa.select(sa.func.count()).select_from(ComplaintRow)).scalar_one()
        return int(complaints), audit_log.current_size(session)


def test_gate_is_sized_below_the_pool(app: FastAPI, api_store: Store) -> None:
    gate: deps.SessionGate = app.state.session_gate
    limit = api_store.max_connections
    assert limit is not None
    assert gate.sessions == max(1, limit - deps.SESSION_HEADROOM)
    assert gate.writers == (1 if api_store.is_sqlite else gate.sessions)


def test_fifty_concurrent_submissions_all_succeed(server: str, api_store: Store) -> None:
    before = _stored(api_store)
    responses = asyncio.run(_submit_all(server, CLIENTS))
    assert [r.status_code for r in responses if r.status_code != 201] == [], responses[0].text
    numbers = {r.json()["tracking_number"] for r in responses}
    assert len(numbers) == CLIENTS
    complaints, records = _stored(api_store)
    assert complaints == before[0] + CLIENTS
    assert records >= before[1] + CLIENTS  # one audit record per filing (plus any checkpoints)


@pytest.mark.slow
def test_submissions_succeed_with_few_worker_threads(app: FastAPI, api_store: Store) -> None:
    """With 4 worker threads, the old sessions stalled as soon as 5 requests overlapped."""
    workers = 4
    before = _stored(api_store)
    middleware_ready: dict[str, bool] = {}

    @app.middleware("http")
    async def few_threads(request: Any, call_next: Any) -> Any:
        if not middleware_ready:
            anyio.to_thread.current_default_thread_limiter().total_tokens = workers
            middleware_ready["set"] = True
        return await call_next(request)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, ws="none", lifespan="off"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, name="uvicorn-few", daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if instance.started or not thread.is_alive():
                break
            threading.Event().wait(0.05)
        assert instance.started, "uvicorn did not start"
        responses = asyncio.run(_submit_all(f"http://127.0.0.1:{port}", 30))
    finally:
        instance.should_exit = True
        thread.join(30)
    assert [r.status_code for r in responses if r.status_code != 201] == []
    assert _stored(api_store)[0] == before[0] + 30


def test_sqlite_takes_one_writer_at_a_time() -> None:
    """The gate never lets more than ``writers`` write, nor more than ``sessions`` hold a session."""
    gate = deps.SessionGate(sessions=3, writers=1)
    held = {"write": 0, "all": 0}
    peak = {"write": 0, "all": 0}

    async def one(write: bool) -> None:
        async with gate.slot(write=write):
            held["all"] += 1
            held["write"] += write
            peak["all"] = max(peak["all"], held["all"])
            peak["write"] = max(peak["write"], held["write"])
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            held["all"] -= 1
            held["write"] -= write

    async def main() -> None:
        await asyncio.gather(*(one(i % 2 == 0) for i in range(40)))

    asyncio.run(main())
    assert peak == {"write": 1, "all": 3}


def test_gate_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="writers"):
        deps.SessionGate(sessions=2, writers=3)
    with pytest.raises(ValueError, match="writers"):
        deps.SessionGate(sessions=0, writers=0)


def test_pool_timeout_is_a_503_with_retry_after(app: FastAPI) -> None:
    @app.get("/test-pool-timeout")
    def busy() -> None:
        raise sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")

    with TestClient(app) as client:
        response = client.get("/test-pool-timeout")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "DatabaseUnavailable"


def test_gate_timeout_is_a_503(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that finds no slot within ``GATE_TIMEOUT_S`` gets a 503, not a hang or a 500."""
    monkeypatch.setattr(deps, "GATE_TIMEOUT_S", 0.05)
    app.state.session_gate = deps.SessionGate(sessions=1, writers=1)
    release = asyncio.Event()

    @app.get("/test-hold")
    async def hold() -> None:
        async with app.state.session_gate.slot(write=True):
            await release.wait()

    @app.get("/test-release")
    async def let_go() -> None:
        release.set()

    async def main() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            holder = asyncio.ensure_future(client.get("/test-hold"))
            await asyncio.sleep(0.05)
            status = (await client.post("/api/complaints", json=BODY)).status_code
            await client.get("/test-release")
            await holder
            return status

    assert asyncio.run(main()) == 503
