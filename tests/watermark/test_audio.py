"""The audio watermark: round trips, each attack of issue 4, excerpts, keys, unmarked audio, files, errors.

Test audio is made here: music-like signals synthesised with numpy and sounds made with sox (CI
installs it); attacks go through PyAV (MP3 and AAC at 128 kbps, FFmpeg's resampler). The helpers at
the top are also used by ``bench/watermark_audio.py``. Robustness is checked at fixed seeds.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthguard.config import Settings
from synthguard.errors import ConfigError, CorruptMediaError, MediaError, UnsupportedFormatError, UsageError
from synthguard.watermark import _audio_scheme as scheme
from synthguard.watermark._audio_code import coded_length, conv_encode, viterbi_decode
from synthguard.watermark.audio import (
    SCHEME,
    detect_audio_file,
    detect_samples,
    embed_audio_file,
    embed_samples,
    min_duration,
)
from tests.conftest import require_tool

Audio = npt.NDArray[np.float32]
PID = "0123456789ABCDEF"
SECRET = b"audio-test-secret-0123456789"
BOUND = scheme.MAX_DECODED * 2.0**-scheme.TAG_BITS

# -- test audio and attacks (also used by bench/watermark_audio.py) ---------------------------------


def music(rate: int, seconds: float, seed: int, *, channels: int = 2) -> Audio:
    """Notes with 1/h harmonics, plucked envelopes and noise hits, normalised to peak 0.5."""
    rng = np.random.default_rng(seed)
    count = int(rate * seconds)
    out = np.zeros(count)
    position = 0.0
    while position < seconds:
        length = float(rng.choice([0.125, 0.25, 0.5]))
        f0 = 110 * 2 ** (int(rng.integers(0, 36)) / 12)
        start, stop = int(position * rate), min(count, int((position + 2 * length) * rate))
        t = np.arange(stop - start) / rate
        envelope = np.exp(-t * rng.uniform(2, 8))
        harmonics = int(min(30, 8000 // f0))
        note = sum(
            np.sin(2 * np.pi * f0 * (h + 1) * t + rng.uniform(0, 6)) / (h + 1) for h in range(harmonics)
        )
        out[start:stop] += envelope * note
        if rng.random() < 0.6:
            out[start:stop] += rng.normal(size=stop - start) * np.exp(-t * 30) * 0.5
        position += length
    out *= 0.5 / (np.max(np.abs(out)) + 1e-9)
    rows = [np.roll(out, 37 * c) * (1 - 0.2 * c) for c in range(channels)]
    return np.stack(rows).astype(np.float32)


def sox(args: list[str], rate: int, seconds: float, channels: int = 2) -> Audio:
    """Run ``sox -n`` with a synth effect chain and return the float samples."""
    raw = subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            str(rate),
            "-c",
            str(channels),
            "-b",
            "32",
            "-e",
            "floating-point",
            "-t",
            "raw",
            "-",
            "synth",
            str(seconds),
            *args,
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, channels).T.copy()


def decode(data: bytes | Path, *, rate: int | None = None, layout: str | None = None) -> tuple[Audio, int]:
    """All samples of the first audio stream (channels x n, float32) and the sample rate."""
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with av.open(source) as container:
        stream = container.streams.audio[0]
        target = rate or stream.rate
        resampler = av.AudioResampler(format="fltp", layout=layout or stream.layout.name, rate=target)
        chunks = [out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    return np.concatenate(chunks, axis=1).astype(np.float32), target


def encode(samples: Audio, rate: int, codec: str, container_format: str, bit_rate: int = 128_000) -> bytes:
    """``samples`` encoded with PyAV (``codec`` in ``container_format``) at ``bit_rate``."""
    layout = "stereo" if samples.shape[0] == 2 else "mono"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        stream.bit_rate = bit_rate
        fmt = stream.codec_context.format.name
        resampler = av.AudioResampler(
            format=fmt, layout=layout, rate=rate, frame_size=stream.codec_context.frame_size or 4096
        )
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=layout)
        frame.sample_rate = rate
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            container.mux(stream.encode(piece))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def mp3(samples: Audio, rate: int) -> Audio:
    return decode(encode(samples, rate, "libmp3lame", "mp3"))[0]


def aac(samples: Audio, rate: int) -> Audio:
    return decode(encode(samples, rate, "aac", "adts"))[0]


def resample(samples: Audio, rate: int, new_rate: int) -> Audio:
    """Through FFmpeg's resampler (swr), as a platform would."""
    return decode(encode(samples, rate, "pcm_f32le", "wav"), rate=new_rate)[0]


