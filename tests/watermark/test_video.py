"""The video watermark: round trip with the stream kept, H.264 CRF 28, downscaling, excerpts, keys."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from synthguard.config import Settings
from synthguard.errors import CorruptMediaError, UnsupportedFormatError, UsageError
from synthguard.watermark.audio import detect_audio_file
from synthguard.watermark.video import VIDEO_SCHEME, detect_video_file, embed_video_file
from tests.conftest import require_tool
from tests.watermark.test_audio import music

PID = "00C0FFEE12345678"


def make_clip(path: Path, photo: Image.Image, size: tuple[int, int], seconds: float) -> None:
    """A panning shot over the photo with a music-like soundtrack: H.264 yuv420p 30 fps and AAC, in MP4."""
    width, height = size
    big = photo.resize((int(width * 1.4), int(height * 1.4)), Image.Resampling.BICUBIC)
    frames = round(seconds * 30)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=30, options={"crf": "18", "preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(frames):
            x = round((big.size[0] - width) * i / max(1, frames - 1))
            y = round((big.size[1] - height) * (0.5 + 0.4 * np.sin(i / 15)))
            frame = av.VideoFrame.from_image(big.crop((x, y, x + width, y + height)))
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        soundtrack = np.ascontiguousarray(music(48000, seconds, seed=7))
        for start in range(0, soundtrack.shape[1], 1024):
            chunk = np.ascontiguousarray(soundtrack[:, start : start + 1024])
            aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            aframe.sample_rate = 48000
            aframe.pts = start
            for packet in audio.encode(aframe):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def clips(
    tmp_path_factory: pytest.TempPathFactory, photo: Image.Image
) -> tuple[Path, Path, dict[str, object]]:
    folder = tmp_path_factory.mktemp("video")
    source = folder / "source.mp4"
    make_clip(source, photo, (960, 540), 6.0)  # 6 s: the soundtrack holds two whole tiles of the audio mark
    marked = folder / "marked.mp4"
    details = embed_video_file(source, marked, PID, Settings(watermark_key="test-watermark-key-0123456789"))
    return source, marked, details


def ffmpeg(*args: str) -> None:
    subprocess.run([require_tool("ffmpeg"), "-v", "error", "-y", *args], check=True)


def stream_facts(path: Path) -> tuple[int, int, str, Fraction | None, Fraction | None, int]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return (
            video.codec_context.width,
            video.codec_context.height,
            str(video.codec_context.pix_fmt),
            video.average_rate,
            video.time_base,
            len(container.streams.audio),
        )


def test_round_trip_keeps_the_stream(
    clips: tuple[Path, Path, dict[str, object]], watermark_settings: Settings
) -> None:
    source, marked, details = clips
    assert details["frames"] == 180
    assert stream_facts(marked) == stream_facts(source)
    assert details["copied_streams"] or details["marked_audio"]
    detection = detect_video_file(marked, watermark_settings)
    assert detection.found and detection.produce_id == PID
    assert detection.scheme == VIDEO_SCHEME
    assert detection.details["frames_pooled"] >= 30
    with av.open(str(source)) as a, av.open(str(marked)) as b:
        # the Y plane itself (a conversion to "gray" would stretch limited range and the error)
        first = next(a.decode(video=0)).to_ndarray()[:540].astype(np.float64)
        second = next(b.decode(video=0)).to_ndarray()[:540].astype(np.float64)
    psnr = 10 * np.log10(255**2 / np.mean((first - second) ** 2))
    assert psnr > 40  # the mark (42 dB) and the re-encoding's own loss together


def test_the_soundtrack_carries_the_audio_mark_after_aac(
    clips: tuple[Path, Path, dict[str, object]], watermark_settings: Settings
) -> None:
    source, marked, details = clips
    assert details["marked_audio"] == ["1:audio:aac"]  # re-encoded to AAC by the embedder
    heard = detect_audio_file(marked, watermark_settings)
    assert heard.found and heard.produce_id == PID
    assert not detect_audio_file(source, watermark_settings).found


def test_unmarked_and_wrong_key_find_nothing(
    clips: tuple[Path, Path, dict[str, object]], watermark_settings: Settings
) -> None:
    source, marked, _ = clips
    unmarked = detect_video_file(source, watermark_settings)
    assert not unmarked.found and unmarked.p_value >= watermark_settings.watermark_p_threshold
    other = Settings(watermark_key="some-other-watermark-key-99")
    wrong = detect_video_file(marked, other)
    assert not wrong.found and wrong.produce_id is None


@pytest.mark.parametrize(
    "attack",
    [
        ("-c:v", "libx264", "-crf", "28", "-preset", "medium"),
        ("-vf", "scale=-2:360", "-c:v", "libx264", "-crf", "23"),
        ("-ss", "0.6", "-t", "3", "-c:v", "libx264", "-crf", "23"),
        ("-vf", "hflip", "-c:v", "libx264", "-crf", "23"),
        ("-vf", "transpose=1", "-c:v", "libx264", "-crf", "23"),
        ("-vf", "scale=960:432", "-c:v", "libx264", "-crf", "23"),
        ("-vf", "rotate=5*PI/180", "-c:v", "libx264", "-crf", "23"),
    ],
    ids=["h264-crf28", "scale-two-thirds", "excerpt-3s", "mirrored", "turned", "stretched", "rotated-5"],
)
def test_survives(
    clips: tuple[Path, Path, dict[str, object]],
    watermark_settings: Settings,
    tmp_path: Path,
    attack: tuple[str, ...],
) -> None:
    _, marked, _ = clips
    out = tmp_path / "attacked.mp4"
    if attack[0] == "-ss":
        ffmpeg(*attack[:2], "-i", str(marked), *attack[2:], "-an", str(out))
    else:
        ffmpeg("-i", str(marked), *attack, "-an", str(out))
    detection = detect_video_file(out, watermark_settings)
    assert detection.found, detection.details
    assert detection.produce_id == PID


def test_errors_are_typed(
    tmp_path: Path,
    photo: Image.Image,
    clips: tuple[Path, Path, dict[str, object]],
    watermark_settings: Settings,
) -> None:
    source, _, _ = clips
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(source.read_bytes()[:3000])
    with pytest.raises(CorruptMediaError):
        embed_video_file(truncated, tmp_path / "o.mp4", PID, watermark_settings)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01 not a video at all" * 50)
    with pytest.raises(CorruptMediaError):
        detect_video_file(garbage, watermark_settings)
    audio_only = tmp_path / "tone.m4a"
    ffmpeg("-i", str(source), "-vn", "-c:a", "copy", str(audio_only))
    with pytest.raises(UnsupportedFormatError):
        detect_video_file(audio_only, watermark_settings)
    small = tmp_path / "small.mp4"
    make_clip(small, photo, (320, 180), 0.5)
    with pytest.raises(UnsupportedFormatError, match="256"):
        embed_video_file(small, tmp_path / "o.mp4", PID, watermark_settings)
    with pytest.raises(UsageError):
        embed_video_file(source, source, PID, watermark_settings)
    assert not (tmp_path / "o.mp4").exists()


def _audio_facts(path: Path) -> tuple[str, int, int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio=0))
        return stream.codec_context.name, stream.codec_context.sample_rate, stream.channels, samples / 48000


@pytest.mark.parametrize("broken", [False, True], ids=["marks-audio", "audio-module-fails"])
def test_audio_gets_the_audio_mark_when_it_exists(
    tmp_path: Path,
    photo: Image.Image,
    watermark_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    broken: bool,
) -> None:
    calls: list[tuple[tuple[int, ...], int, str]] = []

    def embed_samples(samples: np.ndarray, rate: int, produce_id: str, secret: bytes) -> np.ndarray:
        calls.append((samples.shape, rate, produce_id))
        if broken:
            raise RuntimeError("the audio mark failed")
        return samples * np.float32(0.5)

    monkeypatch.setattr("synthguard.watermark.video._audio_marker", lambda: embed_samples)
    source = tmp_path / "short.mp4"
    make_clip(source, photo, (640, 360), 1.0)
    marked = tmp_path / "marked.mp4"
    details = embed_video_file(source, marked, PID, watermark_settings)
    assert details["marked_audio"] == ["1:audio:aac"]
    assert calls and calls[0][0][0] == 2 and calls[0][1] == 48000 and calls[0][2] == PID
    assert bool(details.get("audio_errors")) is broken
    codec, rate, channels, seconds = _audio_facts(marked)
    assert (codec, rate, channels) == ("aac", 48000, 2)
    assert seconds == pytest.approx(_audio_facts(source)[3], abs=0.05)
    assert detect_video_file(marked, watermark_settings).produce_id == PID
