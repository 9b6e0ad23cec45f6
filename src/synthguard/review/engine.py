"""The review engine: a text, an image or a video against the compiled characteristics database.

A ``CompiledLibrary`` bundles the three immutable indexes (keywords, image hashes, known rumors), the
``ReviewPolicy`` that turns what they find into a ``Verdict``, and the ``version`` that names exactly
which entries were used. A ``Reviewer`` holds a reference to one: ``swap(new)`` replaces it with one
attribute assignment, and every review reads the reference once when it starts, so reviews in
progress finish on the library they started with while new ones use the new library.

>>> from synthguard.review.keywords import Action, KeywordEntry
>>> from synthguard.review.risks import RiskCategory
>>> library = CompiledLibrary.build(
...     "demo", keywords=[KeywordEntry("k1", "口交", RiskCategory.A1_6, Action.MASK)]
... )
>>> decision = Reviewer(library).review_text("他说 口 交 了")
>>> decision.verdict, decision.masked
(<Verdict.MASK: 'mask'>, '他说 *** 了')

Verdicts are ordered by severity (``ALLOW < MASK < REVIEW < BLOCK``); a decision's verdict is the
most severe of its matches' verdicts (``ALLOW`` without matches):

- a keyword match: the verdict its entry's ``Action`` maps to in ``ReviewPolicy.keyword_verdicts``
  (block, review (human review), mask; allow-list entries are never reported, they shadow);
- a known rumor: ``ReviewPolicy.rumor`` (default review: a person decides, and points to the notice);
- an image (or a video frame) within the Hamming distance of a known hash: ``ReviewPolicy.image``
  (default block); an image of too little structure to match on (PDQ quality below the gate):
  ``ReviewPolicy.low_quality_image`` (default allow) with a note saying it was not matched.

``masked`` is the text with the spans of every match whose verdict is mask replaced by
``ReviewPolicy.mask_char`` (one per character, so offsets stay valid); when the verdict is block,
every match's span is masked. Offsets are Unicode code points of the original text (Python ``str``
indices; a JavaScript client counting UTF-16 units must convert for characters beyond the BMP).

Every decision with at least one match is passed to the reviewer's ``DecisionSink``
(``record(decision, *, subject=...)``) for the records of Art. 10; the ``subject`` names what was
reviewed without holding it (a path, or the SHA-256 of a text's or an image's bytes). An exception
from the sink propagates: a caller that must keep records learns that it could not.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import os
import threading
import time
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol, TypeAlias, runtime_checkable

from PIL import Image

from synthguard.errors import ConfigError, UsageError
from synthguard.review.hash_index import HashIndex, HashMatch, MatchStatus
from synthguard.review.images import (
    DEFAULT_IMAGE_CONFIG,
    Dihedral,
    ImageReviewConfig,
    ImageSource,
    PdqHash,
    dihedral_hashes,
)
from synthguard.review.keywords import Action, KeywordEntry, KeywordIndex, Match
from synthguard.review.normalize import coerce_text
from synthguard.review.rumors import RumorEntry, RumorIndex, RumorMatch

__all__ = [
    "DEFAULT_RUMOR_THRESHOLD",
    "CompiledLibrary",
    "Decision",
    "DecisionSink",
    "FrameMatch",
    "ImageDecision",
    "ListSink",
    "MatchKind",
    "NullSink",
    "ReviewPolicy",
    "Reviewer",
    "TextDecision",
    "Verdict",
    "VideoDecision",
]

#: The default Jaccard threshold of rumor matching (``rumors`` module docstring: how it was chosen).
DEFAULT_RUMOR_THRESHOLD: Final = 0.4


@functools.total_ordering
class Verdict(enum.Enum):
    """What to do with the content. Values are stable (stored, printed, exchanged); members compare
    by severity: ``ALLOW < MASK < REVIEW < BLOCK``."""

    ALLOW = "allow"
    MASK = "mask"
    REVIEW = "review"  # hold for human review
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return _SEVERITY[self] < _SEVERITY[other]

    @classmethod
    def worst(cls, verdicts: Iterable[Verdict]) -> Verdict:
        """The most severe of ``verdicts`` (``ALLOW`` for none)."""
        return max(verdicts, default=cls.ALLOW)


_SEVERITY: Final = {Verdict.ALLOW: 0, Verdict.MASK: 1, Verdict.REVIEW: 2, Verdict.BLOCK: 3}


class MatchKind(enum.Enum):
    """Which index a match came from (the ``kind`` of a match in JSON)."""

    KEYWORD = "keyword"
    RUMOR = "rumor"
    IMAGE = "image"


def _default_keyword_verdicts() -> Mapping[Action, Verdict]:
    return types.MappingProxyType(
        {Action.BLOCK: Verdict.BLOCK, Action.REVIEW: Verdict.REVIEW, Action.MASK: Verdict.MASK}
    )


@dataclasses.dataclass(frozen=True)
class ReviewPolicy:
    """How matches become verdicts, and the settings the indexes are built with.

    ``keyword_verdicts`` maps each reported keyword ``Action`` to a verdict (an action missing from
    it raises ``ConfigError``); allow-list entries are never reported. ``image`` is the image
    configuration (Hamming distance, quality gate, pixel limit) and ``rumor_threshold`` the Jaccard
    threshold of rumor matching, both used when a library is built.
    """

    keyword_verdicts: Mapping[Action, Verdict] = dataclasses.field(default_factory=_default_keyword_verdicts)
    rumor: Verdict = Verdict.REVIEW
    image: ImageReviewConfig = DEFAULT_IMAGE_CONFIG
    image_match: Verdict = Verdict.BLOCK
    low_quality_image: Verdict = Verdict.ALLOW
    rumor_threshold: float = DEFAULT_RUMOR_THRESHOLD
    mask_char: str = "*"

    def __post_init__(self) -> None:
        verdicts = dict(self.keyword_verdicts)
        for action in (Action.BLOCK, Action.REVIEW, Action.MASK):
            if not isinstance(verdicts.get(action), Verdict):
                raise ConfigError(f"review policy: no verdict for keyword action {action.value!r}")
        for name in ("rumor", "image_match", "low_quality_image"):
            if not isinstance(getattr(self, name), Verdict):
                raise ConfigError(f"review policy: {name} must be a Verdict")
        if not isinstance(self.mask_char, str) or len(self.mask_char) != 1:
            raise ConfigError("review policy: mask_char must be one character")
        if not 0 < self.rumor_threshold <= 1:
            raise ConfigError(f"review policy: rumor_threshold must be in (0, 1], got {self.rumor_threshold}")
        # A read-only copy: the policy cannot change after it was checked.
        object.__setattr__(self, "keyword_verdicts", types.MappingProxyType(verdicts))

    def keyword_verdict(self, action: Action) -> Verdict:
        try:
            return self.keyword_verdicts[action]
        except KeyError:
            raise ConfigError(f"review policy: no verdict for keyword action {action.value!r}") from None


@dataclasses.dataclass(frozen=True, eq=False)
class CompiledLibrary:
    """The compiled characteristics database a ``Reviewer`` uses; immutable.

    ``version`` names exactly the entries compiled (a snapshot id or a digest); ``sample`` is true for
    the bundled sample library, which is for trying the tool only: decisions made with it say so.
    """

    version: str
    keywords: KeywordIndex
    images: HashIndex
    rumors: RumorIndex
    policy: ReviewPolicy = dataclasses.field(default_factory=ReviewPolicy)
    sample: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version:
            raise UsageError("a compiled library needs a non-empty version")
        for name, kind in (("keywords", KeywordIndex), ("images", HashIndex), ("rumors", RumorIndex)):
            if not isinstance(getattr(self, name), kind):
                raise UsageError(f"compiled library: {name} must be a {kind.__name__}")

    @classmethod
    def build(
        cls,
        version: str,
        *,
        keywords: Iterable[KeywordEntry] = (),
        images: Iterable[tuple[str, PdqHash]] = (),
        rumors: Iterable[RumorEntry] = (),
        policy: ReviewPolicy | None = None,
        sample: bool = False,
    ) -> CompiledLibrary:
        """Compile entries into a library (the image config and rumor threshold from ``policy``)."""
        chosen = policy or ReviewPolicy()
        return cls(
            version=version,
            keywords=KeywordIndex.build(keywords),
            images=HashIndex.build(images, config=chosen.image),
            rumors=RumorIndex.build(rumors, threshold=chosen.rumor_threshold),
            policy=chosen,
            sample=sample,
        )

    @property
    def size(self) -> int:
        """Entries in all three indexes (trusted image hashes only)."""
        return len(self.keywords) + len(self.images) + len(self.rumors)


# -- decisions -----------------------------------------------------------------------------------


def _keyword_dict(match: Match, verdict: Verdict) -> dict[str, Any]:
    return {
        "kind": MatchKind.KEYWORD.value,
        "entry_id": match.entry_id,
        "term": match.term,
        "category": match.category.value,
        "action": match.action.value,
        "verdict": verdict.value,
        "start": match.start,
        "end": match.end,
        "normalizations": [step.value for step in match.normalizations],
    }


def _rumor_dict(match: RumorMatch, verdict: Verdict) -> dict[str, Any]:
    return {
        "kind": MatchKind.RUMOR.value,
        "entry_id": match.entry_id,
        "term": match.claim,
        "category": match.category.value,
        "action": verdict.value,
        "verdict": verdict.value,
        "start": match.start,
        "end": match.end,
        "similarity": match.similarity,
        "notice": match.notice.to_dict(),
    }


def _image_dict(match: HashMatch, verdict: Verdict) -> dict[str, Any]:
    return {
        "kind": MatchKind.IMAGE.value,
        "entry_id": match.entry_id,
        "action": verdict.value,
        "verdict": verdict.value,
        "distance": match.distance,
        "variant": match.variant.value,
    }


@dataclasses.dataclass(frozen=True)
class TextDecision:
    """The review of one text.

    ``keyword_matches`` and ``rumor_matches`` are at offsets of the original text; ``matches`` is
    both, ordered by start. ``to_dict()`` is the JSON contract of ``synthguard review text --json``:
    ``verdict``, ``matches`` (each with ``term``, ``category``, ``action``, ``start``, ``end``, and
    ``kind``, ``entry_id``, ``verdict``; keyword matches add ``normalizations``, rumor matches
    ``similarity`` and ``notice``), ``masked``, and ``library_version``, ``sample_library``,
    ``elapsed_ms``.
    """

    verdict: Verdict
    keyword_matches: tuple[Match, ...]
    rumor_matches: tuple[RumorMatch, ...]
    masked: str
    library_version: str
    elapsed_ms: float
    policy: ReviewPolicy = dataclasses.field(default_factory=ReviewPolicy, repr=False, compare=False)
    sample_library: bool = False

    @property
    def matches(self) -> tuple[Match | RumorMatch, ...]:
        """Keyword and rumor matches, by start, end, then keywords first."""
        both: list[Match | RumorMatch] = [*self.keyword_matches, *self.rumor_matches]
        return tuple(sorted(both, key=lambda m: (m.start, m.end, isinstance(m, RumorMatch))))

    def verdict_of(self, match: Match | RumorMatch) -> Verdict:
        """The verdict one match calls for under the decision's policy."""
        if isinstance(match, RumorMatch):
            return self.policy.rumor
        return self.policy.keyword_verdict(match.action)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "matches": [
                _rumor_dict(m, self.verdict_of(m))
                if isinstance(m, RumorMatch)
                else _keyword_dict(m, self.verdict_of(m))
                for m in self.matches
            ],
            "masked": self.masked,
            "library_version": self.library_version,
            "sample_library": self.sample_library,
            "elapsed_ms": self.elapsed_ms,
        }


