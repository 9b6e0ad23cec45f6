"""Visible labels on video: the opening 2 s (and end), stream parameters kept, streams copied."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthguard.config import Settings
from synthguard.errors import CorruptMediaError, UnsupportedFormatError
from synthguard.visible._h264 import AvcConfig, parameter_set_id
from synthguard.visible.apply import apply_visible_label
from synthguard.visible.video import label_video_file
from tests.conftest import require_tool

W, H, FPS, SECONDS = 320, 240, 10, 4


def _ffmpeg(*args: str) -> None:
    subprocess.run([require_tool("ffmpeg"), "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of 320x240 H.264 at 10 fps with an AAC track and a mov_text subtitle track."""
    folder = tmp_path_factory.mktemp("video")
    srt = folder / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:03,000\n字幕\n", encoding="utf-8")
    path = folder / "clip.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate={FPS}:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}",
        "-i", str(srt),
        "-map", "0:v", "-map", "1:a", "-map", "2:s",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "20",
        "-c:a", "aac", "-c:s", "mov_text",
        str(path),
    )  # fmt: skip
    return path


def _frames(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            (float(frame.pts * stream.time_base), frame.to_ndarray(format="rgb24").astype(np.int16))
            for frame in container.decode(stream)
        ]


def _packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        return [bytes(p) for p in container.demux(streams) if p.size]


