"""Keyword matching: library entries, one automaton per normalisation set, matches at original offsets.

A ``KeywordEntry`` is a term with its risk category, the action a match calls for, and the set of
normalisations (``match``) under which it is sought. ``KeywordIndex.build(entries)`` groups the
entries by that set (a library uses a few: the default, and some with ``repeat``, ``pinyin``,
``initials`` or ``homophone``), normalises each term with its set, and compiles one Aho-Corasick
automaton (ahocorasick-rs) per set over the normalised forms. ``scan(text)`` normalises the text once
per set, runs that set's automaton, and reports each ``Match`` at its offsets in the ORIGINAL text.
The automata run over dense character codes rather than UTF-8 (``_code_table``): one byte a character
where the patterns of a set hold fewer than 256 distinct characters (the letters of ``pinyin``), else
two.

>>> from synthguard.review.risks import RiskCategory
>>> index = KeywordIndex.build([
...     KeywordEntry("k1", "口交", RiskCategory.A1_6, Action.BLOCK),
...     KeywordEntry("a1", "路口交通", RiskCategory.A1_6, Action.ALLOW),
...     KeywordEntry("k2", "ass", RiskCategory.A1_6, Action.MASK),
... ])
>>> [(m.entry_id, m.start, m.end) for m in index.scan("路口交通 class 口 交 ASS")]
[('k1', 11, 14), ('k2', 15, 18)]
>>> mask("路口交通 class 口 交 ASS", index.scan("路口交通 class 口 交 ASS"))
'路口交通 class 口 交 ***'

Rules, in the order they apply:

- A match never cuts a character's expansion in half (``fa`` inside the ``fan`` of 饭 is not 法).
- Whole words: a term made of ASCII letters (``english_whole_word``, derived) matches only where the
  original characters around its span are not letters or digits (``ass`` is not in ``class``, but is
  in ``a.s.s``, ``我ass``). The same holds at an edge of a form that readings or numerals turned into
  letters (pinyin typed inside a longer word), and a form edge that is a digit must not touch another
  digit, or a decimal point or separator, in the normalised text (六四 -> ``64`` is not inside
  ``1964`` or ``64.5``).
- Digits the term writes otherwise (六四 -> ``64``) are not matched by a plain number: a span of
  ASCII or full-width digits alone (``64``, ``6 4``, ``６４``) is ordinary text far more often than an
  evasion; ⑥④, 陆肆 or 6四 are matched. A library that wants ``64`` itself lists it as a term.
- Initials stand for letters a user typed: an ``initials`` entry is found as its initials typed
  (``flg``, ``FLG``), with at most two characters left in Chinese (法lg), or as the term itself; never
  as other Chinese characters with the same initials (反领过 is not 法轮功).
- Allow-list entries (``Action.ALLOW``) are never reported; they shadow every denied match whose
  original span lies inside one of theirs (``路口交通`` hides the ``口交`` inside it).
- Matches of one entry whose spans overlap are reported once (the earliest, then the longest).

``Match.normalizations`` is a minimal set of the steps needed to see the match, found greedily: the
span and the term are normalised again without each step in turn (in enum order), and the step is
dropped when they still agree; steps that cannot change either (their characters say so) are
dropped without a trial. It is empty when the original text holds the term exactly. When the span
seen in context does not reproduce in isolation (a numeral run that started before it), every step
that could have changed it is reported.

Long texts are scanned in chunks of ``chunk_chars`` characters, each widened by ``overlap_chars`` on
both sides so that a match across a border is found once; a match whose original span is longer
than the overlap (a keyword spread over thousands of inserted characters) can be missed at a border.
Memory is bounded by the chunk, not the text. Texts over ``max_input_bytes`` (10 MiB of UTF-8 by
default), invalid UTF-8 and lone surrogates raise ``UsageError``.

A ``KeywordIndex`` is immutable once built: a library update builds a new one and swaps the
reference, while scans in flight finish on the old one.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import functools
import itertools
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

import ahocorasick_rs
import numpy as np
import numpy.typing as npt

from synthguard.errors import UsageError
from synthguard.review.normalize import (
    DEFAULT_STEPS,
    MAX_INPUT_BYTES,
    Normalization,
    affected_steps,
    codepoints,
    coerce_text,
    normalize_codepoints,
    normalize_terms,
    ordered,
    parse_steps,
    reading_map,
    term_forms,
)
from synthguard.review.risks import RiskCategory

__all__ = ["Action", "KeywordEntry", "KeywordIndex", "Match", "mask"]

#: Characters per chunk when scanning (about 1 MB of CJK text; bounded memory per scan).
CHUNK_CHARS: Final = 1 << 18
#: Characters each chunk reaches into its neighbours, so matches across a border are found.
OVERLAP_CHARS: Final = 2048


class Action(enum.Enum):
    """What a match calls for; the value is stored with library entries and verdicts."""

    BLOCK = "block"
    REVIEW = "review"  # human review
    MASK = "mask"
    ALLOW = "allow"  # an allow-list phrase: shadows denied words inside it, never reported


_WHOLE_WORD_EXTRA: Final = frozenset(" -'.")
#: The reading stage of the normalisations (see ``normalize``).
_READINGS: Final = frozenset({Normalization.HOMOPHONE, Normalization.PINYIN, Normalization.INITIALS})


@dataclasses.dataclass(frozen=True)
class KeywordEntry:
    """One keyword of the library.

    ``english_whole_word`` is derived: true when the term (after NFKC) is ASCII letters, possibly with
    digits, spaces, hyphens, apostrophes or dots, and at least one letter.
    """

    id: str
    term: str
    category: RiskCategory
    action: Action = Action.BLOCK
    match: frozenset[Normalization] = DEFAULT_STEPS
    english_whole_word: bool = dataclasses.field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise UsageError("a keyword entry needs a non-empty string id")
        if not isinstance(self.term, str) or not self.term.strip():
            raise UsageError(f"keyword entry {self.id!r}: the term is empty")
        if not isinstance(self.category, RiskCategory):
            raise UsageError(f"keyword entry {self.id!r}: category must be a RiskCategory")
        if not isinstance(self.action, Action):
            raise UsageError(f"keyword entry {self.id!r}: action must be an Action")
        object.__setattr__(self, "match", parse_steps(self.match))
        folded = unicodedata.normalize("NFKC", self.term)
        whole = (
            folded.isascii()
            and any(c.isalpha() for c in folded)
            and all(c.isalnum() or c in _WHOLE_WORD_EXTRA for c in folded)
        )
        object.__setattr__(self, "english_whole_word", whole)


@dataclasses.dataclass(frozen=True)
class Match:
    """A denied keyword found in a text; ``[start, end)`` are offsets in the ORIGINAL text."""

    entry_id: str
    term: str
    category: RiskCategory
    action: Action
    start: int
    end: int
    normalizations: tuple[Normalization, ...]


class _Edge(enum.IntEnum):
    NONE = 0
    WORD = 1  # the original characters on both sides of this edge must not both be word characters
    DIGIT = 2  # the normalised character beyond this edge must not be a digit


class _Target(NamedTuple):
    entry: int
    left: _Edge
    right: _Edge
    #: Digits that the term writes otherwise (六四 -> ``64``): a plain number in the text, ASCII or
    #: full-width digits alone, is not taken for it.
    needs_disguise: bool


@dataclasses.dataclass(frozen=True, eq=False)
class _Group:
    """The patterns sought under one normalisation set, and their automaton."""

    steps: frozenset[Normalization]
    automaton: Any  # ahocorasick_rs.BytesAhoCorasick over character codes (immutable; untyped)
    targets: tuple[tuple[_Target, ...], ...]  # per pattern index
    #: Code point -> this set's dense character code (``_code_table``), composed with the reading
    #: stage where that maps each character to one (homophone, initials: ``reading_map``).
    codes: _Codes
    #: The steps the text is normalised with before ``codes``: ``steps`` without that reading stage
    #: when it is composed into ``codes``, else ``steps`` (the same object).
    scan_steps: frozenset[Normalization]


class _Found(NamedTuple):
    entry: int
    start: int
    end: int
    group: int


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@functools.lru_cache(maxsize=1 << 12)
def _is_word_char(ch: str) -> bool:
    """A letter or digit of an alphabetic script (not a CJK ideograph): what whole words are made of."""
    if ch.isascii():
        return ch.isalnum()
    folded = unicodedata.normalize("NFKC", ch)
    if folded and folded.isascii():
        return folded.isalnum()
    return ch.isalpha() and unicodedata.name(ch, "").startswith(("LATIN", "GREEK", "CYRILLIC"))


_PLAIN_NUMBER: Final = frozenset("0123456789０１２３４５６７８９ .,，。、")


def _target(index: int, entry: KeywordEntry, form: str) -> _Target:
    left, right = _edges(entry, form)
    source = unicodedata.normalize("NFKC", entry.term)
    derived_digits = any(c.isdigit() for c in form if c.isascii()) and not any(
        c.isascii() and c.isdigit() for c in source
    )
    return _Target(index, left, right, derived_digits)


def _edges(entry: KeywordEntry, form: str) -> tuple[_Edge, _Edge]:
    if entry.english_whole_word:
        return _Edge.WORD, _Edge.WORD
    source = unicodedata.normalize("NFKC", entry.term).strip()

    def edge(form_char: str, source_char: str) -> _Edge:
        if form_char.isascii() and form_char.isdigit():
            return _Edge.DIGIT
        if _is_ascii_alnum(form_char) and not _is_ascii_alnum(source_char):
            return _Edge.WORD  # letters made by readings: they must not sit inside a typed word
        return _Edge.NONE

    return edge(form[0], source[:1] or " "), edge(form[-1], source[-1:] or " ")


class KeywordIndex:
    """An immutable, compiled keyword library; see the module docstring."""

    __slots__ = ("_chunk_chars", "_entries", "_groups", "_max_input_bytes", "_overlap_chars")

    _entries: tuple[KeywordEntry, ...]
    _groups: tuple[_Group, ...]
    _max_input_bytes: int
    _chunk_chars: int
    _overlap_chars: int

    def __init__(
        self,
        entries: tuple[KeywordEntry, ...],
        groups: tuple[_Group, ...],
        *,
        max_input_bytes: int,
        chunk_chars: int,
        overlap_chars: int,
    ) -> None:
        # Private: use KeywordIndex.build. Attributes are set once here and never again.
        for name, value in (
            ("_entries", entries),
            ("_groups", groups),
            ("_max_input_bytes", max_input_bytes),
            ("_chunk_chars", chunk_chars),
            ("_overlap_chars", overlap_chars),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a KeywordIndex is immutable: build a new one and swap the reference")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a KeywordIndex is immutable: build a new one and swap the reference")

    @classmethod
    def build(
        cls,
        entries: Iterable[KeywordEntry],
        *,
        max_input_bytes: int = MAX_INPUT_BYTES,
        chunk_chars: int = CHUNK_CHARS,
        overlap_chars: int = OVERLAP_CHARS,
    ) -> KeywordIndex:
        """Compile ``entries``. Raises ``UsageError`` for duplicate ids, a term that normalises to
        nothing (only symbols, with ``strip``), a ``repeat`` entry whose term has a doubled character
        (collapsing it would change the term: 妈妈 would match every 妈), or bad sizes."""
        chosen = tuple(entries)
        if max_input_bytes < 1 or chunk_chars < 1 or overlap_chars < 0:
            raise UsageError("max_input_bytes and chunk_chars must be positive, overlap_chars not negative")
        if overlap_chars >= chunk_chars:
            raise UsageError("overlap_chars must be smaller than chunk_chars")
        seen: set[str] = set()
        for entry in chosen:
            if not isinstance(entry, KeywordEntry):
                raise UsageError(f"not a KeywordEntry: {entry!r}")
            if entry.id in seen:
                raise UsageError(f"duplicate keyword entry id {entry.id!r}")
            seen.add(entry.id)
        by_steps: dict[frozenset[Normalization], list[int]] = defaultdict(list)
        for k, entry in enumerate(chosen):
            by_steps[entry.match].append(k)
        patterns: dict[frozenset[Normalization], dict[str, list[_Target]]] = defaultdict(dict)
        for steps, members in by_steps.items():
            _collect(steps, [chosen[k] for k in members], members, patterns)
        groups = tuple(
            _automaton(steps, patterns[steps])
            for steps in sorted(patterns, key=lambda s: [step.value for step in ordered(s)])
        )
        return cls(
            chosen,
            groups,
            max_input_bytes=max_input_bytes,
            chunk_chars=chunk_chars,
            overlap_chars=overlap_chars,
        )

    @property
    def entries(self) -> tuple[KeywordEntry, ...]:
        """The entries, in the order given to ``build``."""
        return self._entries

    @property
    def normalization_sets(self) -> tuple[frozenset[Normalization], ...]:
        """The distinct normalisation sets, one automaton each."""
        return tuple(group.steps for group in self._groups)

    def __len__(self) -> int:
        return len(self._entries)

    def scan(self, text: str | bytes) -> list[Match]:
        """Denied matches in ``text`` (a ``str`` or UTF-8 bytes; offsets are in characters of the
        decoded text), sorted by start, end and entry id."""
        original = coerce_text(text, max_bytes=self._max_input_bytes)
        found: list[_Found] = []
        n = len(original)
        for core_start in range(0, n, self._chunk_chars):
            core_end = min(n, core_start + self._chunk_chars)
            window_start = max(0, core_start - self._overlap_chars)
            window_end = min(n, core_end + self._overlap_chars)
            self._scan_window(original, window_start, window_end, core_start, core_end, found)
        return self._finish(original, found)

    def _scan_window(
        self,
        original: str,
        window_start: int,
        window_end: int,
        core_start: int,
        core_end: int,
        found: list[_Found],
    ) -> None:
        cps = codepoints(original[window_start:window_end])
        memo: dict[frozenset[Normalization], Any] = {}
        for group_index, group in enumerate(self._groups):
            out, offsets = normalize_codepoints(cps, group.scan_steps, memo=memo)
            if not out.size:
                continue
            unit = group.codes.itemsize
            hits = group.automaton.find_matches_as_indexes(group.codes[out].tobytes(), overlapping=True)
            if not hits:
                continue
            if group.scan_steps is not group.steps:  # the reading stage, composed above: now in full
                out, offsets = normalize_codepoints(cps, group.steps, memo=memo)
            table = np.array(hits, dtype=np.intp).reshape(-1, 3)
            if unit > 1:
                table = table[table[:, 1] % unit == 0]  # a match must start on a character's code
            patterns, starts, ends = table[:, 0], table[:, 1] // unit, table[:, 2] // unit
            first = offsets(starts)
            last = offsets(ends - 1)
            ok = np.ones(len(table), dtype=np.bool_)
            # A match must not cut an expansion: the character before it (after it) must come from
            # another original character than its first (last) one.
            inner = starts > 0
            ok[inner] &= offsets(starts[inner] - 1) != first[inner]
            inner = ends < len(out)
            ok[inner] &= offsets(ends[inner]) != last[inner]
            span_start = first + window_start
            span_end = last + 1 + window_start
            ok &= (span_start >= core_start) & (span_start < core_end)
            for k in np.flatnonzero(ok).tolist():
                s, e = int(span_start[k]), int(span_end[k])
                i, j = int(starts[k]), int(ends[k])
                for target in group.targets[int(patterns[k])]:
                    if (
                        _edge_ok(target.left, original, out, s, i, before=True)
                        and _edge_ok(target.right, original, out, e, j, before=False)
                        and not (target.needs_disguise and _PLAIN_NUMBER.issuperset(original[s:e]))
                    ):
                        found.append(_Found(target.entry, s, e, group_index))

    def _finish(self, original: str, found: list[_Found]) -> list[Match]:
        entries = self._entries
        allowed = sorted((f.start, f.end) for f in found if entries[f.entry].action is Action.ALLOW)
        allowed_starts = [a for a, _ in allowed]
        reach: list[int] = []  # reach[k]: the furthest end among allowed spans 0..k
        for _, end in allowed:
            reach.append(max(end, reach[-1]) if reach else end)
        kept: list[_Found] = []
        last_end: dict[int, int] = {}
        for f in sorted(found, key=lambda f: (f.entry, f.start, -f.end)):
            if entries[f.entry].action is Action.ALLOW:
                continue
            k = bisect.bisect_right(allowed_starts, f.start) - 1
            if k >= 0 and reach[k] >= f.end:
                continue  # inside an allowed phrase
            if f.start < last_end.get(f.entry, -1):
                continue  # overlaps the kept match of the same entry
            last_end[f.entry] = f.end
            kept.append(f)
        steps = _attribute(original, kept, entries, self._groups)
        matches = [
            Match(
                entry_id=entries[f.entry].id,
                term=entries[f.entry].term,
                category=entries[f.entry].category,
                action=entries[f.entry].action,
                start=f.start,
                end=f.end,
                normalizations=needed,
            )
            for f, needed in zip(kept, steps, strict=True)
        ]
        matches.sort(key=lambda m: (m.start, m.end, m.entry_id))
        return matches


def _edge_ok(edge: _Edge, original: str, out: Any, position: int, index: int, *, before: bool) -> bool:
    """Whether one edge of a match respects its rule (see ``_Edge``); ``position`` is the original
    start (end) offset, ``index`` the normalised one."""
    if edge is _Edge.NONE:
        return True
    if edge is _Edge.WORD:
        inside, outside = (position, position - 1) if before else (position - 1, position)
        if outside < 0 or outside >= len(original):
            return True
        return not (_is_word_char(original[inside]) and _is_word_char(original[outside]))
    neighbour = index - 1 if before else index
    if neighbour < 0 or neighbour >= len(out):
        return True
    # A digit, or the "." / "," that strip keeps only between digits: the same number goes on.
    code = int(out[neighbour])
    return not (0x30 <= code <= 0x39 or code in (0x2C, 0x2E))


#: At most this many characters of an initials form may be left in Chinese (法lg, 法轮g).
_INITIALS_KEPT: Final = 2


def _forms(
    terms: Sequence[str], steps: frozenset[Normalization], *, vectorised: bool | None = None
) -> list[frozenset[str]]:
    """The patterns each term stands for under ``steps`` (with the typed variants of initials)."""
    forms = term_forms(terms, steps, vectorised=vectorised)
    if Normalization.INITIALS not in steps:
        return forms
    return [frozenset(v for form in entry_forms for v in _initials_variants(form)) for entry_forms in forms]


def _collect(
    steps: frozenset[Normalization],
    entries: Sequence[KeywordEntry],
    indices: list[int],
    patterns: dict[frozenset[Normalization], dict[str, list[_Target]]],
) -> None:
    """Add the patterns of ``entries`` (all with ``steps``) to ``patterns``, by normalisation set."""
    terms = [entry.term for entry in entries]
    for entry, index, entry_forms in zip(entries, indices, _forms(terms, steps), strict=True):
        if not entry_forms:
            raise UsageError(
                f"keyword entry {entry.id!r}: the term {entry.term!r} normalises to nothing "
                f"with {', '.join(s.value for s in ordered(steps))}"
            )
        if Normalization.REPEAT in steps:
            plain = normalize_terms([entry.term], steps - {Normalization.REPEAT})[0]
            if any(a == b for a, b in itertools.pairwise(plain)):
                raise UsageError(
                    f"keyword entry {entry.id!r}: the term {entry.term!r} has a doubled character; "
                    "collapsing repeats would change it, so it cannot ask for 'repeat'"
                )
        group = patterns[steps]
        for form in sorted(entry_forms):
            group.setdefault(form, []).append(_target(index, entry, form))
    if Normalization.INITIALS in steps:
        # The term itself, written in full, is found without its initials.
        plain_steps = steps - {Normalization.INITIALS}
        group = patterns[plain_steps]
        for entry, index, entry_forms in zip(entries, indices, term_forms(terms, plain_steps), strict=True):
            for form in sorted(entry_forms):
                group.setdefault(form, []).append(_target(index, entry, form))


def _initials_variants(form: str) -> set[str]:
    """The typed spellings of an initials form: upper-case letters come from Chinese characters
    (``normalize``), so each variant keeps at most ``_INITIALS_KEPT`` of them in Chinese and types
    the others, with at least one typed letter (all Chinese is the term itself, or another phrase
    with the same initials: 反领过 is not 法轮功)."""
    readings = [k for k, c in enumerate(form) if "A" <= c <= "Z"]
    typed_elsewhere = any(c.islower() for c in form)
    variants: set[str] = set()
    for kept in itertools.chain.from_iterable(
        itertools.combinations(readings, n) for n in range(min(_INITIALS_KEPT, len(readings)) + 1)
    ):
        if len(kept) == len(readings) and not typed_elsewhere:
            continue
        variants.add("".join(c if k in kept else c.lower() for k, c in enumerate(form)))
    return variants


_Codes = npt.NDArray[np.unsignedinteger[Any]]


def _code_table(forms: Iterable[str]) -> _Codes:
    """Code point -> a dense code for each character some pattern holds, 0 for all others.

    The automata run over these codes (two bytes a character, or one where the patterns hold fewer
    than 256 distinct characters) instead of UTF-8 (three bytes a Chinese character): fewer steps
    and a smaller automaton, about twice the speed (see ``bench/review_keywords.py``), and no string
    to build for each scan. Each normalisation set has its own table: the small sets (a few
    thousand entries) get small alphabets, and the letters of ``pinyin`` one byte each.
    """
    chars = sorted(set().union(*map(set, forms)))
    positions = [ord(c) for c in chars]
    dtype: type[np.unsignedinteger[Any]]
    if len(chars) < 0xFF:
        dtype = np.uint8
    elif len(chars) < 0xFFFF:
        dtype = np.uint16
    else:  # more distinct characters than two bytes can number: four-byte codes
        dtype = np.uint32
    table: _Codes = np.zeros(0x110000, dtype=dtype)
    table[positions] = np.arange(1, len(chars) + 1, dtype=dtype)
    table.setflags(write=False)
    return table


def _encode(form: str, codes: _Codes) -> bytes:
    return bytes(codes[[ord(c) for c in form]].tobytes())


#: A set of at most this many patterns over one-byte codes (the letters of pinyin and initials) is
#: compiled to a DFA (see ``_implementation``).
_DFA_MAX_PATTERNS: Final = 20_000


def _implementation(count: int, codes: _Codes) -> Any:
    """The automaton for ``count`` patterns over ``codes``. A DFA (one transition a byte, no failure
    links) is the fastest to scan while it is small: with one-byte codes its alphabet is a few dozen
    letters, and the pinyin and initials sets scanned two to three times faster than as an NFA.
    Over two-byte codes a DFA has a row of up to 256 byte classes per state, and several automata
    scanned in turn evict each other from the caches: there, and for the large default set (about
    400 MB as a DFA for 100,000 patterns), the compact contiguous NFA (``bench/review_keywords.py``,
    mixed library)."""
    if count <= _DFA_MAX_PATTERNS and codes.itemsize == 1:
        return ahocorasick_rs.Implementation.DFA
    return ahocorasick_rs.Implementation.ContiguousNFA


def _automaton(steps: frozenset[Normalization], patterns: dict[str, list[_Target]]) -> _Group:
    forms = list(patterns)
    codes = _code_table(forms)
    automaton = ahocorasick_rs.BytesAhoCorasick(
        [_encode(form, codes) for form in forms], implementation=_implementation(len(forms), codes)
    )
    targets = tuple(tuple(patterns[form]) for form in forms)
    readings = reading_map(steps)
    if readings is None:
        return _Group(steps, automaton, targets, codes, steps)
    # One character in, one out: the reading stage composed with the codes, one lookup per
    # character at each scan instead of two (the text is read in full only when there are hits).
    composed: _Codes = codes[readings]
    composed.setflags(write=False)
    return _Group(steps, automaton, targets, composed, steps - _READINGS)


def _attribute(
    original: str, kept: Sequence[_Found], entries: Sequence[KeywordEntry], groups: Sequence[_Group]
) -> list[tuple[Normalization, ...]]:
    """The steps each match needed (module docstring): greedy removal, batched per trial set.

    Steps that cannot change the span or the term (``affected_steps``) go without a trial; a single
    step left is needed without one (the span differs from the term).
    """
    result: list[tuple[Normalization, ...]] = [()] * len(kept)
    current: dict[int, frozenset[Normalization]] = {}
    spans: dict[int, str] = {}
    # The same evasion repeated is attributed once.
    first_of: dict[tuple[str, str, frozenset[Normalization]], int] = {}
    copies: list[tuple[int, int]] = []
    for k, f in enumerate(kept):
        span, term = original[f.start : f.end], entries[f.entry].term
        if span == term:
            continue
        steps = groups[f.group].steps
        key = (span, term, steps)
        if key in first_of:
            copies.append((k, first_of[key]))
            continue
        first_of[key] = k
        candidates = affected_steps(span, steps) | affected_steps(term, steps)
        if len(candidates) <= 1:
            result[k] = ordered(candidates or steps)
            continue
        current[k] = candidates
        spans[k] = span

    def agree(ks: list[int], steps: frozenset[Normalization]) -> list[bool]:
        # Character by character: trial sets are many and short-lived, not worth a table each.
        terms = [entries[kept[k].entry].term for k in ks]
        normalized = normalize_terms([spans[k] for k in ks], steps, vectorised=False)
        forms = _forms(terms, steps, vectorised=False)
        return [text in form for text, form in zip(normalized, forms, strict=True)]

    for step in Normalization:
        trials: dict[frozenset[Normalization], list[int]] = defaultdict(list)
        for k, steps in current.items():
            if step in steps and len(steps) > 1:
                trials[steps - {step}].append(k)
        for trial, ks in trials.items():
            for k, ok in zip(ks, agree(ks, trial), strict=True):
                if ok:
                    current[k] = trial
    for k, steps in current.items():
        result[k] = ordered(steps)
    for k, first in copies:
        result[k] = result[first]
    return result


def mask(text: str, matches: Iterable[Match], char: str = "*", *, all_matches: bool = False) -> str:
    """``text`` with the original span of every match whose action is ``mask`` (every match, with
    ``all_matches``) replaced by ``char``, one for each character, so the length is unchanged."""
    if not isinstance(char, str) or len(char) != 1:
        raise UsageError("the mask character must be one character")
    chars = list(text)
    for m in matches:
        if not all_matches and m.action is not Action.MASK:
            continue
        if not 0 <= m.start <= m.end <= len(chars):
            raise UsageError(f"match [{m.start}, {m.end}) lies outside the text of length {len(chars)}")
        chars[m.start : m.end] = [char] * (m.end - m.start)
    return "".join(chars)
