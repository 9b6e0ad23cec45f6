"""The bundled spoken prompt (人工智能生成, Mandarin, about 140 characters a minute).

The clip is ``assets/speech/prompt.flac``, made by ``scripts/make-spoken-prompt`` with espeak-ng
(see ``assets/speech/NOTE.md`` for how, and its licence). It says the default long wording; a
configured wording other than 人工智能生成 is still spoken as 人工智能生成 (make a new clip with the
script's ``--text`` to change it). :func:`spoken_prompt` returns it at any sample rate, resampled with
PyAV's ``AudioResampler`` (FFmpeg's swresample), so nothing is resampled by hand.
"""

from __future__ import annotations

import functools
import importlib.resources
import io
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt

from synthguard.errors import ConfigError

__all__ = ["SPOKEN_TEXT", "spoken_prompt"]

#: What the bundled clip says.
SPOKEN_TEXT: Final = "人工智能生成"


@functools.lru_cache(maxsize=1)
def _clip_bytes() -> bytes:
    resource = importlib.resources.files("synthguard.visible") / "assets" / "speech" / "prompt.flac"
    try:
        return resource.read_bytes()
    except OSError as exc:  # a broken installation, not a user error
        raise ConfigError(f"the bundled spoken prompt is missing ({exc}); reinstall synthguard") from exc


@functools.lru_cache(maxsize=8)
def _resampled(sample_rate: int) -> npt.NDArray[np.float64]:
    resampler = av.AudioResampler(format="dbl", layout="mono", rate=sample_rate)
    blocks: list[npt.NDArray[Any]] = []
    with av.open(io.BytesIO(_clip_bytes()), "r") as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            if isinstance(frame, av.AudioFrame):
                blocks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    blocks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    samples = np.concatenate(blocks).astype(np.float64)
    samples.setflags(write=False)
    return samples


def spoken_prompt(sample_rate: int) -> npt.NDArray[np.float64]:
    """The spoken prompt as mono floats in [-1, 1] at ``sample_rate`` (a read-only array)."""
    if not 8000 <= sample_rate <= 768000:
        raise ConfigError(f"cannot make a spoken prompt at {sample_rate} Hz")
    return _resampled(sample_rate)