def test_opening_two_seconds_are_labelled_and_the_rest_is_not(clip: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    result = label_video_file(
        clip, tmp_path / "out.mp4", Settings(), progress=lambda d, t: seen.append((d, t))
    )
    assert result.conforms and result.glyph_height_fraction is not None
    assert result.glyph_height_fraction >= 0.05
    [placement] = result.placements
    assert placement["where"] == "start" and placement["end_s"] - placement["start_s"] >= 2.0
    assert placement["frames"] == 2 * FPS
    assert [d for d, _ in seen] == list(range(1, SECONDS * FPS + 1)) and seen[-1][1] == SECONDS * FPS
    x0, y0, x1, y1 = placement["box"]
    before, after = _frames(clip), _frames(tmp_path / "out.mp4")
    assert [t for t, _ in before] == [t for t, _ in after]
    for (t, a), (_, b) in zip(before, after, strict=True):
        diff = np.abs(a - b)
        inside = diff[y0:y1, x0:x1].mean()
        outside = diff.copy()
        outside[y0:y1, x0:x1] = 0
        assert outside.sum() / (diff.size - diff[y0:y1, x0:x1].size) < 3.0  # codec tolerance only
        if t < 2.0:
            assert inside > 20, t
        else:
            assert inside < 3.0, t
    # glyph height measured on the pixels of the first labelled frame: text-coloured pixels that
    # were not there before
    a, b = before[0][1], after[0][1]
    grey_b = b[y0:y1, x0:x1].mean(axis=2)
    text_colour = 0 if placement["style"] == "dark" else 255
    ink = (np.abs(grey_b - text_colour) < 50) & (np.abs(a[y0:y1, x0:x1] - b[y0:y1, x0:x1]).max(axis=2) > 40)
    rows = np.flatnonzero(ink.sum(axis=1) >= 2)
    assert rows[-1] - rows[0] + 1 >= 0.05 * H


def test_stream_parameters_kept_and_other_streams_copied(clip: Path, tmp_path: Path) -> None:
    label_video_file(clip, tmp_path / "out.mp4", Settings())
    with av.open(str(clip)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        va, vb = a.streams.video[0], b.streams.video[0]
        assert (vb.codec_context.name, vb.width, vb.height) == (va.codec_context.name, va.width, va.height)
        assert vb.codec_context.pix_fmt == va.codec_context.pix_fmt
        assert vb.average_rate == va.average_rate
        assert vb.time_base == va.time_base
        assert vb.frames == va.frames
        assert [s.type for s in b.streams] == [s.type for s in a.streams]
    assert _packets(tmp_path / "out.mp4", "audio") == _packets(clip, "audio")
    assert _packets(tmp_path / "out.mp4", "subtitle") == _packets(clip, "subtitle")


def test_gops_after_the_label_are_copied_byte_for_byte(clip: Path, tmp_path: Path) -> None:
    result = label_video_file(clip, tmp_path / "out.mp4", Settings())
    assert result.details["method"] == "spliced"
    assert result.details["copied_frames"] == (SECONDS - 2) * FPS  # keyframes every 2 s
    source, output = _packets(clip, "video"), _packets(tmp_path / "out.mp4", "video")
    assert len(source) == len(output)
    assert output[2 * FPS :] == source[2 * FPS :]
    assert output[: 2 * FPS] != source[: 2 * FPS]
    with av.open(str(clip)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        before = AvcConfig.parse(bytes(a.streams.video[0].codec_context.extradata or b""))
        after = AvcConfig.parse(bytes(b.streams.video[0].codec_context.extradata or b""))
    # the source's parameter sets stay first; the new ones have a new id and the same profile and level
    assert after.sps[0] == before.sps[0] and after.pps[0] == before.pps[0]
    assert len(after.sps) == len(after.pps) == 2
    assert [parameter_set_id(n) for n in after.sps] == [0, 1]
    assert after.sps[1][1] == before.sps[0][1] and after.sps[1][3] == before.sps[0][3]
    # the spliced stream decodes without errors
    subprocess.run(
        [
            require_tool("ffmpeg"),
            "-v",
            "error",
            "-xerror",
            "-i",
            str(tmp_path / "out.mp4"),
            "-f",
            "null",
            "-",
        ],
        check=True,
    )


def test_middle_and_end_spans_reencode_only_their_gops(tmp_path: Path) -> None:
    src = tmp_path / "eight.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate={FPS}:duration=8",
        "-c:v", "libx264", "-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0", str(src),
    )  # fmt: skip
    settings = Settings(visible_video_where=("start", "middle", "end"))
    result = label_video_file(src, tmp_path / "out.mp4", settings)
    assert result.details["method"] == "spliced"
    assert result.details["reencoded_segments"] == [[0.0, 2.0], [3.0, 5.0], [6.0, None]]
    assert [(p["where"], p["start_s"], p["end_s"]) for p in result.placements] == [
        ("start", 0.0, 2.0),
        ("middle", 3.0, 5.0),
        ("end", 6.0, 8.0),
    ]
    assert result.details["copied_frames"] == 2 * FPS
    source, output = _packets(src, "video"), _packets(tmp_path / "out.mp4", "video")
    assert output[2 * FPS : 3 * FPS] == source[2 * FPS : 3 * FPS]
    assert output[5 * FPS : 6 * FPS] == source[5 * FPS : 6 * FPS]
    subprocess.run(
        [
            require_tool("ffmpeg"),
            "-v",
            "error",
            "-xerror",
            "-i",
            str(tmp_path / "out.mp4"),
            "-f",
            "null",
            "-",
        ],
        check=True,
    )
    times = [t for t, _ in _frames(tmp_path / "out.mp4")]
    assert times == [t for t, _ in _frames(src)]


def test_whole_stream_reencoded_when_no_keyframe_follows_the_label(tmp_path: Path) -> None:
    src = tmp_path / "one_gop.mp4"
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate={FPS}:duration=3", "-c:v", "libx264", str(src))
    result = label_video_file(src, tmp_path / "out.mp4", Settings())
    assert result.details["method"] == "re-encoded"
    assert "no closed IDR frame" in result.details["why_reencoded"]
    assert result.details["frames"] == 3 * FPS


def test_spliced_output_keeps_rotation(clip: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    _ffmpeg("-i", str(clip), "-map", "0", "-c", "copy", "-metadata:s:v", "rotate=90", str(rotated))
    result = label_video_file(rotated, tmp_path / "out.mp4", Settings())
    assert result.details["method"] == "spliced"
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert next(out.decode(video=0)).rotation == 90


def test_end_span_and_rotation(clip: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    _ffmpeg("-i", str(clip), "-map", "0", "-c", "copy", "-metadata:s:v", "rotate=90", str(rotated))
    result = label_video_file(rotated, tmp_path / "out.mp4", Settings(visible_video_where=("start", "end")))
    assert [p["where"] for p in result.placements] == ["start", "end"]
    assert result.placements[1]["end_s"] == pytest.approx(SECONDS)
    assert result.details["rotation"] == 90
    with av.open(str(tmp_path / "out.mp4")) as out:
        first = next(out.decode(video=0))
        assert first.rotation == 90
    # displayed portrait (240x320): bottom-right as shown is the stored bottom-left area
    x0, y0, x1, y1 = result.placements[0]["box"]
    assert x1 < W / 2 and y1 > H / 2 and y1 - y0 > x1 - x0


def test_video_without_video_stream(tmp_path: Path) -> None:
    audio = tmp_path / "audio.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio))
    with pytest.raises(UnsupportedFormatError, match="without a video stream"):
        label_video_file(audio, tmp_path / "out.mp4", Settings())
    assert not (tmp_path / "out.mp4").exists()


def test_corrupt_video_leaves_nothing(clip: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[:2000])
    with pytest.raises(CorruptMediaError):
        label_video_file(broken, tmp_path / "out.mp4", Settings())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_apply_dispatches_video(clip: Path, tmp_path: Path) -> None:
    result = apply_visible_label(clip, tmp_path / "out.mp4", Settings())
    assert result.modality == "video"


@pytest.mark.slow
def test_checker_reads_the_video_label(clip: Path, tmp_path: Path) -> None:
    checker = pytest.importorskip("synthguard.visible.checker")
    big = tmp_path / "big.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=0xe0e0e0:size=640x360:rate=10:duration=3", "-c:v", "libx264", str(big)
    )
    label_video_file(big, tmp_path / "out.mp4", Settings())
    report = checker.check_file(tmp_path / "out.mp4")
    assert report.found and report.conforms


@given(st.binary(max_size=80))
def test_avcc_parser_refuses_or_round_trips_any_bytes(data: bytes) -> None:
    try:
        config = AvcConfig.parse(b"\x01" + data)
    except ValueError:
        return
    assert len(config.to_bytes()) == len(data) + 1  # every byte accounted for
    assert AvcConfig.parse(config.to_bytes()) == config
