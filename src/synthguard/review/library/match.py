"""Normalisation steps as the library stores and exchanges them (the ``match`` column and field):
``format_match`` writes a set of steps, ``parse_match`` reads one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from synthguard.errors import UsageError
from synthguard.review.normalize import (
    DEFAULT_STEPS,
    Normalization,
    ordered,
    parse_steps,
)


def format_match(steps: Iterable[Normalization]) -> str:
    """The stored and exported form of a set of steps: ``default`` for ``DEFAULT_STEPS`` (plus any
    extra steps, ``default|pinyin``), else the steps in application order, ``none`` for no step."""
    return _format_match(frozenset(steps))


@functools.lru_cache(maxsize=256)
def _format_match(chosen: frozenset[Normalization]) -> str:
    if not chosen:
        return "none"
    if chosen >= DEFAULT_STEPS:
        return "|".join(["default", *(s.value for s in ordered(chosen - DEFAULT_STEPS))])
    return "|".join(s.value for s in ordered(chosen))


def parse_match(text: str | Sequence[str] | None) -> frozenset[Normalization]:
    """Parse normalisation names separated by ``|`` or ``,`` (or a list of names); ``default`` stands
    for ``DEFAULT_STEPS``, ``none`` for no step, and an empty value means ``default``.

    >>> format_match(parse_match("default|pinyin")), format_match(parse_match("nfkc,case"))
    ('default|pinyin', 'nfkc|case')
    """
    if text is None:
        return DEFAULT_STEPS
    names = re.split(r"[|,]", text) if isinstance(text, str) else list(text)
    names = [n.strip().lower() for n in names if isinstance(n, str) and n.strip()]
    if isinstance(text, list | tuple) and len(names) != len(text):
        raise UsageError("match names must be non-empty strings")
    if not names:
        return DEFAULT_STEPS
    if names == ["none"]:
        return frozenset()
    steps: set[Normalization | str] = set()
    for name in names:
        if name == "none":
            raise UsageError("'none' cannot be combined with other normalisations")
        if name == "default":
            steps |= DEFAULT_STEPS
        else:
            steps.add(name)
    return parse_steps(steps)


@functools.lru_cache(maxsize=256)
def _stored_match(text: str) -> frozenset[Normalization]:
    """``parse_match`` of a stored value (a library uses a handful: parse each once)."""
    return parse_match(text)
