"""The rhythm prompt of GB 45438 Chapter 5 (short-long-short-short, Morse "AI"): make it and find it.

:class:`RhythmSpec` renders the prompt: a sine tone whose frequency, short and long durations, gaps
and level are configuration (defaults 800 Hz, 120 ms, 360 ms, 120 ms, -12 dBFS; the standard fixes no
tempo), each tone shaped with raised-cosine ramps so it starts and stops without a click.

:func:`find_rhythm` finds the pattern in any audio, made by anyone: no fixed frequency or tempo is
assumed. It is hand-written (no audio library detects Morse-like tone patterns); the method:

1. a short-time spectrum (20 ms Hann window, 5 ms hop);
2. per frame, the strongest spectral peak between 100 Hz and 8 kHz, and its *concentration*: the
   share of the frame's energy within one bin of the peak (a pure tone is near 1, noise, speech and
   chords are far lower);
3. candidate frequencies: peaks that are concentrated in enough frames;
4. per candidate, an on/off sequence (concentrated energy at that frequency, above a level floor),
   cleaned of runs shorter than 10 ms;
5. the pattern: four tones short-long-short-short, the long 2-5 times the shorts, the shorts within
   a factor 1.6 of each other, gaps 0.4-2.5 shorts (the gap between the letters up to 4, so a
   Morse letter gap counts), tone levels within 8 dB of each other, and silence at that frequency
   before and after (so a longer Morse message is not read as "AI"). Unit durations from 30 ms to
   0.5 s are accepted, so tempo changes of far more than 30% are found.

:func:`find_rhythm_in_file` decodes with PyAV, downmixes and resamples to 16 kHz, and scans the whole
file in overlapping 60 s segments, so memory stays flat in the file's length.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, Protocol, TypeVar

import av
import numpy as np
import numpy.typing as npt

from synthguard.errors import ConfigError, CorruptMediaError, MediaError, UnsupportedFormatError

__all__ = [
    "ANALYSIS_RATE",
    "RhythmMatch",
    "RhythmSpec",
    "decode_mono",
    "find_rhythm",
    "find_rhythm_in_file",
    "scan_audio_file",
]

FloatArray = npt.NDArray[np.float64]

#: Sample rate the detector works at (tones up to 8 kHz are found).
ANALYSIS_RATE: Final = 16000
_WINDOW_S: Final = 0.020
_HOP_S: Final = 0.005
_MIN_HZ: Final = 100.0
_MAX_HZ: Final = 8000.0
#: Share of a frame's energy within one bin of its peak for the frame to count as a tone.
_CONCENTRATION: Final = 0.3
#: A tone must be at least this loud (dBFS, full-scale sine = 0).
_FLOOR_DBFS: Final = -65.0
_MIN_UNIT_S: Final = 0.03
_MAX_UNIT_S: Final = 0.5
_SEGMENT_S: Final = 60.0
_OVERLAP_S: Final = 12.0
_EDGE_S: Final = 3.0


@dataclasses.dataclass(frozen=True)
class RhythmSpec:
    """The rhythm prompt to render. Durations in seconds, level in dBFS (peak of the sine).

    >>> RhythmSpec().duration_s
    1.08
    """

    frequency_hz: float = 800.0
    short_s: float = 0.12
    long_s: float = 0.36
    gap_s: float = 0.12
    level_dbfs: float = -12.0
    ramp_s: float = 0.005

    def __post_init__(self) -> None:
        if not 100.0 <= self.frequency_hz <= 8000.0:
            raise ConfigError(
                f"setting visible_rhythm_frequency_hz must be 100-8000 Hz, got {self.frequency_hz}"
            )
        if not 0.04 <= self.short_s <= 1.0:
            raise ConfigError(
                f"setting visible_rhythm_short_ms must be 40-1000 ms, got {self.short_s * 1000:g}"
            )
        if not 2.0 * self.short_s <= self.long_s <= 5.0 * self.short_s:
            raise ConfigError(
                "setting visible_rhythm_long_ms must be 2 to 5 times visible_rhythm_short_ms "
                f"(a long tone must be told from a short one), got {self.long_s * 1000:g}"
            )
        if not 0.5 * self.short_s <= self.gap_s <= 2.0 * self.short_s:
            raise ConfigError(
                "setting visible_rhythm_gap_ms must be 0.5 to 2 times visible_rhythm_short_ms, "
                f"got {self.gap_s * 1000:g}"
            )
        if not -40.0 <= self.level_dbfs <= 0.0:
            raise ConfigError(
                f"setting visible_rhythm_level_dbfs must be -40 to 0 dBFS, got {self.level_dbfs}"
            )

    @classmethod
    def from_settings(cls, settings: Any) -> RhythmSpec:
        """The configured prompt (``visible_rhythm_*`` settings), validated: ``ConfigError`` if not."""
        return cls(
            frequency_hz=float(getattr(settings, "visible_rhythm_frequency_hz", 800.0)),
            short_s=float(getattr(settings, "visible_rhythm_short_ms", 120.0)) / 1000.0,
            long_s=float(getattr(settings, "visible_rhythm_long_ms", 360.0)) / 1000.0,
            gap_s=float(getattr(settings, "visible_rhythm_gap_ms", 120.0)) / 1000.0,
            level_dbfs=float(getattr(settings, "visible_rhythm_level_dbfs", -12.0)),
        )

    @property
    def tones(self) -> tuple[tuple[float, float], ...]:
        """``(start, end)`` of the four tones, in seconds from the prompt's start."""
        spans = []
        t = 0.0
        for length in (self.short_s, self.long_s, self.short_s, self.short_s):
            spans.append((round(t, 6), round(t + length, 6)))
            t += length + self.gap_s
        return tuple(spans)

    @property
    def duration_s(self) -> float:
        """From the first tone's start to the last tone's end."""
        return round(3 * self.short_s + self.long_s + 3 * self.gap_s, 6)

    def render(self, sample_rate: int) -> FloatArray:
        """The prompt as mono float samples in [-1, 1] at ``sample_rate``, silence between tones."""
        if sample_rate < 2 * self.frequency_hz + 1:
            raise ConfigError(
                f"a {self.frequency_hz:g} Hz rhythm tone cannot be played at {sample_rate} Hz; "
                "lower visible_rhythm_frequency_hz"
            )
        total = round(self.duration_s * sample_rate)
        out = np.zeros(total, dtype=np.float64)
        amplitude = 10.0 ** (self.level_dbfs / 20.0)
        for start, end in self.tones:
            first, last = round(start * sample_rate), round(end * sample_rate)
            n = last - first
            t = np.arange(n, dtype=np.float64) / sample_rate
            tone = amplitude * np.sin(2.0 * math.pi * self.frequency_hz * t)
            ramp = min(round(self.ramp_s * sample_rate), n // 4)
            if ramp > 0:
                shape = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
                tone[:ramp] *= shape
                tone[n - ramp :] *= shape[::-1]
            out[first:last] = tone
        return out

    def describe(self) -> str:
        """Words for reports: ``rhythm short-long-short-short 800 Hz 120/360/120 ms``."""
        return (
            f"rhythm short-long-short-short {self.frequency_hz:g} Hz "
            f"{self.short_s * 1000:g}/{self.long_s * 1000:g}/{self.gap_s * 1000:g} ms"
        )


@dataclasses.dataclass(frozen=True)
class RhythmMatch:
    """One rhythm prompt found: where (seconds in the file), at what frequency and tempo.

    ``fit`` is 1.0 for the textbook ratios (long = 3 shorts, gaps = 1 short) and falls towards 0 at
    the edges of what is accepted.
    """

    start_s: float
    end_s: float
    frequency_hz: float
    short_s: float
    long_s: float
    gap_s: float
    level_dbfs: float
    fit: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, times rounded to milliseconds."""
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "frequency_hz": round(self.frequency_hz, 1),
            "short_ms": round(self.short_s * 1000),
            "long_ms": round(self.long_s * 1000),
            "gap_ms": round(self.gap_s * 1000),
            "level_dbfs": round(self.level_dbfs, 1),
            "fit": round(self.fit, 3),
        }


# -- detection -----------------------------------------------------------------------------------


def _spectrum(samples: FloatArray, rate: int) -> tuple[FloatArray, FloatArray, int, int]:
    """Power spectrogram (frames x bins, normalised so a full-scale sine peaks near 1), bin
    frequencies, window and hop in samples."""
    window = max(16, round(_WINDOW_S * rate))
    hop = max(1, round(_HOP_S * rate))
    if samples.size < window:
        return np.zeros((0, window // 2 + 1)), np.zeros(window // 2 + 1), window, hop
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::hop]
    taper = np.hanning(window)
    spectrum = np.fft.rfft(frames * taper, axis=1)
    # a sine of amplitude 1 puts (sum(taper)/2)^2 into its bin (spread over about 3 bins)
    power = (spectrum.real**2 + spectrum.imag**2) / (taper.sum() / 2.0) ** 2
    freqs = np.fft.rfftfreq(window, 1.0 / rate).astype(np.float64)
    return np.asarray(power, dtype=np.float64), freqs, window, hop


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[bool, int, int]]:
    """Run-length encoding: ``(value, first index, length)``."""
    if flags.size == 0:
        return []
    change = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [flags.size]))
    return [(bool(flags[s]), int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def _clean(flags: npt.NDArray[np.bool_], min_frames: int) -> npt.NDArray[np.bool_]:
    """Flip runs shorter than ``min_frames`` (flicker at tone edges, MP3 pre-echo)."""
    out = flags.copy()
    for value, start, length in _runs(flags):
        if length < min_frames and start > 0 and start + length < flags.size:
            out[start : start + length] = not value
    return out


def _within(value: float, low: float, high: float) -> bool:
    return low <= value <= high


def find_rhythm(samples: npt.ArrayLike, sample_rate: int, *, offset_s: float = 0.0) -> list[RhythmMatch]:
    """Every short-long-short-short tone pattern in mono ``samples`` (floats, full scale 1.0).

    Times in the matches are ``offset_s`` plus seconds from the first sample. Returns ``[]`` when
    there is none; never raises on odd content (silence, clipping, DC).
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    power, freqs, window, hop = _spectrum(x, sample_rate)
    if power.shape[0] < 8:
        return []
    band = np.flatnonzero((freqs >= _MIN_HZ) & (freqs <= min(_MAX_HZ, sample_rate / 2 - 100)))
    if band.size < 3:
        return []
    total = power.sum(axis=1) + 1e-20
    peak = band[np.argmax(power[:, band], axis=1)]
    rows = np.arange(power.shape[0])
    peak_energy = (
        power[rows, peak] + power[rows, peak - 1] + power[rows, np.minimum(peak + 1, power.shape[1] - 1)]
    )
    tonal = (peak_energy / total >= _CONCENTRATION) & (peak_energy >= 10 ** (_FLOOR_DBFS / 10))
    if np.count_nonzero(tonal) < 4 * _MIN_UNIT_S / _HOP_S:
        return []
    # candidates: the bins that are a concentrated peak most often (neighbours merged)
    counts = np.bincount(peak[tonal], minlength=power.shape[1])
    candidates: list[int] = []
    for k in np.argsort(counts)[::-1]:
        if counts[k] < 2 * _MIN_UNIT_S / _HOP_S or len(candidates) >= 6:
            break
        if all(abs(int(k) - c) > 1 for c in candidates):
            candidates.append(int(k))
    # a frame counts as tone as soon as its window overlaps one, so measured tones are longer and
    # gaps shorter than played by about the window's length (less in noise): correct most of it
    smear = 0.75 * window / sample_rate
    matches: list[RhythmMatch] = []
    for k in candidates:
        lo, hi = max(k - 1, 1), min(k + 2, power.shape[1])
        energy = power[:, lo:hi].sum(axis=1)
        on = (energy / total >= _CONCENTRATION) & (energy >= 10 ** (_FLOOR_DBFS / 10))
        on = _clean(on, max(2, round(0.010 / _HOP_S)))
        runs = _runs(on)
        weights = power[:, lo:hi]
        for i, (value, _, _) in enumerate(runs):
            if not value or i + 6 >= len(runs):
                continue
            tones = [runs[i + j] for j in (0, 2, 4, 6)]
            gaps = [runs[i + j] for j in (1, 3, 5)]
            durations = [max(n * _HOP_S - smear, 1e-3) for _, _, n in tones]
            silences = [n * _HOP_S + smear for _, _, n in gaps]
            found = _judge(durations, silences, runs, i)
            if found is None:
                continue
            fit, before_ok = found
            if not before_ok:
                continue
            levels = [
                # a Hann window spreads a sine over three bins: 1.5 times its peak power
                10 * math.log10(float(np.median(energy[s : s + n])) / 1.5 + 1e-20)
                for _, s, n in tones
            ]
            if max(levels) - min(levels) > 8.0:
                continue
            first, last = tones[0][1], tones[3][1] + tones[3][2]
            spec = weights[first:last].sum(axis=0)
            centre = float(np.dot(spec, freqs[lo:hi]) / (spec.sum() + 1e-20))
            shorts = [durations[0], durations[2], durations[3]]
            start = offset_s + first * hop / sample_rate
            end = offset_s + ((last - 1) * hop + window) / sample_rate
            matches.append(
                RhythmMatch(
                    start_s=start,
                    end_s=end,
                    frequency_hz=centre,
                    short_s=float(np.median(shorts)),
                    long_s=durations[1],
                    gap_s=float(np.median(silences)),
                    level_dbfs=float(np.median(levels)),
                    fit=fit,
                )
            )
    matches.sort(key=lambda m: m.start_s)
    unique: list[RhythmMatch] = []
    for match in matches:
        if unique and match.start_s < unique[-1].end_s:
            if match.fit > unique[-1].fit:
                unique[-1] = match
            continue
        unique.append(match)
    return unique


def _judge(
    durations: list[float],
    silences: list[float],
    runs: list[tuple[bool, int, int]],
    i: int,
) -> tuple[float, bool] | None:
    """Fit of four tones and three gaps to short-long-short-short, and whether the pattern stands
    alone (silence at its frequency before and after); ``None`` when it is not the pattern."""
    s0, long_, s2, s3 = durations
    shorts = (s0, s2, s3)
    unit = float(np.median(shorts))
    if not _within(unit, _MIN_UNIT_S, _MAX_UNIT_S) or max(shorts) > 1.6 * min(shorts):
        return None
    ratio = long_ / unit
    if not _within(ratio, 2.0, 5.0) or long_ < 1.6 * max(shorts):
        return None
    g0, g1, g2 = (g / unit for g in silences)
    if not (_within(g0, 0.4, 2.5) and _within(g2, 0.4, 2.5) and _within(g1, 0.4, 4.0)):
        return None
    # stands alone: before the first tone and after the last, quiet at this frequency for longer
    # than any of the pattern's own gaps (or the stream's edge), so the A and I inside a Morse
    # message (MAIL: letter gaps on both sides) are not read as the prompt
    need = 1.25 * max(silences) / _HOP_S
    before = runs[i - 1] if i > 0 else None
    after = runs[i + 7] if i + 7 < len(runs) else None
    before_ok = before is None or before[2] >= need
    after_ok = after is None or after[2] >= need
    fit = math.exp(-abs(math.log(ratio / 3.0)) - sum(abs(math.log(g)) for g in (g0, g2)) / 2)
    return fit, before_ok and after_ok


# -- files ---------------------------------------------------------------------------------------


def decode_mono(path: str | os.PathLike[str], rate: int = ANALYSIS_RATE) -> Iterator[FloatArray]:
    """The first audio stream of a file, downmixed to mono float at ``rate``, in blocks.

    Raises ``CorruptMediaError`` for bytes FFmpeg cannot read and ``UnsupportedFormatError`` for a
    file without an audio stream.
    """
    try:
        container = av.open(os.fspath(path))
    except av.FFmpegError as exc:
        raise CorruptMediaError(f"cannot be read as audio: {exc}", path=path) from None
    with container:
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            raise UnsupportedFormatError("media without an audio stream", path=path)
        resampler = av.AudioResampler(format="dbl", layout="mono", rate=rate)
        try:
            for frame in container.decode(stream):
                if not isinstance(frame, av.AudioFrame):
                    continue
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1).astype(np.float64, copy=False)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1).astype(np.float64, copy=False)
        except av.FFmpegError as exc:
            raise CorruptMediaError(f"audio cannot be decoded: {exc}", path=path) from None


