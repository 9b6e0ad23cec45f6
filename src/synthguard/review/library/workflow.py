"""The procedure of an entry (see the package docstring): ``LibraryBase`` holds the store and the
``LibraryPolicy`` and decides an entry's state at a time; ``ProcedureMixin`` reads entries and the
change log and runs propose, approve (two-person rule), disable, enable and refresh, and writes new
entries with their change records (``_import``, shared with bulk import).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from synthguard.errors import UsageError
from synthguard.review.keywords import Action
from synthguard.review.library.formats import (
    _check_keywords,
    _check_rumors,
    _diff,
    _entry_content,
    _Spec,
    _spec,
)
from synthguard.review.library.model import (
    ChangeKind,
    ChangeRecord,
    EntryKind,
    EntryState,
    ImportReport,
    LibraryEntry,
    LibraryPolicy,
    RowError,
    _actor,
    _aware,
    _iso,
)
from synthguard.review.library.rows import (
    _CHANGES,
    _COLUMNS,
    _LIVE_STATES,
    _TABLE,
    _apply,
    _bump,
    _change,
    _change_values,
    _counter,
    _load,
    _load_ids,
)
from synthguard.review.normalize import Normalization
from synthguard.review.risks import RiskCategory
from synthguard.review.rumors import RefutationNotice
from synthguard.store.db import Store
from synthguard.store.models import LibraryChangeRow


class LibraryBase:
    """The store and policy every part of ``Library`` works on, and the state rule."""

    def __init__(self, store: Store, *, policy: LibraryPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or LibraryPolicy()

    def state_of(self, entry: LibraryEntry, now: dt.datetime | None = None) -> EntryState:
        """``entry``'s state at ``now`` under this library's policy."""
        return self._state(entry, _aware(now))

    def _state(self, entry: LibraryEntry, now: dt.datetime) -> EntryState:
        return entry.state_at(now, require_second_approver=self.policy.require_second_approver)


class ProcedureMixin(LibraryBase):
    """Reading entries and the change log; the procedure of an entry."""

    # -- reading ---------------------------------------------------------------------------------

    def get(self, entry_id: str) -> LibraryEntry:
        """The entry with ``entry_id``; ``UsageError`` when there is none."""
        with self.store.session() as session:
            found = _load_ids(session, [entry_id])
        if entry_id not in found:
            raise UsageError(f"no library entry {entry_id!r}")
        return found[entry_id]

    def entries(
        self,
        *,
        state: EntryState | str | None = None,
        category: RiskCategory | str | None = None,
        kind: EntryKind | str | None = None,
        now: dt.datetime | None = None,
    ) -> list[LibraryEntry]:
        """Entries sorted by id, filtered by their state at ``now``, category and kind."""
        at = _aware(now)
        wanted_state = _enum(EntryState, state, "state")
        wanted_category = _enum(RiskCategory, category, "category")
        wanted_kind = _enum(EntryKind, kind, "kind")
        where: list[sa.ColumnElement[bool]] = []
        if wanted_category is not None:
            where.append(_COLUMNS.category == wanted_category.value)
        if wanted_kind is not None:
            where.append(_COLUMNS.kind == wanted_kind.value)
        if wanted_state in (EntryState.APPROVED, EntryState.ACTIVE, EntryState.LAPSED):
            where.append(_COLUMNS.state.in_((*_LIVE_STATES, EntryState.PROPOSED.value)))
        elif wanted_state is EntryState.DISABLED:
            where.append(_COLUMNS.state == EntryState.DISABLED.value)
        with self.store.session() as session:
            found = _load(session, *where)
        if wanted_state is None:
            return found
        return [e for e in found if self._state(e, at) is wanted_state]

    def history(self, entry_id: str) -> list[ChangeRecord]:
        """Every change to ``entry_id``, oldest first; ``UsageError`` for an unknown entry."""
        with self.store.session() as session:
            if not _load_ids(session, [entry_id]):
                raise UsageError(f"no library entry {entry_id!r}")
            rows = session.scalars(
                sa.select(LibraryChangeRow)
                .where(LibraryChangeRow.entry_id == entry_id)
                .order_by(LibraryChangeRow.id)
            )
            return [_change(row) for row in rows]

    def changes(self, *, since_id: int = 0, limit: int | None = None) -> list[ChangeRecord]:
        """The change log after row ``since_id``, oldest first."""
        query = (
            sa.select(LibraryChangeRow).where(LibraryChangeRow.id > since_id).order_by(LibraryChangeRow.id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.store.session() as session:
            return [_change(row) for row in session.scalars(query)]

    def change_counter(self) -> int:
        """A number that moves with every committed change to the library."""
        with self.store.session() as session:
            return _counter(session)

    # -- the procedure ---------------------------------------------------------------------------

    def propose(
        self,
        term: str,
        category: RiskCategory | str,
        action: Action | str = Action.BLOCK,
        *,
        actor: str,
        kind: EntryKind | str = EntryKind.KEYWORD,
        match: Iterable[Normalization | str] | str | None = None,
        reason: str = "",
        source: str = "",
        effective_from: dt.datetime | None = None,
        lapses_at: dt.datetime | None = None,
        quality: int | None = None,
        refutation: RefutationNotice | None = None,
        entry_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> LibraryEntry:
        """Add one entry in state ``proposed`` (checked as an import row is); returns it."""
        fields: dict[str, Any] = {
            "id": entry_id,
            "kind": kind.value if isinstance(kind, EntryKind) else kind,
            "term": term,
            "category": category.value if isinstance(category, RiskCategory) else category,
            "action": action.value if isinstance(action, Action) else action,
            "match": _match_field(match),
            "reason": reason,
            "source": source,
            "effective_from": _iso(_aware(effective_from)) if effective_from is not None else None,
            "lapses_at": _iso(_aware(lapses_at)) if lapses_at is not None else None,
            "quality": quality,
        }
        if refutation is not None:
            fields.update(
                refutation_id=refutation.id,
                refutation_title=refutation.title,
                refutation_url=refutation.url,
                refutation_published=refutation.published,
            )
        spec = _spec(fields, 0, None)
        errors = _check_keywords([spec]) + _check_rumors([spec])
        if errors:
            raise UsageError(errors[0].message)
        report = self._import([spec], actor=actor, approved_by=None, now=now, existing_ok=False)
        if report.rejected:
            raise UsageError(report.rejected[0].message)
        return self.get(spec.id)

    def approve(
        self, entry_ids: Iterable[str], actor: str, *, now: dt.datetime | None = None
    ) -> list[LibraryEntry]:
        """Approve proposed entries, all or none: ``UsageError`` names the first that cannot be
        (unknown, not proposed, or proposed by ``actor`` under the two-person rule)."""
        actor = _actor(actor, "approver")
        at = _aware(now)
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            raise UsageError("name at least one entry to approve")
        batch = str(uuid.uuid4()) if len(ids) > 1 else None
        with self.store.session(write=True) as session:
            found = _load_ids(session, ids, lock=True)
            for entry_id in ids:
                entry = found.get(entry_id)
                if entry is None:
                    raise UsageError(f"no library entry {entry_id!r}")
                if entry.state is not EntryState.PROPOSED:
                    raise UsageError(
                        f"entry {entry_id!r} is {entry.state.value}, not proposed: nothing to approve"
                    )
                if self.policy.require_second_approver and entry.proposer == actor:
                    raise UsageError(
                        f"entry {entry_id!r} was proposed by {actor}: a second person must approve it"
                    )
            changes = []
            for entry_id in ids:
                before = found[entry_id]
                after = dataclasses.replace(
                    before, approver=actor, approved_at=at, updated_at=at, state=EntryState.APPROVED
                )
                after = dataclasses.replace(after, state=self._state(after, at))
                changes.append((before, after))
            _apply(session, at, actor, ChangeKind.APPROVE, changes, batch=batch)
        return [after for _, after in changes]

    def disable(
        self, entry_id: str, actor: str, reason: str, *, now: dt.datetime | None = None
    ) -> LibraryEntry:
        """Switch one entry off (kept, with ``reason``); ``UsageError`` if it is off already."""
        actor = _actor(actor)
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError("say why the entry is disabled (--reason)")
        at = _aware(now)
        with self.store.session(write=True) as session:
            before = _load_ids(session, [entry_id], lock=True).get(entry_id)
            if before is None:
                raise UsageError(f"no library entry {entry_id!r}")
            if before.state is EntryState.DISABLED:
                raise UsageError(f"entry {entry_id!r} is disabled already")
            after = dataclasses.replace(
                before, state=EntryState.DISABLED, disabled_reason=reason.strip(), updated_at=at
            )
            _apply(session, at, actor, ChangeKind.DISABLE, [(before, after)], note=reason.strip())
        return after

    def enable(self, entry_id: str, actor: str, *, now: dt.datetime | None = None) -> LibraryEntry:
        """Switch a disabled entry back on: approved entries return to their state at ``now``,
        entries disabled before any approval to ``proposed``."""
        actor = _actor(actor)
        at = _aware(now)
        with self.store.session(write=True) as session:
            before = _load_ids(session, [entry_id], lock=True).get(entry_id)
            if before is None:
                raise UsageError(f"no library entry {entry_id!r}")
            if before.state is not EntryState.DISABLED:
                raise UsageError(f"entry {entry_id!r} is {before.state.value}, not disabled")
            back = EntryState.PROPOSED if before.approver is None else EntryState.APPROVED
            after = dataclasses.replace(before, state=back, disabled_reason=None, updated_at=at)
            after = dataclasses.replace(after, state=self._state(after, at))
            _apply(session, at, actor, ChangeKind.ENABLE, [(before, after)])
        return after

    def refresh(self, now: dt.datetime | None = None, *, actor: str = "system") -> list[LibraryEntry]:
        """Persist the states that time moved on (approved -> active, -> lapsed) at ``now``, each
        with a change record; returns the entries changed."""
        actor = _actor(actor)
        at = _aware(now)
        forward = {
            (EntryState.APPROVED, EntryState.ACTIVE),
            (EntryState.APPROVED, EntryState.LAPSED),
            (EntryState.ACTIVE, EntryState.LAPSED),
        }
        with self.store.session(write=True) as session:
            live = _load(
                session, _COLUMNS.state.in_((EntryState.APPROVED.value, EntryState.ACTIVE.value)), lock=True
            )
            moved = [(e, self._state(e, at)) for e in live]
            moved = [(e, new) for e, new in moved if (e.state, new) in forward]
            activated = [(e, dataclasses.replace(e, state=new, updated_at=at)) for e, new in moved]
            _apply(
                session,
                at,
                actor,
                ChangeKind.ACTIVATE,
                [(b, a) for b, a in activated if a.state is EntryState.ACTIVE],
            )
            _apply(
                session,
                at,
                actor,
                ChangeKind.LAPSE,
                [(b, a) for b, a in activated if a.state is EntryState.LAPSED],
            )
        return sorted((a for _, a in activated), key=lambda e: e.id)

    def _import(
        self,
        specs: Sequence[_Spec],
        *,
        actor: str,
        approved_by: str | None,
        now: dt.datetime | None,
        existing_ok: bool,
        errors: Sequence[RowError] = (),
    ) -> ImportReport:
        """Write ``specs`` in one transaction, or nothing when any row (or ``errors``) is rejected."""
        actor = _actor(actor)
        at = _aware(now)
        errors = list(errors)
        first_line: dict[str, int] = {}
        for spec in specs:
            if spec.id in first_line:
                errors.append(
                    RowError(spec.line, f"id {spec.id} repeats line {first_line[spec.id]}", spec.id)
                )
            else:
                first_line[spec.id] = spec.line
            proposer = spec.proposer or actor
            approver = approved_by or spec.approver
            if approver is not None and self.policy.require_second_approver and approver == proposer:
                errors.append(
                    RowError(
                        spec.line,
                        f"approver {approver} is the proposer: a second person must approve",
                        spec.id,
                    )
                )
        batch = str(uuid.uuid4())
        added = unchanged = approved = 0
        with self.store.session(write=True) as session:
            existing = _load_ids(session, [s.id for s in specs])
            new_specs: list[_Spec] = []
            for spec in specs:
                found = existing.get(spec.id)
                if found is None:
                    new_specs.append(spec)
                elif not existing_ok:
                    errors.append(RowError(spec.line, f"entry {spec.id} exists already", spec.id))
                elif _entry_content(found) == spec.content():
                    unchanged += 1
                else:
                    errors.append(
                        RowError(
                            spec.line,
                            f"entry {spec.id} exists with other content ({_diff(found, spec)})",
                            spec.id,
                        )
                    )
            if errors:
                return ImportReport(rejected=tuple(sorted(errors, key=lambda e: e.line)))
            rows: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            for spec in new_specs:
                approver = approved_by or spec.approver
                entry = _new_entry(spec, proposer=spec.proposer or actor, approver=approver, at=at)
                entry = dataclasses.replace(entry, state=self._state(entry, at))
                if spec.disabled:
                    reason = spec.disabled_reason or "disabled in the imported file"
                    entry = dataclasses.replace(entry, state=EntryState.DISABLED, disabled_reason=reason)
                rows.append(entry._values())
                note = ""
                if approver is not None:
                    approved += 1
                    note = (
                        f"bulk approval by {approved_by}" if approved_by else f"approved by {approver} (file)"
                    )
                changes.append(
                    _change_values(at, actor, ChangeKind.CREATE, None, entry, batch=batch, note=note)
                )
                added += 1
            if rows:
                session.execute(sa.insert(_TABLE), rows)
                session.execute(sa.insert(_CHANGES), changes)
                _bump(session, at)
        return ImportReport(
            added=added, unchanged=unchanged, approved=approved, batch=batch if added else None
        )


def _enum(cls: Any, value: Any, what: str) -> Any:
    if value is None or isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        known = ", ".join(member.value for member in cls)
        raise UsageError(f"unknown {what} {value!r} (known: {known})") from None


def _match_field(match: Iterable[Normalization | str] | str | None) -> str | list[str] | None:
    if match is None or isinstance(match, str):
        return match
    return [m.value if isinstance(m, Normalization) else m for m in match]


def _new_entry(spec: _Spec, *, proposer: str, approver: str | None, at: dt.datetime) -> LibraryEntry:
    return LibraryEntry(
        id=spec.id,
        kind=spec.kind,
        term=spec.term,
        category=spec.category,
        action=spec.action,
        match=spec.match,
        reason=spec.reason,
        source=spec.source,
        proposer=proposer,
        approver=approver,
        approved_at=at if approver else None,
        effective_from=spec.effective_from,
        lapses_at=spec.lapses_at,
        state=EntryState.PROPOSED if approver is None else EntryState.APPROVED,
        disabled_reason=None,
        quality=spec.quality,
        refutation=spec.refutation,
        created_at=at,
        updated_at=at,
    )
