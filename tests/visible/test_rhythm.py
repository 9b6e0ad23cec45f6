"""The rhythm prompt: rendering to the configuration, and the detector on prompts made by anyone."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthguard.config import Settings
from synthguard.errors import ConfigError, CorruptMediaError, UnsupportedFormatError
from synthguard.visible.rhythm import RhythmSpec, find_rhythm, find_rhythm_in_file
from synthguard.visible.speech import spoken_prompt
from tests.conftest import require_tool

RATE = 16000


def _write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(pcm.tobytes())
    return path


def _padded(x: np.ndarray, before: float = 0.5, after: float = 0.5) -> np.ndarray:
    return np.concatenate([np.zeros(round(before * RATE)), x, np.zeros(round(after * RATE))])


def _tone(freq: float, seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return level * np.sin(2 * np.pi * freq * t)


def _morse(code: str, unit: float, freq: float = 700.0) -> np.ndarray:
    """Morse ``code`` ('.', '-', ' ' between letters) with textbook timing."""
    parts: list[np.ndarray] = []
    for i, symbol in enumerate(code):
        if symbol == " ":
            parts.append(np.zeros(round(2 * unit * RATE)))  # plus the 1-unit gap: 3 units
            continue
        parts.append(_tone(freq, unit if symbol == "." else 3 * unit))
        if i + 1 < len(code):
            parts.append(np.zeros(round(unit * RATE)))
    return np.concatenate(parts)


# -- rendering -----------------------------------------------------------------------------------


def test_render_follows_the_configuration() -> None:
    spec = RhythmSpec.from_settings(
        Settings(visible_rhythm_frequency_hz=1000, visible_rhythm_short_ms=100, visible_rhythm_level_dbfs=-6)
    )
    x = spec.render(48000)
    assert x.size == round(spec.duration_s * 48000)
    assert spec.tones == ((0.0, 0.1), (0.22, 0.58), (0.7, 0.8), (0.92, 1.02))
    assert np.max(np.abs(x)) == pytest.approx(10 ** (-6 / 20), rel=1e-3)
    for (start, end), (next_start, _) in zip(
        spec.tones, [*spec.tones[1:], (spec.duration_s, 0)], strict=True
    ):
        inside = x[round(start * 48000) + 300 : round(end * 48000) - 300]
        gap = x[round(end * 48000) + 1 : round(next_start * 48000) - 1]
        assert np.sqrt(np.mean(inside**2)) > 0.3
        assert not gap.any()
    spectrum = np.abs(np.fft.rfft(x))
    assert np.fft.rfftfreq(x.size, 1 / 48000)[np.argmax(spectrum)] == pytest.approx(1000, abs=2)


def test_tones_start_and_stop_without_clicks() -> None:
    spec = RhythmSpec()
    x = spec.render(44100)
    # a 5 ms raised-cosine ramp: the first and last samples of every tone are near zero and no
    # step between samples is larger than the sine's own
    for start, end in spec.tones:
        assert abs(x[round(start * 44100)]) < 0.01
        assert abs(x[round(end * 44100) - 1]) < 0.01
    max_sine_step = 2 * np.pi * 800 / 44100 * 10 ** (-12 / 20)
    assert np.max(np.abs(np.diff(x))) <= max_sine_step * 1.01


@pytest.mark.parametrize(
    "overrides",
    [
        {"visible_rhythm_long_ms": 150.0},
        {"visible_rhythm_gap_ms": 500.0},
        {"visible_rhythm_short_ms": 10.0},
        {"visible_rhythm_frequency_hz": 20.0},
        {"visible_rhythm_level_dbfs": 3.0},
    ],
)
def test_bad_rhythm_settings_are_config_errors(overrides: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="visible_rhythm_"):
        RhythmSpec.from_settings(Settings(**overrides))  # type: ignore[arg-type]


def test_a_tone_the_sample_rate_cannot_carry_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot be played"):
        RhythmSpec(frequency_hz=6000).render(8000)


# -- detection on arrays -------------------------------------------------------------------------


@pytest.mark.parametrize("tempo", [0.7, 1.0, 1.3])
@pytest.mark.parametrize("freq", [440.0, 800.0, 2500.0])
@pytest.mark.parametrize("level", [-36.0, -6.0])
def test_found_at_any_tempo_pitch_and_level(tempo: float, freq: float, level: float) -> None:
    spec = RhythmSpec(
        frequency_hz=freq, short_s=0.12 * tempo, long_s=0.36 * tempo, gap_s=0.12 * tempo, level_dbfs=level
    )
    [match] = find_rhythm(_padded(spec.render(RATE)), RATE)
    assert match.frequency_hz == pytest.approx(freq, abs=30)
    assert match.start_s == pytest.approx(0.5, abs=0.03)
    assert match.end_s == pytest.approx(0.5 + spec.duration_s, abs=0.03)
    assert match.short_s == pytest.approx(spec.short_s, rel=0.25)
    assert match.long_s == pytest.approx(spec.long_s, rel=0.25)


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 3.0])
def test_found_in_noise(snr_db: float) -> None:
    spec = RhythmSpec(level_dbfs=-20)
    clean = _padded(spec.render(RATE), 1.0, 1.0)
    noise_power = (10 ** (-20 / 20)) ** 2 / 2 / 10 ** (snr_db / 10)
    noisy = clean + np.random.default_rng(3).normal(0, np.sqrt(noise_power), clean.size)
    [match] = find_rhythm(noisy, RATE)
    assert match.start_s == pytest.approx(1.0, abs=0.04)


def test_found_between_speech_and_with_an_offset() -> None:
    speech = spoken_prompt(RATE)
    x = np.concatenate([speech, np.zeros(RATE // 4), RhythmSpec().render(RATE), np.zeros(RATE // 4), speech])
    [match] = find_rhythm(x, RATE, offset_s=10.0)
    assert match.start_s == pytest.approx(10.0 + speech.size / RATE + 0.25, abs=0.03)


def test_letter_gap_between_a_and_i_is_accepted() -> None:
    [match] = find_rhythm(_padded(_morse(".- ..", 0.1), 0.6, 0.6), RATE)
    assert match.frequency_hz == pytest.approx(700, abs=30)


@pytest.mark.parametrize(
    "name",
    ["silence", "white noise", "speech", "steady tone", "melody", "chords", "morse MAIN", "morse ANTS"],
)
def test_not_claimed_in_other_sounds(name: str) -> None:
    rng = np.random.default_rng(11)
    if name == "silence":
        x = np.zeros(RATE * 3)
    elif name == "white noise":
        x = rng.normal(0, 0.2, RATE * 5)
    elif name == "speech":
        x = np.tile(spoken_prompt(RATE), 2)
    elif name == "steady tone":
        x = _padded(_tone(800, 3.0))
    elif name == "melody":
        # notes of varied pitch and length, each with harmonics and a decay, some separated by rests
        notes = []
        for k in range(40):
            f = 220 * 2 ** (rng.integers(0, 24) / 12)
            n = _tone(f, rng.choice([0.12, 0.24, 0.36, 0.48]))
            n = n + 0.5 * _tone(2 * f, n.size / RATE) + 0.25 * _tone(3 * f, n.size / RATE)
            notes += [n * np.exp(-np.arange(n.size) / (0.2 * RATE)), np.zeros(int(rng.integers(0, 3)) * 1200)]
            del k
        x = np.concatenate(notes)
    elif name == "chords":
        chords = []
        for root in (261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 261.6, 261.6):
            c = sum(_tone(root * r, 0.25) for r in (1.0, 1.26, 1.5))
            chords += [c, np.zeros(RATE // 10)]
        x = np.concatenate(chords * 3)
    elif name == "morse MAIN":  # A and I inside a message (note: L is .-.., the prompt itself)
        x = _padded(_morse("-- .- .. -.", 0.1))
    else:
        x = _padded(_morse(".- -. - ...", 0.1))
    assert find_rhythm(x, RATE) == []


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=0, max_size=4000),
    st.sampled_from([8000, 16000, 44100]),
)
def test_detector_never_fails_on_arbitrary_samples(samples: list[float], rate: int) -> None:
    assert isinstance(find_rhythm(np.array(samples), rate), list)


def test_odd_values_do_not_break_the_detector() -> None:
    x = _padded(RhythmSpec().render(RATE))
    x[100] = np.nan
    x[200] = np.inf
    assert len(find_rhythm(x, RATE)) == 1
    assert find_rhythm(np.ones(RATE), RATE) == []


# -- files ---------------------------------------------------------------------------------------


def _sox_rhythm(folder: Path, unit: float = 0.12, freq: int = 1000, rate: int = 44100) -> Path:
    """A rhythm prompt made with sox alone: tones and silences, then concatenated."""
    sox = require_tool("sox")
    parts = []
    for name, seconds, kind in [
        ("pad", 0.6, "silence"),
        ("s1", unit, "tone"),
        ("g1", unit, "silence"),
        ("l", 3 * unit, "tone"),
        ("g2", unit, "silence"),
        ("s2", unit, "tone"),
        ("g3", unit, "silence"),
        ("s3", unit, "tone"),
        ("end", 0.6, "silence"),
    ]:
        part = folder / f"{name}.wav"
        if kind == "tone":
            cmd = [
                sox,
                "-n",
                "-r",
                str(rate),
                str(part),
                "synth",
                f"{seconds}",
                "sine",
                str(freq),
                "vol",
                "0.5",
            ]
        else:
            cmd = [sox, "-n", "-r", str(rate), str(part), "trim", "0", f"{seconds}"]
        subprocess.run(cmd, check=True, capture_output=True)
        parts.append(str(part))
    out = folder / "sox-rhythm.wav"
    subprocess.run([sox, *parts, str(out)], check=True, capture_output=True)
    return out


def test_finds_a_prompt_made_with_sox(tmp_path: Path) -> None:
    path = _sox_rhythm(tmp_path)
    [match], duration = find_rhythm_in_file(path)
    assert duration == pytest.approx(0.6 * 2 + 0.12 * 9, abs=0.01)
    assert match.frequency_hz == pytest.approx(1000, abs=30)
    assert match.start_s == pytest.approx(0.6, abs=0.03)


@pytest.mark.tools
def test_finds_a_sox_prompt_after_mp3_encoding_at_a_faster_tempo(tmp_path: Path) -> None:
    source = _sox_rhythm(tmp_path, unit=0.09, freq=1200)
    mp3 = tmp_path / "rhythm.mp3"
    ffmpeg = require_tool("ffmpeg")
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(source), "-b:a", "64k", str(mp3)], check=True)
    [match], _ = find_rhythm_in_file(mp3)
    assert match.frequency_hz == pytest.approx(1200, abs=30)


def test_long_file_scanned_in_segments_finds_each_prompt_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.01, RATE * 150)
    prompt = RhythmSpec().render(RATE)
    starts = [30.0, 59.5, 107.0, 148.5]  # 59.5 and 107.0 straddle the 60 s segments' overlaps
    for s in starts:
        x[round(s * RATE) : round(s * RATE) + prompt.size] += prompt
    matches, duration = find_rhythm_in_file(_write_wav(tmp_path / "long.wav", x))
    assert duration == pytest.approx(150.0)
    assert [round(m.start_s, 1) for m in matches] == starts


def test_zero_length_audio_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorruptMediaError, match="zero length"):
        find_rhythm_in_file(_write_wav(tmp_path / "empty.wav", np.zeros(0)))


def test_unreadable_audio_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.mp3"
    path.write_bytes(b"ID3" + bytes(range(256)) * 4)
    with pytest.raises(CorruptMediaError) as caught:
        find_rhythm_in_file(path)
    assert caught.value.path == str(path)


@pytest.mark.tools
def test_media_without_audio_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "silent.mkv"
    subprocess.run(
        [
            require_tool("ffmpeg"),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=32x32:rate=5:duration=1",
            str(path),
        ],
        check=True,
    )
    with pytest.raises(UnsupportedFormatError, match="without an audio stream"):
        find_rhythm_in_file(path)
