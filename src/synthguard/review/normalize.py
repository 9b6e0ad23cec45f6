"""Text normalisation for keyword review, with a map back to the original text.

``normalize(text, steps)`` undoes the evasions users try on keyword filters and returns a
``NormalizedText``: the normalised ``text`` and, for every one of its characters, the index of the
original character it came from, so that any span ``[i, j)`` of the normalised text maps back to
``[start, end)`` of the original (``original_span``), through deletions (stripped symbols),
expansions (``㈱`` -> ``株`` with its brackets stripped, ``法`` -> ``fa``) and contractions (a run of
repeated characters collapsed to one).

>>> n = normalize("法 輪 ① ＦＵＮ", DEFAULT_STEPS)
>>> n.text
'法轮1fun'
>>> n.original_span(0, 2), n.original_span(3, 6)
((0, 3), (6, 9))

The steps (``Normalization``; values are stable, they are stored with library entries), applied in
the order of the enum whatever order they are given in:

- ``nfkc``: Unicode NFKC, *per character* (each character's compatibility mapping; composition across
  characters is not done, so a letter and a separate combining accent stay apart: with ``strip`` the
  accent is removed, with or without it the keyword is normalised the same way).
- ``width``: full-width ASCII forms and the ideographic space to their half-width forms.
- ``t2s``: traditional to simplified Chinese, *character by character*: a table built once from
  OpenCC's ``t2s`` conversion of each single character, so the length never changes and offsets stay
  exact. OpenCC's phrase tables (乾隆 keeps its 乾) are deliberately not used: keywords and texts go
  through the same table, so a phrase-level choice would only make matching depend on context.
- ``case``: Unicode case folding (``ß`` -> ``ss``).
- ``numerals``: circled, parenthesised, full-stop and full-width digits (①, ⑴, ⒈, ❶, ３) and
  ⑩-style numbers to ASCII digits; Chinese digits (〇零一二三四五六七八九, 幺 for 1, the financial
  壹贰叁肆伍陆柒捌玖 and their traditional forms) to ASCII digits *where used as numerals*, meaning in
  a run of two or more digits of any kind (六四, 陆肆, 6四 -> ``64``; 一起 and 队伍 are left alone).
  Positional characters (十百千万) are not interpreted.
- ``strip``: removes what is inserted inside words: spaces and line breaks, punctuation and symbols
  (including emoji), control and format characters (zero-width space and joiner, bidi marks, soft
  hyphen, tag characters), combining marks, variation selectors, Hangul fillers, private-use and
  unassigned code points. Two things stay because they separate rather than disguise: CJK sentence
  punctuation (。，、；：！？ and their variants, all written ``。``), and a ``.`` or ``,`` between two
  digits (``6.4%`` is not ``64``).
- ``repeat`` (optional): a run of the same character becomes one (法法法轮功 -> 法轮功).
- ``homophone``: each Chinese character to the representative of its homophone class (same toneless
  reading from pypinyin, plus the hand-curated near-homophones of ``_homophones``).
- ``pinyin``: each Chinese character to its most common reading without tones (法 -> ``fa``).
- ``initials``: each Chinese character to the first letter of that reading, in upper case, and
  typed ASCII letters to lower case (法轮功 -> ``FLG``, ``flg`` -> ``flg``, 法lg -> ``Flg``): the
  initials of Chinese characters never pass for letters a user typed (any three characters of
  ordinary text have the initials of some keyword), and the keyword matcher says which mixes of
  the two it accepts.

``DEFAULT_STEPS`` is every step but ``repeat``, ``homophone``, ``pinyin`` and ``initials``, which a
keyword entry asks for. ``pinyin`` and ``initials`` exclude each other.

Cost: linear in the text. Each set of steps compiles, once per process, into one table per stage
indexed by code point (``numpy`` arrays, about 5.5 MB each, 16 kept); a text is turned into an array
of code points and mapped with vectorised lookups, so normalising runs at tens of MB per second.
Texts of up to ``SMALL_CHARS`` characters go character by character in Python instead, from the same
per-character definition (no table to build, no array overhead; a property test holds the two paths
equal). ``normalize`` holds about 30 bytes per character at its peak; texts above ``max_bytes``
(10 MiB of UTF-8 by default) are refused with ``UsageError``, as are invalid UTF-8 bytes and strings
with lone surrogates. The keyword scanner works on long texts in chunks
(``keywords.KeywordIndex.scan``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Final, cast

import numpy as np
import numpy.typing as npt

from synthguard.errors import UsageError
from synthguard.review import _homophones

__all__ = [
    "ALL_STEPS",
    "DEFAULT_STEPS",
    "MAX_INPUT_BYTES",
    "SMALL_CHARS",
    "Normalization",
    "NormalizedText",
    "OffsetMap",
    "affected_steps",
    "codepoints",
    "coerce_text",
    "from_codepoints",
    "normalize",
    "normalize_codepoints",
    "normalize_terms",
    "ordered",
    "parse_steps",
    "reading_map",
    "term_forms",
]


class Normalization(enum.Enum):
    """One normalisation step; the value is stored with library entries and never changes."""

    NFKC = "nfkc"
    WIDTH = "width"
    T2S = "t2s"
    CASE = "case"
    STRIP = "strip"
    NUMERALS = "numerals"
    REPEAT = "repeat"
    HOMOPHONE = "homophone"
    PINYIN = "pinyin"
    INITIALS = "initials"


ALL_STEPS: Final = frozenset(Normalization)
DEFAULT_STEPS: Final = frozenset(
    {
        Normalization.NFKC,
        Normalization.WIDTH,
        Normalization.T2S,
        Normalization.CASE,
        Normalization.STRIP,
        Normalization.NUMERALS,
    }
)
#: Texts larger than this (UTF-8 bytes) are refused; a caller may pass another limit.
MAX_INPUT_BYTES: Final = 10 * 1024 * 1024

_ORDER: Final = {step: i for i, step in enumerate(Normalization)}
_STAGE1: Final = DEFAULT_STEPS  # per-character table, then context passes (separators, numerals)
_STAGE2: Final = frozenset({Normalization.HOMOPHONE, Normalization.PINYIN, Normalization.INITIALS})

_N_CODEPOINTS: Final = 0x110000
_BOUNDARY_OUT: Final = 0x3002  # 。: the one form of CJK sentence punctuation after strip
#: CJK sentence punctuation: a separator between words, not an insertion inside one.
_BOUNDARY: Final = frozenset(
    "。，、；：！？｡､\uff0c\uff1b\uff1a\uff01\uff1f\ufe10\ufe11\ufe12\ufe13\ufe14\ufe15\ufe16"
)
_DIGIT_SEPARATORS: Final = (0x2E, 0x2C)  # "." and ","
_SENTINEL: Final = 0xFFFF  # separates terms in batch normalisation; never survives as text
_HANGUL_FILLERS: Final = (0x115F, 0x1160, 0x3164, 0xFFA0)
_STRIPPED_CATEGORIES: Final = frozenset(
    {"Zs", "Zl", "Zp", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"}
    | {"Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me"}
)
#: Scanned one by one for their properties; above it only unassigned and private-use code points
#: remain (except the tag block, scanned too). Planes 2 and 3 (CJK) are never stripped, so ideographs
#: newer than this Python's Unicode data survive.
_SCANNED: Final = ((0, 0x20000), (0xE0000, 0xE1000))
_CJK_PLANES: Final = (0x20000, 0x40000)
_CHINESE_DIGITS: Final = {
    **dict.fromkeys("〇零", 0),
    **dict.fromkeys("一壹幺", 1),
    **dict.fromkeys("二贰貳", 2),
    **dict.fromkeys("三叁叄參", 3),
    **dict.fromkeys("四肆", 4),
    **dict.fromkeys("五伍", 5),
    **dict.fromkeys("六陆陸", 6),
    **dict.fromkeys("七柒", 7),
    **dict.fromkeys("八捌", 8),
    **dict.fromkeys("九玖", 9),
}

IntArray = npt.NDArray[np.intp]
CodeArray = npt.NDArray[np.uint32]


def parse_steps(steps: Iterable[Normalization | str]) -> frozenset[Normalization]:
    """``steps`` as a frozenset of ``Normalization``; strings are their stable values.

    Raises ``UsageError`` for an unknown step or for ``pinyin`` with ``initials``.
    """
    if isinstance(steps, frozenset):
        return _parse_frozen(steps)
    return _parse(steps)


@functools.lru_cache(maxsize=256)
def _parse_frozen(steps: frozenset[Normalization | str]) -> frozenset[Normalization]:
    return _parse(steps)


def _parse(steps: Iterable[Normalization | str]) -> frozenset[Normalization]:
    result: set[Normalization] = set()
    for step in steps:
        if isinstance(step, Normalization):
            result.add(step)
            continue
        try:
            result.add(Normalization(step))
        except ValueError:
            known = ", ".join(s.value for s in Normalization)
            raise UsageError(f"unknown normalisation {step!r} (known: {known})") from None
    if Normalization.PINYIN in result and Normalization.INITIALS in result:
        raise UsageError("the pinyin and initials normalisations exclude each other: choose one")
    return frozenset(result)


def ordered(steps: Iterable[Normalization]) -> tuple[Normalization, ...]:
    """``steps`` in the order they are applied."""
    return tuple(sorted(steps, key=_ORDER.__getitem__))


def coerce_text(data: str | bytes | bytearray | memoryview, *, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """``data`` as a ``str``: bytes are decoded as strict UTF-8.

    Raises ``UsageError`` for input over ``max_bytes`` (UTF-8 bytes), invalid UTF-8 (with the byte
    offset) and strings holding lone surrogates.
    """
    if isinstance(data, str):
        size = len(data)
        if size > max_bytes:
            raise UsageError(f"text of {size:,} characters exceeds the limit of {max_bytes:,} bytes")
        if size * 4 > max_bytes:  # only then can the UTF-8 size exceed the limit
            size = len(_encode_checked(data))
            if size > max_bytes:
                raise UsageError(f"text of {size:,} UTF-8 bytes exceeds the limit of {max_bytes:,} bytes")
        return data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UsageError(f"text must be str or UTF-8 bytes, not {type(data).__name__}")
    if len(data) > max_bytes:
        raise UsageError(f"text of {len(data):,} bytes exceeds the limit of {max_bytes:,} bytes")
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"text is not valid UTF-8 (invalid byte at offset {exc.start})") from None


def _encode_checked(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(
            f"text holds a lone surrogate at character {exc.start} (not valid Unicode)"
        ) from None


def codepoints(text: str) -> CodeArray:
    """The code points of ``text`` as a ``uint32`` array (``UsageError`` for lone surrogates)."""
    try:
        raw = text.encode("utf-32-le")
    except UnicodeEncodeError as exc:
        raise UsageError(
            f"text holds a lone surrogate at character {exc.start} (not valid Unicode)"
        ) from None
    return np.frombuffer(raw, dtype="<u4")


def from_codepoints(array: CodeArray) -> str:
    """The ``str`` of a code point array (inverse of ``codepoints``)."""
    return np.ascontiguousarray(array, dtype="<u4").tobytes().decode("utf-32-le")


@dataclasses.dataclass(frozen=True, eq=False)
class NormalizedText:
    """A normalised text and the map back to the original (``origin``, ``original_span``)."""

    text: str
    steps: frozenset[Normalization]
    offsets: OffsetMap
    original_length: int

    def __len__(self) -> int:
        return len(self.text)

    @functools.cached_property
    def origin(self) -> IntArray:
        """``origin[k]``: the index in the original text of the character that produced ``text[k]``
        (non-decreasing; equal for the characters of one expansion). Read-only."""
        full = self.offsets.full()
        full.setflags(write=False)
        return full

    def original_span(self, i: int, j: int) -> tuple[int, int]:
        """The span of the original text that ``text[i:j]`` came from.

        For ``i < j``: from the first original character behind ``text[i]`` to the last behind
        ``text[j - 1]``, inclusive, so deleted characters *inside* the span are part of it and
        those around it are not. For ``i == j``: an empty span at the original position of ``i``.
        """
        n = len(self.text)
        if not 0 <= i <= j <= n:
            raise UsageError(f"span [{i}, {j}) is outside the normalised text of length {n}")
        if i == j:
            if i == n:
                return self.original_length, self.original_length
            position = int(self.offsets(np.array([i]))[0])
            return position, position
        first, last = self.offsets(np.array([i, j - 1]))
        return int(first), int(last) + 1


def normalize(
    text: str | bytes,
    steps: Iterable[Normalization | str] = DEFAULT_STEPS,
    *,
    max_bytes: int = MAX_INPUT_BYTES,
) -> NormalizedText:
    """Normalise ``text`` (a ``str``, or UTF-8 bytes) with ``steps``; see the module docstring."""
    chosen = parse_steps(steps)
    original = coerce_text(text, max_bytes=max_bytes)
    if len(original) <= SMALL_CHARS:
        small, origin = _normalize_small(original, chosen)
        out = np.array(small, dtype=np.uint32)
        offsets = OffsetMap(np.array(origin, dtype=np.intp), _NO_ENDS)
    else:
        out, offsets = normalize_codepoints(codepoints(original), chosen)
    return NormalizedText(from_codepoints(out), chosen, offsets, len(original))


#: Texts up to this many characters in all take the pure-Python path (no table to build, no
#: per-call array overhead); longer ones the vectorised tables.
SMALL_CHARS: Final = 256


def normalize_terms(
    terms: Sequence[str], steps: frozenset[Normalization], *, vectorised: bool | None = None
) -> list[str]:
    """Each of ``terms`` normalised with ``steps``: the same result as ``normalize(term, steps).text``.

    ``vectorised``: one pass over the tables for all terms (library builds), or character by
    character in Python (a few short strings under step sets that may have no table yet: match
    attribution); by default, vectorised above ``SMALL_CHARS`` characters in all.
    """
    if not terms:
        return []
    if vectorised is None:
        vectorised = sum(map(len, terms)) > SMALL_CHARS
    if not vectorised:
        return [from_codepoints(np.array(_normalize_small(t, steps)[0], dtype=np.uint32)) for t in terms]
    return _normalize_terms_arrays(terms, steps)


def _normalize_terms_arrays(terms: Sequence[str], steps: frozenset[Normalization]) -> list[str]:
    joined = "\uffff".join(terms)
    cps = codepoints(joined)
    lengths = np.fromiter((len(t) for t in terms), dtype=np.intp, count=len(terms))
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    separators = starts[1:] - 1
    out, offsets = normalize_codepoints(cps, steps, protect=separators)
    origin = offsets.full()
    is_separator = np.zeros(len(cps), dtype=np.bool_)
    is_separator[separators] = True
    keep = ~is_separator[origin]
    out, origin = out[keep], origin[keep]
    owner = np.searchsorted(starts, origin, side="right") - 1
    bounds = np.searchsorted(owner, np.arange(len(terms) + 1))
    flat = from_codepoints(out)
    return [flat[bounds[k] : bounds[k + 1]] for k in range(len(terms))]


def term_forms(
    terms: Sequence[str], steps: frozenset[Normalization], *, vectorised: bool | None = None
) -> list[frozenset[str]]:
    """The patterns a keyword stands for under ``steps``: its normalised form, and with homophone,
    pinyin or initials also the form from its phrase-aware reading (pypinyin reads 重庆 as
    chong qing, while character by character 重 is zhong). Empty forms are dropped.
    ``vectorised`` as for ``normalize_terms``."""
    base = normalize_terms(terms, steps, vectorised=vectorised)
    stage2 = steps & _STAGE2
    if not stage2:
        return [frozenset({form} - {""}) for form in base]
    before = normalize_terms(terms, steps - _STAGE2, vectorised=vectorised)
    forms: list[frozenset[str]] = []
    for form, plain in zip(base, before, strict=True):
        variants = {form, _phrase_form(plain, stage2)}
        forms.append(frozenset(variants - {""}))
    return forms


@functools.lru_cache(maxsize=1 << 14)
def _phrase_form(text: str, stage2: frozenset[Normalization]) -> str:
    from pypinyin import Style, lazy_pinyin  # heavy: only for entries that ask for readings

    if not text:
        return ""
    # errors: other characters one by one (pypinyin accepts a callable returning a list; its type
    # hints say str).
    one_by_one = cast("Callable[[str], str]", list)
    syllables: list[str] = lazy_pinyin(text, style=Style.NORMAL, errors=one_by_one)
    if len(syllables) != len(text):  # an unexpected segmentation: keep the table form only
        return ""
    readings = _homophones.primary_readings()
    representatives = _homophones.syllable_representatives()
    homophones = _homophones.homophone_map()
    hand_members = _homophones.hand_members()
    pieces: list[str] = []
    for ch, syllable in zip(text, syllables, strict=True):
        code = ord(ch)
        if code not in readings:  # not a Chinese character: the table's mapping
            pieces.append(_stage2_char(ch, stage2))
            continue
        syllable = syllable.lower()
        if Normalization.PINYIN in stage2:
            pieces.append(syllable)
        elif Normalization.INITIALS in stage2:
            pieces.append(syllable[:1].upper())
        elif code in hand_members:  # a near-homophone: its group, whatever its reading here
            pieces.append(chr(homophones[code]))
        else:  # homophone only: the class of the reading in this phrase
            rep = representatives.get(syllable)
            pieces.append(chr(rep) if rep is not None else chr(homophones.get(code, code)))
    return "".join(pieces)


def _stage2_char(ch: str, stage2: frozenset[Normalization]) -> str:
    return _stage2_map(stage2).get(ord(ch), ch)


@dataclasses.dataclass(frozen=True, eq=False)
class OffsetMap:
    """Maps indices of a normalised text to indices of the original one.

    ``base[k]`` is the original index behind character ``k`` before the reading stage (homophone,
    pinyin, initials); when that stage expanded characters, ``ends[k]`` is where the output of that
    character ends, and an index is mapped through a binary search, so the map costs one integer per
    character whatever the expansion.
    """

    base: IntArray
    ends: IntArray

    def __call__(self, indices: IntArray) -> IntArray:
        """The original index of each normalised index in ``indices``."""
        if self.ends.size:
            return self.base[np.searchsorted(self.ends, indices, side="right")]
        return self.base[indices]

    def full(self) -> IntArray:
        """The original index of every normalised character."""
        if self.ends.size:
            return np.repeat(self.base, np.diff(self.ends, prepend=0))
        return self.base


def normalize_codepoints(
    cps: CodeArray,
    steps: frozenset[Normalization],
    *,
    protect: IntArray | None = None,
    memo: dict[frozenset[Normalization], tuple[CodeArray, IntArray]] | None = None,
) -> tuple[CodeArray, OffsetMap]:
    """The core: normalised code points and the map back to indices of ``cps``.

    ``protect`` lists positions that pass through as ``U+FFFF`` (term separators in batch
    normalisation). ``memo``, shared between calls on the same ``cps``, reuses the common stages of
    several step sets (a scan normalises one chunk for each set its library uses).
    """
    stage1, key1, stage2 = _stages(steps)
    cached = memo.get(key1) if memo is not None else None
    if cached is None:
        base = memo.get(stage1) if memo is not None else None
        if base is None:
            out, origin = _apply(_stage1_table(stage1), cps, protect)
            if Normalization.STRIP in steps:
                out, origin = _digit_separators(out, origin)
            if Normalization.NUMERALS in steps:
                out = _chinese_numerals(out)
            if memo is not None:
                memo[stage1] = (out, origin)
        else:
            out, origin = base
        if Normalization.REPEAT in steps:
            out, origin = _collapse_repeats(out, origin)
            if memo is not None:
                memo[key1] = (out, origin)
    else:
        out, origin = cached
    if not stage2:
        return out, OffsetMap(origin, _NO_ENDS)
    out2, kept, ends = _stage2_table(stage2).map(out, None)
    assert kept is None  # the reading stage never deletes
    return out2, OffsetMap(origin, ends)


_NO_ENDS: Final = np.empty(0, dtype=np.intp)


def reading_map(steps: frozenset[Normalization]) -> CodeArray | None:
    """Code point -> code point of the reading stage (homophone, pinyin, initials) of ``steps``,
    when that stage turns each character into exactly one (homophone, initials); ``None`` when it
    may expand one (pinyin) or when ``steps`` has no reading stage. Read-only.

    With it, ``normalize_codepoints(cps, steps)[0]`` equals
    ``reading_map(steps)[normalize_codepoints(cps, steps - {homophone, pinyin, initials})[0]]``, with
    the same offsets: a caller may compose it with a table of its own once instead of mapping the
    text twice (the keyword scanner's character codes).
    """
    stage2 = steps & _STAGE2
    if not stage2:
        return None
    return _one_to_one(stage2)


@functools.lru_cache(maxsize=8)
def _one_to_one(stage2: frozenset[Normalization]) -> CodeArray | None:
    table = _stage2_table(stage2)
    if len(table.columns) > 1 or not bool((table.length == 1).all()):
        return None
    return table.single


@functools.lru_cache(maxsize=256)
def _stages(
    steps: frozenset[Normalization],
) -> tuple[frozenset[Normalization], frozenset[Normalization], frozenset[Normalization]]:
    # Set operations on enum members hash them in Python: done once per set of steps, not per call.
    stage1 = steps & _STAGE1
    return stage1, stage1 | (steps & {Normalization.REPEAT}), steps & _STAGE2


def affected_steps(text: str, steps: frozenset[Normalization]) -> frozenset[Normalization]:
    """The steps of ``steps`` that may change ``text``: a superset of those that do, found from its
    characters alone (and what earlier steps turn them into). A step outside it leaves ``text`` as
    it is, so removing it cannot change a match (used to attribute matches cheaply)."""
    result: set[Normalization] = set()
    for ch in set(text):
        result |= _char_steps(ch)
    if len(set(text)) < len(text):  # some character occurs twice: a run, once others are stripped
        result.add(Normalization.REPEAT)
    return frozenset(result) & steps


@functools.lru_cache(maxsize=1 << 16)
def _char_steps(ch: str) -> frozenset[Normalization]:
    strippable, nfkc, _, digits = _unicode_data()
    t2s = _t2s_map()
    code = ord(ch)
    seen = {ch}
    for step_map in (nfkc, _WIDTH, t2s):
        seen |= {out for c in seen for out in step_map.get(ord(c), c)}
    steps: set[Normalization] = set()
    if code in nfkc:
        steps.add(Normalization.NFKC)
    if any(ord(c) in _WIDTH for c in seen):
        steps.add(Normalization.WIDTH)
    if any(ord(c) in t2s for c in seen):
        steps.add(Normalization.T2S)
    if any(c.casefold() != c for c in seen):
        steps.add(Normalization.CASE)
    if any(strippable[ord(c)] or c in _BOUNDARY or ord(c) in _DIGIT_SEPARATORS for c in seen):
        steps.add(Normalization.STRIP)
    if any(ord(c) in digits or c in _CHINESE_DIGITS for c in seen):
        steps.add(Normalization.NUMERALS)
    if any(ord(c) >= 0x2E80 or (c.isascii() and c.isalpha()) for c in seen):
        steps |= _STAGE2  # readings: any Chinese character (and letters, for initials)
    return frozenset(steps)


# ---------------------------------------------------------------------------------------------------
# Character tables


@dataclasses.dataclass(frozen=True, eq=False)
class _CharTable:
    """A per-character mapping over all code points: ``length[c]`` output characters, which are
    ``single[c]`` itself when the length is 1, else row ``single[c]`` of the zero-padded table whose
    columns are ``columns``."""

    length: npt.NDArray[np.uint8]
    single: CodeArray
    columns: tuple[CodeArray, ...]

    def map(self, cps: CodeArray, protect: IntArray | None) -> tuple[CodeArray, IntArray | None, IntArray]:
        """``(out, kept, ends)``: the mapped code points; when no character expanded, the input
        positions that were kept (``None``: all of them), else ``None`` and ``ends``, where
        ``ends[k]`` is the end in ``out`` of input character ``k``'s output."""
        lengths = self.length[cps]
        values = self.single[cps]
        if protect is not None and protect.size:
            lengths[protect] = 1
            values[protect] = _SENTINEL
        empty = np.empty(0, dtype=np.intp)
        expanded = np.flatnonzero(lengths > 1) if len(self.columns) > 1 else empty
        if not expanded.size:
            keep = lengths.astype(np.bool_)
            if keep.all():
                return values, None, empty
            return values[keep], np.flatnonzero(keep), empty
        ends = np.cumsum(lengths, dtype=np.intp)
        total = int(ends[-1])
        width = len(self.columns)
        # Each expanded character writes its whole padded row, last column first: what it writes
        # past its own end lands on a later character's slot at a smaller column, rewritten later
        # (or on the padding at the end). Single characters go last. No np.repeat and no 2-D
        # indexing: several times faster for the 2-6 letters of a pinyin syllable.
        out = np.empty(total + width, dtype=np.uint32)
        starts = ends[expanded] - lengths[expanded]
        rows = values[expanded].astype(np.intp)  # once, not at each column's gather
        for k in range(width - 1, -1, -1):
            out[starts + k] = self.columns[k][rows]
        singles = np.flatnonzero(lengths == 1)
        out[ends[singles] - 1] = values[singles]
        return out[:total], None, ends


def _apply(table: _CharTable, cps: CodeArray, protect: IntArray | None) -> tuple[CodeArray, IntArray]:
    """``table`` applied to ``cps``, with the explicit origin of each output character."""
    out, kept, ends = table.map(cps, protect)
    if ends.size:
        return out, np.repeat(np.arange(len(cps), dtype=np.intp), np.diff(ends, prepend=0))
    return out, kept if kept is not None else np.arange(len(cps), dtype=np.intp)


def _freeze(*arrays: npt.NDArray[np.generic]) -> None:
    for array in arrays:
        array.setflags(write=False)


def _make_table(mapping: dict[int, str], deleted: npt.NDArray[np.bool_] | None) -> _CharTable:
    length = np.ones(_N_CODEPOINTS, dtype=np.uint8)
    single = np.arange(_N_CODEPOINTS, dtype=np.uint32)
    if deleted is not None:
        length[deleted] = 0
    codes: list[int] = []
    lengths: list[int] = []
    values: list[int] = []
    long_outputs: list[str] = []
    for code, output in mapping.items():
        codes.append(code)
        lengths.append(len(output))
        if len(output) == 1:
            values.append(ord(output))
        else:
            values.append(len(long_outputs))
            long_outputs.append(output)
    if codes:
        index = np.array(codes, dtype=np.intp)
        length[index] = np.array(lengths, dtype=np.uint8)
        single[index] = np.array(values, dtype=np.uint32)
    width = max((len(o) for o in long_outputs), default=1)
    rows = np.zeros((max(len(long_outputs), 1), width), dtype=np.uint32)
    for row, output in enumerate(long_outputs):
        rows[row, : len(output)] = [ord(c) for c in output]
    columns = tuple(np.ascontiguousarray(rows[:, k]) for k in range(width))
    _freeze(length, single, *columns)
    return _CharTable(length, single, columns)


@functools.cache
def _unicode_data() -> tuple[npt.NDArray[np.bool_], dict[int, str], dict[int, str], dict[int, str]]:
    """(strippable code points, NFKC changes, case-folding changes, numeral digits), scanned once."""
    strippable = np.zeros(_N_CODEPOINTS, dtype=np.bool_)
    nfkc: dict[int, str] = {}
    casefold: dict[int, str] = {}
    digits: dict[int, str] = {}
    strippable[_SCANNED[0][1] :] = True  # unassigned planes, and planes 15-16 (private use) ...
    strippable[_CJK_PLANES[0] : _CJK_PLANES[1]] = False  # ... but never CJK ideographs
    strippable[_SCANNED[1][0] : _SCANNED[1][1]] = False  # the tag block: scanned below
    for low, high in _SCANNED:
        for code in range(low, high):
            if 0xD800 <= code <= 0xDFFF:
                strippable[code] = True
                continue
            ch = chr(code)
            category = unicodedata.category(ch)
            if category in _STRIPPED_CATEGORIES:
                strippable[code] = True
            if category == "Cn":
                continue
            folded = unicodedata.normalize("NFKC", ch)
            if folded != ch:
                nfkc[code] = folded
            lower = ch.casefold()
            if lower != ch:
                casefold[code] = lower
            if category in ("Nd", "No") and not ch.isascii():
                value = unicodedata.numeric(ch, -1.0)
                if value >= 0 and value == int(value):
                    digits[code] = str(int(value))
    strippable[list(_HANGUL_FILLERS)] = True
    strippable[_SENTINEL] = True
    _freeze(strippable)
    return strippable, nfkc, casefold, digits


@functools.cache
def _t2s_map() -> dict[int, str]:
    """Traditional -> simplified, character by character, from OpenCC's ``t2s`` configuration."""
    import opencc

    converter = opencc.OpenCC("t2s")
    codes = [
        *range(0x2E80, 0x2FE0),
        *range(0x3400, 0xA000),
        *range(0xF900, 0xFB00),
        *range(0x20000, 0x2A6E0),
        *range(0x2A700, 0x2EBF0),
        *range(0x2F800, 0x2FA20),
        *range(0x30000, 0x31350),
    ]
    # One conversion for all: newline-separated single characters never form a phrase.
    converted = converter.convert("\n".join(map(chr, codes))).split("\n")
    if len(converted) != len(codes):  # a conversion that changed the line structure: go one by one
        converted = [converter.convert(chr(code)) for code in codes]
    return {
        code: out for code, out in zip(codes, converted, strict=True) if len(out) == 1 and out != chr(code)
    }


_WIDTH: Final = {
    **{code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)},
    0x3000: " ",
    0xFFE0: "¢",
    0xFFE1: "£",
    0xFFE2: "¬",
    0xFFE3: "¯",
    0xFFE4: "¦",
    0xFFE5: "¥",
    0xFFE6: "₩",
}


