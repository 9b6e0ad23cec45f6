"""The Art. 10 records of matches: ``HitRecorder``, the ``DecisionSink`` that stores every entry a
review matched with the library version, and ``Hit``, one stored match.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any, Final, cast

import sqlalchemy as sa

from synthguard.errors import UsageError
from synthguard.review.engine import (
    Decision,
    ImageDecision,
    TextDecision,
    VideoDecision,
)
from synthguard.review.keywords import Action
from synthguard.review.library.model import (
    _ACTION_VALUES,
    _CATEGORIES,
    _KINDS,
    EntryKind,
    _aware,
    _iso,
    _utcnow,
)
from synthguard.review.library.rows import _load_ids
from synthguard.review.risks import RiskCategory
from synthguard.store.db import Store
from synthguard.store.models import ReviewHitRow


@dataclasses.dataclass(frozen=True)
class Hit:
    """One recorded match: which entry, in what, when, with which library version, and where."""

    id: int
    at: dt.datetime
    subject: str
    entry_id: str
    kind: EntryKind
    category: RiskCategory | None
    action: Action | None
    verdict: str
    library_version: str
    start: int | None
    end: int | None
    distance: int | None
    score: float | None
    detail: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": _iso(self.at),
            "subject": self.subject,
            "entry_id": self.entry_id,
            "kind": self.kind.value,
            "category": self.category.value if self.category else None,
            "action": self.action.value if self.action else None,
            "verdict": self.verdict,
            "library_version": self.library_version,
            "start": self.start,
            "end": self.end,
            "distance": self.distance,
            "score": self.score,
            "detail": self.detail,
        }


#: Subjects longer than the column are cut and tagged with their SHA-256, so they stay distinct.
_SUBJECT_MAX: Final = 255


def _subject(subject: str) -> str:
    if not isinstance(subject, str) or not subject:
        raise UsageError("a recorded hit needs a subject")
    if len(subject) <= _SUBJECT_MAX:
        return subject
    return subject[: _SUBJECT_MAX - 72] + "…sha256:" + hashlib.sha256(subject.encode()).hexdigest()


class HitRecorder:
    """The ``DecisionSink`` of the Art. 10 records: every entry a review matched becomes one row of
    ``review_hits`` (entry id, kind, risk category, action, the verdict it called for, subject, time,
    library version, offsets in the text, or the Hamming distance of an image, or the similarity of
    a rumor). One decision is one transaction. Image matches carry no category or action: they are
    looked up in the library when the entry is there::

        reviewer = Reviewer(library.compile(), sink=HitRecorder(store))
    """

    def __init__(self, store: Store, *, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.store = store
        self.clock = clock

    def record(self, decision: Decision, *, subject: str) -> None:
        at = _aware(self.clock())
        named = _subject(subject)
        version = decision.library_version
        extra = {"sample_library": True} if decision.sample_library else {}
        rows: list[dict[str, Any]] = []
        if isinstance(decision, TextDecision):
            for keyword in decision.keyword_matches:
                rows.append(
                    _hit(
                        at,
                        named,
                        version,
                        keyword.entry_id,
                        EntryKind.KEYWORD,
                        decision.verdict_of(keyword).value,
                        category=keyword.category.value,
                        action=keyword.action.value,
                        start=keyword.start,
                        end=keyword.end,
                        detail={"normalizations": [n.value for n in keyword.normalizations], **extra},
                    )
                )
            for rumor in decision.rumor_matches:
                rows.append(
                    _hit(
                        at,
                        named,
                        version,
                        rumor.entry_id,
                        EntryKind.RUMOR,
                        decision.verdict_of(rumor).value,
                        category=rumor.category.value,
                        start=rumor.start,
                        end=rumor.end,
                        score=rumor.similarity,
                        detail={"notice": rumor.notice.to_dict(), **extra},
                    )
                )
        elif isinstance(decision, ImageDecision | VideoDecision):
            for found in decision.matches:
                detail: dict[str, Any] = {"variant": found.variant.value, **extra}
                if isinstance(decision, VideoDecision):
                    detail["time"] = getattr(found, "time", None)
                rows.append(
                    _hit(
                        at,
                        named,
                        version,
                        found.entry_id,
                        EntryKind.IMAGE,
                        decision.verdict.value,
                        distance=found.distance,
                        detail=detail,
                    )
                )
        else:
            raise UsageError(f"not a review decision: {type(decision).__name__}")
        if not rows:
            return
        with self.store.session() as session:
            unknown = [r["entry_id"] for r in rows if r["category"] is None]
            if unknown:
                known = _load_ids(session, unknown)
                for row in rows:
                    entry = known.get(row["entry_id"])
                    if row["category"] is None and entry is not None:
                        row["category"], row["action"] = entry.category.value, entry.action.value
            session.execute(sa.insert(_HITS), rows)

    def hits(
        self,
        *,
        subject: str | None = None,
        entry_id: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[Hit]:
        """Recorded hits, oldest first, filtered by subject, entry and time."""
        query = sa.select(ReviewHitRow).order_by(ReviewHitRow.id)
        if subject is not None:
            query = query.where(ReviewHitRow.subject == _subject(subject))
        if entry_id is not None:
            query = query.where(ReviewHitRow.entry_id == entry_id)
        if since is not None:
            query = query.where(ReviewHitRow.at >= _aware(since))
        if limit is not None:
            query = query.limit(limit)
        with self.store.session() as session:
            return [
                Hit(
                    id=row.id,
                    at=row.at,
                    subject=row.subject,
                    entry_id=row.entry_id,
                    kind=_KINDS[row.kind],
                    category=_CATEGORIES.get(row.category or ""),
                    action=_ACTION_VALUES.get(row.action or ""),
                    verdict=row.verdict,
                    library_version=row.library_version,
                    start=row.start_offset,
                    end=row.end_offset,
                    distance=row.distance,
                    score=row.score,
                    detail=row.detail,
                )
                for row in session.scalars(query)
            ]


_HITS: Final = cast(sa.Table, ReviewHitRow.__table__)


def _hit(
    at: dt.datetime,
    subject: str,
    version: str,
    entry_id: str,
    kind: EntryKind,
    verdict: str,
    *,
    category: str | None = None,
    action: str | None = None,
    start: int | None = None,
    end: int | None = None,
    distance: int | None = None,
    score: float | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "at": at,
        "subject": subject,
        "entry_id": entry_id,
        "kind": kind.value,
        "category": category,
        "action": action,
        "verdict": verdict,
        "library_version": version,
        "start_offset": start,
        "end_offset": end,
        "distance": distance,
        "score": score,
        "detail": detail or None,
    }
