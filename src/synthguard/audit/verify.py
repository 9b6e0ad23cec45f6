"""Re-check the whole audit log and name the first record that was edited, deleted or reordered.

``verify_log`` reads the records in index order (in batches, keyset paging) and, independently of
anything the database says about them:

1. recomputes each record's leaf from its row and compares it with the stored leaf hash (level 0):
   an edited record (data, time, event, actor, subject) or one moved to another index shows here;
   for a mismatch the stored leaf hashes near it are searched for the one the row's contents belong
   to, to tell "reordered" (the row holds record j's contents) from "edited";
2. notices a missing index (a deleted row), rows beyond the tree size (inserted), and a tree size
   that disagrees with the number of rows;
3. rebuilds the tree and compares every stored complete-subtree hash (a record already reported
   as altered contributes its STORED leaf hash, so one edit is reported once, not at every level);
4. checks each checkpoint: its Ed25519 signature (key from the settings or given), that its note
   says what its row says, and that its root is the root recomputed from the records at its size.
   If the records, leaf hashes and nodes were all rewritten consistently, the signed checkpoints
   no longer match: the first one that fails bounds the altered record between it and the last one
   that held.

The report lists problems in index order (at most ``max_problems``); ``first`` is the earliest.
Memory stays O(batch + log n); time is linear in the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.audit import log, merkle, notes
from synthguard.audit.checkpoints import StoredCheckpoint, list_checkpoints
from synthguard.audit.models import AuditCheckpointRow, AuditNodeRow, AuditRecordRow, AuditStateRow
from synthguard.errors import IntegrityError

__all__ = ["Problem", "VerifyReport", "verify_log"]

#: Records read per query.
BATCH: Final = 4096
#: Stored leaf hashes searched either side of an altered record to find where its contents belong.
REORDER_WINDOW: Final = 512

_NODES: Final = cast(sa.Table, AuditNodeRow.__table__)
_RECORDS: Final = cast(sa.Table, AuditRecordRow.__table__)
_STATE: Final = cast(sa.Table, AuditStateRow.__table__)
_CHECKPOINTS: Final = cast(sa.Table, AuditCheckpointRow.__table__)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: the record index it concerns (``None`` for the log as a whole), a kind, a message.

    Kinds: ``edited``, ``reordered``, ``deleted``, ``inserted``, ``node``, ``size``, ``checkpoint``.
    """

    index: int | None
    kind: str
    message: str

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "kind": self.kind, "message": self.message}


@dataclass
class VerifyReport:
    """The outcome of ``verify_log``."""

    size: int = 0
    records_checked: int = 0
    nodes_checked: int = 0
    checkpoints_checked: int = 0
    root: bytes = merkle.EMPTY_ROOT
    problems: list[Problem] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The earliest problem: the lowest record index, problems of the whole log last."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.index is None, p.index or 0))

    def to_json(self) -> dict[str, object]:
        first = self.first
        return {
            "ok": self.ok,
            "size": self.size,
            "root": self.root.hex(),
            "records_checked": self.records_checked,
            "nodes_checked": self.nodes_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "first_problem": None if first is None else first.to_json(),
            "problems": [p.to_json() for p in self.problems],
            "problems_truncated": self.truncated,
        }


class _Collector:
    def __init__(self, report: VerifyReport, limit: int) -> None:
        self.report = report
        self.limit = limit

    def add(self, index: int | None, kind: str, message: str) -> None:
        if len(self.report.problems) >= self.limit:
            self.report.truncated = True
            return
        self.report.problems.append(Problem(index, kind, message))