def _stage1_candidates(steps: frozenset[Normalization]) -> set[int]:
    """The code points that the per-character stage may map to something other than themselves or
    nothing (every other one is kept as it is, or deleted when strippable)."""
    _, nfkc, casefold, digits = _unicode_data()
    candidates: set[int] = set()
    if Normalization.NFKC in steps:
        candidates.update(nfkc)
    if Normalization.WIDTH in steps:
        candidates.update(_WIDTH)
    if Normalization.T2S in steps:
        candidates.update(_t2s_map())
    if Normalization.CASE in steps:
        candidates.update(casefold)
    if Normalization.NUMERALS in steps:
        candidates.update(digits)
    if Normalization.STRIP in steps:
        candidates.update(map(ord, _BOUNDARY))
        candidates.update(_DIGIT_SEPARATORS)
    return candidates


@functools.lru_cache(maxsize=1 << 16)
def _stage1_char(ch: str, steps: frozenset[Normalization]) -> str:
    """What the per-character stage makes of ``ch``: the one definition, behind both the tables and
    the small-text path."""
    strippable, nfkc, _, digits = _unicode_data()
    code = ord(ch)
    strip = Normalization.STRIP in steps
    if strip and ch in _BOUNDARY:
        return chr(_BOUNDARY_OUT)
    if Normalization.NUMERALS in steps and code in digits:
        text = digits[code]
    else:
        text = ch
        if Normalization.NFKC in steps:
            text = nfkc.get(code, ch)
        if Normalization.WIDTH in steps:
            text = "".join(_WIDTH.get(ord(c), c) for c in text)
        if Normalization.T2S in steps:
            t2s = _t2s_map()
            text = "".join(t2s.get(ord(c), c) for c in text)
        if Normalization.CASE in steps:
            text = text.casefold()
        if Normalization.NUMERALS in steps:
            text = "".join(digits.get(ord(c), c) for c in text)
    if strip:
        text = "".join(c for c in text if not strippable[ord(c)] or ord(c) in _DIGIT_SEPARATORS)
    return text


