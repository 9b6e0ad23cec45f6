"""The coverage report: active keywords per risk against the TC260-003 minimums
(``risks.LibraryMinimums``; figures marked (verify)).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from synthguard.review.keywords import Action
from synthguard.review.library.model import (
    CategoryCoverage,
    CoverageReport,
    EntryKind,
    EntryState,
    _aware,
)
from synthguard.review.library.rows import (
    _COLUMNS,
    _LIVE_STATES,
    _load,
)
from synthguard.review.library.workflow import LibraryBase
from synthguard.review.risks import RiskCategory, is_a1, is_a2


class CoverageMixin(LibraryBase):
    """The coverage of the risks by active keywords."""

    def coverage(self, now: dt.datetime | None = None) -> CoverageReport:
        """Active keywords per risk at ``now`` against ``policy.minimums`` (allow-list phrases, image
        hashes and rumors do not count)."""
        at = _aware(now)
        minimums = self.policy.minimums
        active: Counter[RiskCategory] = Counter()
        pending: Counter[RiskCategory] = Counter()
        with self.store.session() as session:
            entries = _load(
                session,
                _COLUMNS.kind == EntryKind.KEYWORD.value,
                _COLUMNS.action != Action.ALLOW.value,
                _COLUMNS.state.in_((*_LIVE_STATES, EntryState.PROPOSED.value)),
            )
            for entry in entries:
                state = self._state(entry, at)
                if state is EntryState.ACTIVE:
                    active[entry.category] += 1
                elif state in (EntryState.PROPOSED, EntryState.APPROVED):
                    pending[entry.category] += 1
        categories = tuple(
            CategoryCoverage(
                category,
                active[category],
                pending[category],
                minimums.per_a1_risk if is_a1(category) else minimums.per_a2_risk if is_a2(category) else 0,
            )
            for category in RiskCategory
        )
        return CoverageReport(
            as_of=at,
            categories=categories,
            total=sum(active.values()),
            total_required=minimums.total,
            shortfalls=tuple(minimums.shortfalls(active)),
        )