def _stored_nodes(session: Session, start: int, stop: int) -> dict[tuple[int, int], bytes]:
    """Every stored node whose subtree ends in leaves ``[start, stop)`` (so completes in that batch)."""
    # node (level, p) completes with leaf (p + 1) * 2**level - 1
    conditions = []
    level = 0
    while (1 << level) <= stop:
        low = -(-(start + 1) // (1 << level)) - 1
        high = stop >> level
        if high > low:
            conditions.append(sa.and_(_NODES.c.level == level, _NODES.c.idx >= low, _NODES.c.idx < high))
        level += 1
    if not conditions:
        return {}
    query = sa.select(_NODES.c.level, _NODES.c.idx, _NODES.c.hash).where(sa.or_(*conditions))
    return {(int(lv), int(ix)): bytes(h) for lv, ix, h in session.execute(query)}


def _leaf_window(session: Session, index: int, size: int) -> dict[bytes, int]:
    low, high = max(0, index - REORDER_WINDOW), min(size, index + REORDER_WINDOW + 1)
    query = sa.select(_NODES.c.idx, _NODES.c.hash).where(
        _NODES.c.level == 0, _NODES.c.idx >= low, _NODES.c.idx < high
    )
    return {bytes(h): int(ix) for ix, h in session.execute(query)}


def _belongs_to(record: log.AuditRecord, window: dict[bytes, int]) -> int | None:
    """The index whose stored leaf hash the row's contents produce, if one in the window does."""
    for candidate in sorted(set(window.values()), key=lambda j: abs(j - record.index)):
        if candidate == record.index:
            continue
        leaf = log.leaf_bytes(candidate, record.time, record.event, record.actor, record.subject, record.data)
        if window.get(merkle.leaf_hash(leaf)) == candidate:
            return candidate
    return None


def _records_with_gaps(session: Session, size: int) -> Iterator[log.AuditRecord | int]:
    """Rows below ``size`` in index order, and each missing index as the int itself."""
    expected = 0
    for record in log.iter_records(session, 0, size, batch=BATCH):
        while expected < record.index:
            yield expected
            expected += 1
        yield record
        expected = record.index + 1
    while expected < size:
        yield expected
        expected += 1


def _beyond_the_tree(session: Session, problems: _Collector) -> None:
    """Rows and checkpoints beyond the tree size, each found by ONE statement (one snapshot).

    Appends go on while a log is verified (PostgreSQL's READ COMMITTED shows each statement the
    latest commits): comparing with the state row in the same statement tells a concurrent append
    (which moves the state row with its rows, atomically) from a row inserted behind synthguard.
    """
    current = sa.select(_STATE.c.size).where(_STATE.c.id == 1).scalar_subquery()
    rows = session.execute(
        sa.select(_RECORDS.c.idx)
        .where(_RECORDS.c.idx >= current)
        .order_by(_RECORDS.c.idx)
        .limit(problems.limit)
    ).scalars()
    for index in rows:
        problems.add(index, "inserted", f"record {index} is beyond the tree size: a row was inserted")
    sizes = session.execute(
        sa.select(_CHECKPOINTS.c.size).where(sa.or_(_CHECKPOINTS.c.size > current, _CHECKPOINTS.c.size == 0))
    ).scalars()
    for size in sizes:
        problems.add(None, "checkpoint", f"checkpoint of size {size} is beyond the tree size")


def verify_log(
    session: Session,
    *,
    public_key: bytes | None,
    key_name: str | None = None,
    max_problems: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Re-check the whole log (module docstring). ``public_key``: raw Ed25519 key that signs checkpoints.

    With checkpoints present and no ``public_key``, ``IntegrityError``: the signatures cannot be checked.
    Nothing is written.
    """
    state_problem = None
    try:
        head = log.tree_head(session)
    except IntegrityError as error:  # a state row whose frontier was altered: check the rest anyway
        head = log.TreeHead(log.current_size(session), b"")
        state_problem = str(error)
    report = VerifyReport(size=head.size)
    problems = _Collector(report, max_problems)
    if state_problem is not None:
        problems.add(None, "size", state_problem)
    stored_checkpoints = list_checkpoints(session)
    if stored_checkpoints and public_key is None:
        raise IntegrityError(
            f"the log has {len(stored_checkpoints)} checkpoints but no public key to check their signatures "
            "(configure audit_checkpoint_key or pass the public key)"
        )
    by_size: dict[int, StoredCheckpoint] = {}
    for checkpoint in stored_checkpoints:
        if 0 < checkpoint.size <= head.size:  # later ones were made after ``head`` was read
            by_size[checkpoint.size] = checkpoint
            _check_signature(checkpoint, public_key, key_name, problems)
            report.checkpoints_checked += 1

    frontier: list[bytes] = []
    nodes: dict[tuple[int, int], bytes] = {}
    batch_end = 0
    last_good_checkpoint = 0
    gap_reported = False
    for item in _records_with_gaps(session, head.size):
        index = item if isinstance(item, int) else item.index
        if index >= batch_end:
            batch_end = min(head.size, index + BATCH)
            nodes = _stored_nodes(session, index, batch_end)
            if progress is not None:
                progress(index, head.size)
        stored_leaf = nodes.get((0, index))
        if isinstance(item, int):
            if not gap_reported:
                problems.add(index, "deleted", f"record {index} is missing: its row was deleted")
            gap_reported = True
            computed = merkle.leaf_hash(b"")
        else:
            gap_reported = False
            report.records_checked += 1
            computed = item.leaf_hash()
            if stored_leaf is None:
                problems.add(index, "node", f"the stored leaf hash of record {index} is missing")
            elif stored_leaf != computed:
                moved = _belongs_to(item, _leaf_window(session, index, head.size))
                if moved is not None:
                    problems.add(
                        index,
                        "reordered",
                        f"record {index} holds the contents of record {moved}: rows were reordered",
                    )
                else:
                    problems.add(
                        index,
                        "edited",
                        f"record {index} ({item.event} {item.subject}) was edited: its leaf hash differs",
                    )
        # a record already reported as altered continues with its stored leaf hash, so the checks of
        # the nodes and checkpoints above it test the stored tree rather than repeat the same finding
        tree_leaf = stored_leaf if stored_leaf is not None else computed
        frontier, completed = merkle.frontier_append(frontier, index, tree_leaf)
        for level, position, value in completed[1:]:
            report.nodes_checked += 1
            stored = nodes.get((level, position))
            if stored is None:
                problems.add(index, "node", f"tree node (level {level}, index {position}) is missing")
            elif stored != value:
                problems.add(
                    index,
                    "node",
                    f"tree node (level {level}, index {position}) differs from the records' recomputed one",
                )
        size = index + 1
        signed = by_size.get(size)
        if signed is not None:
            if merkle.root_from_frontier(frontier) != signed.root:
                problems.add(
                    index,
                    "checkpoint",
                    f"the records no longer hash to the signed checkpoint of size {size}: a record in "
                    f"[{last_good_checkpoint}, {size}) was altered and its hashes rewritten",
                )
            else:
                last_good_checkpoint = size
    _beyond_the_tree(session, problems)
    report.root = merkle.root_from_frontier(frontier)
    if state_problem is None and report.root != head.root:
        problems.add(None, "size", "the state row's root differs from the root recomputed from the records")
    if progress is not None:
        progress(head.size, head.size)
    return report


def _check_signature(
    checkpoint: StoredCheckpoint, public_key: bytes | None, key_name: str | None, problems: _Collector
) -> None:
    if public_key is None:
        return
    name = key_name or checkpoint.key_name
    try:
        parsed = notes.verify_checkpoint(checkpoint.note, name, public_key)
    except notes.NoteError as error:
        problems.add(None, "checkpoint", f"checkpoint of size {checkpoint.size}: {error}")
        return
    if (parsed.origin, parsed.size, parsed.root) != (checkpoint.origin, checkpoint.size, checkpoint.root):
        problems.add(
            None, "checkpoint", f"checkpoint of size {checkpoint.size}: its row differs from its signed note"
        )
