"""``verify_log`` names the first record edited, deleted or reordered directly in the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from synthguard.audit import checkpoints, log, merkle, record_event
from synthguard.audit.verify import VerifyReport, verify_log
from synthguard.config import Settings
from synthguard.errors import IntegrityError
from synthguard.store import Store

ROOT = Path(__file__).resolve().parents[2]


def _fill(store: Store, settings: Settings, count: int = 12) -> None:
    with store.session(write=True) as session:
        for n in range(count):
            record_event(
                session,
                event="disposal.measure",
                actor="user:reviewer",
                subject=f"user:u{n % 3}",
                data={"measure": "warning", "n": n},
                settings=settings,
            )


def _verify(store: Store, settings: Settings) -> VerifyReport:
    key = checkpoints.signer_from_settings(settings).public_key
    with store.session() as session:
        return verify_log(session, public_key=key)


def _exec(store: Store, sql: str, **params: object) -> None:
    with store.session(write=True) as session:
        session.execute(sa.text(sql), params)


def test_an_untouched_log_verifies(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    report = _verify(store, audit_settings)
    assert report.ok, report.problems
    assert (report.size, report.records_checked, report.checkpoints_checked) == (12, 12, 3)
    assert report.nodes_checked == 12 - (12).bit_count()
    with store.session() as session:
        assert report.root == log.tree_head(session).root


def test_an_edited_record_is_named(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    _exec(store, "UPDATE audit_records SET data = :data WHERE idx IN (5, 9)", data='{"measure":"none","n":5}')
    report = _verify(store, audit_settings)
    assert report.first is not None
    assert (report.first.index, report.first.kind) == (5, "edited")
    assert {p.index for p in report.problems if p.kind == "edited"} == {5, 9}


def test_an_edited_time_or_actor_is_named(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    _exec(store, "UPDATE audit_records SET actor = 'user:someone' WHERE idx = 7")
    report = _verify(store, audit_settings)
    assert report.first is not None and (report.first.index, report.first.kind) == (7, "edited")


def test_a_deleted_row_is_named(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    _exec(store, "DELETE FROM audit_records WHERE idx = 6")
    report = _verify(store, audit_settings)
    assert report.first is not None and (report.first.index, report.first.kind) == (6, "deleted")
    assert "deleted" in report.first.message
    assert report.records_checked == 11


def test_deleted_rows_at_the_end_are_named(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    _exec(store, "DELETE FROM audit_records WHERE idx >= 10")
    report = _verify(store, audit_settings)
    assert report.first is not None and (report.first.index, report.first.kind) == (10, "deleted")


def test_two_swapped_rows_are_named_as_reordered(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    with store.session(write=True) as session:
        rows = {
            row.idx: row
            for row in session.execute(
                sa.text("SELECT idx, recorded_at, event, actor, subject, data FROM audit_records")
            )
        }
        for target, source in ((3, 8), (8, 3)):
            session.execute(
                sa.text(
                    "UPDATE audit_records SET recorded_at = :t, event = :e, actor = :a, subject = :s, "
                    "data = :d WHERE idx = :i"
                ),
                {
                    "t": rows[source].recorded_at,
                    "e": rows[source].event,
                    "a": rows[source].actor,
                    "s": rows[source].subject,
                    "d": rows[source].data,
                    "i": target,
                },
            )
    report = _verify(store, audit_settings)
    assert report.first is not None
    assert (report.first.index, report.first.kind) == (3, "reordered")
    assert "record 8" in report.first.message
    assert [(p.index, p.kind) for p in report.problems] == [(3, "reordered"), (8, "reordered")]


def test_a_row_added_beyond_the_tree_is_named(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    _exec(
        store,
        "INSERT INTO audit_records (idx, recorded_at, event, actor, subject, data) "
        "SELECT 12, recorded_at, event, actor, subject, data FROM audit_records WHERE idx = 0",
    )
    report = _verify(store, audit_settings)
    assert report.first is not None and (report.first.index, report.first.kind) == (12, "inserted")


def test_an_altered_interior_node_is_named(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    _exec(store, "UPDATE audit_nodes SET hash = :h WHERE level = 2 AND idx = 1", h=bytes(32))
    report = _verify(store, audit_settings)
    assert report.first is not None and report.first.kind == "node" and report.first.index == 7


def test_a_consistent_rewrite_is_caught_by_the_signed_checkpoints(
    store: Store, audit_settings: Settings
) -> None:
    """Edit record 5 AND rewrite every hash and the state row to match: only the signatures tell."""
    _fill(store, audit_settings)
    _exec(store, "UPDATE audit_records SET data = :d WHERE idx = 5", d='{"measure":"none","n":5}')
    with store.session(write=True) as session:
        records = list(log.iter_records(session))
        frontier: list[bytes] = []
        for record in records:
            frontier, done = merkle.frontier_append(frontier, record.index, record.leaf_hash())
            for level, position, value in done:
                session.execute(
                    sa.text("UPDATE audit_nodes SET hash = :h WHERE level = :l AND idx = :i"),
                    {"h": value, "l": level, "i": position},
                )
        session.execute(sa.text("UPDATE audit_state SET frontier = :f"), {"f": b"".join(frontier)})
    report = _verify(store, audit_settings)
    assert report.first is not None
    assert (report.first.index, report.first.kind) == (7, "checkpoint")
    assert "[4, 8)" in report.first.message


def test_an_altered_state_row_is_named(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    _exec(store, "UPDATE audit_state SET frontier = :f", f=b"short")
    report = _verify(store, audit_settings)
    assert [(p.index, p.kind) for p in report.problems] == [(None, "size")]
    assert "frontier" in report.problems[0].message
    _exec(store, "UPDATE audit_state SET frontier = :f", f=bytes(64))
    report = _verify(store, audit_settings)
    assert [(p.index, p.kind) for p in report.problems] == [(None, "size")]


def test_a_forged_checkpoint_is_named(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    with store.session() as session:
        note = checkpoints.list_checkpoints(session)[0].note
    forged = note.replace("\n4\n", "\n5\n", 1)
    _exec(store, "UPDATE audit_checkpoints SET note = :n WHERE size = 4", n=forged)
    report = _verify(store, audit_settings)
    assert any(
        p.kind == "checkpoint" and "size 4" in p.message and "not valid" in p.message for p in report.problems
    )


def test_checkpoints_need_a_public_key(store: Store, audit_settings: Settings) -> None:
    _fill(store, audit_settings)
    with store.session() as session, pytest.raises(IntegrityError, match="public key"):
        verify_log(session, public_key=None)


def test_a_log_without_checkpoints_verifies_without_a_key(store: Store) -> None:
    _fill(store, Settings(), count=3)
    with store.session() as session:
        assert verify_log(session, public_key=None).ok


@pytest.mark.slow
def test_concurrent_writers_in_separate_processes_make_one_consistent_log(
    store: Store, audit_settings: Settings
) -> None:
    url = store.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-m", "tests.audit._writer", url, f"w{n}", "25"], cwd=ROOT, env=env)
        for n in range(3)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    with store.session() as session:
        assert log.current_size(session) == 75
        records = list(log.iter_records(session))
        subjects = sorted(record.subject for record in records)
        times = [record.time for record in records]
        assert times == sorted(times)  # read under the state row's lock: never back along the log
    assert subjects == sorted(f"complaint:w{w}-{n}" for w in range(3) for n in range(25))
    with store.session(write=True) as session:
        checkpoints.make_checkpoint(session, audit_settings)
    assert _verify(store, audit_settings).ok


def test_appends_and_checkpoints_made_during_a_verification_are_not_problems(
    store: Store, audit_settings: Settings
) -> None:
    _fill(store, audit_settings)
    key = checkpoints.signer_from_settings(audit_settings).public_key
    calls = 0

    def append_meanwhile(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # after the tree head was read, before the records are
            _fill(store, audit_settings, count=5)  # 17 records: a checkpoint at 16 is signed too

    with store.session() as session:
        report = verify_log(session, public_key=key, progress=append_meanwhile)
    assert report.ok, report.problems
    assert report.size == 12
    with store.session() as session:
        assert [c.size for c in checkpoints.list_checkpoints(session)] == [4, 8, 12, 16]
    assert _verify(store, audit_settings).size == 17
