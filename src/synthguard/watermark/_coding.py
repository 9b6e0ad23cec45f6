"""Channel coding for the watermark payload: a convolutional code with a soft-decision Viterbi decoder.

Hand-written because the only error-correcting package in the dependencies (``reedsolo``) works on
byte symbols and hard decisions, which is the wrong tool for a watermark channel: its errors are
independent bit flips with reliabilities known to the detector, and soft decoding of a convolutional
code gains several decibels over hard decoding of a byte code there. The code, carrying 64 payload
bits and a CRC-16, is the rate 1/3, constraint length 7 code of 3GPP (generators 133, 171, 165
octal), terminated with six zero tail bits.

The decoder maximises the correlation ``sum(symbol * soft)`` over all codewords, which is what the
detectors' p-values assume (the union bound over every possible payload).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "CODED_LENGTH",
    "INFO_BITS",
    "PAYLOAD_BITS",
    "add_crc",
    "check_crc",
    "conv_encode",
    "list_viterbi_decode",
    "viterbi_decode",
]

#: Payload bits (the ProduceID) and the CRC-16 that follows them: the decoder's output is trusted
#: only when the CRC matches, so a near-miss decoding never reports a wrong ProduceID.
PAYLOAD_BITS: Final = 64
_CRC_BITS: Final = 16
INFO_BITS: Final = PAYLOAD_BITS + _CRC_BITS
_K: Final = 7
_MEMORY: Final = _K - 1
_STATES: Final = 1 << _MEMORY
_GENERATORS: Final = (0o133, 0o171, 0o165)
_RATE: Final = len(_GENERATORS)
#: Number of coded symbols for one 64-bit payload (with the tail).
CODED_LENGTH: Final = _RATE * (INFO_BITS + _MEMORY)


def _crc16(bits: list[int]) -> list[int]:
    """CRC-16/CCITT (polynomial 0x1021, initial 0xFFFF) of a bit list, as 16 bits."""
    crc = 0xFFFF
    for bit in bits:
        top = ((crc >> 15) & 1) ^ (bit & 1)
        crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if top else 0)
    return [(crc >> (15 - i)) & 1 for i in range(_CRC_BITS)]


def add_crc(payload: list[int]) -> list[int]:
    """``payload`` (``PAYLOAD_BITS`` bits) followed by its CRC: the ``INFO_BITS`` the code carries."""
    if len(payload) != PAYLOAD_BITS:
        raise ValueError(f"expected {PAYLOAD_BITS} bits, got {len(payload)}")
    return [*payload, *_crc16(payload)]


def check_crc(info: list[int]) -> list[int] | None:
    """The payload of decoded ``info`` bits when their CRC matches, else None."""
    payload = info[:PAYLOAD_BITS]
    return payload if _crc16(payload) == info[PAYLOAD_BITS:] else None


def _parity(value: int) -> int:
    return bin(value).count("1") & 1


def _tables() -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    # For each next state and each of its two predecessors: the predecessor and the output symbols
    # (+1 for a coded 0, -1 for a coded 1). The register holds the newest bit in its lowest bit.
    pred = np.zeros((_STATES, 2), dtype=np.intp)
    symbols = np.zeros((_STATES, 2, _RATE), dtype=np.float64)
    for nxt in range(_STATES):
        for b in range(2):
            prev = (nxt >> 1) | (b << (_MEMORY - 1))
            register = (prev << 1) | (nxt & 1)
            pred[nxt, b] = prev
            for j, g in enumerate(_GENERATORS):
                symbols[nxt, b, j] = 1.0 - 2.0 * _parity(register & g)
    return pred, symbols


_PRED, _SYMBOLS = _tables()


def conv_encode(bits: list[int]) -> npt.NDArray[np.float64]:
    """The ``CODED_LENGTH`` symbols (+1/-1) of ``bits`` (``INFO_BITS`` of them, 0/1)."""
    if len(bits) != INFO_BITS:
        raise ValueError(f"expected {INFO_BITS} bits, got {len(bits)}")
    state = 0
    out: list[float] = []
    for bit in [*bits, *([0] * _MEMORY)]:
        register = (state << 1) | (bit & 1)
        out.extend(1.0 - 2.0 * _parity(register & g) for g in _GENERATORS)
        state = register & (_STATES - 1)
    return np.asarray(out, dtype=np.float64)


def viterbi_decode(soft: npt.NDArray[np.float64]) -> list[int]:
    """The payload whose codeword correlates best with ``soft`` (positive means a coded 0).

    ``soft`` has ``CODED_LENGTH`` values; the trellis starts and ends in the zero state.
    """
    return list_viterbi_decode(soft, 1)[0]


def list_viterbi_decode(soft: npt.NDArray[np.float64], size: int) -> list[list[int]]:
    """The ``size`` info-bit sequences whose codewords correlate best with ``soft``, best first.

    A parallel list Viterbi decoder (Seshadri and Sundberg, 1994): every state keeps its ``size``
    best paths. With a CRC to choose among them (the first whose CRC holds), it decodes reliably at
    lower signal strengths than the single best path; the detectors' p-values are unaffected, since
    their union bound already counts every codeword with a valid CRC.
    """
    if soft.shape != (CODED_LENGTH,):
        raise ValueError(f"expected {CODED_LENGTH} soft values, got shape {soft.shape}")
    if size < 1:
        raise ValueError(f"list size must be at least 1, got {size}")
    steps = INFO_BITS + _MEMORY
    received = soft.reshape(steps, _RATE)
    metric = np.full((_STATES, size), -np.inf)
    metric[0, 0] = 0.0
    # back[t, state, rank]: which of the 2 * size candidates (predecessor bit * size + its rank).
    back = np.zeros((steps, _STATES, size), dtype=np.intp)
    for t in range(steps):
        branch = _SYMBOLS @ received[t]  # (states, 2)
        candidates = (metric[_PRED] + branch[:, :, None]).reshape(_STATES, 2 * size)
        if size == 1:
            order = np.argmax(candidates, axis=1)[:, None]
        else:
            order = np.argsort(-candidates, axis=1, kind="stable")[:, :size]
        back[t] = order
        metric = np.take_along_axis(candidates, order, axis=1)
    paths: list[list[int]] = []
    for rank in range(size):
        if not np.isfinite(metric[0, rank]):
            break
        state, position = 0, rank
        bits: list[int] = []
        for t in range(steps - 1, -1, -1):
            bits.append(state & 1)
            choice = int(back[t, state, position])
            state, position = int(_PRED[state, choice // size]), choice % size
        bits.reverse()
        paths.append(bits[:INFO_BITS])
    return paths