class Span(Protocol):
    """Anything found in audio: it has a start and an end in seconds."""

    @property
    def start_s(self) -> float: ...

    @property
    def end_s(self) -> float: ...


SpanT = TypeVar("SpanT", bound=Span)


def find_rhythm_in_file(path: str | os.PathLike[str]) -> tuple[list[RhythmMatch], float]:
    """Every rhythm prompt in the file's first audio stream, and the stream's duration in seconds.

    Scans the whole stream in 60 s segments that overlap by 12 s (:func:`scan_audio_file`), so
    memory stays flat. Raises ``MediaError`` subclasses (see :func:`decode_mono`); zero-length
    audio raises ``CorruptMediaError``.
    """
    return scan_audio_file(path, find_rhythm)


def scan_audio_file(
    path: str | os.PathLike[str], detect: Callable[..., Sequence[SpanT]]
) -> tuple[list[SpanT], float]:
    """Run ``detect(samples, ANALYSIS_RATE, offset_s=...)`` over the file's first audio stream in
    60 s segments overlapping by 12 s (what it finds must last under 6 s); each find reported once,
    in time order, with the stream's duration in seconds."""
    found: list[SpanT] = []
    buffer = np.zeros(0, dtype=np.float64)
    buffer_start = 0
    total = 0
    segment = round(_SEGMENT_S * ANALYSIS_RATE)
    overlap = round(_OVERLAP_S * ANALYSIS_RATE)

    def scan(final: bool) -> None:
        offset = buffer_start / ANALYSIS_RATE
        end = offset + buffer.size / ANALYSIS_RATE
        for match in detect(buffer, ANALYSIS_RATE, offset_s=offset):
            if buffer_start > 0 and match.start_s < offset + _EDGE_S:
                continue
            if not final and match.end_s > end - _EDGE_S:
                continue
            if any(type(m) is type(match) and abs(m.start_s - match.start_s) < 0.05 for m in found):
                continue
            found.append(match)

    try:
        pending: list[FloatArray] = []
        pending_size = 0
        for block in decode_mono(path):
            total += block.size
            pending.append(block)
            pending_size += block.size
            if buffer.size + pending_size < segment + overlap:
                continue
            # blocks are small (one codec frame): join them once per segment, not once per block
            buffer = np.concatenate((buffer, *pending))
            pending, pending_size = [], 0
            while buffer.size >= segment + overlap:
                keep = buffer[segment:]
                buffer = buffer[: segment + overlap]
                scan(final=False)
                buffer_start += segment
                buffer = keep
        if total == 0:
            raise CorruptMediaError("the audio stream holds no samples (zero length)", path=path)
        buffer = np.concatenate((buffer, *pending))
        scan(final=True)
    except MediaError as exc:
        raise exc.with_path(path) from None
    found.sort(key=lambda m: m.start_s)
    return found, total / ANALYSIS_RATE