def noise(samples: Audio, snr_db: float, seed: int) -> Audio:
    """White Gaussian noise at ``snr_db`` below the signal's power."""
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    rng = np.random.default_rng(seed)
    return (samples + rng.normal(size=samples.shape) * np.sqrt(power / 10 ** (snr_db / 10))).astype(
        np.float32
    )


def snr_db(original: Audio, marked: Audio) -> float:
    signal = float(np.mean(np.square(original, dtype=np.float64)))
    error = float(np.mean(np.square(marked.astype(np.float64) - original)))
    return 10 * np.log10(signal / error)


def sox_sounds(rate: int, seconds: float) -> dict[str, Audio]:
    """A few sounds made with sox: a plucked chord, pink noise with tremolo, a swept square wave."""
    require_tool("sox")
    return {
        "pluck": sox(
            ["pluck", "C3", "pluck", "E4", "pluck", "G4", "remix", "-", "gain", "-6"], rate, seconds, 1
        ),
        "pink": sox(["pinknoise", "tremolo", "3", "60", "gain", "-12"], rate, seconds),
        "sweep": sox(["square", "110-880", "gain", "-14"], rate, seconds, 1),
    }


# -- sample arrays -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip() -> tuple[Audio, Audio]:
    """14 s of music-like stereo at 44.1 kHz, and the same with the mark of ``PID``."""
    original = music(44100, 14, seed=1)
    return original, embed_samples(original, 44100, PID, SECRET)


def assert_found(detection: object, produce_id: str = PID) -> None:
    from synthguard.watermark.base import WatermarkDetection

    assert isinstance(detection, WatermarkDetection)
    assert detection.found, detection
    assert detection.produce_id == produce_id
    assert detection.p_value == detection.details["alignments_decoded"] * 2.0**-scheme.TAG_BITS <= BOUND
    assert detection.p_value < detection.threshold
    assert detection.scheme == SCHEME


def test_round_trip_keeps_shape_and_is_quiet(clip: tuple[Audio, Audio]) -> None:
    original, marked = clip
    assert marked.shape == original.shape
    assert marked.dtype == np.float32
    assert snr_db(original, marked) >= 25.0
    assert_found(detect_samples(marked, 44100, SECRET))


def test_input_array_is_not_changed() -> None:
    original = music(16000, 6, seed=2)
    copy = original.copy()
    embed_samples(original, 16000, PID, SECRET)
    assert np.array_equal(original, copy)


@pytest.mark.parametrize("name", ["pluck", "pink", "sweep"])
def test_sox_sounds_round_trip(name: str) -> None:
    original = sox_sounds(48000, 8)[name]
    marked = embed_samples(original, 48000, "FEDCBA9876543210", SECRET)
    assert snr_db(original, marked) >= 25.0
    assert_found(detect_samples(marked, 48000, SECRET), "FEDCBA9876543210")


def test_speech_like_mono_round_trip() -> None:
    """Mono, 16 kHz: pauses between bursts of harmonic sound (a stand-in for speech)."""
    rng = np.random.default_rng(5)
    t = np.arange(16000 * 9) / 16000
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * np.cumsum(pitch * (h + 1)) / 16000) / (h + 1) for h in range(20))
    gate = (np.sin(2 * np.pi * 1.3 * t) > -0.3).astype(float)
    speech = ((voiced * gate + 0.05 * rng.normal(size=t.size)) * 0.2)[None, :].astype(np.float32)
    marked = embed_samples(speech, 16000, PID, SECRET)
    assert snr_db(speech, marked) >= 25.0
    assert_found(detect_samples(marked, 16000, SECRET))


