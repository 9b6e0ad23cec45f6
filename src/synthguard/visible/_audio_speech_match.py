"""Finding synthguard's own spoken prompt (the bundled clip) in audio, by its spectral envelope.

Recognising speech in general needs a speech recognition model, and none is bundled. The clip that
synthguard inserts is known exactly, though, so a matched filter finds it: log energies in 24 bands
(150 Hz-4 kHz, 32 ms window, 10 ms hop) are compared with the clip's by normalised correlation over
the whole clip, computed with FFTs. Subtracting the window's mean makes it blind to gain; band
envelopes survive resampling and lossy coding. Hand-written because no library offers audio
template matching without a model. Other voices saying 人工智能生成 are not recognised.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from synthguard.visible.speech import SPOKEN_TEXT, spoken_prompt

__all__ = ["SpokenMatch", "find_spoken_prompt"]

FloatArray = npt.NDArray[np.float64]

_WINDOW: Final = 512
_HOP: Final = 160
_BANDS: Final = 24
_LOW_HZ: Final = 150.0
_HIGH_HZ: Final = 4000.0
#: Band energies below this (about -70 dBFS) count as silence, whatever the coding noise under it.
_FLOOR: Final = 1e-7
#: Normalised correlation a match must reach (the clip itself scores about 1.0; MP3 at 64 kb/s,
#: resampling and noise 20 dB down stay above 0.8; other speech and music stay below 0.5).
THRESHOLD: Final = 0.7


@dataclasses.dataclass(frozen=True)
class SpokenMatch:
    """The bundled spoken prompt found at ``start_s``-``end_s`` with correlation ``score``."""

    start_s: float
    end_s: float
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "score": round(self.score, 3),
            "says": SPOKEN_TEXT,
        }


@functools.lru_cache(maxsize=4)
def _edges(rate: int) -> npt.NDArray[np.intp]:
    freqs = np.fft.rfftfreq(_WINDOW, 1.0 / rate)
    bounds = np.geomspace(_LOW_HZ, _HIGH_HZ, _BANDS + 1)
    return np.searchsorted(freqs, bounds).astype(np.intp)


def _features(samples: FloatArray, rate: int) -> FloatArray:
    """Log band energies, frames x bands."""
    if samples.size < _WINDOW:
        return np.zeros((0, _BANDS))
    frames = np.lib.stride_tricks.sliding_window_view(samples, _WINDOW)[::_HOP]
    spectrum = np.fft.rfft(frames * np.hanning(_WINDOW), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2) / (_WINDOW / 4) ** 2
    cumulative = np.concatenate((np.zeros((power.shape[0], 1)), np.cumsum(power, axis=1)), axis=1)
    edges = _edges(rate)
    bands = cumulative[:, edges[1:]] - cumulative[:, edges[:-1]]
    return np.asarray(np.log10(np.maximum(bands, _FLOOR)), dtype=np.float64)


@functools.lru_cache(maxsize=4)
def _template(rate: int) -> tuple[FloatArray, float]:
    """The clip's features with their mean removed, and their norm."""
    features = _features(np.asarray(spoken_prompt(rate), dtype=np.float64), rate)
    centred = features - features.mean()
    return centred, float(np.sqrt(np.sum(centred**2)))


def find_spoken_prompt(samples: npt.ArrayLike, rate: int, *, offset_s: float = 0.0) -> list[SpokenMatch]:
    """Every occurrence of the bundled spoken prompt in mono ``samples`` at ``rate`` (16 kHz is what
    the checker uses); times are ``offset_s`` plus seconds from the first sample."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float64).reshape(-1))
    template, norm = _template(rate)
    length = template.shape[0]
    features = _features(x, rate)
    count = features.shape[0] - length + 1
    if count <= 0 or norm == 0.0:
        return []
    size = 1 << int(np.ceil(np.log2(features.shape[0] + length)))
    product = np.fft.rfft(features, size, axis=0) * np.fft.rfft(template[::-1], size, axis=0)
    numerator = np.fft.irfft(product, size, axis=0).sum(axis=1)[length - 1 : length - 1 + count]
    per_frame = features.sum(axis=1)
    per_frame_sq = (features**2).sum(axis=1)
    window_sum = np.convolve(per_frame, np.ones(length), mode="valid")
    window_sq = np.convolve(per_frame_sq, np.ones(length), mode="valid")
    cells = length * _BANDS
    variance = np.maximum(window_sq - window_sum**2 / cells, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(variance > 1e-9, numerator / (np.sqrt(variance) * norm), 0.0)
    matches: list[SpokenMatch] = []
    candidates = np.flatnonzero(score >= THRESHOLD)
    for t in candidates[np.argsort(score[candidates])[::-1]]:
        start = offset_s + t * _HOP / rate
        if any(abs(m.start_s - start) < length * _HOP / rate / 2 for m in matches):
            continue
        matches.append(SpokenMatch(start, start + ((length - 1) * _HOP + _WINDOW) / rate, float(score[t])))
    matches.sort(key=lambda m: m.start_s)
    return matches
