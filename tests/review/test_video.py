"""hash_video_frames: the right frame at each sampling point, seeking, bounds and typed errors."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from synthguard.errors import (
    CorruptMediaError,
    MediaError,
    MediaLimitError,
    UnsupportedFormatError,
    UsageError,
)
from synthguard.review import video
from synthguard.review.images import ImageReviewConfig, PdqHash, hash_pixels
from synthguard.review.video import FrameHash, hash_video_frames

PDQ = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"
FPS = 10
SECONDS = 30


@pytest.fixture(scope="module")
def pictures() -> list[npt.NDArray[np.uint8]]:
    """Eight photos whose hashes are far apart (the rotations and flips of the bridge), 320 x 200."""
    frames = []
    for path in sorted((PDQ / "dih").glob("*.jpg")):
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("RGB").resize((320, 200), Image.Resampling.BOX)))
    return frames


@pytest.fixture(scope="module")
def references(pictures: list[npt.NDArray[np.uint8]]) -> list[PdqHash]:
    return [hash_pixels(picture) for picture in pictures]


def encode(path: Path, pictures: list[npt.NDArray[np.uint8]], *, gop: int) -> Path:
    """30 s of H.264 at 10 fps: second k shows picture k mod 8; a keyframe every ``gop`` frames."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 200, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.options = {"keyint_min": str(gop), "sc_threshold": "0", "preset": "ultrafast"}
        for number in range(SECONDS * FPS):
            frame = av.VideoFrame.from_ndarray(pictures[(number // FPS) % 8], format="rgb24")
            frame.pts, frame.time_base = number, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, pictures: list[npt.NDArray[np.uint8]]) -> Path:
    return encode(tmp_path_factory.mktemp("video") / "gop1s.mp4", pictures, gop=FPS)


@pytest.fixture(scope="module")
def sparse_keyframes(tmp_path_factory: pytest.TempPathFactory, pictures: list[npt.NDArray[np.uint8]]) -> Path:
    return encode(tmp_path_factory.mktemp("video") / "gop5s.mp4", pictures, gop=5 * FPS)


def assert_right_pictures(hashes: list[FrameHash], references: list[PdqHash]) -> None:
    for shown, pdq, variants in hashes:
        assert len(variants) == 8 and variants[0] == pdq
        distances = [pdq.distance(reference) for reference in references]
        expected = int(shown + 1e-6) % 8
        assert distances.index(min(distances)) == expected and distances[expected] <= 16, (shown, distances)
        assert pdq.quality >= 50


def count_decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    decoded: list[int] = []
    original = video._decode

    def counting(*args: object) -> Iterator[av.VideoFrame]:
        for frame in original(*args):  # type: ignore[arg-type]
            decoded.append(1)
            yield frame

    monkeypatch.setattr(video, "_decode", counting)
    return decoded


def test_one_frame_a_second(clip: Path, references: list[PdqHash]) -> None:
    hashes = hash_video_frames(clip)
    assert [frame.time for frame in hashes] == pytest.approx([float(s) for s in range(SECONDS)])
    assert_right_pictures(hashes, references)


def test_sparse_sampling_seeks_instead_of_decoding_everything(
    clip: Path, references: list[PdqHash], monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = count_decoded(monkeypatch)
    hashes = hash_video_frames(clip, every_seconds=5)
    assert [frame.time for frame in hashes] == pytest.approx([0.0, 5.0, 10.0, 15.0, 20.0, 25.0])
    assert_right_pictures(hashes, references)
    # Sequential decoding would need 251 frames; seeking to the keyframe before each point needs ~6.
    assert len(decoded) < 100


@pytest.mark.parametrize("every", [1.0, 3.0, 7.5])
def test_keyframes_sparser_than_the_interval(
    sparse_keyframes: Path, references: list[PdqHash], every: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeks that land behind the current frame must not loop or repeat work: still one pass."""
    decoded = count_decoded(monkeypatch)
    hashes = hash_video_frames(sparse_keyframes, every_seconds=every)
    expected = [every * k for k in range(int((SECONDS - 0.1) // every) + 1)]
    assert [frame.time for frame in hashes] == pytest.approx(expected)
    assert_right_pictures(hashes, references)
    assert len(decoded) <= SECONDS * FPS + 5 * FPS  # at most one group of pictures decoded twice


def test_max_frames_spreads_samples_over_the_whole_video(clip: Path, references: list[PdqHash]) -> None:
    hashes = hash_video_frames(clip, every_seconds=1, max_frames=5)
    assert [frame.time for frame in hashes] == pytest.approx([0.0, 6.0, 12.0, 18.0, 24.0])
    assert_right_pictures(hashes, references)


def test_frames_carry_their_eight_rotations_and_flips(clip: Path, references: list[PdqHash]) -> None:
    """The variants are in ``Dihedral`` order: frame 0 shows the bridge as is, and its k-th variant is
    near the k-th photo (the bridge turned or mirrored that way)."""
    first = hash_video_frames(clip, max_frames=1)[0]
    assert first.time == 0.0 and first.variants[0] == first.hash
    assert len({v.quality for v in first.variants}) == 1
    for k, variant in enumerate(first.variants):
        distances = [variant.distance(reference) for reference in references]
        assert distances.index(min(distances)) == k and distances[k] <= 31, (k, distances)
    assert FrameHash(1.0, first.hash).variants == ()  # the field has a default for callers building one


def test_pixel_limit(clip: Path) -> None:
    with pytest.raises(MediaLimitError):
        hash_video_frames(clip, config=ImageReviewConfig(max_pixels=320 * 200 - 1))


def test_audio_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        samples = (np.sin(np.arange(8000) / 5) * 10000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(UnsupportedFormatError, match="without a video stream") as caught:
        hash_video_frames(path)
    assert caught.value.path == str(path)


def test_not_media(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"no video here\n" * 100)
    with pytest.raises(UnsupportedFormatError):
        hash_video_frames(path)


def test_truncated_mp4(tmp_path: Path, clip: Path) -> None:
    data = clip.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is written last: it is gone
    with pytest.raises(CorruptMediaError):
        hash_video_frames(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        hash_video_frames(tmp_path / "absent.mp4")


@pytest.mark.parametrize(("every", "max_frames"), [(0, 10), (-1, 10), (float("nan"), 10), (1, 0), (1, True)])
def test_invalid_arguments(clip: Path, every: float, max_frames: int) -> None:
    with pytest.raises(UsageError):
        hash_video_frames(clip, every_seconds=every, max_frames=max_frames)