# Each table holds about 5.5 MB: a bounded number stay cached (the step sets libraries use).
@functools.lru_cache(maxsize=16)
def _stage1_table(steps: frozenset[Normalization]) -> _CharTable:
    strippable = _unicode_data()[0]
    candidates = _stage1_candidates(steps)
    mapping = {code: _stage1_char(chr(code), steps) for code in candidates}
    deleted = None
    if Normalization.STRIP in steps:
        deleted = strippable.copy()
        deleted[list(candidates)] = False  # their mapping (above) already decided
    return _make_table(mapping, deleted)


@functools.lru_cache(maxsize=8)
def _stage2_map(stage2: frozenset[Normalization]) -> dict[int, str]:
    readings = _homophones.primary_readings()
    homophones = _homophones.homophone_map() if Normalization.HOMOPHONE in stage2 else {}
    mapping: dict[int, str] = {}
    for code in set(readings) | set(homophones):
        target = homophones.get(code, code)
        reading = readings.get(target, readings.get(code))
        if Normalization.PINYIN in stage2 and reading:
            mapping[code] = reading
        elif Normalization.INITIALS in stage2 and reading:
            mapping[code] = reading[0].upper()
        elif target != code:
            mapping[code] = chr(target)
    if Normalization.INITIALS in stage2:  # typed letters: lower case (upper case is for readings)
        mapping.update({code: chr(code + 32) for code in range(0x41, 0x5B)})
    return mapping


