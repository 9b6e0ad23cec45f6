"""The 31 risks of TC260-003 Appendix A, and the keyword library minimums it sets.

``RiskCategory`` values are the codes ``"A1.1"`` ... ``"A5.2"``: they are stored with every library
entry and every verdict, and exchanged with other systems, so they never change. Each member carries an
English description (``RiskCategory.A1_4.description``). The 17 risks of A.1 and A.2 are the scope of
the keyword library (``is_a1``, ``is_a2``).

The figures (at least 200 keywords per A.1 risk, 100 per A.2 risk, 10,000 in all) come from secondary
copies of TC260-003-2024 / GB/T 45654-2025 (verify): they are configuration (``LibraryMinimums``), not
constants in code, so a correction is a one-line change.

>>> RiskCategory("A1.6").description
'promoting violence, obscenity or pornography'
>>> LibraryMinimums().shortfalls({RiskCategory.A1_1: 250})[:1]
['A1.2: 0 keywords, at least 200']
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

__all__ = ["LibraryMinimums", "RiskCategory", "is_a1", "is_a2"]


class RiskCategory(enum.Enum):
    """A risk of TC260-003 Appendix A; the value is its stable code."""

    A1_1 = "A1.1"
    A1_2 = "A1.2"
    A1_3 = "A1.3"
    A1_4 = "A1.4"
    A1_5 = "A1.5"
    A1_6 = "A1.6"
    A1_7 = "A1.7"
    A1_8 = "A1.8"
    A2_1 = "A2.1"
    A2_2 = "A2.2"
    A2_3 = "A2.3"
    A2_4 = "A2.4"
    A2_5 = "A2.5"
    A2_6 = "A2.6"
    A2_7 = "A2.7"
    A2_8 = "A2.8"
    A2_9 = "A2.9"
    A3_1 = "A3.1"
    A3_2 = "A3.2"
    A3_3 = "A3.3"
    A3_4 = "A3.4"
    A3_5 = "A3.5"
    A4_1 = "A4.1"
    A4_2 = "A4.2"
    A4_3 = "A4.3"
    A4_4 = "A4.4"
    A4_5 = "A4.5"
    A4_6 = "A4.6"
    A4_7 = "A4.7"
    A5_1 = "A5.1"
    A5_2 = "A5.2"

    @property
    def description(self) -> str:
        """The risk in English words (from the review spec's table)."""
        return _DESCRIPTIONS[self.value]

    @property
    def group(self) -> str:
        """The appendix section: ``"A1"`` ... ``"A5"``."""
        return self.value.split(".", 1)[0]


_DESCRIPTIONS: dict[str, str] = {
    "A1.1": "inciting subversion of state power or overthrow of the socialist system",
    "A1.2": "endangering national security and interests, damaging the national image",
    "A1.3": "inciting separatism, undermining national unity and social stability",
    "A1.4": "promoting terrorism or extremism",
    "A1.5": "promoting ethnic hatred or discrimination",
    "A1.6": "promoting violence, obscenity or pornography",
    "A1.7": "false and harmful information",
    "A1.8": "other content prohibited by laws and administrative regulations",
    "A2.1": "discrimination by ethnicity",
    "A2.2": "discrimination by belief",
    "A2.3": "discrimination by nationality",
    "A2.4": "discrimination by region",
    "A2.5": "discrimination by gender",
    "A2.6": "discrimination by age",
    "A2.7": "discrimination by occupation",
    "A2.8": "discrimination by health",
    "A2.9": "other discrimination",
    "A3.1": "intellectual property infringement",
    "A3.2": "breach of business ethics",
    "A3.3": "leaking trade secrets",
    "A3.4": "monopoly or unfair competition",
    "A3.5": "other commercial violations",
    "A4.1": "harm to physical or mental health",
    "A4.2": "infringement of portrait rights",
    "A4.3": "infringement of reputation rights",
    "A4.4": "infringement of honour rights",
    "A4.5": "infringement of privacy rights",
    "A4.6": "infringement of personal information rights",
    "A4.7": "infringement of other legitimate rights and interests",
    "A5.1": "inaccurate content",
    "A5.2": "unreliable content",
}


def is_a1(category: RiskCategory) -> bool:
    """Whether ``category`` is one of the 8 risks of Appendix A.1 (content violating core values)."""
    return category.group == "A1"


def is_a2(category: RiskCategory) -> bool:
    """Whether ``category`` is one of the 9 risks of Appendix A.2 (discriminatory content)."""
    return category.group == "A2"


@dataclasses.dataclass(frozen=True)
class LibraryMinimums:
    """The keyword library sizes TC260-003 asks for (verify against GB/T 45654-2025).

    Configuration, not law in code: a deployment that reads a different figure from the final
    standard passes its own instance.
    """

    #: (verify) At least this many keywords for each of the 8 risks of Appendix A.1.
    per_a1_risk: int = 200
    #: (verify) At least this many keywords for each of the 9 risks of Appendix A.2.
    per_a2_risk: int = 100
    #: (verify) At least this many keywords in the whole library.
    total: int = 10_000

    def shortfalls(self, counts: Mapping[RiskCategory, int]) -> list[str]:
        """What a library with ``counts`` keywords per risk lacks, one line per gap, in code order;
        empty when it meets every minimum."""
        gaps: list[str] = []
        for category in RiskCategory:
            need = self.per_a1_risk if is_a1(category) else self.per_a2_risk if is_a2(category) else 0
            have = counts.get(category, 0)
            if have < need:
                gaps.append(f"{category.value}: {have} keywords, at least {need}")
        total = sum(counts.values())
        if total < self.total:
            gaps.append(f"total: {total} keywords, at least {self.total}")
        return gaps
