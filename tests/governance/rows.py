"""Rows of the characteristics database that the governance tests stand on: a rumor entry with its
refutation notice, and a review hit of an entry (as the review engine records them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from synthguard.store.models import LibraryEntryRow, ReviewHitRow


def rumor_entry(
    entry_id: str,
    *,
    at: dt.datetime,
    term: str,
    kind: str = "rumor",
    title: str = "辟谣",
    url: str = "https://example.gov.cn/n",
    refutation_id: str = "n-1",
) -> LibraryEntryRow:
    """An active entry (approved by a second person) whose refutation notice is ``title`` at ``url``."""
    return LibraryEntryRow(
        id=entry_id,
        kind=kind,
        term=term,
        category="A1.7",
        action="review",
        match="",
        reason="refuted",
        source="water bureau",
        proposer="alice",
        approver="bob",
        approved_at=at,
        effective_from=at,
        lapses_at=None,
        state="active",
        disabled_reason=None,
        quality=None,
        refutation_id=refutation_id,
        refutation_title=title,
        refutation_url=url,
        refutation_published="2026-01-31",
        created_at=at,
        updated_at=at,
    )


def review_hit(
    entry_id: str, subject: str, *, at: dt.datetime, detail: dict[str, Any] | None = None, end: int = 10
) -> ReviewHitRow:
    """A hit of ``entry_id`` in the review of ``subject`` (a rumor repeated by that content)."""
    return ReviewHitRow(
        at=at,
        subject=subject,
        entry_id=entry_id,
        kind="rumor",
        category="A1.7",
        action="review",
        library_version="v1",
        start_offset=0,
        end_offset=end,
        distance=None,
        score=0.8,
        verdict="review",
        detail=detail,
    )