@functools.lru_cache(maxsize=8)
def _stage2_table(stage2: frozenset[Normalization]) -> _CharTable:
    return _make_table(_stage2_map(stage2), None)


# ---------------------------------------------------------------------------------------------------
# The small-text path: the same steps, character by character in Python


def _normalize_small(text: str, steps: frozenset[Normalization]) -> tuple[list[int], list[int]]:
    """``(code points, origin)`` of ``text`` normalised with ``steps``: the same result as
    ``normalize_codepoints`` (a property test holds them equal), faster for a few characters."""
    stage1, _, stage2 = _stages(steps)
    out: list[int] = []
    origin: list[int] = []
    for k, ch in enumerate(text):
        if 0xD800 <= ord(ch) <= 0xDFFF:
            raise UsageError(f"text holds a lone surrogate at character {k} (not valid Unicode)")
        for produced in _stage1_char(ch, stage1):
            out.append(ord(produced))
            origin.append(k)
    if Normalization.STRIP in steps:
        last = len(out) - 1
        keep = [
            code not in _DIGIT_SEPARATORS
            or (0 < i < last and _is_digit(out[i - 1]) and _is_digit(out[i + 1]))
            for i, code in enumerate(out)
        ]
        out = [code for code, kept in zip(out, keep, strict=True) if kept]
        origin = [o for o, kept in zip(origin, keep, strict=True) if kept]
    if Normalization.NUMERALS in steps:
        numeric = [_is_digit(code) or chr(code) in _CHINESE_DIGITS for code in out]
        for i, code in enumerate(out):
            value = _CHINESE_DIGITS.get(chr(code))
            if value is not None and ((i > 0 and numeric[i - 1]) or (i + 1 < len(out) and numeric[i + 1])):
                out[i] = 0x30 + value
    if Normalization.REPEAT in steps:
        keep = [i == 0 or out[i] != out[i - 1] for i in range(len(out))]
        out = [code for code, kept in zip(out, keep, strict=True) if kept]
        origin = [o for o, kept in zip(origin, keep, strict=True) if kept]
    if stage2:
        mapping = _stage2_map(stage2)
        out2: list[int] = []
        origin2: list[int] = []
        for code, o in zip(out, origin, strict=True):
            for produced in mapping.get(code, chr(code)):
                out2.append(ord(produced))
                origin2.append(o)
        out, origin = out2, origin2
    return out, origin


