"""The library's tables (``store/models.py``) as the other modules use them: entries read as plain
rows, changes of procedure written with one change-log row each, and the change counter that moves
with every committed change (what ``LibraryWatcher`` polls).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.errors import UsageError
from synthguard.review.library.model import (
    ChangeKind,
    ChangeRecord,
    EntryState,
    LibraryEntry,
)
from synthguard.store.models import (
    LibraryChangeRow,
    LibraryEntryRow,
    LibraryStateRow,
)

_IN_CHUNK: Final = 500  # ids per IN (...) clause


_LIVE_STATES: Final = (EntryState.APPROVED.value, EntryState.ACTIVE.value, EntryState.LAPSED.value)


_TABLE: Final = cast(sa.Table, LibraryEntryRow.__table__)
_COLUMNS: Final = _TABLE.c
_CHANGES: Final = cast(sa.Table, LibraryChangeRow.__table__)
#: The columns a change of procedure (approve, disable, enable, refresh) writes.
_MUTABLE: Final = ("approver", "approved_at", "state", "disabled_reason", "updated_at")
#: The columns ``LibraryEntry._from_row`` unpacks, in its order.
_ENTRY_COLUMNS: Final = tuple(
    _COLUMNS[name]
    for name in (
        "id",
        "kind",
        "term",
        "category",
        "action",
        "match",
        "reason",
        "source",
        "proposer",
        "approver",
        "approved_at",
        "effective_from",
        "lapses_at",
        "state",
        "disabled_reason",
        "quality",
        "refutation_id",
        "refutation_title",
        "refutation_url",
        "refutation_published",
        "created_at",
        "updated_at",
    )
)


def _load(session: Session, *where: sa.ColumnElement[bool], lock: bool = False) -> list[LibraryEntry]:
    """Entries by id, read as plain rows (ORM objects cost more than the whole rest of a compile);
    ``lock`` takes row locks (PostgreSQL; SQLite's write sessions hold the database lock)."""
    query = sa.select(*_ENTRY_COLUMNS).where(*where).order_by(_COLUMNS.id)
    if lock:
        query = query.with_for_update()
    return [LibraryEntry._from_row(row) for row in session.execute(query)]


def _load_ids(session: Session, ids: Sequence[str], *, lock: bool = False) -> dict[str, LibraryEntry]:
    found: dict[str, LibraryEntry] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _IN_CHUNK):
        for entry in _load(session, _COLUMNS.id.in_(unique[start : start + _IN_CHUNK]), lock=lock):
            found[entry.id] = entry
    return found


def _change_values(
    at: dt.datetime,
    actor: str,
    kind: ChangeKind,
    before: LibraryEntry | None,
    after: LibraryEntry,
    *,
    batch: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "at": at,
        "actor": actor,
        "kind": kind.value,
        "entry_id": after.id,
        "snapshot_id": None,
        "batch": batch,
        "before": before.to_record() if before is not None else None,
        "after": after.to_record(),
        "note": note,
    }


def _apply(
    session: Session,
    at: dt.datetime,
    actor: str,
    kind: ChangeKind,
    changes: Sequence[tuple[LibraryEntry, LibraryEntry]],
    *,
    batch: str | None = None,
    note: str = "",
) -> None:
    """Write the procedure columns of each ``after``, one change record per entry, and move the
    change counter; nothing when ``changes`` is empty."""
    if not changes:
        return
    update = (
        sa.update(_TABLE)
        .where(_COLUMNS.id == sa.bindparam("b_id"))
        .values({name: sa.bindparam(f"b_{name}") for name in _MUTABLE})
    )
    params = []
    for _, after in changes:
        values = after._values()
        params.append({"b_id": after.id, **{f"b_{name}": values[name] for name in _MUTABLE}})
    session.execute(update, params)
    session.execute(
        sa.insert(_CHANGES),
        [_change_values(at, actor, kind, before, after, batch=batch, note=note) for before, after in changes],
    )
    _bump(session, at)


def _counter(session: Session) -> int:
    value = session.scalar(sa.select(LibraryStateRow.change_counter).where(LibraryStateRow.id == 1))
    if value is None:
        raise UsageError("the library tables are missing their state row: run the migrations (Store.upgrade)")
    return int(value)


def _bump(session: Session, at: dt.datetime) -> None:
    session.execute(
        sa.update(LibraryStateRow)
        .where(LibraryStateRow.id == 1)
        .values(change_counter=LibraryStateRow.change_counter + 1, changed_at=at)
    )


def _change(row: LibraryChangeRow) -> ChangeRecord:
    return ChangeRecord(
        id=row.id,
        at=row.at,
        actor=row.actor,
        kind=ChangeKind(row.kind),
        entry_id=row.entry_id,
        snapshot=f"v{row.snapshot_id}" if row.snapshot_id is not None else None,
        batch=row.batch,
        before=row.before,
        after=row.after,
        note=row.note,
    )
