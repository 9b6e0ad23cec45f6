"""Known rumors (Deep Synthesis Provisions Art. 11): refuted claims, found again when paraphrased.

A ``RumorEntry`` is a claim that has been refuted, linked to its ``RefutationNotice`` (the published
refutation a reviewer points to). ``RumorIndex.build(entries)`` compiles them; ``match(text)`` finds
every passage of ``text`` that repeats one of the claims, even reworded, and reports it as a
``RumorMatch`` at its offsets in the ORIGINAL text, with the claim's notice.

>>> notice = RefutationNotice("n1", "Tap water is safe", "https://example.org/n1", "2025-01-02")
>>> index = RumorIndex.build([RumorEntry("r1", "本市自来水检测出致癌物质，市民千万不要饮用", notice)])
>>> text = "转发周知！市民千萬不要飲用自來水，本市自来水检测出致癌物质。今天天气很好。"
>>> [(m.entry_id, text[m.start : m.end]) for m in index.match(text)]
[('r1', '市民千萬不要飲用自來水，本市自来水检测出致癌物质')]

**Similarity.** Claims and texts are normalised alike (``RUMOR_STEPS``: NFKC, full-width, traditional
to simplified, case, symbols and spaces stripped, numerals; CJK sentence punctuation dropped too) and
seen as sets of character n-grams (``shingle`` characters, default 3). The similarity of a passage
and a claim is the Jaccard index of their n-gram sets, and a passage matches at ``threshold``
(default 0.4). Reordered clauses lose only the n-grams across a clause border; traditional
characters, full-width forms and punctuation vanish in normalisation; a synonym or a filler word
costs the n-grams it touches. Measured on the paraphrase set of the tests (reordered clauses, up to
two synonyms, a filler word or sentence, traditional characters, changed punctuation, 72 variants
of each of 5 claims), the lowest similarity of a paraphrase was 0.465 with 3-grams, while the highest
of 72 unrelated and same-topic sentences (true reports, refutations that negate the claim) was
0.345: 0.4 lies between (the 0.5 first planned lost 20 of 360 paraphrases). 2-grams separated worse
(paraphrases from 0.571, same-topic sentences up to 0.489).

**Where.** The text is cut into units at sentence and clause punctuation; a unit longer than
``2 * PIECE_CHARS`` normalised characters is cut into pieces (so unpunctuated text has units too),
and a run ends with a unit of at least ``shingle - 1`` characters. The passages compared are runs of
consecutive units, of at most ``|largest claim| / threshold`` n-gram positions (a longer passage
cannot reach the threshold). A passage at the threshold with claim ``C`` shares at least
``threshold * |C|`` n-grams with it, and at least ``threshold`` times its own distinct n-grams, so
runs whose positions holding any claim's n-gram are fewer are skipped (counted with prefix sums);
so are runs that start or end with a unit holding none (the run without it is more similar to every
claim). Ordinary text that shares no n-gram with any claim costs normalisation, n-gram keys and one
sorted lookup per position.

**Candidates: MinHash and LSH.** Signatures of ``num_perm`` (128) 32-bit hash functions
(multiply-shift over a splitmix64-mixed n-gram key), computed with numpy: the n-grams of a stretch of
text are hashed once, a unit's minima come from one ``reduceat``, and a run's signature is a range
minimum over its units (a sparse table), so each run costs O(num_perm). (datasketch's ``MinHash``
hashes each n-gram with SHA-1 in Python: 0.45 ms for one passage of 40 n-grams, against 0.11 ms here
even when hashing every passage from scratch; it also needs scipy.) Only n-grams some claim has are
hashed: a run's signature is then that of its shared n-grams, whose Jaccard index with each claim is
at least the run's own, so the candidates are a superset of the passages at the threshold. The
bands and rows are chosen so that a pair at the threshold is a candidate with probability at least
``LSH_RECALL`` (0.999). Every candidate is checked with its exact Jaccard index (vectorised), which is
the ``similarity`` reported.

**Reported.** For each claim, the most similar passage, then the next that does not overlap one
taken, and so on. The span is the passage widened by each neighbouring unit that holds n-grams of the
claim the passage lacks (a unit where the claim is mixed with filler can lower the similarity while
holding part of the claim), trimmed to the first and last pair of adjacent claim n-grams, and mapped
to the original text.

**Limits.** Matching is lexical: a sentence that repeats a claim's words to deny it ("the vaccine
does not contain microchips") is close to the claim, and two such sentences side by side can reach
the threshold together. That is why a rumor match calls for human review by default (the engine's
``ReviewPolicy.rumor``), with the refutation notice at hand.

**Cost** (measured on one core of a shared 2-core machine): a 2,000-character prompt of news on the
claims' own topics, 3-4 ms p50 with the 5 claims of the tests, 0.9 ms with the 3 of the sample
library, 0.4 ms (p99 2.6 ms) with 10,000 claims of random characters (built in 2 s); 10 MB of such
news without a rumor, about 5 s; text made of rumors and news half and half, about 0.3 MB/s. Memory
is bounded by blocks of ``_BLOCK_POSITIONS`` n-gram positions.
Texts over ``max_input_bytes`` (10 MiB of UTF-8 by default), invalid UTF-8 and lone surrogates raise
``UsageError``.

A ``RumorIndex`` is immutable once built: a library update builds a new one and swaps the reference.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import re
from collections.abc import Iterable
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from synthguard.errors import UsageError
from synthguard.review.normalize import (
    MAX_INPUT_BYTES,
    Normalization,
    codepoints,
    coerce_text,
    normalize_codepoints,
    normalize_terms,
)
from synthguard.review.risks import RiskCategory

__all__ = [
    "LSH_RECALL",
    "PIECE_CHARS",
    "RUMOR_STEPS",
    "RefutationNotice",
    "RumorEntry",
    "RumorIndex",
    "RumorMatch",
]

#: The normalisation of claims and texts (``repeat``, readings and homophones would merge words).
RUMOR_STEPS: Final = frozenset(
    {
        Normalization.NFKC,
        Normalization.WIDTH,
        Normalization.T2S,
        Normalization.CASE,
        Normalization.STRIP,
        Normalization.NUMERALS,
    }
)
#: Probability that a passage exactly at the threshold becomes an LSH candidate (sets bands and rows).
LSH_RECALL: Final = 0.999
#: Unpunctuated stretches are cut into units of about this many normalised characters.
PIECE_CHARS: Final = 8

_BOUNDARY_CODE: Final = 0x3002  # what ``strip`` writes for every CJK sentence punctuation mark
#: Unit borders in the original text: sentence and clause punctuation, line breaks, and the ASCII
#: marks where they do not sit inside a number (3.5, 1,000).
_SEPARATORS: Final = re.compile(r"[。｡！？!?；;…\n\r，、：﹐﹑﹒﹔﹕﹖﹗\t]+|[.,:](?!\d)")
#: Shingle positions hashed at a time (bounds the N x num_perm matrix to a few MB).
_BLOCK_POSITIONS: Final = 8192
_BASE: Final = np.uint64(0x110000)  # one more than the largest code point: exact keys up to 3 chars

U64Array = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.intp]


@dataclasses.dataclass(frozen=True)
class RefutationNotice:
    """A published refutation: what a reviewer or a user is pointed to when a claim comes back.

    ``published`` is the publication date as an ISO 8601 string (``"2025-03-01"``).
    """

    id: str
    title: str
    url: str
    published: str

    def __post_init__(self) -> None:
        for name in ("id", "title", "url", "published"):
            if not isinstance(getattr(self, name), str):
                raise UsageError(f"refutation notice: {name} must be a string")
        if not self.id:
            raise UsageError("a refutation notice needs a non-empty id")

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "url": self.url, "published": self.published}


@dataclasses.dataclass(frozen=True)
class RumorEntry:
    """A refuted claim. ``category`` defaults to A1.7 (false and harmful information)."""

    id: str
    claim: str
    refutation: RefutationNotice
    category: RiskCategory = RiskCategory.A1_7

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise UsageError("a rumor entry needs a non-empty string id")
        if not isinstance(self.claim, str) or not self.claim.strip():
            raise UsageError(f"rumor entry {self.id!r}: the claim is empty")
        if not isinstance(self.refutation, RefutationNotice):
            raise UsageError(f"rumor entry {self.id!r}: refutation must be a RefutationNotice")
        if not isinstance(self.category, RiskCategory):
            raise UsageError(f"rumor entry {self.id!r}: category must be a RiskCategory")


@dataclasses.dataclass(frozen=True)
class RumorMatch:
    """A passage repeating a known claim: ``[start, end)`` in the ORIGINAL text, ``similarity`` the
    Jaccard index of the n-gram sets of the passage and the claim (0-1)."""

    entry_id: str
    similarity: float
    start: int
    end: int
    notice: RefutationNotice
    category: RiskCategory = RiskCategory.A1_7
    claim: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class _Claims:
    """The compiled claims: n-gram sets, MinHash signatures, and the LSH table of their band keys."""

    keys: tuple[U64Array, ...]  # per entry: its sorted unique n-gram keys
    sizes: IntArray  # per entry: how many
    all_keys: U64Array  # sorted unique n-gram keys of all claims
    pairs: npt.NDArray[np.int64]  # sorted: entry * len(all_keys) + index in all_keys, per claim n-gram
    band_keys: U64Array  # sorted band keys of all claims
    band_owner: IntArray  # the entry of each band key
    min_size: int
    max_size: int


@dataclasses.dataclass(frozen=True, eq=False)
class _Scan:
    """One text being matched: per n-gram position its key, the key's index in ``all_keys`` (valid
    where ``hot``), whether some claim has it, and the previous position of the same key (-1: none);
    the units' start and end positions."""

    keys: U64Array
    key_id: IntArray
    hot: npt.NDArray[np.bool_]
    previous: IntArray
    starts: IntArray
    ends: IntArray


