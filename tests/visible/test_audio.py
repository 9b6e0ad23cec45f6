"""Audible labels: the prompt is where configured, found by the checker's detector, the rest of the
audio untouched (bit-exact for PCM and FLAC), the format kept, bad input refused with nothing written."""

from __future__ import annotations

import hashlib
import subprocess
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from PIL import Image

from synthguard.config import Settings
from synthguard.errors import ConfigError, CorruptMediaError, MediaError, UnsupportedFormatError
from synthguard.visible._audio_speech_match import find_spoken_prompt
from synthguard.visible.audio import build_prompt, label_audio_file
from synthguard.visible.rhythm import RhythmSpec, find_rhythm_in_file
from synthguard.visible.speech import spoken_prompt
from tests.conftest import require_tool

RATE = 44100


def _music(seconds: float = 3.0, rate: int = RATE) -> np.ndarray:
    """Two channels of something that is not a prompt: a low drone plus noise."""
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(1)
    left = 0.2 * np.sin(2 * np.pi * 110 * t) + rng.normal(0, 0.02, t.size)
    right = 0.2 * np.sin(2 * np.pi * 165 * t) + rng.normal(0, 0.02, t.size)
    return np.stack([left, right])


def _write(path: Path, samples: np.ndarray, codec: str, fmt: str, rate: int = RATE, **tags: str) -> Path:
    """Encode (channels, n) floats with PyAV: ``fmt`` is the encoder's sample format."""
    channels = samples.shape[0]
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w") as container:
        container.metadata.update(tags)
        stream = container.add_stream(codec, rate=rate, layout=layout, format=fmt)
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        if fmt.startswith("s16"):
            data = np.round(samples * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            data = (np.round(samples * 8388607).astype(np.int32)) << 8  # 24-bit samples, as FLAC keeps
        else:
            data = samples.astype(np.float32)
        if not fmt.endswith("p"):
            data = data.T.reshape(1, -1)
        frame_size = stream.codec_context.frame_size or 4096
        step = frame_size
        total = samples.shape[1]
        for start in range(0, total, step):
            part = (
                data[:, start : start + step]
                if fmt.endswith("p")
                else data[:, start * channels : (start + step) * channels]
            )
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format=fmt, layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _decode(path: Path) -> tuple[np.ndarray, Any]:
    """(channels, n) samples in the file's own sample format, and the stream's codec context."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        blocks = []
        for frame in container.decode(stream):
            array = frame.to_ndarray()
            if not frame.format.is_planar:
                array = array.reshape(-1, stream.codec_context.channels).T
            blocks.append(array)
        return np.concatenate(blocks, axis=1), stream.codec_context


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def wav16(tmp_path: Path) -> Path:
    return _write(tmp_path / "in.wav", _music(), "pcm_s16le", "s16")


def test_rhythm_at_start_middle_and_end_rest_bit_exact(tmp_path: Path, wav16: Path) -> None:
    settings = Settings(visible_audio_where=("end", "start", "middle"))
    before = _digest(wav16)
    out = tmp_path / "out.wav"
    result = label_audio_file(wav16, out, settings)
    assert _digest(wav16) == before
    assert result.modality == "audio" and result.conforms
    assert [p["where"] for p in result.placements] == ["start", "middle", "end"]

    original, _ = _decode(wav16)
    labeled, codec = _decode(out)
    assert (codec.name, codec.sample_rate, codec.channels, codec.format.name) == ("pcm_s16le", RATE, 2, "s16")
    prompt = build_prompt(settings, RATE).samples.size
    half = original.shape[1] // 2
    n = original.shape[1]
    assert labeled.shape[1] == n + 3 * prompt
    # the original, piece by piece, bit for bit, around the three inserted prompts
    assert np.array_equal(labeled[:, prompt : prompt + half], original[:, :half])
    assert np.array_equal(labeled[:, 2 * prompt + half : 2 * prompt + n], original[:, half:])
    # the inserted spans hold the prompt and nothing of the original
    inserted = RhythmSpec().render(RATE)
    pad = round(0.25 * RATE)
    got = labeled[0, pad : pad + inserted.size] / 32768
    assert np.max(np.abs(got - inserted)) < 1e-4

    matches, _ = find_rhythm_in_file(out)
    assert len(matches) == 3
    for placement, match in zip(result.placements, matches, strict=True):
        rhythm = placement["parts"][0]
        assert rhythm["prompt"] == "rhythm"
        assert match.start_s == pytest.approx(rhythm["start_s"], abs=0.03)
        assert match.end_s == pytest.approx(rhythm["end_s"], abs=0.03)
        assert match.frequency_hz == pytest.approx(800, abs=30)


@pytest.mark.parametrize(
    ("name", "codec", "fmt", "decoded"),
    [
        ("in.flac", "flac", "s32", "flac"),
        ("in.mp3", "libmp3lame", "fltp", "mp3float"),
        ("in.ogg", "vorbis", "fltp", "vorbis"),
        ("in.opus", "libopus", "flt", "opus"),
        ("in.m4a", "aac", "fltp", "aac"),
        ("in32.wav", "pcm_f32le", "flt", "pcm_f32le"),
    ],
)
def test_formats_are_kept(tmp_path: Path, name: str, codec: str, fmt: str, decoded: str) -> None:
    rate = 48000 if codec == "libopus" else RATE
    source = _write(tmp_path / name, _music(2.0, rate), codec, fmt, rate, title="Song")
    out = tmp_path / f"out-{name}"
    result = label_audio_file(source, out, Settings(visible_audio_where=("start", "end")))
    original, before = _decode(source)
    labeled, after = _decode(out)
    assert after.name == before.name == decoded
    assert (after.sample_rate, after.channels, after.format.name) == (rate, 2, before.format.name)
    with av.open(str(out)) as container:
        tags = {**container.metadata, **container.streams.audio[0].metadata}
    assert tags.get("title", tags.get("TITLE")) == "Song"
    matches, _ = find_rhythm_in_file(out)
    assert len(matches) == len(result.placements) == 2
    for placement, match in zip(result.placements, matches, strict=True):
        # lossy codecs shift by their encoder delay (AAC: 1024 samples and more)
        assert match.start_s == pytest.approx(placement["parts"][0]["start_s"], abs=0.06)
    if decoded == "flac":
        prompt = build_prompt(Settings(), rate).samples.size
        assert np.array_equal(labeled[:, prompt : prompt + original.shape[1]], original)
        assert result.details["sample_format"] == "s32"


def test_speech_prompt_is_the_bundled_clip(tmp_path: Path, wav16: Path) -> None:
    settings = Settings(visible_audio_prompt="speech", visible_audio_padding_ms=100)
    result = label_audio_file(wav16, tmp_path / "out.wav", settings)
    [placement] = result.placements
    [part] = placement["parts"]
    assert part["prompt"] == "speech"
    clip = spoken_prompt(RATE)
    assert part["end_s"] - part["start_s"] == pytest.approx(clip.size / RATE, abs=1e-3)
    labeled, _ = _decode(tmp_path / "out.wav")
    start = round(part["start_s"] * RATE)
    assert np.max(np.abs(labeled[1, start : start + clip.size] / 32768 - clip)) < 1e-3
    assert "人工智能生成" in result.wording


def test_spoken_clip_is_at_a_normal_speaking_rate() -> None:
    clip = spoken_prompt(16000)
    loud = np.flatnonzero(np.abs(clip) > 10 ** (-40 / 20))
    seconds = (loud[-1] - loud[0]) / 16000
    assert 120 <= 6 / seconds * 60 <= 160
    note = (Path(__file__).parents[2] / "src/synthguard/visible/assets/speech/NOTE.md").read_text()
    assert "cmn-latn-pinyin" in note and "Licence" in note


def test_both_prompts_one_after_the_other(tmp_path: Path, wav16: Path) -> None:
    result = label_audio_file(wav16, tmp_path / "out.wav", Settings(visible_audio_prompt="both"))
    [placement] = result.placements
    rhythm, speech = placement["parts"]
    assert (rhythm["prompt"], speech["prompt"]) == ("rhythm", "speech")
    assert rhythm["end_s"] < speech["start_s"]
    [match], _ = find_rhythm_in_file(tmp_path / "out.wav")
    assert match.start_s == pytest.approx(rhythm["start_s"], abs=0.03)


def test_rhythm_configuration_is_followed(tmp_path: Path, wav16: Path) -> None:
    settings = Settings(
        visible_rhythm_frequency_hz=1500,
        visible_rhythm_short_ms=80,
        visible_rhythm_long_ms=240,
        visible_rhythm_gap_ms=80,
        visible_rhythm_level_dbfs=-20,
    )
    label_audio_file(wav16, tmp_path / "out.wav", settings)
    [match], _ = find_rhythm_in_file(tmp_path / "out.wav")
    assert match.frequency_hz == pytest.approx(1500, abs=30)
    assert match.short_s == pytest.approx(0.08, abs=0.015)
    assert match.long_s == pytest.approx(0.24, abs=0.02)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"visible_audio_prompt": "beep"}, "visible_audio_prompt"),
        ({"visible_audio_where": ("start", "later")}, "visible_audio_where"),
        ({"visible_audio_where": ()}, "visible_audio_where"),
        ({"visible_audio_padding_ms": -1.0}, "visible_audio_padding_ms"),
        ({"visible_rhythm_long_ms": 100.0}, "visible_rhythm_long_ms"),
    ],
)
def test_bad_settings_write_nothing(
    tmp_path: Path, wav16: Path, overrides: dict[str, Any], setting: str
) -> None:
    out = tmp_path / "out.wav"
    with pytest.raises(ConfigError, match=setting):
        label_audio_file(wav16, out, Settings(**overrides))
    assert list(tmp_path.iterdir()) == [wav16]


def test_zero_length_audio_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as fh:
        fh.setnchannels(2)
        fh.setsampwidth(2)
        fh.setframerate(RATE)
    with pytest.raises(CorruptMediaError, match="zero length"):
        label_audio_file(empty, tmp_path / "out.wav", Settings())
    assert not (tmp_path / "out.wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.wav"]


def test_unreadable_audio_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(40))
    with pytest.raises(CorruptMediaError) as caught:
        label_audio_file(junk, tmp_path / "out.wav", Settings())
    assert caught.value.path == str(junk)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.wav"]


def test_not_audio_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.md"
    text.write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="markdown"):
        label_audio_file(text, tmp_path / "out.md", Settings())


@pytest.mark.tools
def test_video_is_refused(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [
            require_tool("ffmpeg"),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=32x32:rate=5:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            str(video),
        ],
        check=True,
    )
    with pytest.raises(UnsupportedFormatError):
        label_audio_file(video, tmp_path / "out.mp4", Settings())
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.tools
def test_cover_art_and_tags_are_kept(tmp_path: Path, wav16: Path) -> None:
    cover = tmp_path / "cover.png"
    Image.new("RGB", (16, 16), "red").save(cover)
    source = tmp_path / "song.mp3"
    subprocess.run(
        [
            require_tool("ffmpeg"), "-loglevel", "error", "-i", str(wav16), "-i", str(cover),
            "-map", "0:a", "-map", "1:v", "-c:v", "png", "-disposition:v", "attached_pic",
            "-metadata", "artist=Someone", str(source),
        ],
        check=True,
    )  # fmt: skip
    result = label_audio_file(source, tmp_path / "out.mp3", Settings())
    assert result.details["cover_art_copied"] == 1
    assert result.details["dropped_streams"] == []
    with av.open(str(tmp_path / "out.mp3")) as container:
        assert container.metadata["artist"] == "Someone"
        [picture] = container.streams.video
        assert picture.disposition & av.stream.Disposition.attached_pic
        packet = next(container.demux(picture))
        assert bytes(packet) == _png_packet(source)


def _png_packet(path: Path) -> bytes:
    with av.open(str(path)) as container:
        return bytes(next(container.demux(container.streams.video[0])))


@hyp_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(
        [b"RIFF\x24\x00\x00\x00WAVEfmt ", b"ID3\x04\x00\x00\x00\x00\x00\x00", b"fLaC", b"OggS\x00\x02"]
    ),
    st.binary(max_size=600),
)
def test_hostile_bytes_give_typed_errors_and_no_output(tmp_path: Path, magic: bytes, body: bytes) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(magic + body)
    out = tmp_path / "out.bin"
    out.unlink(missing_ok=True)
    try:
        label_audio_file(source, out, Settings())
    except MediaError:
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("variant", "found"),
    [
        ("as is", True),
        ("20 dB quieter", True),
        ("noise 10 dB down", True),
        ("reversed", False),
        ("noise", False),
    ],
)
def test_spoken_prompt_matcher(variant: str, found: bool) -> None:
    clip = np.asarray(spoken_prompt(16000))
    rng = np.random.default_rng(8)
    body = {
        "as is": clip,
        "20 dB quieter": clip * 0.1,
        "noise 10 dB down": clip + rng.normal(0, 0.03, clip.size),
        "reversed": clip[::-1],
        "noise": rng.normal(0, 0.1, clip.size),
    }[variant]
    x = np.concatenate([np.zeros(16000), body, np.zeros(8000)])
    matches = find_spoken_prompt(x, 16000, offset_s=2.0)
    assert [round(m.start_s, 1) for m in matches] == ([3.0] if found else [])
