"""Rumor refutation records (Deep Synthesis Provisions Art. 11): the false information, its published
refutation notice, the characteristics database entries that find it again, and every piece of
content that repeated it.

A ``Rumor`` holds the claim and its refutation notice (title, text, source, URL, time of refutation).
It is linked to the review engine's rumor entries by entry id (``library_entries`` rows of kind
``rumor``, whose term is the claim the engine matches, paraphrased or not; see
``synthguard.review.rumors``): ``link_entry`` checks the entry and keeps its claim as linked.

Content that repeated the rumor is an ``Occurrence``: a ProduceID (the generation record's id that
the watermark carries) or a SHA-256 of the content, or the review hit that found it, and where it
appeared. ``add_occurrence`` is idempotent per content and place. ``link_review_hits`` turns the
review engine's recorded matches of the linked entries (``review_hits``) into occurrences, taking a
``produce_id`` or ``content_digest`` from the hit's detail when the caller recorded one there.

Every change writes one audit record (``rumor.recorded``, ``rumor.entry_linked``,
``rumor.occurrence``). Reporting to the authorities goes through ``governance.reports``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from typing import Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from synthguard.audit import record_event
from synthguard.errors import ConflictError, NotFoundError, UsageError
from synthguard.governance.case_models import (
    RumorEntryLinkRow,
    RumorOccurrenceRow,
    RumorRow,
    aware_now,
    check_ref,
    check_text,
)
from synthguard.store.models import LibraryEntryRow, ReviewHitRow

__all__ = [
    "Occurrence",
    "Refutation",
    "Rumor",
    "add_occurrence",
    "get_rumor",
    "link_entry",
    "link_review_hits",
    "list_occurrences",
    "list_rumors",
    "record_rumor",
    "rumors_of_content",
]

MAX_CLAIM: Final = 4000
MAX_TEXT: Final = 20_000
MAX_URL: Final = 2000
MAX_LIMIT: Final = 500
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_RISK: Final = re.compile(r"A[1-5]\.[1-9]")


@dataclasses.dataclass(frozen=True, slots=True)
class Refutation:
    title: str
    text: str
    source: str
    url: str
    refuted_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Rumor:
    id: int
    claim: str
    risk: str
    refutation: Refutation
    created_at: dt.datetime
    actor: str
    #: (entry id, claim as linked) of the characteristics database's rumor entries.
    entries: tuple[tuple[str, str], ...]
    occurrence_count: int


@dataclasses.dataclass(frozen=True, slots=True)
class Occurrence:
    id: int
    rumor_id: int
    produce_id: str | None
    content_digest: str | None
    location: str
    review_hit_id: int | None
    found_at: dt.datetime
    actor: str
    note: str

    @classmethod
    def of(cls, row: RumorOccurrenceRow) -> Occurrence:
        return cls(
            row.id, row.rumor_id, row.produce_id, row.content_digest, row.location, row.review_hit_id,
            row.found_at, row.actor, row.note,
        )  # fmt: skip


def _actor(actor: str) -> str:
    return check_text("actor", actor, max_length=128, line=True)


def _row(session: Session, rumor_id: int) -> RumorRow:
    row = session.get(RumorRow, rumor_id)
    if row is None:
        raise NotFoundError(f"no rumor {rumor_id}")
    return row


def _view(session: Session, row: RumorRow) -> Rumor:
    entries = session.execute(
        sa.select(RumorEntryLinkRow.entry_id, RumorEntryLinkRow.term)
        .where(RumorEntryLinkRow.rumor_id == row.id)
        .order_by(RumorEntryLinkRow.entry_id)
    ).all()
    count = session.scalar(
        sa.select(sa.func.count())
        .select_from(RumorOccurrenceRow)
        .where(RumorOccurrenceRow.rumor_id == row.id)
    )
    return Rumor(
        id=row.id,
        claim=row.claim,
        risk=row.risk,
        refutation=Refutation(
            row.refutation_title,
            row.refutation_text,
            row.refutation_source,
            row.refutation_url,
            row.refuted_at,
        ),
        created_at=row.created_at,
        actor=row.actor,
        entries=tuple((e, t) for e, t in entries),
        occurrence_count=int(count or 0),
    )


def record_rumor(
    session: Session,
    *,
    claim: str,
    refutation_title: str,
    refutation_text: str,
    refutation_source: str,
    refutation_url: str,
    refuted_at: dt.datetime,
    actor: str,
    risk: str = "A1.7",
    entry_ids: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> Rumor:
    """Record false information with its refutation notice, linked to ``entry_ids`` (rumor entries of
    the characteristics database). ``risk`` defaults to A1.7 (false and harmful information)."""
    now = aware_now(now)
    if not _RISK.fullmatch(risk):
        raise UsageError(f"risk must be a risk code like A1.7, got {risk[:16]!r}")
    url = check_text("refutation_url", refutation_url, max_length=MAX_URL, line=True)
    if not url.startswith(("https://", "http://")):
        raise UsageError("refutation_url must be an http(s) URL")
    row = RumorRow(
        claim=check_text("claim", claim, max_length=MAX_CLAIM),
        risk=risk,
        refutation_title=check_text("refutation_title", refutation_title, max_length=MAX_CLAIM),
        refutation_text=check_text("refutation_text", refutation_text, max_length=MAX_TEXT),
        refutation_source=check_text("refutation_source", refutation_source, max_length=MAX_CLAIM),
        refutation_url=url,
        refuted_at=aware_now(refuted_at),
        created_at=now,
        actor=_actor(actor),
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        event="rumor.recorded",
        actor=row.actor,
        subject=f"rumor:{row.id}",
        data={
            "claim": row.claim, "risk": row.risk, "refutation_title": row.refutation_title,
            "refutation_source": row.refutation_source, "refutation_url": row.refutation_url,
            "refuted_at": row.refuted_at.isoformat(),
        },
    )  # fmt: skip
    for entry_id in dict.fromkeys(entry_ids):
        link_entry(session, row.id, entry_id, actor=row.actor, now=now)
    return _view(session, row)


def link_entry(
    session: Session, rumor_id: int, entry_id: str, *, actor: str, now: dt.datetime | None = None
) -> Rumor:
    """Link a rumor entry of the characteristics database (``NotFoundError`` if there is no such
    entry, ``UsageError`` if it is not a rumor entry, ``ConflictError`` if already linked)."""
    now = aware_now(now)
    row = _row(session, rumor_id)
    entry_id = check_ref("entry_id", entry_id, max_length=64)
    entry = session.get(LibraryEntryRow, entry_id)
    if entry is None:
        raise NotFoundError(f"no library entry {entry_id}")
    if entry.kind != "rumor":
        raise UsageError(f"library entry {entry_id} is a {entry.kind} entry, not a rumor entry")
    if session.get(RumorEntryLinkRow, (rumor_id, entry_id)) is not None:
        raise ConflictError(f"rumor {rumor_id} is already linked to entry {entry_id}")
    session.add(
        RumorEntryLinkRow(
            rumor_id=rumor_id, entry_id=entry_id, term=entry.term, linked_at=now, actor=_actor(actor)
        )
    )
    session.flush()
    record_event(
        session,
        event="rumor.entry_linked",
        actor=actor,
        subject=f"rumor:{rumor_id}",
        data={"entry_id": entry_id, "term": entry.term, "refutation_id": entry.refutation_id},
    )
    return _view(session, row)


def _dedup_key(produce_id: str | None, content_digest: str | None, location: str, hit: int | None) -> str:
    text = "\x1f".join((produce_id or "", content_digest or "", location, "" if hit is None else str(hit)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def add_occurrence(
    session: Session,
    rumor_id: int,
    *,
    location: str,
    actor: str,
    produce_id: str | None = None,
    content_digest: str | None = None,
    review_hit_id: int | None = None,
    note: str = "",
    found_at: dt.datetime | None = None,
) -> tuple[Occurrence, bool]:
    """Record content that repeated the rumor; returns it and whether it is new (the same content at
    the same place is recorded once). Needs a ``produce_id``, a ``content_digest`` (SHA-256, hex) or
    a ``review_hit_id``."""
    _row(session, rumor_id)
    if produce_id is not None:
        produce_id = check_ref("produce_id", produce_id, max_length=64)
    if content_digest is not None:
        content_digest = content_digest.strip().lower()
        if not _HEX64.fullmatch(content_digest):
            raise UsageError("content_digest must be a SHA-256 in hex (64 digits)")
    if produce_id is None and content_digest is None and review_hit_id is None:
        raise UsageError("an occurrence needs a produce_id, a content_digest or a review_hit_id")
    location = check_text("location", location, max_length=MAX_URL, line=True)
    # the hit id tells occurrences apart only when nothing names the content itself
    only_hit = produce_id is None and content_digest is None
    key = _dedup_key(produce_id, content_digest, location, review_hit_id if only_hit else None)
    existing = session.scalars(
        sa.select(RumorOccurrenceRow).where(
            RumorOccurrenceRow.rumor_id == rumor_id, RumorOccurrenceRow.dedup_key == key
        )
    ).one_or_none()
    if existing is not None:
        return Occurrence.of(existing), False
    row = RumorOccurrenceRow(
        rumor_id=rumor_id,
        produce_id=produce_id,
        content_digest=content_digest,
        location=location,
        dedup_key=key,
        review_hit_id=review_hit_id,
        found_at=aware_now(found_at),
        actor=_actor(actor),
        note=check_text("note", note, max_length=MAX_CLAIM, allow_empty=True),
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        event="rumor.occurrence",
        actor=row.actor,
        subject=f"rumor:{rumor_id}",
        data={
            "occurrence_id": row.id, "produce_id": produce_id, "content_digest": content_digest,
            "location": location, "review_hit_id": review_hit_id,
        },
    )  # fmt: skip
    return Occurrence.of(row), True


def link_review_hits(session: Session, rumor_id: int, *, actor: str, limit: int = 10_000) -> list[Occurrence]:
    """Occurrences for the recorded review hits of the rumor's linked entries that have none yet
    (the new ones are returned). A hit's ``detail`` may carry ``produce_id`` and ``content_digest``."""
    entries = _entry_ids(session, rumor_id)
    if not entries:
        return []
    seen = sa.select(RumorOccurrenceRow.review_hit_id).where(
        RumorOccurrenceRow.rumor_id == rumor_id, RumorOccurrenceRow.review_hit_id.is_not(None)
    )
    hits = session.scalars(
        sa.select(ReviewHitRow)
        .where(ReviewHitRow.entry_id.in_(entries), ReviewHitRow.id.not_in(seen))
        .order_by(ReviewHitRow.id)
        .limit(limit)
    ).all()
    created = []
    for hit in hits:
        detail = hit.detail or {}
        produce_id = detail.get("produce_id") if isinstance(detail.get("produce_id"), str) else None
        digest = detail.get("content_digest") if isinstance(detail.get("content_digest"), str) else None
        occurrence, new = add_occurrence(
            session, rumor_id, location=f"review:{hit.subject}", actor=actor, produce_id=produce_id,
            content_digest=digest, review_hit_id=hit.id, found_at=hit.at,
            note=f"review hit {hit.id} of entry {hit.entry_id}",
        )  # fmt: skip
        if new:
            created.append(occurrence)
    return created