class _Found(NamedTuple):
    """A run at the threshold: the claim (entry index), the exact similarity, its n-gram positions."""

    owner: int
    similarity: float
    lo: int
    hi: int


class RumorIndex:
    """An immutable index of known rumors; see the module docstring."""

    __slots__ = (
        "_a",
        "_b",
        "_bands",
        "_by_id",
        "_claims",
        "_entries",
        "_max_input_bytes",
        "_rows",
        "_shingle",
        "_threshold",
    )

    _entries: tuple[RumorEntry, ...]
    _by_id: dict[str, RumorEntry]
    _claims: _Claims
    _threshold: float
    _shingle: int
    _bands: int
    _rows: int
    _a: U64Array
    _b: U64Array
    _max_input_bytes: int

    def __init__(self, **fields: object) -> None:
        # Private: use RumorIndex.build. Attributes are set once here and never again.
        for name, value in fields.items():
            object.__setattr__(self, f"_{name}", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a RumorIndex is immutable: build a new one and swap the reference")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a RumorIndex is immutable: build a new one and swap the reference")

    @classmethod
    def build(
        cls,
        entries: Iterable[RumorEntry],
        *,
        threshold: float = 0.4,
        shingle: int = 3,
        num_perm: int = 128,
        seed: int = 1,
        max_input_bytes: int = MAX_INPUT_BYTES,
    ) -> RumorIndex:
        """Compile ``entries``. Raises ``UsageError`` for duplicate ids, a claim shorter than two
        n-grams' worth of normalised characters (too short to match on), or bad parameters
        (``0 < threshold <= 1``, ``1 <= shingle <= 8``, ``8 <= num_perm <= 1024``)."""
        chosen = tuple(entries)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise UsageError(f"threshold must be a Jaccard index in (0, 1], got {threshold!r}")
        if isinstance(shingle, bool) or not isinstance(shingle, int) or not 1 <= shingle <= 8:
            raise UsageError(f"shingle must be an integer 1..8, got {shingle!r}")
        if isinstance(num_perm, bool) or not isinstance(num_perm, int) or not 8 <= num_perm <= 1024:
            raise UsageError(f"num_perm must be an integer 8..1024, got {num_perm!r}")
        if max_input_bytes < 1:
            raise UsageError("max_input_bytes must be positive")
        by_id: dict[str, RumorEntry] = {}
        for entry in chosen:
            if not isinstance(entry, RumorEntry):
                raise UsageError(f"not a RumorEntry: {entry!r}")
            if entry.id in by_id:
                raise UsageError(f"duplicate rumor entry id {entry.id!r}")
            by_id[entry.id] = entry
        rows, bands = _lsh_parameters(float(threshold), num_perm)
        rng = np.random.default_rng(seed)
        a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)  # odd multipliers
        b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        a.setflags(write=False)
        b.setflags(write=False)
        claims = _compile(chosen, shingle, bands, rows, a, b)
        return cls(
            entries=chosen,
            by_id=by_id,
            claims=claims,
            threshold=float(threshold),
            shingle=shingle,
            bands=bands,
            rows=rows,
            a=a,
            b=b,
            max_input_bytes=max_input_bytes,
        )

    @property
    def entries(self) -> tuple[RumorEntry, ...]:
        """The entries, in the order given to ``build``."""
        return self._entries

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def shingle(self) -> int:
        return self._shingle

    @property
    def lsh_bands(self) -> tuple[int, int]:
        """``(bands, rows)`` of the LSH banding."""
        return self._bands, self._rows

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, entry_id: str) -> RumorEntry:
        """The entry with ``entry_id`` (``KeyError`` when there is none)."""
        return self._by_id[entry_id]

    def similarity(self, a: str, b: str) -> float:
        """The Jaccard index of the n-gram sets of ``a`` and ``b`` as this index measures it."""
        sets = [np.unique(_shingle_keys(_normalized(codepoints(t))[0], self._shingle)) for t in (a, b)]
        union = np.union1d(sets[0], sets[1]).size
        return np.intersect1d(sets[0], sets[1], assume_unique=True).size / union if union else 0.0

    def match(self, text: str | bytes) -> list[RumorMatch]:
        """Passages of ``text`` (a ``str`` or UTF-8 bytes; offsets in characters of the decoded text)
        that repeat a known claim, sorted by start, then similarity (highest first), then entry id."""
        original = coerce_text(text, max_bytes=self._max_input_bytes)
        if not self._entries or not original:
            return []
        k = self._shingle
        norm, origin = _normalized(codepoints(original))
        if len(norm) < k:
            return []
        keys = _shingle_keys(norm, k)
        claims = self._claims
        key_id = np.searchsorted(claims.all_keys, keys)
        key_id[key_id == len(claims.all_keys)] = 0
        hot = claims.all_keys[key_id] == keys
        if not hot.any():
            return []
        starts, ends = _units(original, origin, len(norm))
        scan = _Scan(keys, key_id, hot, _previous(keys), starts, ends)
        first, last = self._windows(scan)
        found: list[_Found] = []
        hot_positions = np.flatnonzero(hot)
        for block in _blocks(first, starts):
            found.extend(self._verify(scan, hot_positions, first[block], last[block]))
        return self._report(found, scan, origin)

    # -- passages -----------------------------------------------------------------------------------

    def _windows(self, scan: _Scan) -> tuple[IntArray, IntArray]:
        """``(first, last)`` unit of every run worth comparing (sorted by first, then last).

        A run ``[i..j]`` holds the n-grams starting in ``[s_i, e_j - k]``: those starting in units
        ``i`` to ``j - 1`` (each unit's inner ones, and its tail reaching into the next units) and
        the inner ones of unit ``j``; so it must end with a unit of at least ``k - 1`` characters. A run
        at the threshold ``t`` with a claim ``C`` shares at least ``t * |C|`` and at least ``t`` times
        its own distinct n-grams with ``C``, so a run is kept only if its positions holding an n-gram
        of some claim (``hot``) number at least ``t`` times the smallest claim and ``t`` times a lower
        bound of its distinct n-grams (its positions less those repeating an n-gram seen at most
        ``longest`` positions before). And a run must start with a unit (inner and tail) and end
        with a unit (with the tail before it) that hold a hot position: without that unit the
        similarity to every claim could only be higher, so the shorter run is enough.
        """
        k = self._shingle
        t = self._threshold
        starts, ends, hot = scan.starts, scan.ends, scan.hot
        positions = len(hot)
        longest = math.ceil(self._claims.max_size / t)
        count = np.concatenate(([0], np.cumsum(hot, dtype=np.intp)))
        near = (scan.previous >= 0) & (np.arange(positions) - scan.previous <= longest)
        repeats = np.concatenate(([0], np.cumsum(near, dtype=np.intp)))
        start_hot = count[np.minimum(ends, positions)] - count[np.minimum(starts, positions)] > 0
        end_hot = (ends - k + 1 >= starts) & (
            count[np.clip(ends - k + 1, 0, positions)] - count[np.clip(starts - k + 1, 0, positions)] > 0
        )
        needed = self._claims.min_size * t - 1e-9
        firsts: list[IntArray] = [np.empty(0, dtype=np.intp)]
        lasts: list[IntArray] = [np.empty(0, dtype=np.intp)]
        first = np.flatnonzero(start_hot)
        last = first.copy()
        while first.size:
            lo, hi = starts[first], ends[last] - k + 1
            keep = hi - lo <= longest
            first, last, lo, hi = first[keep], last[keep], lo[keep], hi[keep]
            shared = count[hi] - count[lo]
            distinct = (hi - lo) - (repeats[hi] - repeats[lo])
            good = end_hot[last] & (hi > lo) & (shared >= needed) & (shared >= t * distinct - 1e-9)
            firsts.append(first[good])
            lasts.append(last[good])
            more = last + 1 < len(starts)
            first, last = first[more], last[more] + 1
        first, last = np.concatenate(firsts), np.concatenate(lasts)
        order = np.lexsort((last, first))
        return first[order], last[order]

    def _verify(self, scan: _Scan, hot_positions: IntArray, first: IntArray, last: IntArray) -> list[_Found]:
        """The runs of one block (``first`` sorted) at the threshold, with their exact similarity."""
        k = self._shingle
        claims = self._claims
        starts, ends = scan.starts, scan.ends
        u0, u1 = int(first[0]), int(last.max()) + 1
        # Only the n-grams some claim has are hashed: a run's signature is then that of its n-grams
        # shared with any claim, whose Jaccard index with each claim is at least the run's own, so the
        # LSH candidates are a superset of those at the threshold (then checked exactly).
        base = int(starts[u0])
        stop = min(int(ends[u1 - 1]), len(scan.keys))
        inside = hot_positions[np.searchsorted(hot_positions, base) : np.searchsorted(hot_positions, stop)]
        hashed = _permuted(scan.keys[inside], self._a, self._b)  # hot positions x num_perm
        # A sentinel row: a reduction starting past the last hot position has a row to start from.
        top = np.iinfo(np.uint32).max
        hashed = np.vstack([hashed, np.full((1, hashed.shape[1]), top, np.uint32)])
        # Rows 2u and 2u + 1 of ``sequence``: unit u's inner and tail minima (interleaved borders; a
        # unit shorter than an n-gram has only a tail); a range without a hot position is all
        # ``top`` (reduceat would give the next row instead).
        inner_end = np.maximum(starts[u0:u1], ends[u0:u1] - k + 1)
        borders = np.stack([starts[u0:u1], inner_end], axis=1).reshape(-1)
        at = np.searchsorted(inside, borders)
        sequence = np.minimum.reduceat(hashed, at, axis=0)
        sequence[np.flatnonzero(at[:-1] == at[1:])] = top
        # Run [i..j] is rows [2i, 2j + 1) of ``sequence``: a range minimum (sparse table).
        signatures = _range_min(sequence, 2 * (first - u0), 2 * (last - u0) + 1)
        bands = _band_keys(signatures, self._bands, self._rows).reshape(-1)
        left = np.searchsorted(claims.band_keys, bands, side="left")
        right = np.searchsorted(claims.band_keys, bands, side="right")
        hits = np.flatnonzero(right > left)
        if not hits.size:
            return []
        sizes = right[hits] - left[hits]
        runs = np.repeat(hits // self._bands, sizes)
        slots = np.repeat(left[hits] - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
        pairs = np.unique(runs * len(self._entries) + claims.band_owner[slots])
        runs, owners = np.divmod(pairs, len(self._entries))
        lo, hi = starts[first[runs]], ends[last[runs]] - k + 1
        similarity = self._jaccard(scan, lo, hi, owners)
        passed = np.flatnonzero(similarity >= self._threshold)
        return [
            _Found(*found)
            for found in zip(
                owners[passed].tolist(),
                similarity[passed].tolist(),
                lo[passed].tolist(),
                hi[passed].tolist(),
                strict=True,
            )
        ]

    def _jaccard(self, scan: _Scan, lo: IntArray, hi: IntArray, owners: IntArray) -> npt.NDArray[np.float64]:
        """The exact Jaccard index of each run's n-grams ``[lo, hi)`` and its claim, vectorised: a
        position counts once in its run if its n-gram did not occur earlier in the run."""
        claims = self._claims
        lengths = hi - lo
        offsets = np.cumsum(lengths) - lengths
        total = int(lengths.sum())
        positions = np.repeat(lo - offsets, lengths) + np.arange(total)
        new = scan.previous[positions] < np.repeat(lo, lengths)
        composite = np.repeat(owners, lengths) * len(claims.all_keys) + scan.key_id[positions]
        shared_flags = new & scan.hot[positions] & _member(composite, claims.pairs)
        distinct = np.add.reduceat(new, offsets)
        shared = np.add.reduceat(shared_flags, offsets)
        size = claims.sizes[owners]
        result: npt.NDArray[np.float64] = shared / (distinct + size - shared)
        return result

    def _report(self, found: list[_Found], scan: _Scan, origin: IntArray) -> list[RumorMatch]:
        k = self._shingle
        taken: dict[int, tuple[list[int], list[int]]] = {}
        matches: list[RumorMatch] = []
        # Best passage first; later passages of the same claim only where they do not overlap one
        # already taken (kept sorted and disjoint: only the nearest one before can overlap).
        for owner, similarity, lo, hi in sorted(found, key=lambda f: (-f.similarity, f.lo, f.hi, f.owner)):
            los, his = taken.setdefault(owner, ([], []))
            at = bisect.bisect_left(los, hi)
            if at and his[at - 1] > lo:
                continue
            los.insert(at, lo)
            his.insert(at, hi)
            first, last = self._extent(scan, owner, lo, hi)
            entry = self._entries[owner]
            matches.append(
                RumorMatch(
                    entry_id=entry.id,
                    similarity=round(similarity, 6),
                    start=int(origin[first]),
                    end=int(origin[last + k - 1]) + 1,
                    notice=entry.refutation,
                    category=entry.category,
                    claim=entry.claim,
                )
            )
        matches.sort(key=lambda m: (m.start, -m.similarity, m.entry_id))
        return matches

    def _extent(self, scan: _Scan, owner: int, lo: int, hi: int) -> tuple[int, int]:
        """The first and last position of the claim's n-grams in the passage ``[lo, hi)`` widened by
        each neighbouring unit that holds n-grams of the claim the passage lacks (the passage with
        the best similarity can leave out a unit where the claim is mixed with other words), up to
        the longest passage considered."""
        claim = self._claims.keys[owner]
        starts, ends, keys = scan.starts, scan.ends, scan.keys
        k, positions = self._shingle, len(scan.keys)
        longest = math.ceil(self._claims.max_size / self._threshold)

        def shared(stretch: U64Array) -> set[int]:
            return set(stretch[_member(stretch, claim)].tolist())

        have = shared(keys[lo:hi])
        first_unit = int(np.searchsorted(starts, lo, side="right")) - 1
        last_unit = int(np.searchsorted(starts, hi - 1, side="right")) - 1
        while first_unit > 0:
            unit = first_unit - 1  # its inner and tail n-grams
            new = shared(keys[starts[unit] : min(ends[unit], positions)]) - have
            if not new or hi - starts[unit] > longest:
                break
            have |= new
            first_unit = unit
        while last_unit + 1 < len(starts):
            unit = last_unit + 1  # the tail of the one before and its inner n-grams
            end = min(int(ends[unit]) - k + 1, positions)
            if end < starts[unit]:  # shorter than an n-gram: cannot end a passage
                break
            new = shared(keys[max(int(starts[unit]) - k + 1, 0) : end]) - have
            if not new or end - starts[first_unit] > longest:
                break
            have |= new
            last_unit = unit
        lo = int(starts[first_unit])
        member = _member(keys[lo : min(int(ends[last_unit]) - k + 1, positions)], claim)
        # The edges are claim n-grams next to another: a lone common n-gram at an edge ("the",
        # "ent" of a neighbouring word once spaces are stripped) is not part of the passage.
        paired = np.flatnonzero(member[:-1] & member[1:])
        if paired.size:
            return lo + int(paired[0]), lo + int(paired[-1]) + 1
        inside = np.flatnonzero(member)
        return lo + int(inside[0]), lo + int(inside[-1])


# ---------------------------------------------------------------------------------------------------
# Helpers


def _normalized(cps: npt.NDArray[np.uint32]) -> tuple[npt.NDArray[np.uint32], IntArray]:
    """The normalised code points and the original index of each, CJK sentence punctuation dropped."""
    out, offsets = normalize_codepoints(cps, RUMOR_STEPS)
    origin = offsets.full()
    keep = out != _BOUNDARY_CODE
    if keep.all():
        return out, origin
    return out[keep], origin[keep]


def _shingle_keys(text: npt.NDArray[np.uint32], k: int) -> U64Array:
    """One key per n-gram position: the n-gram's code points in base 0x110000 (exact for up to 3
    characters; beyond, the same polynomial wraps modulo 2**64 and is a hash)."""
    count = len(text) - k + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    wide = text.astype(np.uint64)
    keys = np.zeros(count, dtype=np.uint64)
    for i in range(k):
        keys = keys * _BASE + wide[i : i + count]
    return keys


def _previous(keys: U64Array) -> IntArray:
    """For each position, the last position before it with the same key (-1: none)."""
    order = np.argsort(keys, kind="stable")  # equal keys stay in position order
    same = keys[order[1:]] == keys[order[:-1]]
    result = np.full(len(keys), -1, dtype=np.intp)
    result[order[1:][same]] = order[:-1][same]
    return result


def _mix(x: U64Array) -> U64Array:
    """The splitmix64 finaliser: every input bit affects every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _permuted(keys: U64Array, a: U64Array, b: U64Array) -> npt.NDArray[np.uint32]:
    """``num_perm`` 32-bit hashes of each key (rows: keys): multiply-shift over a mixed key."""
    mixed = _mix(keys)
    with np.errstate(over="ignore"):
        return ((mixed[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)).astype(np.uint32)


def _band_keys(signatures: npt.NDArray[np.uint32], bands: int, rows: int) -> U64Array:
    """One 64-bit key per (signature, band): the band's values and the band's number, mixed."""
    count = len(signatures)
    parts = signatures[:, : bands * rows].reshape(count, bands, rows).astype(np.uint64)
    key = np.broadcast_to(np.arange(bands, dtype=np.uint64) + np.uint64(1), (count, bands)).copy()
    with np.errstate(over="ignore"):
        for r in range(rows):
            key = _mix(key * np.uint64(0x9E3779B97F4A7C15) ^ parts[:, :, r])
    return key


def _member(keys: npt.NDArray[np.integer], sorted_keys: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
    """Whether each of ``keys`` is in ``sorted_keys``."""
    if not sorted_keys.size:
        return np.zeros(len(keys), dtype=np.bool_)
    at = np.searchsorted(sorted_keys, keys)
    at[at == len(sorted_keys)] = 0
    result: npt.NDArray[np.bool_] = sorted_keys[at] == keys
    return result


def _compile(
    entries: tuple[RumorEntry, ...], shingle: int, bands: int, rows: int, a: U64Array, b: U64Array
) -> _Claims:
    texts = [text.replace("\u3002", "") for text in normalize_terms([e.claim for e in entries], RUMOR_STEPS)]
    claim_keys: list[U64Array] = []
    for entry, text in zip(entries, texts, strict=True):
        if len(text) < 2 * shingle:
            raise UsageError(
                f"rumor entry {entry.id!r}: the claim normalises to {len(text)} characters; "
                f"at least {2 * shingle} are needed to match it reliably"
            )
        keys = np.unique(_shingle_keys(codepoints(text), shingle))
        keys.setflags(write=False)
        claim_keys.append(keys)
    sizes = np.array([len(keys) for keys in claim_keys], dtype=np.intp)
    if not entries:
        none = np.empty(0, dtype=np.uint64)
        return _Claims((), sizes, none, np.empty(0, np.int64), none, np.empty(0, np.intp), 0, 0)
    all_keys = np.unique(np.concatenate(claim_keys))
    pairs = np.sort(
        np.concatenate(
            [owner * len(all_keys) + np.searchsorted(all_keys, keys) for owner, keys in enumerate(claim_keys)]
        ).astype(np.int64)
    )
    # Signatures of many claims at once, in groups of bounded size (keys x num_perm each).
    signatures = np.empty((len(entries), len(a)), dtype=np.uint32)
    group_start = 0
    while group_start < len(entries):
        group_end, total = group_start, 0
        while group_end < len(entries) and (total == 0 or total + sizes[group_end] <= _BLOCK_POSITIONS):
            total += int(sizes[group_end])
            group_end += 1
        group = claim_keys[group_start:group_end]
        offsets = np.cumsum([0] + [len(keys) for keys in group[:-1]])
        signatures[group_start:group_end] = np.minimum.reduceat(
            _permuted(np.concatenate(group), a, b), offsets, axis=0
        )
        group_start = group_end
    flat = _band_keys(signatures, bands, rows).reshape(-1)  # entry-major: entry e, band j at e * bands + j
    order = np.argsort(flat, kind="stable")
    band_owner = (order // bands).astype(np.intp)
    band_keys = flat[order]
    for array in (sizes, all_keys, pairs, band_keys, band_owner):
        array.setflags(write=False)
    return _Claims(
        keys=tuple(claim_keys),
        sizes=sizes,
        all_keys=all_keys,
        pairs=pairs,
        band_keys=band_keys,
        band_owner=band_owner,
        min_size=int(sizes.min()),
        max_size=int(sizes.max()),
    )


def _range_min(rows: npt.NDArray[np.uint32], a: IntArray, b: IntArray) -> npt.NDArray[np.uint32]:
    """The minimum of ``rows[a[w]:b[w]]`` for each ``w`` (``a < b``), with a sparse table: level
    ``l`` holds the minima of ``2**l`` consecutive rows, and a range is two overlapping blocks."""
    level = np.frexp((b - a).astype(np.float64))[1] - 1  # floor(log2(length)), exact
    result = np.empty((len(a), rows.shape[1]), dtype=rows.dtype)
    table = rows
    for current in range(int(level.max()) + 1):
        if current:
            half = 1 << (current - 1)
            table = np.minimum(table[:-half], table[half:])
        chosen = np.flatnonzero(level == current)
        if chosen.size:
            result[chosen] = np.minimum(table[a[chosen]], table[b[chosen] - (1 << current)])
    return result


def _blocks(first: IntArray, starts: IntArray) -> list[slice]:
    """Consecutive runs (sorted by first unit) cut where their start positions cross a multiple of
    ``_BLOCK_POSITIONS``: each block hashes a bounded stretch of the text once (a run is at most
    ``|claim| / threshold`` positions long, so that bounds the stretch too)."""
    if not first.size:
        return []
    block = starts[first] // _BLOCK_POSITIONS
    cuts = np.flatnonzero(np.diff(block)) + 1
    edges = [0, *cuts.tolist(), len(first)]
    return [slice(lo, hi) for lo, hi in itertools.pairwise(edges)]


def _lsh_parameters(threshold: float, num_perm: int) -> tuple[int, int]:
    """``(rows, bands)``: the most rows per band (fewest candidates) for which a pair at exactly
    ``threshold`` still collides in some band with probability at least ``LSH_RECALL``."""
    best = (1, num_perm)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= LSH_RECALL:
            best = (rows, bands)
    return best


def _units(original: str, origin: IntArray, n: int) -> tuple[IntArray, IntArray]:
    """``(starts, ends)`` of the units, in normalised positions (see the module docstring)."""
    borders = np.fromiter((m.end() for m in _SEPARATORS.finditer(original)), dtype=np.intp)
    # A border in the original is at the first normalised character from at or after it.
    cuts = np.searchsorted(origin, borders, side="left")
    bounds = np.unique(np.concatenate(([0], cuts, [n])))
    # Long units are cut into pieces of about PIECE_CHARS characters.
    lengths = np.diff(bounds)
    pieces = np.where(lengths > 2 * PIECE_CHARS, lengths // PIECE_CHARS, 1)
    if (pieces > 1).any():
        cuts_per_unit = pieces - 1
        total = int(cuts_per_unit.sum())
        nth = np.arange(total) - np.repeat(np.cumsum(cuts_per_unit) - cuts_per_unit, cuts_per_unit) + 1
        count = np.repeat(pieces, cuts_per_unit)
        extra = np.repeat(bounds[:-1], cuts_per_unit) + np.repeat(lengths, cuts_per_unit) * nth // count
        bounds = np.unique(np.concatenate([bounds, extra]))
    return bounds[:-1], bounds[1:]
