"""The error-correcting code of the audio watermark: a convolutional code with soft Viterbi decoding.

Hand-written (about 60 lines of numpy) because no installed library offers soft-decision decoding,
and soft decisions are worth about 2 dB here: the detector's evidence for each coded bit is a
correlation, not a hard 0/1. ``reedsolo`` (installed) corrects hard symbol errors only.

The code is the rate-1/3, constraint-length-7 code of LTE (generators 133, 171, 165 octal), zero
terminated: ``k`` message bits become ``3 * (k + 6)`` coded bits. ``viterbi_decode`` decodes a batch of
received words at once (one per alignment the detector tries), which is what keeps detection fast.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["coded_length", "conv_encode", "viterbi_decode"]

_K: Final = 7
_MEMORY: Final = _K - 1
_STATES: Final = 1 << _MEMORY
_GENERATORS: Final = (0o133, 0o171, 0o165)
_RATE: Final = len(_GENERATORS)


def _parity(value: int) -> int:
    return bin(value).count("1") & 1


def _tables() -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """For each (state, input bit): the next state, and the output signs (+1 for 0, -1 for 1).

    The register holds the newest bit in its top position: ``reg = (bit << 6) | state``; the next
    state is ``reg >> 1``.
    """
    nxt = np.zeros((_STATES, 2), dtype=np.intp)
    signs = np.zeros((_STATES, 2, _RATE), dtype=np.float64)
    for state in range(_STATES):
        for bit in (0, 1):
            reg = (bit << _MEMORY) | state
            nxt[state, bit] = reg >> 1
            for j, gen in enumerate(_GENERATORS):
                signs[state, bit, j] = 1.0 - 2.0 * _parity(reg & gen)
    # Each next state has exactly two predecessors: (2s mod 64) and (2s mod 64) + 1, same input bit.
    prev = np.zeros((_STATES, 2), dtype=np.intp)
    for ns in range(_STATES):
        prev[ns] = [(ns << 1) & (_STATES - 1), ((ns << 1) & (_STATES - 1)) | 1]
    return nxt, signs, prev


_NEXT, _SIGNS, _PREV = _tables()


def coded_length(message_bits: int) -> int:
    """The number of coded bits for ``message_bits`` message bits (tail included)."""
    return _RATE * (message_bits + _MEMORY)


def conv_encode(bits: list[int]) -> npt.NDArray[np.int8]:
    """Encode ``bits`` (0/1) and the 6 zero tail bits; returns the coded bits (0/1)."""
    state = 0
    out: list[int] = []
    for bit in [*bits, *([0] * _MEMORY)]:
        out.extend(int(s < 0) for s in _SIGNS[state, bit])
        state = int(_NEXT[state, bit])
    return np.array(out, dtype=np.int8)


def viterbi_decode(soft: npt.NDArray[np.float64], message_bits: int) -> npt.NDArray[np.int8]:
    """Maximum-likelihood message bits for each row of ``soft``.

    ``soft`` has shape ``(batch, coded_length(message_bits))``: positive values favour a coded 0,
    negative a coded 1, magnitudes are confidences (any common scale). Returns ``(batch,
    message_bits)`` 0/1 values; the path is forced to end in the zero state (the tail).
    """
    batch = soft.shape[0]
    steps = message_bits + _MEMORY
    if soft.shape[1] != _RATE * steps:
        raise ValueError(f"expected {_RATE * steps} soft values per word, got {soft.shape[1]}")
    received = soft.reshape(batch, steps, _RATE)
    # Branch sign tables seen from the next state: for ns, predecessor p in _PREV[ns], input bit ns>>5.
    in_bit = (np.arange(_STATES) >> (_MEMORY - 1)) & 1
    branch_signs = _SIGNS[_PREV, in_bit[:, None]]  # (64, 2, 3)
    flat_signs = branch_signs.reshape(_STATES * 2, _RATE).T  # (3, 128)
    metric = np.full((batch, _STATES), -np.inf)
    metric[:, 0] = 0.0
    choices = np.zeros((steps, batch, _STATES), dtype=np.int8)
    for step in range(steps):
        branch = (received[:, step, :] @ flat_signs).reshape(batch, _STATES, 2)
        candidates = metric[:, _PREV] + branch  # (batch, 64, 2)
        pick = np.argmax(candidates, axis=2)
        choices[step] = pick
        metric = np.take_along_axis(candidates, pick[..., None], axis=2)[..., 0]
    state = np.zeros(batch, dtype=np.intp)
    bits = np.zeros((batch, steps), dtype=np.int8)
    rows = np.arange(batch)
    for step in range(steps - 1, -1, -1):
        bits[:, step] = in_bit[state]
        state = _PREV[state, choices[step, rows, state]]
    return bits[:, :message_bits]
