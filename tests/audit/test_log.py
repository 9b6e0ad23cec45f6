"""Appending, reading, proofs from stored nodes, checkpoints; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import sqlalchemy as sa

from synthguard.audit import SETTINGS_INFO_KEY, checkpoints, log, merkle, notes, record_event
from synthguard.config import Settings
from synthguard.errors import ConfigError, ConflictError, NotFoundError, UsageError
from synthguard.store import Store


def _append(store: Store, count: int, settings: Settings | None = None, start: int = 0) -> None:
    with store.session(write=True) as session:
        for n in range(start, start + count):
            index = record_event(
                session,
                event="complaint.filed",
                actor="public",
                subject=f"complaint:SG-2026-{n:06d}",
                data={"n": n, "category": "rumor", "note": "投诉"},
                settings=settings,
            )
            assert index == n


def test_records_get_consecutive_indexes_and_the_tree_matches_a_recomputation(store: Store) -> None:
    _append(store, 21)
    with store.session() as session:
        records = list(log.iter_records(session, batch=5))
        assert [r.index for r in records] == list(range(21))
        leaves = [r.leaf_hash() for r in records]
        head = log.tree_head(session)
        assert head == log.root_at(session) == log.TreeHead(21, merkle.root_from_leaf_hashes(leaves))
        for size in (1, 2, 3, 8, 13, 21):
            root = log.root_at(session, size).root
            assert root == merkle.root_from_leaf_hashes(leaves[:size])
            for index in range(size):
                proof = log.inclusion_proof(session, index, size)
                assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
            for size1 in range(1, size + 1):
                proof = log.consistency_proof(session, size1, size)
                assert merkle.verify_consistency(size1, size, log.root_at(session, size1).root, root, proof)
        record = log.get_record(session, 3)
        assert record.data_object() == {"n": 3, "category": "rumor", "note": "投诉"}
        assert record.time.tzinfo is not None
        assert log.find_records(session, subject="complaint:SG-2026-000003") == [record]


def test_a_rolled_back_transaction_takes_its_record_with_it(store: Store) -> None:
    _append(store, 2)
    with pytest.raises(RuntimeError), store.session(write=True) as session:
        record_event(session, event="complaint.filed", actor="public", subject="complaint:X", data={})
        raise RuntimeError("the governance change failed")
    _append(store, 1, start=2)
    with store.session() as session:
        assert log.current_size(session) == 3
        assert [r.subject for r in log.iter_records(session)][-1] == "complaint:SG-2026-000002"


INVALID: list[tuple[str, Any, str]] = [
    ("event", "Complaint Filed", "dotted"),
    ("event", "complaint", "dotted"),
    ("event", 7, "string"),
    ("actor", "alice", "user:<name>"),
    ("actor", "user:", "user:<name>"),
    ("subject", "no-kind", "reference"),
    ("subject", "x:" + "y" * 300, "longer"),
    ("data", ["not", "a", "mapping"], "mapping"),
    ("data", {"bad": float("nan")}, "NaN"),
    ("data", {"bad": [float("inf")]}, "NaN"),
    ("data", {"bad": object()}, "JSON"),
    ("data", {1: "int key"}, "keys"),
    ("data", {"big": "x" * (log.MAX_DATA_BYTES + 1)}, "larger"),
    (
        "data",
        {"person": {"ids": ["id 11010519491231002X given"]}},
        r"data\.person\.ids\[0\] holds an unmasked resident",
    ),
    ("subject", "person:11010519491231002x", "unmasked resident"),
]


def test_masked_or_hashed_identity_numbers_and_other_digits_pass(store: Store) -> None:
    with store.session(write=True) as session:
        record_event(
            session,
            event="identity.verified",
            actor="system",
            subject="person:p1",
            data={"id": "1101**********002X", "id_hash": "3f" * 32, "order": "110105194912310021"},
        )


def test_invalid_records_are_refused_before_anything_is_written(store: Store) -> None:
    for field, value, message in INVALID:
        arguments: dict[str, Any] = {
            "event": "complaint.filed",
            "actor": "user:alice",
            "subject": "c:1",
            "data": {},
        }
        arguments[field] = value
        with store.session(write=True) as session:
            with pytest.raises(UsageError, match=message):
                record_event(session, **arguments)
            assert log.current_size(session) == 0, field


def test_reading_beyond_the_log_is_not_found(store: Store) -> None:
    _append(store, 3)
    with store.session() as session:
        with pytest.raises(NotFoundError):
            log.get_record(session, 3)
        with pytest.raises(NotFoundError):
            log.inclusion_proof(session, 3)
        with pytest.raises(NotFoundError):
            log.root_at(session, 4)
        with pytest.raises(UsageError):
            log.consistency_proof(session, 0, 3)
        assert log.root_at(session, 0).root == merkle.EMPTY_ROOT


def test_checkpoints_are_signed_every_interval_when_the_settings_are_given(
    store: Store, audit_settings: Settings
) -> None:
    _append(store, 9, settings=audit_settings)
    with store.session() as session:
        stored = checkpoints.list_checkpoints(session)
        assert [c.size for c in stored] == [4, 8]
        signer = checkpoints.signer_from_settings(audit_settings)
        for checkpoint in stored:
            parsed = notes.verify_checkpoint(checkpoint.note, "test.example/audit", signer.public_key)
            assert parsed.size == checkpoint.size
            assert parsed.root == checkpoint.root == log.root_at(session, checkpoint.size).root
        assert checkpoint.note.startswith(
            f"test.example/audit\n8\n{base64.b64encode(checkpoint.root).decode()}\n\n"
        )


def test_session_info_settings_also_trigger_checkpoints(store: Store, audit_settings: Settings) -> None:
    with store.session(write=True) as session:
        session.info[SETTINGS_INFO_KEY] = audit_settings
        for n in range(4):
            record_event(session, event="identity.verified", actor="system", subject=f"user:{n}", data={})
    with store.session() as session:
        assert [c.size for c in checkpoints.list_checkpoints(session)] == [4]


def test_due_and_on_demand_checkpoints_of_past_sizes(store: Store, audit_settings: Settings) -> None:
    _append(store, 10)
    with store.session(write=True) as session:
        made = checkpoints.make_due_checkpoints(session, audit_settings)
        assert [c.size for c in made] == [4, 8]
        assert checkpoints.make_due_checkpoints(session, audit_settings) == []
        latest = checkpoints.make_checkpoint(session, audit_settings, actor="user:auditor")
        assert latest.size == 10 and latest.actor == "user:auditor"
        again = checkpoints.make_checkpoint(session, audit_settings)
        assert again == latest
        past = checkpoints.make_checkpoint(session, audit_settings, size=5)
        assert past.root == log.root_at(session, 5).root
    with store.session() as session:
        latest_stored = checkpoints.latest_checkpoint(session)
        assert latest_stored is not None and latest_stored.size == 10


def test_an_empty_log_has_nothing_to_checkpoint(store: Store, audit_settings: Settings) -> None:
    with store.session(write=True) as session, pytest.raises(ConflictError):
        checkpoints.make_checkpoint(session, audit_settings)


def test_checkpoint_key_problems_are_config_errors(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="no audit checkpoint key"):
        checkpoints.signer_from_settings(Settings())
    with pytest.raises(ConfigError, match="PEM"):
        checkpoints.signer_from_settings(Settings(audit_checkpoint_key="not a key"))
    with pytest.raises(ConfigError, match="cannot read"):
        checkpoints.signer_from_settings(Settings(audit_checkpoint_key_file=str(tmp_path / "missing.pem")))


def test_a_missing_key_does_not_stop_records(store: Store) -> None:
    _append(store, 5, settings=Settings(audit_checkpoint_interval=1))
    with store.session() as session:
        assert log.current_size(session) == 5
        assert checkpoints.list_checkpoints(session) == []


def test_a_broken_key_does_not_stop_records_and_is_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _append(store, 2, settings=Settings(audit_checkpoint_interval=1, audit_checkpoint_key="not a key"))
    with store.session() as session:
        assert log.current_size(session) == 2
        assert checkpoints.list_checkpoints(session) == []
    assert "not signed" in caplog.text


def test_the_state_row_must_exist(store: Store) -> None:
    with store.session(write=True) as session:
        session.execute(sa.text("DELETE FROM audit_state"))
        with pytest.raises(Exception, match="state row is missing"):
            record_event(session, event="a.b", actor="system", subject="x:y", data={})