ATTACKS = {
    "mp3-128k": lambda x: (mp3(x, 44100), 44100),
    "aac-128k": lambda x: (aac(x, 44100), 44100),
    "resample-16k": lambda x: (resample(x, 44100, 16000), 16000),
    "noise-20dB": lambda x: (noise(x, 20, seed=3), 44100),
    "volume-0.5": lambda x: (x * np.float32(0.5), 44100),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_attack_on_a_10_s_excerpt(clip: tuple[Audio, Audio], attack: str) -> None:
    _, marked = clip
    start = 51_234  # 1.16 s: not on any frame boundary
    excerpt = marked[:, start : start + 10 * 44100]
    attacked, rate = ATTACKS[attack](excerpt)
    assert_found(detect_samples(attacked, rate, SECRET))


@pytest.mark.parametrize("start_s", [0.0, 0.013, 2.5, 3.99])
def test_any_10_s_excerpt(clip: tuple[Audio, Audio], start_s: float) -> None:
    _, marked = clip
    start = round(start_s * 44100)
    detection = detect_samples(marked[:, start : start + 10 * 44100], 44100, SECRET)
    assert_found(detection)
    assert detection.details["tiles"] >= 3


def test_wrong_key_finds_nothing(clip: tuple[Audio, Audio]) -> None:
    _, marked = clip
    detection = detect_samples(marked, 44100, b"another-secret-0123456789")
    assert not detection.found
    assert detection.produce_id is None
    assert detection.p_value == 1.0


def unmarked_clips(count: int, seconds: float) -> list[tuple[str, Audio, int]]:
    """Unmarked audio of many kinds: music, noise, tones, silence, clicks, sox sounds."""
    clips: list[tuple[str, Audio, int]] = []
    rng = np.random.default_rng(11)
    sounds = sox_sounds(22050, seconds)
    for i in range(count):
        rate = (16000, 22050, 44100)[i % 3]
        n = int(rate * seconds)
        kind = i % 6
        if kind == 0:
            audio = music(rate, seconds, seed=100 + i)
        elif kind == 1:
            audio = (rng.normal(size=(2, n)) * 0.1).astype(np.float32)
        elif kind == 2:
            f = rng.uniform(100, 4000)
            audio = (0.3 * np.sin(2 * np.pi * f * np.arange(n) / rate))[None, :].astype(np.float32)
        elif kind == 3:
            audio = np.zeros((1, n), dtype=np.float32)
        elif kind == 4:
            audio = np.zeros((2, n), dtype=np.float32)
            audio[:, :: rate // 7] = 0.9
        else:
            name = sorted(sounds)[i % len(sounds)]
            audio, rate = sounds[name], 22050
        clips.append((f"{kind}-{i}", audio, rate))
    return clips


def test_unmarked_audio_is_not_found() -> None:
    for name, audio, rate in unmarked_clips(30, 3.0):
        detection = detect_samples(audio, rate, SECRET)
        assert not detection.found, name
        assert detection.p_value >= detection.threshold, name


@pytest.mark.slow
def test_200_unmarked_clips_are_not_found() -> None:
    found = [
        name for name, audio, rate in unmarked_clips(200, 5.0) if detect_samples(audio, rate, SECRET).found
    ]
    assert found == []


def test_audio_marked_with_another_id_gives_that_id(clip: tuple[Audio, Audio]) -> None:
    original, _ = clip
    other = embed_samples(original, 44100, "00000000000000FF", SECRET)
    assert_found(detect_samples(other, 44100, SECRET), "00000000000000FF")


def test_short_audio_comes_back_unmarked_and_is_not_found() -> None:
    short = music(48000, 2.0, seed=4)
    assert min_duration(48000) > 2.0
    marked = embed_samples(short, 48000, PID, SECRET)
    assert np.array_equal(marked, short)
    detection = detect_samples(short, 48000, SECRET)
    assert not detection.found
    assert detection.details["alignments_decoded"] == 0


def test_silence_stays_silent() -> None:
    silent = np.zeros((2, 48000 * 4), dtype=np.float32)
    assert np.array_equal(embed_samples(silent, 48000, PID, SECRET), silent)


@pytest.mark.parametrize(
    ("samples", "rate", "produce_id", "secret", "message"),
    [
        (np.zeros(48000, dtype=np.float32), 48000, PID, SECRET, "2-D"),
        (np.zeros((2, 0), dtype=np.float32), 48000, PID, SECRET, "no samples"),
        (np.zeros((2, 48000), dtype=np.int16), 48000, PID, SECRET, "floats"),
        (np.full((1, 48000), np.nan, dtype=np.float32), 48000, PID, SECRET, "NaN"),
        (np.zeros((1, 48000), dtype=np.float32), 4000, PID, SECRET, "sample rate"),
        (np.zeros((1, 48000), dtype=np.float32), 48000, "0123", SECRET, "ProduceID"),
        (np.zeros((1, 48000), dtype=np.float32), 48000, PID, b"short", "secret"),
    ],
)
def test_bad_arguments_are_usage_errors(
    samples: np.ndarray, rate: int, produce_id: str, secret: bytes, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        embed_samples(samples, rate, produce_id, secret)


def test_bad_threshold_is_a_usage_error(clip: tuple[Audio, Audio]) -> None:
    with pytest.raises(UsageError, match="threshold"):
        detect_samples(clip[1], 44100, SECRET, threshold=0.0)


# -- the code and the layout ----------------------------------------------------------------------


def test_convolutional_code_corrects_errors() -> None:
    rng = np.random.default_rng(0)
    message = rng.integers(0, 2, scheme.MESSAGE_BITS).tolist()
    coded = conv_encode(message)
    assert len(coded) == coded_length(scheme.MESSAGE_BITS) == scheme.CODED_BITS
    soft = 1.0 - 2.0 * coded.astype(np.float64)
    flipped = rng.choice(len(soft), 25, replace=False)
    soft[flipped] *= -1
    soft += rng.normal(scale=0.3, size=soft.shape)
    assert viterbi_decode(soft[None, :], scheme.MESSAGE_BITS)[0].tolist() == message


def test_layout_is_stable() -> None:
    """The keyed layout must never change: marks made today are read by every later release."""
    layout = scheme._layout(b"layout-regression-key-0123")
    digest = hashlib.sha256(
        layout.flat.astype("<i4").tobytes()
        + layout.chips.astype("<i1").tobytes()
        + layout.dither.astype("<f8").tobytes()
    ).hexdigest()
    assert digest == LAYOUT_DIGEST
    assert np.all(layout.chips.sum(axis=1) == 0)  # balanced: volume changes cancel
    assert len(set(layout.flat.tolist())) == layout.flat.size


LAYOUT_DIGEST = "9ee2642af47ba9ff875043f4d39c48f8871e5fa79f2cd27aeff8cc6c7696a1a7"


# -- files ----------------------------------------------------------------------------------------


def write_wav(path: Path, samples: Audio, rate: int) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").T.tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)


@pytest.fixture(scope="module")
def source_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "music.wav"
    write_wav(path, music(44100, 8, seed=7), 44100)
    return path


FILE_FORMATS = {
    # suffix: (ffmpeg output options, expected codec, container format)
    "wav": ([], "pcm_s16le", "wav"),
    "flac": ([], "flac", "flac"),
    "mp3": (["-b:a", "128k"], "mp3float", "mp3"),
    "m4a": (["-c:a", "aac", "-b:a", "128k"], "aac", "mov,mp4,m4a,3gp,3g2,mj2"),
    "opus": (["-ar", "48000", "-b:a", "96k"], "opus", "ogg"),
    "ogg": (["-c:a", "libvorbis", "-q:a", "5"], "vorbis", "ogg"),
}


@pytest.mark.parametrize("suffix", sorted(FILE_FORMATS))
def test_file_round_trip_keeps_format(
    tmp_path: Path, source_wav: Path, watermark_settings: Settings, suffix: str
) -> None:
    options, codec, container_format = FILE_FORMATS[suffix]
    source = tmp_path / f"in.{suffix}"
    subprocess.run(
        [require_tool("ffmpeg"), "-loglevel", "error", "-i", str(source_wav), *options, str(source)],
        check=True,
    )
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tmp_path / f"out.{suffix}"
    result = embed_audio_file(source, out, PID, watermark_settings)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    assert result.snr_db >= 25.0
    assert result.verified
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    with av.open(str(source)) as a, av.open(str(out)) as b:
        sa, sb = a.streams.audio[0], b.streams.audio[0]
        assert b.format.name == container_format == a.format.name
        assert sb.codec_context.name == codec == sa.codec_context.name
        assert (sb.rate, sb.channels) == (sa.rate, sa.channels)
    detection = detect_audio_file(out, watermark_settings)
    assert detection.found and detection.produce_id == PID
    assert not detect_audio_file(source, watermark_settings).found


def test_lossless_keeps_sample_format(tmp_path: Path, watermark_settings: Settings) -> None:
    source = tmp_path / "in.flac"
    samples = sox_sounds(48000, 5)["pink"]
    raw = tmp_path / "in.wav"
    write_wav(raw, samples, 48000)
    subprocess.run(
        [require_tool("ffmpeg"), "-loglevel", "error", "-i", str(raw), "-sample_fmt", "s32", str(source)],
        check=True,
    )
    out = tmp_path / "out.flac"
    embed_audio_file(source, out, PID, watermark_settings)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.format.name == "s32"


def test_file_errors(tmp_path: Path, source_wav: Path, watermark_settings: Settings) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(CorruptMediaError, match="empty"):
        detect_audio_file(empty, watermark_settings)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"this is not audio at all " * 10)
    with pytest.raises(UnsupportedFormatError):
        embed_audio_file(garbage, tmp_path / "out.mp3", PID, watermark_settings)
    no_samples = tmp_path / "none.wav"
    write_wav(no_samples, np.zeros((1, 0), dtype=np.float32), 16000)
    with pytest.raises(CorruptMediaError, match="no audio samples"):
        embed_audio_file(no_samples, tmp_path / "out.wav", PID, watermark_settings)
    short = tmp_path / "short.wav"
    write_wav(short, music(16000, 1.0, seed=1), 16000)
    with pytest.raises(UsageError, match="shorter"):
        embed_audio_file(short, tmp_path / "out.wav", PID, watermark_settings)
    with pytest.raises(UsageError, match="must not be the input"):
        embed_audio_file(source_wav, source_wav, PID, watermark_settings)
    with pytest.raises(UsageError, match="no such file"):
        detect_audio_file(tmp_path / "missing.wav", watermark_settings)
    with pytest.raises(ConfigError):
        detect_audio_file(source_wav, Settings())
    assert not (tmp_path / "out.wav").exists()
    assert not (tmp_path / "out.mp3").exists()


def test_video_file_is_refused_for_embedding_but_its_audio_is_read(
    tmp_path: Path, watermark_settings: Settings
) -> None:
    marked = embed_samples(music(48000, 6, seed=9), 48000, PID, SECRET)
    wav = tmp_path / "marked.wav"
    write_wav(wav, marked, 48000)
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [
            require_tool("ffmpeg"),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=6",
            "-i",
            str(wav),
            "-c:a",
            "aac",
            "-b:a",
            "160k",
            "-shortest",
            str(video),
        ],
        check=True,
    )
    with pytest.raises(UnsupportedFormatError, match="video"):
        embed_audio_file(video, tmp_path / "out.mp4", PID, watermark_settings)
    settings_ = Settings(watermark_key=SECRET.decode())
    assert detect_audio_file(video, settings_).produce_id == PID


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_give_typed_errors_or_a_result(
    data: st.DataObject, tmp_path: Path, source_wav: Path
) -> None:
    original = bytearray(source_wav.read_bytes()[:60000])
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(original)))
    path = tmp_path / "damaged.wav"
    path.write_bytes(bytes(original[:cut]))
    try:
        detection = detect_audio_file(path, Settings(watermark_key=SECRET.decode()))
    except MediaError:
        return
    assert not detection.found