def _is_digit(code: int) -> bool:
    return 0x30 <= code <= 0x39


# ---------------------------------------------------------------------------------------------------
# Context passes (vectorised; each looks at a character's neighbours in the stage-1 output)

_IS_DIGIT: Final = np.zeros(_N_CODEPOINTS, dtype=np.bool_)
_IS_DIGIT[0x30:0x3A] = True
_CN_VALUE: Final = np.full(_N_CODEPOINTS, 255, dtype=np.uint8)
for _ch, _value in _CHINESE_DIGITS.items():
    _CN_VALUE[ord(_ch)] = _value
_freeze(_IS_DIGIT, _CN_VALUE)


def _digit_separators(out: CodeArray, origin: IntArray) -> tuple[CodeArray, IntArray]:
    """Drop each ``.`` and ``,`` kept by the table unless it sits between two ASCII digits."""
    candidates = np.flatnonzero((out == 0x2E) | (out == 0x2C))
    if not candidates.size:
        return out, origin
    n = len(out)
    before = np.zeros(candidates.size, dtype=np.bool_)
    after = np.zeros(candidates.size, dtype=np.bool_)
    has_before = candidates > 0
    has_after = candidates < n - 1
    before[has_before] = _IS_DIGIT[out[candidates[has_before] - 1]]
    after[has_after] = _IS_DIGIT[out[candidates[has_after] + 1]]
    drop = candidates[~(before & after)]
    if not drop.size:
        return out, origin
    keep = np.ones(n, dtype=np.bool_)
    keep[drop] = False
    return out[keep], origin[keep]


def _chinese_numerals(out: CodeArray) -> CodeArray:
    """Chinese digits in a run of two or more digits (of any kind) become ASCII digits."""
    values = _CN_VALUE[out]
    chinese = values != 255
    if not chinese.any():
        return out
    numeric = chinese | _IS_DIGIT[out]
    neighbour = np.zeros(len(out), dtype=np.bool_)
    neighbour[1:] |= numeric[:-1]
    neighbour[:-1] |= numeric[1:]
    convert = chinese & neighbour
    if not convert.any():
        return out
    result = out.copy()
    result[convert] = 0x30 + values[convert].astype(np.uint32)
    return result


def _collapse_repeats(out: CodeArray, origin: IntArray) -> tuple[CodeArray, IntArray]:
    """A run of the same character becomes its first (a match's original span starts at a run's
    first character and ends at the first character of its last run)."""
    if len(out) < 2:
        return out, origin
    keep = np.ones(len(out), dtype=np.bool_)
    keep[1:] = out[1:] != out[:-1]
    if keep.all():
        return out, origin
    return out[keep], origin[keep]