def _entry_ids(session: Session, rumor_id: int) -> list[str]:
    _row(session, rumor_id)
    return list(
        session.scalars(sa.select(RumorEntryLinkRow.entry_id).where(RumorEntryLinkRow.rumor_id == rumor_id))
    )


def get_rumor(session: Session, rumor_id: int) -> Rumor:
    return _view(session, _row(session, rumor_id))


def list_rumors(session: Session, *, limit: int = 100, offset: int = 0) -> list[Rumor]:
    """Rumors, newest first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT}")
    rows = session.scalars(
        sa.select(RumorRow).order_by(RumorRow.id.desc()).limit(limit).offset(max(0, offset))
    )
    return [_view(session, row) for row in rows]


def list_occurrences(
    session: Session, rumor_id: int, *, limit: int = 100, offset: int = 0
) -> list[Occurrence]:
    _row(session, rumor_id)
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT}")
    rows = session.scalars(
        sa.select(RumorOccurrenceRow)
        .where(RumorOccurrenceRow.rumor_id == rumor_id)
        .order_by(RumorOccurrenceRow.id)
        .limit(limit)
        .offset(max(0, offset))
    )
    return [Occurrence.of(row) for row in rows]


def rumors_of_content(
    session: Session, *, produce_id: str | None = None, content_digest: str | None = None
) -> list[Rumor]:
    """The rumors a piece of content (by ProduceID or digest) is known to have repeated."""
    if produce_id is None and content_digest is None:
        raise UsageError("give a produce_id or a content_digest")
    conditions = []
    if produce_id is not None:
        conditions.append(RumorOccurrenceRow.produce_id == produce_id)
    if content_digest is not None:
        conditions.append(RumorOccurrenceRow.content_digest == content_digest.lower())
    ids = session.scalars(sa.select(RumorOccurrenceRow.rumor_id).where(sa.or_(*conditions)).distinct()).all()
    return [get_rumor(session, i) for i in sorted(ids)]
