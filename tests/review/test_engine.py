"""The review engine: verdict order, policy, masking at original offsets, the JSON form, sinks, swap,
images and videos, bad input; the library file loader and the bundled sample library."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from synthguard.config import Settings
from synthguard.errors import ConfigError, CorruptMediaError, MediaError, UnsupportedFormatError, UsageError
from synthguard.review import library_loader
from synthguard.review.engine import (
    CompiledLibrary,
    DecisionSink,
    ImageDecision,
    ListSink,
    NullSink,
    Reviewer,
    ReviewPolicy,
    TextDecision,
    Verdict,
    VideoDecision,
)
from synthguard.review.hash_index import MatchStatus
from synthguard.review.images import Dihedral, hash_image
from synthguard.review.keywords import Action, KeywordEntry
from synthguard.review.normalize import MAX_INPUT_BYTES, Normalization
from synthguard.review.risks import RiskCategory
from synthguard.review.rumors import RefutationNotice, RumorEntry, RumorIndex
from synthguard.review.video import hash_video_frames

PDQ = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"
BRIDGE = PDQ / "dih" / "bridge-1-original.jpg"
BRIDGE_ROTATED = PDQ / "dih" / "bridge-2-rotate-90.jpg"
R = RiskCategory
CLAIM = "本市自来水厂检测出致癌物质超标，市民近期千万不要直接饮用自来水，请转告家人"
NOTICE = RefutationNotice("n1", "自来水检测合格", "https://example.org/n1", "2025-01-15")
TOP_KEYS = {"verdict", "matches", "masked"}
MATCH_KEYS = {"term", "category", "action", "start", "end"}
HEAD = '{"format": "synthguard-library/1", '


def keywords() -> list[KeywordEntry]:
    return [
        KeywordEntry("blk", "黄片", R.A1_6, Action.BLOCK),
        KeywordEntry("allow", "三黄片", R.A1_6, Action.ALLOW),
        KeywordEntry("rev", "赌博网站", R.A1_8, Action.REVIEW),
        KeywordEntry("msk", "傻逼", R.A1_6, Action.MASK),
        KeywordEntry("msk-en", "shit", R.A1_6, Action.MASK),
        KeywordEntry(
            "hom",
            "操你妈",
            R.A1_6,
            Action.MASK,
            frozenset(Normalization) - {Normalization.PINYIN, Normalization.INITIALS, Normalization.REPEAT},
        ),
    ]


@pytest.fixture(scope="module")
def library() -> CompiledLibrary:
    return CompiledLibrary.build(
        "test-v1",
        keywords=keywords(),
        images=[("bridge", hash_image(BRIDGE))],
        rumors=[RumorEntry("tap", CLAIM, NOTICE)],
    )


@pytest.fixture
def reviewer(library: CompiledLibrary) -> Reviewer:
    return Reviewer(library)


# -- verdicts and policy -------------------------------------------------------------------------


def test_verdicts_are_ordered_by_severity() -> None:
    assert Verdict.ALLOW < Verdict.MASK < Verdict.REVIEW < Verdict.BLOCK
    assert sorted([Verdict.BLOCK, Verdict.ALLOW, Verdict.REVIEW, Verdict.MASK]) == list(Verdict)
    assert Verdict.worst([]) is Verdict.ALLOW
    assert Verdict.worst([Verdict.MASK, Verdict.REVIEW, Verdict.MASK]) is Verdict.REVIEW
    assert max(Verdict) is Verdict.BLOCK and Verdict.BLOCK >= Verdict.BLOCK
    assert [v.value for v in Verdict] == ["allow", "mask", "review", "block"]
    assert {Verdict.MASK: 1}[Verdict("mask")] == 1
    with pytest.raises(TypeError):
        _ = Verdict.MASK < "block"  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("今天天气很好", Verdict.ALLOW),
        ("三黄片是一种药", Verdict.ALLOW),
        ("你这个傻逼", Verdict.MASK),
        ("这是赌博网站，你这个傻逼", Verdict.REVIEW),
        ("他在看黄片，这是赌博网站，傻逼", Verdict.BLOCK),
        ("网传：" + CLAIM, Verdict.REVIEW),
        ("网传：" + CLAIM + "。傻逼", Verdict.REVIEW),
        ("网传：" + CLAIM + "。黄片", Verdict.BLOCK),
    ],
)
def test_the_most_severe_match_decides(reviewer: Reviewer, text: str, verdict: Verdict) -> None:
    assert reviewer.review_text(text).verdict is verdict


def test_policy_maps_actions_to_verdicts(library: CompiledLibrary) -> None:
    strict = ReviewPolicy(
        keyword_verdicts={
            Action.BLOCK: Verdict.BLOCK,
            Action.REVIEW: Verdict.BLOCK,
            Action.MASK: Verdict.REVIEW,
        },
        rumor=Verdict.BLOCK,
    )
    reviewer = Reviewer(dataclasses.replace(library, policy=strict))
    assert reviewer.review_text("你这个傻逼").verdict is Verdict.REVIEW
    assert reviewer.review_text("赌博网站").verdict is Verdict.BLOCK
    decision = reviewer.review_text(CLAIM)
    assert decision.verdict is Verdict.BLOCK and decision.masked == "*" * len(CLAIM)
    with pytest.raises(ConfigError, match="mask"):
        ReviewPolicy(keyword_verdicts={Action.BLOCK: Verdict.BLOCK, Action.REVIEW: Verdict.REVIEW})
    with pytest.raises(ConfigError):
        ReviewPolicy(mask_char="**")
    with pytest.raises(ConfigError):
        ReviewPolicy(rumor_threshold=0)
    with pytest.raises(ConfigError):
        ReviewPolicy(rumor="review")  # type: ignore[arg-type]
    mapping = ReviewPolicy().keyword_verdicts
    with pytest.raises(TypeError):
        mapping[Action.MASK] = Verdict.BLOCK  # type: ignore[index]


def test_rumor_threshold_and_image_config_come_from_the_policy() -> None:
    policy = ReviewPolicy(rumor_threshold=0.9)
    library = CompiledLibrary.build("p", rumors=[RumorEntry("tap", CLAIM, NOTICE)], policy=policy)
    assert library.rumors.threshold == 0.9
    assert Reviewer(library).review_text("据说" + CLAIM.replace("市民", "居民")).verdict is Verdict.ALLOW


# -- masking and offsets -------------------------------------------------------------------------


def test_mask_only_mask_matches_unless_blocked(reviewer: Reviewer) -> None:
    text = "你这个傻逼，shit！赌博网站"
    decision = reviewer.review_text(text)
    assert decision.verdict is Verdict.REVIEW
    assert decision.masked == "你这个**，****！赌博网站"
    blocked = reviewer.review_text(text + "，黄片")
    assert blocked.verdict is Verdict.BLOCK
    assert blocked.masked == "你这个**，****！****，**"
    rumor_blocked = reviewer.review_text(CLAIM + "。黄片")
    assert rumor_blocked.masked == "*" * len(CLAIM) + "。**"


def test_masking_multibyte_text_at_original_offsets(reviewer: Reviewer) -> None:
    # Astral emoji, a combining accent, full-width and traditional forms, symbols inside the word.
    text = "😀é（傻😀逼）ｓｈｉｔ🎉 黃 片！e\u0301 草泥马🙂"
    decision = reviewer.review_text(text)
    assert decision.verdict is Verdict.BLOCK
    spans = {m.entry_id: text[m.start : m.end] for m in decision.keyword_matches}
    assert spans == {"msk": "傻😀逼", "msk-en": "ｓｈｉｔ", "blk": "黃 片", "hom": "草泥马"}
    assert len(decision.masked) == len(text)
    masked_positions = {i for i, (a, b) in enumerate(zip(text, decision.masked, strict=True)) if a != b}
    expected = {i for m in decision.keyword_matches for i in range(m.start, m.end)}
    assert masked_positions == expected
    assert all(decision.masked[i] == "*" for i in expected)
    mask_only = reviewer.review_text("😀😀傻逼😀")
    assert mask_only.masked == "😀😀**😀"


def test_allow_leaves_the_text_and_bytes_are_decoded(reviewer: Reviewer) -> None:
    decision = reviewer.review_text("路口交通很好".encode())
    assert decision.verdict is Verdict.ALLOW and decision.masked == "路口交通很好" and decision.matches == ()


# -- the JSON form -------------------------------------------------------------------------------


def test_text_json_form(reviewer: Reviewer) -> None:
    text = "他说：黃 片，傻逼。" + CLAIM
    record = json.loads(json.dumps(reviewer.review_text(text).to_dict(), ensure_ascii=False))
    assert set(record) >= TOP_KEYS
    assert record["verdict"] == "block"
    assert record["library_version"] == "test-v1" and record["sample_library"] is False
    assert isinstance(record["elapsed_ms"], float) and record["elapsed_ms"] >= 0
    assert [m["kind"] for m in record["matches"]] == ["keyword", "keyword", "rumor"]
    for m in record["matches"]:
        assert set(m) >= MATCH_KEYS
        assert isinstance(m["start"], int) and isinstance(m["end"], int) and m["start"] < m["end"]
        assert m["category"] in {c.value for c in RiskCategory}
    keyword, masked_word, rumor = record["matches"]
    assert keyword == {
        "kind": "keyword",
        "entry_id": "blk",
        "term": "黄片",
        "category": "A1.6",
        "action": "block",
        "verdict": "block",
        "start": 3,
        "end": 6,
        "normalizations": ["t2s", "strip"],
    }
    assert masked_word["action"] == "mask" and masked_word["verdict"] == "mask"
    assert rumor["term"] == CLAIM and rumor["category"] == "A1.7"
    assert rumor["action"] == "review" and rumor["similarity"] == 1.0
    assert rumor["notice"] == {
        "id": "n1",
        "title": "自来水检测合格",
        "url": "https://example.org/n1",
        "published": "2025-01-15",
    }
    assert text[rumor["start"] : rumor["end"]] == CLAIM
    assert record["masked"] == "他说：" + "*" * 3 + "，**。" + "*" * len(CLAIM)


def test_empty_decision_json(reviewer: Reviewer) -> None:
    record = reviewer.review_text("").to_dict()
    assert {k: record[k] for k in TOP_KEYS} == {"verdict": "allow", "matches": [], "masked": ""}


# -- sinks and subjects --------------------------------------------------------------------------


def test_sink_gets_every_decision_with_a_match(library: CompiledLibrary) -> None:
    sink = ListSink()
    reviewer = Reviewer(library, sink=sink)
    assert isinstance(sink, DecisionSink) and isinstance(NullSink(), DecisionSink)
    reviewer.review_text("今天天气很好")
    reviewer.review_image(BRIDGE_ROTATED)
    hit = reviewer.review_text("黄片")
    reviewer.review_text("傻逼", subject="prompt-42")
    assert len(sink) == 3
    (s1, d1), (s2, d2), (s3, d3) = sink.records
    assert isinstance(d1, ImageDecision) and s1 == str(BRIDGE_ROTATED)
    assert d2 is hit and s2 == "text:sha256:" + hashlib.sha256("黄片".encode()).hexdigest()
    assert isinstance(d3, TextDecision) and s3 == "prompt-42"


def test_a_failing_sink_is_not_swallowed(library: CompiledLibrary) -> None:
    class Broken:
        def record(self, decision: object, *, subject: str) -> None:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        Reviewer(library, sink=Broken()).review_text("黄片")  # type: ignore[arg-type]


# -- swapping the library ------------------------------------------------------------------------


class SlowRumors(RumorIndex):
    """A rumor index that waits in ``match`` until told to go on."""

    __slots__ = ()
    started = threading.Event()
    go_on = threading.Event()

    def match(self, text: str | bytes) -> list:  # type: ignore[type-arg]
        SlowRumors.started.set()
        assert SlowRumors.go_on.wait(10)
        return super().match(text)


def test_swap_is_atomic_and_reviews_in_progress_keep_their_library(library: CompiledLibrary) -> None:
    old = dataclasses.replace(library, rumors=SlowRumors.build([RumorEntry("tap", CLAIM, NOTICE)]))
    new = CompiledLibrary.build("test-v2", keywords=[KeywordEntry("other", "天气", R.A5_1, Action.REVIEW)])
    reviewer = Reviewer(old)
    results: list[TextDecision] = []
    worker = threading.Thread(target=lambda: results.append(reviewer.review_text("黄片，天气很好")))
    worker.start()
    assert SlowRumors.started.wait(10)
    assert reviewer.swap(new) is old
    assert reviewer.library is new
    after = reviewer.review_text("黄片，天气很好")  # a review that starts after the swap
    SlowRumors.go_on.set()
    worker.join(10)
    (during,) = results
    assert (during.library_version, during.verdict) == ("test-v1", Verdict.BLOCK)
    assert (after.library_version, after.verdict) == ("test-v2", Verdict.REVIEW)
    with pytest.raises(UsageError):
        reviewer.swap("not a library")  # type: ignore[arg-type]


def test_concurrent_reviews_while_swapping(library: CompiledLibrary) -> None:
    other = CompiledLibrary.build("test-v2")
    reviewer = Reviewer(library)
    seen: list[tuple[str, Verdict]] = []
    stop = threading.Event()

    def review() -> None:
        while not stop.is_set():
            decision = reviewer.review_text("黄片")
            seen.append((decision.library_version, decision.verdict))

    threads = [threading.Thread(target=review) for _ in range(3)]
    for thread in threads:
        thread.start()
    for k in range(50):
        reviewer.swap(other if k % 2 else library)
        time.sleep(0.001)
    stop.set()
    for thread in threads:
        thread.join(10)
    # Each decision is consistent with one library: never the verdict of one with the version of the other.
    assert set(seen) <= {("test-v1", Verdict.BLOCK), ("test-v2", Verdict.ALLOW)}


def test_library_is_immutable_and_checked(library: CompiledLibrary) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        library.version = "x"  # type: ignore[misc]
    with pytest.raises(UsageError):
        CompiledLibrary("", library.keywords, library.images, library.rumors)
    with pytest.raises(UsageError):
        CompiledLibrary("v", library.keywords, library.images, None)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Reviewer("library")  # type: ignore[arg-type]
    assert library.size == len(keywords()) + 1 + 1


# -- images and videos ---------------------------------------------------------------------------


def test_image_match_in_any_rotation(reviewer: Reviewer) -> None:
    decision = reviewer.review_image(BRIDGE_ROTATED)
    assert decision.verdict is Verdict.BLOCK and decision.status is MatchStatus.MATCH
    (m,) = decision.matches
    assert m.entry_id == "bridge" and m.variant is Dihedral.ROTATE_270 and m.distance <= 31
    record = json.loads(json.dumps(decision.to_dict()))
    assert record["matches"] == [
        {
            "kind": "image",
            "entry_id": "bridge",
            "action": "block",
            "verdict": "block",
            "distance": m.distance,
            "variant": "rotate-270",
        }
    ]
    assert record["status"] == "match" and len(record["hash"]) == 64 and record["quality"] >= 50
    assert reviewer.review_image(BRIDGE.read_bytes()).matches[0].distance == 0


def test_image_without_match_and_low_quality(reviewer: Reviewer) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    decision = reviewer.review_image(Image.fromarray(noise))
    assert (decision.verdict, decision.status, decision.matches) == (Verdict.ALLOW, MatchStatus.NO_MATCH, ())
    flat = reviewer.review_image(Image.new("RGB", (64, 64), (120, 120, 120)))
    assert flat.verdict is Verdict.ALLOW and flat.status is MatchStatus.LOW_QUALITY
    assert "not matched" in flat.note
    strict = Reviewer(
        dataclasses.replace(reviewer.library, policy=ReviewPolicy(low_quality_image=Verdict.REVIEW))
    )
    assert strict.review_image(Image.new("RGB", (64, 64))).verdict is Verdict.REVIEW


def test_bad_images_raise_typed_errors(reviewer: Reviewer, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError):
        reviewer.review_image(b"this is not an image at all")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(BRIDGE.read_bytes()[:300])
    with pytest.raises(CorruptMediaError):
        reviewer.review_image(truncated)
    with pytest.raises(MediaError, match="no such file"):
        reviewer.review_image(tmp_path / "absent.png")
    with pytest.raises(UsageError):
        reviewer.review_image(12)  # type: ignore[arg-type]


def write_video(path: Path, pictures: list[npt.NDArray[np.uint8]], seconds: int = 3, fps: int = 5) -> Path:
    height, width = pictures[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast"}
        for number in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(pictures[(number // fps) % len(pictures)], format="rgb24")
            frame.pts, frame.time_base = number, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def picture(path: Path) -> npt.NDArray[np.uint8]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((160, 96), Image.Resampling.BOX))


def test_video_frames_are_matched(reviewer: Reviewer, tmp_path: Path) -> None:
    noise = np.random.default_rng(2).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    video = write_video(tmp_path / "v.mp4", [noise, picture(BRIDGE), noise])
    sink = ListSink()
    decision = Reviewer(reviewer.library, sink=sink).review_video(video)
    assert isinstance(decision, VideoDecision)
    assert decision.verdict is Verdict.BLOCK and decision.frames == 3
    (m,) = decision.matches
    assert m.entry_id == "bridge" and m.time == pytest.approx(1.0)
    assert decision.to_dict()["matches"][0]["time"] == pytest.approx(1.0)
    assert sink.records[0][0] == str(video)
    clean = reviewer.review_video(write_video(tmp_path / "n.mp4", [noise]))
    assert clean.verdict is Verdict.ALLOW and clean.matches == ()
    flat = reviewer.review_video(write_video(tmp_path / "f.mp4", [np.full((96, 160, 3), 90, np.uint8)]))
    assert flat.verdict is Verdict.ALLOW and flat.low_quality_frames == flat.frames == 3
    assert "quality" in flat.note
    with pytest.raises(UnsupportedFormatError):
        reviewer.review_video(BRIDGE)


def test_rotated_and_mirrored_video_frames_are_matched(tmp_path: Path) -> None:
    """Frames of a known video, stored as image entries, are found in a copy whose every frame is
    turned a quarter or mirrored left to right, with the variant an image review reports."""
    with Image.open(PDQ / "bridge-mods" / "aaa-orig.jpg") as image:
        photo = np.asarray(image.convert("RGB").resize((320, 200), Image.Resampling.BOX))
    known = hash_video_frames(write_video(tmp_path / "known.mp4", [photo]))
    assert len(known) == 3 and all(len(frame.variants) == len(Dihedral) for frame in known)
    library = CompiledLibrary.build("video-v1", images=[(f"frame-{k}", f.hash) for k, f in enumerate(known)])
    reviewer = Reviewer(library)
    entries = {f"frame-{k}" for k in range(len(known))}
    for name, transform, variant in [
        ("turned", lambda p: np.rot90(p, 1), Dihedral.ROTATE_270),  # a quarter anticlockwise
        ("mirrored", np.fliplr, Dihedral.FLIP_Y),
    ]:
        changed = np.ascontiguousarray(transform(photo))
        path = write_video(tmp_path / f"{name}.mp4", [changed])
        # As decoded, no frame is near a known one: only the rotations and flips find it.
        assert all(
            library.images.query(frame.hash, dihedral=False).status is MatchStatus.NO_MATCH
            for frame in hash_video_frames(path)
        )
        decision = reviewer.review_video(path)
        assert decision.verdict is Verdict.BLOCK and decision.frames == 3, name
        assert {m.entry_id for m in decision.matches} == entries, name
        assert all(m.variant is variant and m.distance <= 16 for m in decision.matches), (name, decision)
        assert {m["variant"] for m in decision.to_dict()["matches"]} == {variant.value}
        assert reviewer.review_image(Image.fromarray(changed)).matches[0].variant is variant  # as images


# -- bad text ------------------------------------------------------------------------------------


def test_bad_text_raises_usage_error_quickly(reviewer: Reviewer) -> None:
    with pytest.raises(UsageError, match="UTF-8"):
        reviewer.review_text("黄片".encode() + b"\xc3\x28")
    with pytest.raises(UsageError, match="surrogate"):
        reviewer.review_text("黄片\udc80")
    started = time.perf_counter()
    with pytest.raises(UsageError, match="limit"):
        reviewer.review_text(b"a" * (MAX_INPUT_BYTES + 1))
    with pytest.raises(UsageError, match="limit"):
        reviewer.review_text("好" * (MAX_INPUT_BYTES // 3 + 1))
    assert time.perf_counter() - started < 30  # refused before any scanning (a bound, not a benchmark)


def test_a_text_just_under_the_limit_is_reviewed(reviewer: Reviewer) -> None:
    body = "今天天气很好，我们去公园散步吧。市民近期请注意节约用水。" * 117_000  # 9.8 MB of UTF-8
    assert len(body.encode()) < MAX_INPUT_BYTES - 1000
    text = body[:1000] + "黄片" + body[1000:] + CLAIM
    decision = reviewer.review_text(text)
    assert decision.verdict is Verdict.BLOCK
    assert [m.entry_id for m in decision.matches] == ["blk", "tap"]


# -- the library loader and the sample -----------------------------------------------------------


def test_sample_library_is_marked_and_works() -> None:
    library = library_loader.load_sample()
    assert library.sample and library.version.startswith("sample:sha256:")
    document = json.loads(
        (Path(library_loader.__file__).parent / library_loader.SAMPLE_FILE).read_text(encoding="utf-8")
    )
    assert "SAMPLE" in document["notice"] and document["format"] == library_loader.FORMAT
    assert len(document["entries"]) >= 50 and len(document["rumors"]) == 3
    assert {e["action"] for e in document["entries"]} == {"block", "review", "mask", "allow"}
    assert len({e["category"] for e in document["entries"]}) >= 5
    assert all(r["notice"]["url"] for r in document["rumors"])
    reviewer = Reviewer(library)
    assert reviewer.review_text("路口交通").verdict is Verdict.ALLOW
    assert reviewer.review_text("口交").verdict is Verdict.BLOCK
    assert reviewer.review_text("三黄片").verdict is Verdict.ALLOW
    assert reviewer.review_text("黄片").verdict is Verdict.BLOCK
    assert reviewer.review_text("草泥马").verdict is Verdict.MASK
    rumor = reviewer.review_text("据说" + document["rumors"][0]["claim"].replace("市民", "居民"))
    assert rumor.verdict is Verdict.REVIEW and rumor.rumor_matches[0].notice.url.startswith("https://")
    assert reviewer.review_text("x").to_dict()["sample_library"] is True


def test_load_prefers_a_file_then_falls_back_to_the_sample(tmp_path: Path) -> None:
    path = tmp_path / "lib.json"
    path.write_text(
        json.dumps(
            {
                "format": "synthguard-library/1",
                "entries": [{"term": "天气", "category": "A5.1", "action": "review"}],
                "rumors": [{"claim": CLAIM, "notice": NOTICE.to_dict()}],
            }
        ),
        encoding="utf-8",
    )
    settings = Settings(data_dir=str(tmp_path / "nothing-here"))
    from_file = library_loader.load(settings, path)
    assert not from_file.sample and from_file.version.startswith("file:sha256:")
    assert [e.id for e in from_file.keywords.entries] == ["k1"]
    assert [e.id for e in from_file.rumors.entries] == ["r1"]
    assert library_loader.load(settings).sample
    assert not (tmp_path / "nothing-here").exists()  # reviewing never creates a database


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[]", "JSON object"),
        ('{"format": "other"}', "format"),
        ("not json", "JSON"),
        ('{"format": "synthguard-library/1", "entries": {}}', "list"),
        (HEAD + '"entries": [{"term": "x", "category": "A9", "action": "block"}]}', r"entries\[0\].*A9"),
        (HEAD + '"entries": [{"term": "x", "category": "A1.1", "action": "ban"}]}', "unknown action"),
        (
            HEAD
            + '"entries": [{"term": "x", "category": "A1.1", "action": "block", "match": ["sideways"]}]}',
            "normalisation",
        ),
        (
            '{"format": "synthguard-library/1", "entries": [{"category": "A1.1", "action": "block"}]}',
            "'term'",
        ),
        (
            '{"format": "synthguard-library/1", "rumors": [{"claim": "本市自来水厂检测出致癌物质超标"}]}',
            "notice",
        ),
        ('{"format": "synthguard-library/1", "images": [{"pdq": "abc"}]}', r"images\[0\]"),
        (
            '{"format": "synthguard-library/1", "entries": [{"id": "a", "term": "x", "category": "A1.1", '
            '"action": "block"}, {"id": "a", "term": "y", "category": "A1.1", "action": "block"}]}',
            "duplicate",
        ),
    ],
)
def test_bad_library_files_name_the_fault(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        library_loader.load_file(path)


def test_missing_library_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        library_loader.load_file("/nonexistent/library.json")