@dataclasses.dataclass(frozen=True)
class ImageDecision:
    """The review of one image: the hash query's ``status`` (match, no-match, low-quality), the
    image's hash and quality, the entries within the distance (nearest first), and a ``note`` when
    the image could not be matched. ``to_dict()`` is the JSON of ``synthguard review image --json``."""

    verdict: Verdict
    status: MatchStatus
    matches: tuple[HashMatch, ...]
    hash: PdqHash
    max_distance: int
    library_version: str
    elapsed_ms: float
    note: str = ""
    sample_library: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "status": self.status.value,
            "matches": [_image_dict(m, self.verdict) for m in self.matches],
            "hash": self.hash.hex,
            "quality": self.hash.quality,
            "max_distance": self.max_distance,
            "note": self.note,
            "library_version": self.library_version,
            "sample_library": self.sample_library,
            "elapsed_ms": self.elapsed_ms,
        }


@dataclasses.dataclass(frozen=True)
class FrameMatch:
    """A known image found in a video: the entry, its best distance, the variant, and the time (s)
    of the frame where it was nearest."""

    entry_id: str
    distance: int
    variant: Dihedral
    time: float


@dataclasses.dataclass(frozen=True)
class VideoDecision:
    """The review of a video's sampled frames: one ``FrameMatch`` per entry found (its nearest
    frame), how many frames were hashed, and how many were below the quality gate."""

    verdict: Verdict
    matches: tuple[FrameMatch, ...]
    frames: int
    low_quality_frames: int
    max_distance: int
    library_version: str
    elapsed_ms: float
    note: str = ""
    sample_library: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "matches": [
                {
                    "kind": MatchKind.IMAGE.value,
                    "entry_id": m.entry_id,
                    "action": self.verdict.value,
                    "verdict": self.verdict.value,
                    "distance": m.distance,
                    "variant": m.variant.value,
                    "time": round(m.time, 3),
                }
                for m in self.matches
            ],
            "frames": self.frames,
            "low_quality_frames": self.low_quality_frames,
            "max_distance": self.max_distance,
            "note": self.note,
            "library_version": self.library_version,
            "sample_library": self.sample_library,
            "elapsed_ms": self.elapsed_ms,
        }


