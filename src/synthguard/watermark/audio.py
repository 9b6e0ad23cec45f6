"""The audio watermark: a keyed 64-bit ``ProduceID`` in every 2.56 s of sound, found in any 10 s excerpt.

On sample arrays::

    marked = embed_samples(samples, 48000, "0123456789ABCDEF", secret)   # (channels, n) float32
    detect_samples(marked[:, 480000:960000], 48000, secret).produce_id   # '0123456789ABCDEF'

On files (PyAV decodes and re-encodes; sample rate, channels, codec and container are kept)::

    embed_audio_file(Path("in.mp3"), Path("out.mp3"), produce_id, settings)
    detect_audio_file(Path("clip.m4a"), settings)

The scheme itself (spread-transform dither modulation of log band powers, convolutional code, keyed
tag, alignment search) and why it is hand-written are described in ``_audio_scheme``. A detection is
declared only when its false-positive bound, ``alignments decoded x 2^-48``, is below the threshold;
without the key nothing is found. Nothing here removes a mark.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Final

import av
import av.audio.stream
import av.container
import av.error
import numpy as np
import numpy.typing as npt

from synthguard._io import atomic_output
from synthguard.aigc import ProduceID
from synthguard.config import Settings
from synthguard.errors import (
    CorruptMediaError,
    InvalidLabelError,
    MediaError,
    MediaLimitError,
    UnsupportedFormatError,
    UsageError,
    WriteVerificationError,
)
from synthguard.watermark import _audio_scheme as scheme
from synthguard.watermark.base import WatermarkDetection, watermark_secret

__all__ = [
    "SCHEME",
    "EmbeddedAudio",
    "detect_audio_file",
    "detect_samples",
    "embed_audio_file",
    "embed_samples",
    "min_duration",
]

SCHEME: Final = scheme.SCHEME
#: Rates outside this range are refused (below 8 kHz there is no room for the 300 Hz..7 kHz cells).
MIN_RATE: Final = 8000
MAX_RATE: Final = 384000
MAX_CHANNELS: Final = 64
#: Samples per channel decoded from one file at most (1 hour at 48 kHz): a safety limit that keeps
#: memory near 3 GB for stereo (samples, marked copy and the spectra are held in memory).
MAX_SAMPLES: Final = 48000 * 3600

# Containers written back in the same format, by PyAV demuxer name -> muxer name.
_MUXERS: Final = {
    "wav": "wav",
    "flac": "flac",
    "mp3": "mp3",
    "ogg": "ogg",
    "aac": "adts",
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "matroska",
    "aiff": "aiff",
}
# Decoders whose encoder has another name here.
_ENCODERS: Final = {"mp3float": "libmp3lame", "mp3": "libmp3lame", "opus": "libopus"}
_LOSSY_DEFAULT_BITRATE: Final = 192_000
_MIN_VBR_BITRATE: Final = 96_000


def min_duration(rate: int = 48000) -> float:
    """Seconds of audio one whole watermark tile needs (about 2.6 s); shorter audio carries nothing."""
    return scheme.min_samples(rate) / rate


def _check_rate(rate: int) -> int:
    """``rate`` as a Python int (numpy integers accepted); ``UsageError`` outside the range."""
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or not MIN_RATE <= rate <= MAX_RATE:
        raise UsageError(f"sample rate must be an integer from {MIN_RATE} to {MAX_RATE} Hz, got {rate!r}")
    return int(rate)


def _as_samples(samples: Any, what: str) -> npt.NDArray[np.float32]:
    if not isinstance(samples, np.ndarray) or samples.ndim != 2:
        raise UsageError(f"{what} must be a 2-D numpy array shaped (channels, samples)")
    if not np.issubdtype(samples.dtype, np.floating):
        raise UsageError(f"{what} must hold floats in [-1, 1], got dtype {samples.dtype}")
    channels, count = samples.shape
    if not 1 <= channels <= MAX_CHANNELS:
        raise UsageError(f"{what} has {channels} channels; 1 to {MAX_CHANNELS} are accepted")
    if count == 0:
        raise UsageError(f"{what} holds no samples")
    converted = np.ascontiguousarray(samples, dtype=np.float32)
    if not np.all(np.isfinite(converted)):
        raise UsageError(f"{what} holds NaN or infinite values")
    return converted


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < 16:
        raise UsageError("the watermark secret must be at least 16 bytes")


def embed_samples(samples: np.ndarray, rate: int, produce_id: str, secret: bytes) -> npt.NDArray[np.float32]:
    """``samples`` (channels x n, float in [-1, 1]) with the mark of ``produce_id`` added.

    Returns a new float32 array of the same shape, clipped to [-1, 1]; the input is not changed. The
    mark sits at least 25.5 dB below the signal. Audio shorter than ``min_duration(rate)`` (about
    2.6 s) cannot carry a whole tile and comes back unmarked (``embed_audio_file`` refuses it
    instead); digital silence stays silent and unmarked (the mark scales with the sound). Raises
    ``UsageError`` for a bad shape, rate, ProduceID or secret, and for no samples at all.
    """
    rate = _check_rate(rate)
    _check_secret(secret)
    audio = _as_samples(samples, "samples")
    try:
        payload = ProduceID.to_int(produce_id)
    except InvalidLabelError as exc:  # a caller mistake here
        raise UsageError(str(exc)) from exc
    marked: npt.NDArray[np.float32] = audio.copy()
    if audio.shape[1] >= scheme.min_samples(rate):
        marked += scheme.embed_delta(audio, rate, payload, secret)[0]
    np.clip(marked, -1.0, 1.0, out=marked)
    return marked


def _detection(outcome: scheme.DetectionOutcome, threshold: float) -> WatermarkDetection:
    details: dict[str, Any] = {"alignments_decoded": outcome.tried, "tiles": outcome.tiles}
    found = outcome.match is not None and outcome.p_value < threshold
    if outcome.match is not None:
        details["offset_s"] = round(outcome.match.offset_s, 4)
        details["coded_bit_errors"] = outcome.match.coded_bit_errors
    return WatermarkDetection(
        found=found,
        produce_id=ProduceID.from_int(outcome.match.payload) if found and outcome.match else None,
        p_value=outcome.p_value,
        threshold=threshold,
        scheme=SCHEME,
        details=details,
    )


def detect_samples(
    samples: np.ndarray, rate: int, secret: bytes, threshold: float = 1e-6
) -> WatermarkDetection:
    """Look for a mark made with ``secret`` in ``samples`` (channels x n).

    ``p_value`` is the false-positive bound of the scheme (alignments decoded x 2^-48) when a keyed
    tag verified, else 1. Audio too short for one whole tile gives ``found=False`` with p-value 1
    (it could not carry a mark). Raises ``UsageError`` for a bad shape, rate, secret or threshold.
    """
    rate = _check_rate(rate)
    _check_secret(secret)
    if not 0.0 < threshold <= 1.0:
        raise UsageError(f"threshold must be in (0, 1], got {threshold}")
    audio = _as_samples(samples, "samples")
    return _detection(scheme.detect(audio, rate, secret), threshold)


# -- files ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Decoded:
    samples: npt.NDArray[np.float32]
    rate: int
    layout: str
    codec: str
    sample_format: str
    bit_rate: int | None
    container_format: str
    container_metadata: dict[str, str]
    stream_metadata: dict[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class EmbeddedAudio:
    """What ``embed_audio_file`` wrote."""

    path: Path
    rate: int
    channels: int
    codec: str
    duration_s: float
    #: Signal-to-watermark ratio of the added mark before re-encoding, in dB.
    snr_db: float
    #: The written file was decoded again and the mark read back with this ProduceID. False means
    #: the content or the codec left too little of it (see the limits in ``docs/watermarks.md``).
    verified: bool


def _open(path: Path) -> av.container.InputContainer:
    try:
        if path.stat().st_size == 0:
            raise CorruptMediaError("empty file", path=path)
        return av.open(os.fspath(path), mode="r")
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file") from exc
    except (av.error.FFmpegError, OSError) as exc:
        raise UnsupportedFormatError(
            "unknown", path=path, hint=f"not an audio file FFmpeg can read: {exc}"
        ) from exc


def _decode(path: Path, *, audio_only: bool) -> _Decoded:
    with _open(path) as container:
        return _decode_container(container, path, audio_only=audio_only)


def _decode_container(container: av.container.InputContainer, path: Path, *, audio_only: bool) -> _Decoded:
    if not container.streams.audio:
        raise UnsupportedFormatError("no audio stream", path=path)
    if (
        audio_only
        and container.streams.video
        and any(not (s.disposition & av.stream.Disposition.attached_pic) for s in container.streams.video)
    ):
        raise UnsupportedFormatError(
            container.format.name,
            path=path,
            hint="a video: its audio track is marked by the video watermark",
        )
    stream = container.streams.audio[0]
    context = stream.codec_context
    if context is None or not context.channels:
        raise CorruptMediaError("the audio stream names no codec or no channels FFmpeg can decode", path=path)
    rate = int(context.sample_rate or 0)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise UnsupportedFormatError(f"audio at {rate} Hz", path=path, hint=f"{MIN_RATE}..{MAX_RATE} Hz")
    layout, channels = context.layout.name, context.channels
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0
    try:
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                array = np.asarray(out.to_ndarray(), dtype=np.float32)
                if array.shape[0] != channels:
                    raise CorruptMediaError("the number of audio channels changes mid-stream", path=path)
                chunks.append(array)
                total += array.shape[1]
            if total > MAX_SAMPLES:
                raise MediaLimitError(f"more than {MAX_SAMPLES} samples per channel", path=path)
        for out in resampler.resample(None):
            array = np.asarray(out.to_ndarray(), dtype=np.float32)
            if array.shape[0] != channels:
                raise CorruptMediaError("the number of audio channels changes mid-stream", path=path)
            chunks.append(array)
    except (av.error.FFmpegError, ValueError) as exc:
        raise CorruptMediaError(f"audio cannot be decoded: {exc}", path=path) from exc
    if not chunks or sum(c.shape[1] for c in chunks) == 0:
        raise CorruptMediaError("no audio samples could be decoded", path=path)
    samples = np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)
    return _Decoded(
        samples=samples,
        rate=rate,
        layout=layout,
        codec=context.name,
        sample_format=context.format.name if context.format else "fltp",
        bit_rate=context.bit_rate or stream.bit_rate or container.bit_rate or None,
        container_format=container.format.name,
        container_metadata=dict(container.metadata),
        stream_metadata=dict(stream.metadata),
    )


def _encode(decoded: _Decoded, samples: npt.NDArray[np.float32], out: Any, path: Path) -> str:
    muxer = _MUXERS.get(decoded.container_format)
    if muxer is None:
        raise UnsupportedFormatError(decoded.container_format, path=path, hint="no audio watermark writer")
    encoder = _ENCODERS.get(decoded.codec, decoded.codec)
    if encoder not in av.codecs_available:
        raise UnsupportedFormatError(
            f"{decoded.codec} audio", path=path, hint="no encoder in this FFmpeg build"
        )
    with av.open(out, mode="w", format=muxer) as container:
        container.metadata.update(decoded.container_metadata)
        stream = container.add_stream(encoder, rate=decoded.rate, layout=decoded.layout)
        if not isinstance(stream, av.audio.stream.AudioStream):  # pragma: no cover - an audio codec name
            raise UnsupportedFormatError(f"{decoded.codec} audio", path=path, hint="not an audio encoder")
        context = stream.codec_context
        if decoded.sample_format in {f.name for f in (context.codec.audio_formats or ())}:
            context.format = decoded.sample_format
        lossless = encoder.startswith("pcm_") or encoder in {"flac", "alac"}
        if not lossless:
            bit_rate = decoded.bit_rate or _LOSSY_DEFAULT_BITRATE
            # Opus and Vorbis report only an average, often far below what the encoder needs to keep
            # fine band energies: never go below 96 kbps for them.
            stream.bit_rate = (
                max(bit_rate, _MIN_VBR_BITRATE) if encoder in {"libopus", "vorbis"} else bit_rate
            )
        if encoder == "vorbis":
            context.options = {"strict": "experimental"}
        stream.metadata.update(decoded.stream_metadata)
        frame_size = context.frame_size or 4096
        resampler = av.AudioResampler(
            format=context.format.name if context.format else "fltp",
            layout=decoded.layout,
            rate=decoded.rate,
            frame_size=frame_size,
        )
        try:
            for start in range(0, samples.shape[1], 1 << 16):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples[:, start : start + (1 << 16)]),
                    format="fltp",
                    layout=decoded.layout,
                )
                frame.sample_rate = decoded.rate
                for piece in resampler.resample(frame):
                    container.mux(stream.encode(piece))
            for piece in resampler.resample(None):
                container.mux(stream.encode(piece))
            container.mux(stream.encode(None))
        except av.error.FFmpegError as exc:
            raise UnsupportedFormatError(
                f"{decoded.codec} audio", path=path, hint=f"cannot re-encode: {exc}"
            ) from exc
    return encoder


def embed_audio_file(src: Path, dst: Path, produce_id: str, settings: Settings) -> EmbeddedAudio:
    """Write ``src`` with the mark of ``produce_id`` (key from ``settings``) to ``dst``, atomically.

    Keeps sample rate, channel layout, container and codec: WAV, FLAC and ALAC stay lossless (and
    keep their sample format); MP3, AAC, Opus and Vorbis are re-encoded at the source bit rate (at
    least 96 kbps for Opus and Vorbis). Container and stream tags are copied; other streams (cover
    art) are not. ``src`` is never changed and may not be ``dst``. Raises ``UsageError`` (same path,
    too short, bad ProduceID), ``UnsupportedFormatError`` (no audio, a video, no encoder),
    ``CorruptMediaError`` (empty or undecodable), ``MediaLimitError`` (more than ``MAX_SAMPLES`` per
    channel, 1 hour at 48 kHz), ``ConfigError`` (no key).
    """
    secret = watermark_secret(settings)
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and src.samefile(dst):
        raise UsageError(f"{dst}: the output must not be the input (inputs are never modified)")
    decoded = _decode(src, audio_only=True)
    if decoded.samples.shape[1] < scheme.min_samples(decoded.rate):
        raise UsageError(
            f"{src}: {decoded.samples.shape[1] / decoded.rate:.2f} s of audio is shorter than the"
            f" {min_duration(decoded.rate):.2f} s one watermark tile needs"
        )
    try:
        marked = embed_samples(decoded.samples, decoded.rate, produce_id, secret)
    except UsageError as exc:
        raise UsageError(f"{src}: {exc}") from exc
    signal = float(np.mean(np.square(decoded.samples, dtype=np.float64)))
    noise = float(np.mean(np.square(marked - decoded.samples, dtype=np.float64)))
    snr = math.inf if noise == 0 else 10 * math.log10(signal / noise)
    with atomic_output(dst) as out:
        codec = _encode(decoded, marked, out, dst)
        out.seek(0)
        try:
            with av.open(out, mode="r") as container:
                written = _decode_container(container, dst, audio_only=True)
        except (MediaError, av.error.FFmpegError) as exc:
            raise WriteVerificationError(f"the written audio does not read back: {exc}", path=dst) from exc
        outcome = scheme.detect(written.samples, written.rate, secret)
    return EmbeddedAudio(
        path=dst,
        rate=decoded.rate,
        channels=marked.shape[0],
        codec=codec,
        duration_s=marked.shape[1] / decoded.rate,
        snr_db=snr,
        verified=outcome.match is not None and outcome.match.payload == ProduceID.to_int(produce_id),
    )


def detect_audio_file(path: Path, settings: Settings) -> WatermarkDetection:
    """Look for the audio mark in the first audio stream of ``path`` (an audio or a video file).

    Threshold and key come from ``settings``. Raises ``UnsupportedFormatError`` (no audio stream,
    not readable by FFmpeg), ``CorruptMediaError`` (empty or undecodable), ``ConfigError`` (no key).
    """
    secret = watermark_secret(settings)
    decoded = _decode(Path(path), audio_only=False)
    return _detection(scheme.detect(decoded.samples, decoded.rate, secret), settings.watermark_p_threshold)
