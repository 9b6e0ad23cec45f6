"""Versions of the library: ``snapshot`` freezes the active set under ``v1``, ``v2``, ... with the
SHA-256 of its canonical export; ``compile`` builds the ``CompiledLibrary`` of the active set (or of
a snapshot) stamped with the version that names exactly its entries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.errors import UsageError
from synthguard.review.engine import (
    CompiledLibrary,
    ReviewPolicy,
)
from synthguard.review.library.formats import (
    _Spec,
    _spec,
)
from synthguard.review.library.model import (
    ChangeKind,
    EntryKind,
    EntryState,
    LibraryEntry,
    Snapshot,
    _actor,
    _aware,
)
from synthguard.review.library.rows import (
    _COLUMNS,
    _LIVE_STATES,
    _bump,
    _counter,
    _load,
)
from synthguard.review.library.workflow import LibraryBase
from synthguard.store.models import (
    LibraryChangeRow,
    LibrarySnapshotRow,
)


def _canonical(records: Sequence[Mapping[str, Any]]) -> str:
    """The canonical export digested by snapshots: sorted by id, keys sorted, no state."""
    body = [{k: v for k, v in r.items() if k != "state"} for r in sorted(records, key=lambda r: r["id"])]
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class _Compiled:
    library: CompiledLibrary
    change_counter: int
    #: The next time an entry becomes active or lapses (``None``: none scheduled).
    next_transition: dt.datetime | None


class VersionsMixin(LibraryBase):
    """Snapshots of the active set and compiled libraries."""

    def snapshot(self, label: str, actor: str, *, now: dt.datetime | None = None) -> Snapshot:
        """Freeze the active set at ``now`` as a new version (see the module docstring)."""
        actor = _actor(actor)
        if not isinstance(label, str) or not label.strip():
            raise UsageError("a snapshot needs a label")
        at = _aware(now)
        with self.store.session(write=True) as session:
            counter = _counter(session)
            active = self._active(session, at)
            content = _canonical([e.to_record(state=EntryState.ACTIVE) for e in active])
            row = LibrarySnapshotRow(
                label=label.strip(),
                actor=actor,
                created_at=at,
                as_of=at,
                digest=_digest(content),
                entry_count=len(active),
                change_counter=counter + 1,
                content=content,
            )
            session.add(row)
            session.flush()
            snapshot = Snapshot._from_row(row)
            session.add(
                LibraryChangeRow(
                    at=at,
                    actor=actor,
                    kind=ChangeKind.SNAPSHOT.value,
                    entry_id=None,
                    snapshot_id=row.id,
                    batch=None,
                    before=None,
                    after=snapshot.to_dict(),
                    note=label.strip(),
                )
            )
            _bump(session, at)
        return snapshot

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot, oldest first."""
        with self.store.session() as session:
            rows = session.scalars(sa.select(LibrarySnapshotRow).order_by(LibrarySnapshotRow.id))
            return [Snapshot._from_row(row) for row in rows]

    def snapshot_records(self, version: str) -> list[dict[str, Any]]:
        """The entries frozen in snapshot ``version`` (``v3``), as export records without state."""
        with self.store.session() as session:
            row = session.get(LibrarySnapshotRow, _snapshot_number(version))
            if row is None:
                raise UsageError(f"no snapshot {version!r}")
            records: list[dict[str, Any]] = json.loads(row.content)
            return records

    def compile(
        self, now: dt.datetime | None = None, *, review_policy: ReviewPolicy | None = None
    ) -> CompiledLibrary:
        """Build the indexes of the entries active at ``now`` into an immutable ``CompiledLibrary``."""
        return self._compile(_aware(now), review_policy).library

    def compile_snapshot(self, version: str, *, review_policy: ReviewPolicy | None = None) -> CompiledLibrary:
        """Rebuild the library of snapshot ``version`` exactly as it was frozen (to re-check a past
        decision)."""
        records = self.snapshot_records(version)
        specs = [_spec(record, 0, None) for record in records]
        entries = [_spec_entry(spec) for spec in specs]
        return _build(entries, f"v{_snapshot_number(version)}", review_policy or ReviewPolicy())

    def _compile(self, now: dt.datetime, review_policy: ReviewPolicy | None) -> _Compiled:
        with self.store.session() as session:
            # The counter first: a change that lands while the entries are read moves it again,
            # so a watcher compiles once more rather than missing it.
            counter = _counter(session)
            live = _load(session, _COLUMNS.state.in_(_LIVE_STATES))
            active = [e for e in live if self._state(e, now) is EntryState.ACTIVE]
            digest = _digest(_canonical([e.to_record(state=EntryState.ACTIVE) for e in active]))
            snapshot_id = session.scalar(
                sa.select(sa.func.max(LibrarySnapshotRow.id)).where(LibrarySnapshotRow.digest == digest)
            )
        version = f"v{snapshot_id}" if snapshot_id is not None else f"sha256:{digest}"
        upcoming = [
            t
            for e in live
            if e.approved(require_second_approver=self.policy.require_second_approver)
            for t in (e.effective_from, e.lapses_at)
            if t is not None and t > now
        ]
        library = _build(active, version, review_policy or ReviewPolicy())
        return _Compiled(library, counter, min(upcoming, default=None))

    def _active(self, session: Session, now: dt.datetime) -> list[LibraryEntry]:
        live = _load(session, _COLUMNS.state.in_(_LIVE_STATES))
        return [e for e in live if self._state(e, now) is EntryState.ACTIVE]


def _spec_entry(spec: _Spec) -> LibraryEntry:
    """A snapshot record back as an (active) entry, for ``compile_snapshot``."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return LibraryEntry(
        id=spec.id,
        kind=spec.kind,
        term=spec.term,
        category=spec.category,
        action=spec.action,
        match=spec.match,
        reason=spec.reason,
        source=spec.source,
        proposer=spec.proposer or "",
        approver=spec.approver,
        approved_at=None,
        effective_from=spec.effective_from,
        lapses_at=spec.lapses_at,
        state=EntryState.ACTIVE,
        disabled_reason=None,
        quality=spec.quality,
        refutation=spec.refutation,
        created_at=epoch,
        updated_at=epoch,
    )


def _build(entries: Sequence[LibraryEntry], version: str, policy: ReviewPolicy) -> CompiledLibrary:
    return CompiledLibrary.build(
        version,
        keywords=[e.keyword_entry() for e in entries if e.kind is EntryKind.KEYWORD],
        images=[(e.id, e.pdq()) for e in entries if e.kind is EntryKind.IMAGE],
        rumors=[e.rumor_entry() for e in entries if e.kind is EntryKind.RUMOR],
        policy=policy,
    )


def _snapshot_number(version: str) -> int:
    match = re.fullmatch(r"v?(\d{1,18})", version.strip()) if isinstance(version, str) else None
    if match is None:
        raise UsageError(f"not a snapshot version: {version!r} (e.g. v3)")
    return int(match.group(1))
