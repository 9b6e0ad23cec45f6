"""Appending to the audit log and reading it back: records, tree nodes, roots and proofs.

``record_event`` appends one record INSIDE the caller's transaction, so a governance change and its
audit record commit or roll back together::

    with store.session(write=True) as session:
        complaint = file_complaint(session, ...)
        record_event(session, event="complaint.filed", actor="public",
                     subject=f"complaint:{complaint.number}", data={"category": "rumor"})

Concurrency: the next index is taken by ``UPDATE audit_state SET size = size + 1 ... RETURNING``, the
first statement of an append. On PostgreSQL that UPDATE holds the state row's lock until the
transaction ends (the same lock ``SELECT ... FOR UPDATE`` takes, in one round trip), so concurrent
writers in any number of processes get consecutive indexes and append their nodes in index order.
On SQLite the UPDATE takes the database's write lock (the caller's ``BEGIN IMMEDIATE`` has already
taken it in ``store.session(write=True)``). A writer that rolls back releases its index: the next
writer takes it, so the log has no holes.

Each append writes one record row, the leaf hash and the hash of every subtree the leaf completes
(on average 2 node rows), and the new frontier; it reads nothing but the state row. Nothing in this
module commits.

The leaf of record ``i`` (``leaf_bytes``) is the canonical JSON (sorted keys, no spaces, UTF-8) of
``{"v": 1, "index": i, "time": "<UTC, microseconds, Z>", "event", "actor", "subject",
"data_sha256": "<hex SHA-256 of the canonical JSON of data>"}``. The record row keeps the data's
canonical JSON, so verification recomputes every leaf from the rows alone.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from stdnum.cn import ric as cn_ric

from synthguard.audit import leaves, merkle
from synthguard.audit.models import EVENT_LENGTH, SUBJECT_LENGTH, AuditNodeRow, AuditRecordRow, AuditStateRow
from synthguard.config import Settings
from synthguard.errors import IntegrityError, NotFoundError, UsageError
from synthguard.store.models import ACTOR_LENGTH

__all__ = [
    "LEAF_VERSION",
    "MAX_DATA_BYTES",
    "SETTINGS_INFO_KEY",
    "AuditRecord",
    "TreeHead",
    "canonical_json",
    "consistency_proof",
    "current_size",
    "fetch_nodes",
    "find_records",
    "format_time",
    "get_record",
    "inclusion_proof",
    "iter_records",
    "leaf_bytes",
    "leaf_hash_at",
    "record_event",
    "root_at",
    "tree_head",
]

#: Version of the leaf format; part of every leaf.
LEAF_VERSION: Final = leaves.LEAF_VERSION
#: Largest canonical JSON of one record's data.
MAX_DATA_BYTES: Final = 64 * 1024
#: Key of ``Session.info`` under which a caller may put ``Settings`` (see ``record_event``).
SETTINGS_INFO_KEY: Final = "synthguard.settings"

#: Most keys fetched by one statement.
_FETCH_CHUNK: Final = 200
_RESIDENT_ID_RE: Final = re.compile(r"(?<![0-9A-Za-z])([0-9]{17}[0-9Xx])(?![0-9A-Za-z])")
_EVENT_RE: Final = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_ACTOR_RE: Final = re.compile(r"(?:user|token):[^\s\x00-\x1f\x7f]+|public|system")
_SUBJECT_RE: Final = re.compile(r"[^\s\x00-\x1f\x7f:]+:[^\x00-\x1f\x7f]+")
_STATE: Final = cast(sa.Table, AuditStateRow.__table__)
_NODES: Final = cast(sa.Table, AuditNodeRow.__table__)
_RECORDS: Final = cast(sa.Table, AuditRecordRow.__table__)

# The append's statements, built once (building SQLAlchemy expressions costs more than running them).
_TAKE_INDEX: Final = (
    sa.update(_STATE)
    .where(_STATE.c.id == 1)
    .values(size=_STATE.c.size + 1)
    .returning(_STATE.c.size, _STATE.c.frontier)
)
_SET_FRONTIER: Final = (
    sa.update(_STATE)
    .where(_STATE.c.id == 1)
    .values(frontier=sa.bindparam("frontier"), updated_at=sa.bindparam("now"))
)
_INSERT_RECORD: Final = sa.insert(_RECORDS)
_INSERT_NODES: Final = sa.insert(_NODES)


@functools.lru_cache(maxsize=256)
def _fetch_nodes_statement(count: int) -> sa.Select[Any]:
    """``... WHERE (level = :l0 AND idx = :i0) OR ...`` for ``count`` keys, built once per count.

    Not a row-value ``IN``: SQLite (3.40) scans the whole table for ``(level, idx) IN (...)``, while
    it answers the OR of equalities with one primary-key search per key (PostgreSQL likewise, with a
    bitmap OR of index scans). Building the expression is the costly part, hence the cache.
    """
    conditions = [
        sa.and_(_NODES.c.level == sa.bindparam(f"l{n}"), _NODES.c.idx == sa.bindparam(f"i{n}"))
        for n in range(count)
    ]
    return sa.select(_NODES.c.level, _NODES.c.idx, _NODES.c.hash).where(sa.or_(*conditions))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One record of the log as stored; ``data`` is the canonical JSON text that was hashed."""

    index: int
    time: dt.datetime
    event: str
    actor: str
    subject: str
    data: str

    def leaf(self) -> bytes:
        """The leaf's bytes (what the Merkle tree hashes)."""
        return leaf_bytes(self.index, self.time, self.event, self.actor, self.subject, self.data)

    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.leaf())

    def data_object(self) -> Any:
        return json.loads(self.data)

    def to_json(self) -> dict[str, Any]:
        """The record as exported (one JSON line of a bundle's ``records.jsonl``)."""
        return {
            "index": self.index,
            "time": format_time(self.time),
            "event": self.event,
            "actor": self.actor,
            "subject": self.subject,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A tree size and its root hash."""

    size: int
    root: bytes


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant space, non-ASCII kept, no NaN or infinity (``leaves.canonical_json``).

    Raises ``UsageError`` for a value JSON cannot represent.
    """
    try:
        return leaves.canonical_json(value)
    except (TypeError, ValueError) as error:
        raise UsageError(f"audit data is not JSON-serialisable: {error}") from error


def format_time(value: dt.datetime) -> str:
    """UTC with microseconds and ``Z``: ``2026-11-28T18:00:00.123456Z`` (the leaf's time form)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def leaf_bytes(index: int, time: dt.datetime, event: str, actor: str, subject: str, data: str) -> bytes:
    """The leaf of a record: canonical JSON of the record with its data's SHA-256 (``audit.leaves``)."""
    return leaves.leaf_bytes(index, format_time(time), event, actor, subject, data)


def _check_text(name: str, value: object, pattern: re.Pattern[str], limit: int, hint: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"audit {name} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise UsageError(f"audit {name} is longer than {limit} characters")
    if not pattern.fullmatch(value):
        raise UsageError(f"audit {name} {value!r} is not {hint}")
    return value


def _check_data(data: object) -> str:
    if not isinstance(data, Mapping):
        raise UsageError(f"audit data must be a mapping, got {type(data).__name__}")
    if not all(isinstance(key, str) for key in data):
        raise UsageError("audit data keys must be strings")
    _check_values(data)
    text = canonical_json(dict(data))
    if len(text.encode("utf-8")) > MAX_DATA_BYTES:
        raise UsageError(f"audit data is larger than {MAX_DATA_BYTES} bytes of JSON")
    return text


def _check_values(value: object, path: str = "data") -> None:
    """Refuse NaN and infinity, and strings holding an unmasked resident identity number.

    Records are never deleted, so personal data must never enter them: an 18-character run that is a
    valid resident ID (GB 11643 check digit and birth date, via python-stdnum) is refused wherever it
    appears in a string. A keyed hash or masked number (``1101**********002X``) passes.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"audit {path} may not hold NaN or infinity")
    if isinstance(value, str):
        for match in _RESIDENT_ID_RE.finditer(value):
            if cn_ric.is_valid(match.group(1)):
                raise UsageError(
                    f"audit {path} holds an unmasked resident identity number: mask it or keep a keyed hash"
                )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_values(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for number, item in enumerate(value):
            _check_values(item, f"{path}[{number}]")


def record_event(
    session: Session,
    *,
    event: str,
    actor: str,
    subject: str,
    data: Mapping[str, Any],
    settings: Settings | None = None,
) -> int:
    """Append one record to the audit log inside the caller's transaction; return its 0-based index.

    ``event``: a dotted lower-case name (``complaint.filed``); ``actor``: ``user:<name>``,
    ``token:<name>``, ``public`` or ``system``; ``subject``: a record reference ``<kind>:<id>``;
    ``data``: a JSON-serialisable mapping, at most ``MAX_DATA_BYTES`` as canonical JSON, which must not
    hold raw identity numbers or secrets (mask them or keep a keyed hash; a valid resident ID number
    in ``data`` or ``subject`` is refused). Invalid input raises
    ``UsageError`` before anything is written. The caller commits (or rolls back) the record with its
    own change; nothing here commits.

    When ``settings`` (or ``session.info[SETTINGS_INFO_KEY]``) is a ``Settings`` with a checkpoint key
    and the new size is a multiple of ``audit_checkpoint_interval``, a signed checkpoint of that size
    is added in the same transaction; without a key, checkpoints are made later (``audit checkpoint``).
    """
    event = _check_text(
        "event", event, _EVENT_RE, EVENT_LENGTH, "a dotted lower-case name like complaint.filed"
    )
    actor = _check_text(
        "actor", actor, _ACTOR_RE, ACTOR_LENGTH, "user:<name>, token:<name>, public or system"
    )
    subject = _check_text(
        "subject", subject, _SUBJECT_RE, SUBJECT_LENGTH, "a reference like complaint:SG-2026-1"
    )
    _check_values(subject, "subject")
    text = _check_data(data)
    row = session.execute(_TAKE_INDEX).one_or_none()
    if row is None:
        raise IntegrityError("the audit log's state row is missing: is the database migrated?")
    # the time is read while the state row's lock is held: times never go back along the log
    now = dt.datetime.now(dt.UTC)
    size, frontier_blob = int(row[0]), bytes(row[1])
    index = size - 1
    frontier = _split_frontier(frontier_blob, index)
    record = AuditRecord(index, now, event, actor, subject, text)
    frontier, completed = merkle.frontier_append(frontier, index, record.leaf_hash())
    session.execute(_SET_FRONTIER, {"frontier": b"".join(frontier), "now": now})
    session.execute(
        _INSERT_RECORD,
        {"idx": index, "recorded_at": now, "event": event, "actor": actor, "subject": subject, "data": text},
    )
    session.execute(_INSERT_NODES, [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in completed])
    settings = settings if settings is not None else session.info.get(SETTINGS_INFO_KEY)
    if isinstance(settings, Settings):
        from synthguard.audit import checkpoints  # checkpoints imports this module

        checkpoints.checkpoint_if_due(session, settings, TreeHead(size, merkle.root_from_frontier(frontier)))
    return index


def _split_frontier(blob: bytes, size: int) -> list[bytes]:
    if len(blob) != merkle.HASH_SIZE * size.bit_count():
        raise IntegrityError(
            f"the audit log's frontier holds {len(blob)} bytes, not {merkle.HASH_SIZE * size.bit_count()} "
            f"for {size} records: the state row was altered"
        )
    return [blob[i : i + merkle.HASH_SIZE] for i in range(0, len(blob), merkle.HASH_SIZE)]


# -- reading -----------------------------------------------------------------------------------


def tree_head(session: Session) -> TreeHead:
    """The current size and root (from the state row's frontier)."""
    row = session.execute(sa.select(_STATE.c.size, _STATE.c.frontier).where(_STATE.c.id == 1)).one_or_none()
    if row is None:
        raise IntegrityError("the audit log's state row is missing: is the database migrated?")
    size = int(row[0])
    return TreeHead(size, merkle.root_from_frontier(_split_frontier(bytes(row[1]), size)))


def current_size(session: Session) -> int:
    """The number of records in the log."""
    size = session.execute(sa.select(_STATE.c.size).where(_STATE.c.id == 1)).scalar_one_or_none()
    if size is None:
        raise IntegrityError("the audit log's state row is missing: is the database migrated?")
    return int(size)


def fetch_nodes(session: Session, wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of the complete subtrees ``wanted``; ``IntegrityError`` if one is missing."""
    keys = sorted(set(wanted))
    found: dict[tuple[int, int], bytes] = {}
    if not keys:
        return found
    for start in range(0, len(keys), _FETCH_CHUNK):
        part = keys[start : start + _FETCH_CHUNK]
        parameters: dict[str, int] = {}
        for n, (level, index) in enumerate(part):
            parameters[f"l{n}"], parameters[f"i{n}"] = level, index
        for level, index, value in session.execute(_fetch_nodes_statement(len(part)), parameters):
            found[(int(level), int(index))] = bytes(value)
    missing = [key for key in keys if key not in found]
    if missing:
        level, index = missing[0]
        raise IntegrityError(
            f"audit tree node (level {level}, index {index}) is missing: the node table was altered"
        )
    return found


def _check_size(session: Session, size: int | None) -> int:
    current = current_size(session)
    if size is None:
        return current
    if not 0 <= size <= current:
        raise NotFoundError(f"the audit log has {current} records; there is no tree of size {size}")
    return size


def root_at(session: Session, size: int | None = None) -> TreeHead:
    """The root of the tree of the first ``size`` records (default: all), from O(log n) stored nodes."""
    size = _check_size(session, size)
    if size == 0:
        return TreeHead(0, merkle.EMPTY_ROOT)
    pieces = merkle.range_nodes(0, size)
    nodes = fetch_nodes(session, pieces)
    return TreeHead(size, merkle.fold([nodes[p] for p in pieces]))


def inclusion_proof(session: Session, index: int, size: int | None = None) -> list[bytes]:
    """The RFC 9162 inclusion proof of record ``index`` in the tree of ``size`` (default: all)."""
    size = _check_size(session, size)
    if not 0 <= index < size:
        raise NotFoundError(f"record {index} is not in the audit tree of size {size}")
    plan = merkle.inclusion_plan(index, size)
    return merkle.proof_from_nodes(plan, fetch_nodes(session, (n for part in plan for n in part)))


def consistency_proof(session: Session, size1: int, size2: int | None = None) -> list[bytes]:
    """The RFC 9162 consistency proof from tree size ``size1`` (>= 1) to ``size2`` (default: all)."""
    size2 = _check_size(session, size2)
    if not 0 < size1 <= size2:
        raise UsageError(f"no consistency proof from size {size1} to size {size2}")
    plan = merkle.consistency_plan(size1, size2)
    return merkle.proof_from_nodes(plan, fetch_nodes(session, (n for part in plan for n in part)))


def leaf_hash_at(session: Session, index: int) -> bytes:
    """The stored leaf hash of record ``index``."""
    return fetch_nodes(session, [(0, index)])[(0, index)]


def get_record(session: Session, index: int) -> AuditRecord:
    """Record ``index``; ``NotFoundError`` when there is none."""
    row = session.execute(sa.select(_RECORDS).where(_RECORDS.c.idx == index)).one_or_none()
    if row is None:
        raise NotFoundError(f"audit record {index} does not exist")
    return _record(row)


def _record(row: Sequence[Any]) -> AuditRecord:
    idx, recorded_at, event, actor, subject, data = row
    return AuditRecord(int(idx), recorded_at, event, actor, subject, data)


def iter_records(
    session: Session, start: int = 0, stop: int | None = None, *, batch: int = 5000
) -> Iterator[AuditRecord]:
    """The record rows with ``start <= index < stop`` in index order, read in batches (keyset paging)."""
    position = start
    columns = (
        _RECORDS.c.idx,
        _RECORDS.c.recorded_at,
        _RECORDS.c.event,
        _RECORDS.c.actor,
        _RECORDS.c.subject,
        _RECORDS.c.data,
    )
    while True:
        query = sa.select(*columns).where(_RECORDS.c.idx >= position).order_by(_RECORDS.c.idx).limit(batch)
        if stop is not None:
            query = query.where(_RECORDS.c.idx < stop)
        rows = session.execute(query).all()
        for row in rows:
            yield AuditRecord(int(row[0]), _utc(row[1]), row[2], row[3], row[4], row[5])
        if len(rows) < batch:
            return
        position = int(rows[-1][0]) + 1


def _utc(value: dt.datetime) -> dt.datetime:
    # Core selects of the table columns go through UtcDateTime; keep a naive value from being guessed.
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def find_records(
    session: Session, *, subject: str | None = None, event: str | None = None, limit: int = 100
) -> list[AuditRecord]:
    """Records of one subject and/or event, oldest first (at most ``limit``)."""
    query = sa.select(_RECORDS).order_by(_RECORDS.c.idx).limit(limit)
    if subject is not None:
        query = query.where(_RECORDS.c.subject == subject)
    if event is not None:
        query = query.where(_RECORDS.c.event == event)
    return [_record(row) for row in session.execute(query)]
