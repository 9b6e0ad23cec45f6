"""Complaints (Art. 12) and their attachments, as services, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthguard.audit.models import AuditRecordRow
from synthguard.config import Settings
from synthguard.errors import ConfigError, ConflictError, NotFoundError, UsageError
from synthguard.governance import complaints
from synthguard.governance.attachments import AttachmentStore
from synthguard.governance.case_models import ComplaintEventRow, ComplaintOutcome, ComplaintState
from synthguard.governance.complaints import ClockStatus, ComplaintProcess
from synthguard.store import Store
from tests.store import backends, migrated_store

T0 = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)
SETTINGS = Settings(complaint_acknowledge_hours=24, complaint_decide_days=15, complaint_due_soon_hours=24)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


@pytest.fixture(scope="module", params=backends())
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with migrated_store(request.param, tmp_path_factory.mktemp("complaints")) as opened:
        yield opened


@pytest.fixture
def files(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore.from_settings(
        dataclasses.replace(SETTINGS, data_dir=str(tmp_path), complaint_attachment_max_bytes=4096)
    )


def _file(store: Store, **overrides: object) -> complaints.FiledComplaint:
    values: dict[str, object] = {
        "category": "label_missing",
        "target": "https://video.example/v/123",
        "description": "这个视频是AI生成的，但没有标识。",
        "contact": "alice@example.org",
        "now": T0,
    }
    values.update(overrides)
    with store.session(write=True) as session:
        return complaints.file_complaint(session, SETTINGS, **values)  # type: ignore[arg-type]


def test_filing_gives_a_tracking_number_and_a_secret_that_follow_the_case(store: Store) -> None:
    filed = _file(store)
    assert filed.complaint.tracking_number.startswith("SG-2026-")
    assert len(filed.secret) >= 32
    assert filed.complaint.acknowledge_due == T0 + dt.timedelta(hours=24)
    assert filed.complaint.decide_due == T0 + dt.timedelta(days=15)
    with store.session() as session:
        status = complaints.public_status(session, filed.complaint.tracking_number, filed.secret)
        assert status.state is ComplaintState.RECEIVED and status.steps[0][1] is ComplaintState.RECEIVED
        with pytest.raises(NotFoundError):
            complaints.public_status(session, filed.complaint.tracking_number, filed.secret + "x")
        with pytest.raises(NotFoundError):
            complaints.public_status(session, "SG-2026-999999", filed.secret)
        # the secret itself is nowhere in the database
        row_hash = session.execute(sa.text("SELECT secret_hash FROM case_complaints")).scalars().all()
        assert filed.secret not in row_hash and hashlib.sha256(filed.secret.encode()).hexdigest() in row_hash
        seen = complaints.get_complaint(session, filed.complaint.tracking_number)
        assert seen.contact == "a***e@e*****e.o*g"
        assert (
            complaints.get_complaint(session, seen.tracking_number, reveal_contact=True).contact
            == "alice@example.org"
        )


def test_numbers_carry_the_year_and_increase(store: Store) -> None:
    a = _file(store).complaint.tracking_number
    b = _file(store).complaint.tracking_number
    assert int(b.rsplit("-", 1)[1]) == int(a.rsplit("-", 1)[1]) + 1
    c = _file(store, now=dt.datetime(2027, 1, 1, tzinfo=dt.UTC)).complaint.tracking_number
    assert c.startswith("SG-2027-") and int(c.rsplit("-", 1)[1]) > int(b.rsplit("-", 1)[1])


def test_the_process_runs_in_order_and_every_step_is_recorded_and_audited(store: Store) -> None:
    filed = _file(store)
    number = filed.complaint.tracking_number
    with store.session() as session:
        before = int(session.scalar(sa.select(sa.func.count()).select_from(AuditRecordRow)) or 0)
    with store.session(write=True) as session:
        with pytest.raises(ConflictError):
            complaints.decide(session, number, outcome="upheld", feedback="x", actor="user:bob")
        complaints.acknowledge(session, number, actor="user:bob", now=T0 + dt.timedelta(hours=1))
        with pytest.raises(ConflictError):
            complaints.acknowledge(session, number, actor="user:bob")
        complaints.start_review(
            session, number, actor="user:bob", assignee="user:carol", now=T0 + dt.timedelta(hours=2)
        )
        complaints.add_feedback(
            session, number, feedback="我们正在核查。", actor="user:carol", now=T0 + dt.timedelta(hours=3)
        )
        complaints.decide(
            session,
            number,
            outcome=ComplaintOutcome.UPHELD,
            feedback="已添加标识并处置。",
            actor="user:carol",
            note="internal: user strike recorded",
            now=T0 + dt.timedelta(days=2),
        )
        with pytest.raises(UsageError):
            complaints.decide(session, number, outcome="maybe", feedback="x", actor="user:bob")
        done = complaints.close(session, number, actor="user:carol", now=T0 + dt.timedelta(days=3))
        with pytest.raises(ConflictError):
            complaints.add_feedback(session, number, feedback="late", actor="user:carol")
    assert done.state is ComplaintState.CLOSED and done.assignee == "user:carol"
    assert [e.to_state for e in done.events] == [
        ComplaintState.RECEIVED,
        ComplaintState.ACKNOWLEDGED,
        ComplaintState.IN_REVIEW,
        ComplaintState.IN_REVIEW,
        ComplaintState.DECIDED,
        ComplaintState.CLOSED,
    ]
    assert done.acknowledged_at == T0 + dt.timedelta(hours=1) and done.closed_at == T0 + dt.timedelta(days=3)
    with store.session() as session:
        events = session.scalars(
            sa.select(AuditRecordRow.event).where(AuditRecordRow.idx >= before).order_by(AuditRecordRow.idx)
        ).all()
        status = complaints.public_status(session, number, filed.secret)
    assert list(events) == [
        "complaint.acknowledged",
        "complaint.in_review",
        "complaint.feedback",
        "complaint.decided",
        "complaint.closed",
    ]
    assert status.feedback == "已添加标识并处置。" and status.outcome is ComplaintOutcome.UPHELD
    assert "internal" not in repr(status)  # internal notes never reach the complainant
    assert [s[2] for s in status.steps][2:4] == ["in review", "我们正在核查。"]


def test_clocks_show_due_soon_and_overdue(store: Store) -> None:
    fresh = _file(store, now=T0).complaint.tracking_number
    with store.session(write=True) as session:
        reviewing = complaints.file_complaint(
            session,
            SETTINGS,
            category="rumor",
            target="t",
            description="d",
            now=T0 - dt.timedelta(days=14, hours=12),
        ).complaint.tracking_number
        complaints.start_review(session, reviewing, actor="user:bob", now=T0 - dt.timedelta(days=14))
        late = complaints.file_complaint(
            session, SETTINGS, category="other", target="t", description="d", now=T0 - dt.timedelta(days=2)
        ).complaint.tracking_number
    with store.session() as session:
        by_number = {
            c.tracking_number: c for c in complaints.clocks(session, SETTINGS, now=T0 + dt.timedelta(hours=1))
        }
    assert by_number[fresh].status is ClockStatus.DUE_SOON and by_number[fresh].deadline == "acknowledge"
    assert by_number[reviewing].deadline == "decide" and by_number[reviewing].status is ClockStatus.DUE_SOON
    assert by_number[late].status is ClockStatus.OVERDUE and by_number[late].remaining_seconds < 0
    with store.session() as session:
        clocks = complaints.clocks(session, SETTINGS, now=T0 - dt.timedelta(days=1))
    assert by_number[fresh].due in [c.due for c in clocks]
    assert next(c for c in clocks if c.tracking_number == fresh).status is ClockStatus.ON_TIME


def test_inputs_are_checked(store: Store) -> None:
    with store.session(write=True) as session:
        for bad in (
            {"category": "spam"},
            {"description": " "},
            {"description": "x" * 10_001},
            {"target": "a\x00b"},
            {"contact": "a\nb"},
        ):
            values = {"category": "other", "target": "t", "description": "d", **bad}
            with pytest.raises(UsageError):
                complaints.file_complaint(session, SETTINGS, **values)  # type: ignore[arg-type]
    for change in ({"complaint_decide_days": 0}, {"complaint_acknowledge_hours": 24 * 40}):
        with pytest.raises(ConfigError):
            ComplaintProcess.from_settings(dataclasses.replace(SETTINGS, **change))


def test_published_process_names_the_deadlines() -> None:
    document = ComplaintProcess.from_settings(SETTINGS).document()
    assert document["acknowledge_within_hours"] == 24 and document["decide_within_days"] == 15
    assert [s["state"] for s in document["steps"]] == [s.value for s in ComplaintState]
    assert "label_missing" in document["categories"]


def test_attachments_are_content_addressed_deduplicated_and_typed_by_their_bytes(
    store: Store, files: AttachmentStore
) -> None:
    png = files.put(io.BytesIO(PNG))
    again = files.put(io.BytesIO(PNG))
    pdf = files.put(io.BytesIO(PDF))
    assert png == again and png.media_type == "png" and pdf.media_type == "pdf"
    assert files.path(png.digest).read_bytes() == PNG and png.digest == hashlib.sha256(PNG).hexdigest()
    assert sorted(files.digests()) == sorted([png.digest, pdf.digest])
    assert not list(files.root.glob("*.part"))
    for bad in (b"", b"MZ\x90\x00" + bytes(100), b"x" * 5000, b"plain text is not an accepted format"):
        with pytest.raises(UsageError):
            files.put(io.BytesIO(bad))
    assert not list(files.root.glob("*.part"))  # refused uploads leave nothing behind
    filed = _file(store, attachments=[(png, "shot.png"), (pdf, "proof.pdf"), (again, "dup.png")])
    assert [a["digest"] for a in filed.complaint.attachments] == sorted([png.digest, pdf.digest])
    with store.session(write=True) as session:  # a second complaint with the same file shares it
        other = complaints.file_complaint(
            session, SETTINGS, category="other", target="t", description="d", attachments=[(png, "a.png")]
        )
        assert other.complaint.attachments[0]["digest"] == png.digest
        assert files.orphans(session) == []
    with files.open(png.digest) as fh:
        assert fh.read() == PNG
    with pytest.raises(NotFoundError):
        files.open("0" * 64).__enter__()
    with pytest.raises(UsageError):
        files.path("../../etc/passwd")
    with pytest.raises(UsageError), store.session(write=True) as session:
        complaints.file_complaint(
            session, SETTINGS, category="other", target="t", description="d", attachments=[(png, "a")] * 6
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_any_upload_is_stored_exactly_or_refused(files: AttachmentStore, data: bytes) -> None:
    try:
        stored = files.put(io.BytesIO(data))
    except UsageError:
        return
    assert files.path(stored.digest).read_bytes() == data and stored.size == len(data)
    assert stored.media_type in files.allowed


def test_a_failed_transaction_leaves_no_complaint(store: Store) -> None:
    with store.session() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(ComplaintEventRow))
    with pytest.raises(RuntimeError), store.session(write=True) as session:
        complaints.file_complaint(session, SETTINGS, category="other", target="t", description="d")
        raise RuntimeError("abandon")
    with store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ComplaintEventRow)) == count