#: Any decision a ``Reviewer`` makes.
Decision: TypeAlias = TextDecision | ImageDecision | VideoDecision


@runtime_checkable
class DecisionSink(Protocol):
    """Where a reviewer sends every decision with at least one match (the Art. 10 records)."""

    def record(self, decision: Decision, *, subject: str) -> None: ...


class NullSink:
    """A sink that keeps nothing."""

    def record(self, decision: Decision, *, subject: str) -> None:
        del decision, subject


class ListSink:
    """A sink that keeps ``(subject, decision)`` pairs in memory, in order (for tests and tools)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Decision]] = []
        self._lock = threading.Lock()

    def record(self, decision: Decision, *, subject: str) -> None:
        with self._lock:
            self.records.append((subject, decision))

    def __len__(self) -> int:
        return len(self.records)


# -- the reviewer --------------------------------------------------------------------------------


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _mask(text: str, spans: Iterable[tuple[int, int]], char: str) -> str:
    """``text`` with each ``[start, end)`` replaced by ``char`` per character (length unchanged)."""
    chosen = sorted(spans)
    if not chosen:
        return text
    pieces: list[str] = []
    position = 0
    for start, end in chosen:
        start = max(start, position)
        if end <= start:
            continue
        pieces.append(text[position:start])
        pieces.append(char * (end - start))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _text_subject(text: str) -> str:
    return "text:sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _image_subject(source: ImageSource) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return "image:sha256:" + hashlib.sha256(source).hexdigest()
    if isinstance(source, Image.Image):
        return f"image:pillow:{source.mode}:{source.width}x{source.height}"
    raise UsageError(f"an image source is a path, bytes or a Pillow image, not {type(source).__name__}")


class Reviewer:
    """Reviews texts, images and videos against the library it holds; thread-safe.

    ``swap(new)`` replaces the library atomically (one reference assignment) and returns the old one.
    """

    def __init__(self, library: CompiledLibrary, *, sink: DecisionSink | None = None) -> None:
        if not isinstance(library, CompiledLibrary):
            raise UsageError("a Reviewer needs a CompiledLibrary")
        self._library = library
        self.sink: DecisionSink = sink if sink is not None else NullSink()

    @property
    def library(self) -> CompiledLibrary:
        return self._library

    def swap(self, new: CompiledLibrary) -> CompiledLibrary:
        """Use ``new`` for every review that starts from now on; returns the library replaced."""
        if not isinstance(new, CompiledLibrary):
            raise UsageError("swap takes a CompiledLibrary")
        old, self._library = self._library, new
        return old

    def review_text(self, text: str | bytes, *, subject: str | None = None) -> TextDecision:
        """Keywords and known rumors in ``text`` (``str`` or UTF-8 bytes).

        Raises ``UsageError`` for invalid UTF-8, lone surrogates, or a text over the size limit
        (10 MiB of UTF-8 by default).
        """
        started = time.perf_counter()
        library = self._library  # read once: a swap during this review does not affect it
        policy = library.policy
        original = coerce_text(text)  # once, for the subject and masking; each index checks its own limit
        keyword_matches = tuple(library.keywords.scan(original))
        rumor_matches = tuple(library.rumors.match(original))
        keyword_verdicts = [policy.keyword_verdict(m.action) for m in keyword_matches]
        verdict = Verdict.worst([*keyword_verdicts, *([policy.rumor] if rumor_matches else [])])
        if verdict is Verdict.BLOCK:
            spans = [(m.start, m.end) for m in keyword_matches]
            spans.extend((m.start, m.end) for m in rumor_matches)
        else:
            spans = [
                (m.start, m.end)
                for m, v in zip(keyword_matches, keyword_verdicts, strict=True)
                if v is Verdict.MASK
            ]
            if policy.rumor is Verdict.MASK:
                spans.extend((m.start, m.end) for m in rumor_matches)
        decision = TextDecision(
            verdict=verdict,
            keyword_matches=keyword_matches,
            rumor_matches=rumor_matches,
            masked=_mask(original, spans, policy.mask_char),
            library_version=library.version,
            elapsed_ms=_elapsed_ms(started),
            policy=policy,
            sample_library=library.sample,
        )
        if keyword_matches or rumor_matches:
            self.sink.record(decision, subject=subject or _text_subject(original))
        return decision

    def review_image(self, source: ImageSource, *, subject: str | None = None) -> ImageDecision:
        """Known images near ``source`` (a path, encoded bytes or a Pillow image), in all eight
        rotations and flips. Raises ``MediaError`` and its kinds for what cannot be decoded."""
        started = time.perf_counter()
        library = self._library
        policy = library.policy
        named = subject or _image_subject(source)
        variants = dihedral_hashes(source, config=library.images.config)
        result = library.images.query(variants)
        note = ""
        if result.status is MatchStatus.MATCH:
            verdict = policy.image_match
        elif result.status is MatchStatus.LOW_QUALITY:
            verdict = policy.low_quality_image
            note = (
                f"PDQ quality {result.query.quality} is below {library.images.config.min_quality}: "
                "too little structure to match on; not matched"
            )
        else:
            verdict = Verdict.ALLOW
        decision = ImageDecision(
            verdict=verdict,
            status=result.status,
            matches=result.matches,
            hash=result.query,
            max_distance=result.max_distance,
            library_version=library.version,
            elapsed_ms=_elapsed_ms(started),
            note=note,
            sample_library=library.sample,
        )
        if decision.matches:
            self.sink.record(decision, subject=named)
        return decision

    def review_video(
        self,
        path: str | os.PathLike[str],
        *,
        every_seconds: float = 1.0,
        max_frames: int | None = None,
        subject: str | None = None,
    ) -> VideoDecision:
        """Known images in frames sampled every ``every_seconds`` (``video.hash_video_frames``: at most
        ``max_frames``, default ``video.DEFAULT_MAX_FRAMES``), each frame in all eight rotations and
        flips, as images are (a match names the variant). Low-quality frames are not matched; when every
        frame is, the verdict is ``low_quality_image`` with a note. Raises ``MediaError`` and its
        kinds for unreadable files."""
        from synthguard.review import video  # PyAV: loaded by the first video review, not at start-up

        started = time.perf_counter()
        library = self._library
        policy = library.policy
        index = library.images
        limit = video.DEFAULT_MAX_FRAMES if max_frames is None else max_frames
        frames = video.hash_video_frames(path, every_seconds, limit, config=index.config)
        best: dict[str, FrameMatch] = {}
        low = 0
        for frame in frames:
            result = index.query(frame.variants or frame.hash)
            if result.status is MatchStatus.LOW_QUALITY:
                low += 1
                continue
            for m in result.matches:
                known = best.get(m.entry_id)
                if known is None or m.distance < known.distance:
                    best[m.entry_id] = FrameMatch(m.entry_id, m.distance, m.variant, frame.time)
        matches = tuple(sorted(best.values(), key=lambda m: (m.distance, m.entry_id)))
        note = ""
        if matches:
            verdict = policy.image_match
        elif frames and low == len(frames):
            verdict = policy.low_quality_image
            note = "every sampled frame is below the PDQ quality gate: not matched"
        else:
            verdict = Verdict.ALLOW
            if not frames:
                note = "no frame could be sampled"
        decision = VideoDecision(
            verdict=verdict,
            matches=matches,
            frames=len(frames),
            low_quality_frames=low,
            max_distance=index.config.max_distance,
            library_version=library.version,
            elapsed_ms=_elapsed_ms(started),
            note=note,
            sample_library=library.sample,
        )
        if matches:
            self.sink.record(decision, subject=subject or os.fspath(Path(path)))
        return decision
