"""The audio watermark scheme on sample arrays: spread-transform dither modulation of log band powers.

Why this design (hand-written: no installed library marks audio without downloading model weights;
see ``dependency-notes.md`` on audioseal and wavmark):

* **Domain.** Short-time spectrum, 40 ms frames every 20 ms, cut into *cells* of 100 Hz x 40 ms
  between 300 Hz and 7 kHz. Both units are defined in Hz and seconds, not samples, so a file
  resampled to 16 kHz or 48 kHz presents the same cells. The detector reads the logarithm of each
  cell's power above a floor (3 % of the long-term mean band power): a volume change adds the same
  constant to every cell and cancels (see the balanced chips below); compression noise and added
  noise move quiet cells little because the floor covers them.
* **Embedding.** The 64-bit ``ProduceID`` and a 48-bit keyed tag (HMAC) are encoded with a rate-1/3
  convolutional code into 354 coded bits. A keyed layout gives every coded bit 12 cells in each
  *tile* of 64 slots (2.56 s), with signs (chips) balanced six and six. For each tile the embedder
  projects the chip-signed log powers of a bit's cells onto their mean and moves that mean to the
  nearest point of the bit's quantiser lattice (step 0.3, keyed dither): spread-transform dither
  modulation (Chen and Wornell 2001). The host signal then does not interfere with detection at all;
  only what an attack changes does. The move is done by gains on the cells' spectral coefficients,
  weighted towards cells near the floor (cheapest in signal energy), measured again and corrected
  once. The tile repeats through the whole signal, so any excerpt of 10 s holds at least three whole
  tiles.
* **Detection.** The detector does not know where the excerpt starts. It tries every alignment: 4
  sub-frame offsets x 2 frame phases x 64 slot shifts = 512. For each it computes the projections of
  every whole tile, and the soft evidence ``cos(2 pi (p - dither) / step)`` per coded bit summed
  over tiles (weighted by how far the cells stand above the floor). Alignments are ranked, on the
  first 48 coded bits, by how well the projections sit on the lattice at all (a statistic that
  needs no knowledge of the bits); the best are read in full and decoded (soft Viterbi), and a
  decoded payload counts only when its 48-bit keyed tag verifies. Two stages: the 256 alignments of
  two of the four sub-frame offsets first (best 8 decoded), which finds most marks at half the
  cost; then all 512 (best 16 not yet decoded). The detector may weigh and rank
  evidence however it likes: the p-value below does not depend on it.
* **p-value.** For content without a mark made with this key the decoded tag of an alignment matches
  the HMAC of its decoded payload with probability 2^-48 (HMAC as a pseudo-random function; the tag
  sub-key is not used anywhere else), whatever the audio. With ``n`` alignments decoded (8 when the
  first stage finds the mark, at most 24) the false-positive bound is ``n * 2^-48`` (at most about
  8.5e-14), exact and independent of the audio's statistics.

Limits, stated in ``docs/watermarks.md``: digital silence cannot carry the mark (it is multiplicative),
content shorter than one tile plus a frame (about 2.6 s) carries nothing, and time stretching or pitch
shifting are not searched for.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from synthguard.watermark._audio_code import coded_length, conv_encode, viterbi_decode
from synthguard.watermark.base import PAYLOAD_BITS, derive_key

__all__ = ["MAX_DECODED", "SCHEME", "AudioMatch", "DetectionOutcome", "detect", "embed_delta", "min_samples"]

#: Stable scheme name (it appears in reports): change it when any constant below changes.
SCHEME: Final = "synthguard-audio-stdm-v1"

FRAME_S: Final = 0.04
HOP_S: Final = 0.02
BIN_HZ: Final = 1 / FRAME_S
K_LO: Final = 12  # 300 Hz
BAND_BINS: Final = 4  # 100 Hz per band
BANDS: Final = 67  # 300 Hz .. 7 kHz
K_HI: Final = K_LO + BANDS * BAND_BINS
SLOT_FRAMES: Final = 2
TILE_SLOTS: Final = 64
TAG_BITS: Final = 48
MESSAGE_BITS: Final = PAYLOAD_BITS + TAG_BITS
CODED_BITS: Final = coded_length(MESSAGE_BITS)
CELLS_PER_BIT: Final = 12
STEP: Final = 0.3
FLOOR: Final = 0.03
FLOOR_RADIUS_SLOTS: Final = 25
MAX_LOG_GAIN: Final = 0.7
ITERATIONS: Final = 2
SUB_OFFSETS: Final = 4
DECODED_ALIGNMENTS: Final = 16
#: Alignments decoded in the first, cheaper stage of detection (see ``detect``).
_FIRST_STAGE: Final = 8
#: The most alignments one detection decodes: the Bonferroni factor of the worst p-value.
MAX_DECODED: Final = _FIRST_STAGE + DECODED_ALIGNMENTS
#: The embedder never goes below this signal-to-watermark ratio (the issue asks for 25 dB).
MIN_SNR_DB: Final = 25.5

_TILE_CELLS: Final = TILE_SLOTS * BANDS
_CHUNK_STARTS: Final = 256
#: Frames transformed at once (bounds the full-band temporaries to a few tens of MB).
_BLOCK_FRAMES: Final = 4096
#: Coded bits that score alignments in the first pass of detection.
_RANK_BITS: Final = 48

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    """Which cells of a tile carry which coded bit, with which sign; and each bit's dither."""

    rows: npt.NDArray[np.intp]  # (CODED_BITS * CELLS_PER_BIT,) slot within the tile
    bands: npt.NDArray[np.intp]  # same shape, band
    flat: npt.NDArray[np.intp]  # rows * BANDS + bands
    chips: FloatArray  # (CODED_BITS, CELLS_PER_BIT) of +-1, six of each per bit
    dither: FloatArray  # (CODED_BITS,) in [0, STEP)
    chips32: Float32Array  # chips in single precision, for detection


def _stream(key: bytes, count: int) -> npt.NDArray[np.uint32]:
    """``count`` keyed pseudo-random 32-bit words (SHAKE-256): stable across numpy versions, unlike
    numpy's generators, so a mark made today is found with any later release."""
    return np.frombuffer(hashlib.shake_256(key).digest(4 * count), dtype=">u4").astype(np.uint32)


@functools.lru_cache(maxsize=8)
def _layout(secret: bytes) -> _Layout:
    used = CODED_BITS * CELLS_PER_BIT
    words = _stream(derive_key(secret, "audio-layout-v1"), _TILE_CELLS + used + CODED_BITS)
    cells = list(range(_TILE_CELLS))
    for i in range(_TILE_CELLS - 1, 0, -1):  # Fisher-Yates
        j = int(words[i]) % (i + 1)
        cells[i], cells[j] = cells[j], cells[i]
    flat = np.array(cells[:used], dtype=np.intp)
    chips = np.empty((CODED_BITS, CELLS_PER_BIT))
    sign_words = words[_TILE_CELLS : _TILE_CELLS + used].reshape(CODED_BITS, CELLS_PER_BIT)
    for bit in range(CODED_BITS):
        order = np.argsort(sign_words[bit], kind="stable")
        chips[bit, order[: CELLS_PER_BIT // 2]] = 1.0
        chips[bit, order[CELLS_PER_BIT // 2 :]] = -1.0
    dither = words[_TILE_CELLS + used :].astype(np.float64) / 2**32 * STEP
    return _Layout(flat // BANDS, flat % BANDS, flat, chips, dither, chips.astype(np.float32))


def _tag(secret: bytes, payload: int) -> int:
    digest = hmac.new(derive_key(secret, "audio-tag-v1"), payload.to_bytes(8, "big"), hashlib.sha256)
    return int.from_bytes(digest.digest()[: TAG_BITS // 8], "big")


def _message(secret: bytes, payload: int) -> list[int]:
    value = (payload << TAG_BITS) | _tag(secret, payload)
    return [(value >> (MESSAGE_BITS - 1 - i)) & 1 for i in range(MESSAGE_BITS)]


def _frame_length(rate: int) -> int:
    return round(rate * FRAME_S)


def min_samples(rate: int) -> int:
    """The fewest samples at ``rate`` that hold one whole tile (about 2.6 s)."""
    hop = rate * HOP_S
    return math.ceil((TILE_SLOTS * SLOT_FRAMES - 1) * hop) + _frame_length(rate)


def _usable_bands(rate: int) -> int:
    """Bands below 0.45 x the sample rate (all of them from 16 kHz up)."""
    return max(0, min(BANDS, int((0.45 * rate / BIN_HZ - K_LO) // BAND_BINS)))


@functools.lru_cache(maxsize=16)
def _window(length: int) -> Float32Array:
    """Square-root Hann: analysis x synthesis is Hann, which adds up to 1 at 50 % overlap."""
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)).astype(np.float32)


def _starts(rate: int, count: int, offset: float = 0.0) -> npt.NDArray[np.int64]:
    # Frame starts on the exact time grid (rounded per frame), so rates where 20 ms is not a whole
    # number of samples do not drift.
    return np.round(offset + np.arange(count) * (rate * HOP_S)).astype(np.int64)


def _frame_count(samples: int, rate: int, offset: float = 0.0) -> int:
    return max(0, int((samples - _frame_length(rate) - offset) // (rate * HOP_S)) + 1)


def _spectrum(signal: Float32Array, starts: npt.NDArray[np.int64], length: int) -> npt.NDArray[np.complex64]:
    """Spectra (frames x bins K_LO..K_HI) of ``signal`` framed at ``starts``, in blocks of frames so
    the full-band temporaries stay small for long files."""
    out = np.zeros((len(starts), K_HI - K_LO), dtype=np.complex64)
    window = _window(length)
    for first in range(0, len(starts), _BLOCK_FRAMES):
        block = starts[first : first + _BLOCK_FRAMES]
        hop = int(block[1] - block[0]) if len(block) > 1 else 1
        if len(block) > 1 and np.all(np.diff(block) == hop):
            # Whole-sample hop: a strided view, no index array.
            frames = sliding_window_view(signal[int(block[0]) :], length)[::hop][: len(block)] * window
        else:
            frames = signal[block[:, None] + np.arange(length)[None, :]] * window
        spectrum = np.fft.rfft(frames, axis=1)
        available = min(K_HI, spectrum.shape[1]) - K_LO
        if available > 0:
            out[first : first + len(block), :available] = spectrum[:, K_LO : K_LO + available]
    return out


def _band_power(spectrum: npt.NDArray[np.complex64]) -> FloatArray:
    power = spectrum.real.astype(np.float64) ** 2 + spectrum.imag.astype(np.float64) ** 2
    summed: FloatArray = power.reshape(power.shape[0], BANDS, BAND_BINS).sum(axis=2)
    return summed


def _cells(band_power: FloatArray, usable: int) -> tuple[FloatArray, FloatArray]:
    """Frame band powers -> (log cell powers above the floor, responsiveness) per slot and band.

    Responsiveness ``C / (C + floor)`` is how much a cell's log power follows a change of its power.
    """
    slots = band_power.shape[0] // SLOT_FRAMES
    power = band_power[: slots * SLOT_FRAMES].reshape(slots, SLOT_FRAMES, BANDS).sum(axis=1)
    power[:, usable:] = 0.0
    level = power[:, :usable].mean(axis=1) if usable else np.zeros(slots)
    sums = np.concatenate([[0.0], np.cumsum(level)])
    index = np.arange(slots)
    lo = np.clip(index - FLOOR_RADIUS_SLOTS, 0, slots)
    hi = np.clip(index + FLOOR_RADIUS_SLOTS + 1, 0, slots)
    floor = (FLOOR * (sums[hi] - sums[lo]) / np.maximum(hi - lo, 1) + 1e-20)[:, None]
    log_power = np.log(power + floor)
    log_power[:, usable:] = 0.0
    return log_power, power / (power + floor)


def _overlap_add(out: Float32Array, frames: Float32Array, starts: npt.NDArray[np.int64]) -> None:
    """Add ``frames`` into ``out`` at ``starts``, in place."""
    length = frames.shape[1]
    hop = length // 2
    if len(starts) > 1 and length == 2 * hop and np.all(np.diff(starts) == hop) and starts[0] % hop == 0:
        # Whole-sample hop: two strided adds instead of one per frame.
        first = int(starts[0]) // hop
        blocks = out[: (len(starts) + 1 + first) * hop].reshape(-1, hop)
        blocks[first : first + len(starts)] += frames[:, :hop]
        blocks[first + 1 : first + 1 + len(starts)] += frames[:, hop:]
        return
    for start, frame in zip(starts.tolist(), frames, strict=True):
        out[start : start + length] += frame


def _synthesise(
    spectrum: npt.NDArray[np.complex64], starts: npt.NDArray[np.int64], length: int, samples: int
) -> Float32Array:
    """Overlap-add of the frames whose K_LO..K_HI bins are ``spectrum`` (zero elsewhere)."""
    out = np.zeros(samples, dtype=np.float32)
    window = _window(length)
    for first in range(0, len(starts), _BLOCK_FRAMES):
        block = spectrum[first : first + _BLOCK_FRAMES]
        full = np.zeros((block.shape[0], length // 2 + 1), dtype=np.complex64)
        width = min(K_HI, full.shape[1]) - K_LO
        full[:, K_LO : K_LO + width] = block[:, :width]
        frames = (np.fft.irfft(full, n=length, axis=1) * window).astype(np.float32)
        _overlap_add(out, frames, starts[first : first + _BLOCK_FRAMES])
    return out


def embed_delta(samples: Float32Array, rate: int, payload: int, secret: bytes) -> tuple[Float32Array, float]:
    """The watermark signal to add to ``samples`` (channels x n), and the resulting SNR in dB.

    The caller checks shapes and length (at least ``min_samples(rate)``). The same gains apply to
    every channel, so the down-mix the detector reads carries the mark.
    """
    channels, count = samples.shape
    layout = _layout(secret)
    signs = 1.0 - 2.0 * conv_encode(_message(secret, payload)).astype(np.float64)
    usable = _usable_bands(rate)
    length = _frame_length(rate)
    tiles = (_frame_count(count, rate) // SLOT_FRAMES) // TILE_SLOTS
    frames = tiles * TILE_SLOTS * SLOT_FRAMES
    starts = _starts(rate, frames)
    spectra = np.stack([_spectrum(samples[c], starts, length) for c in range(channels)])
    mono_spectrum = spectra.mean(axis=0)
    mono = samples.mean(axis=0)
    target_offset = layout.dither + (1.0 - signs) / 2 * (STEP / 2)  # coded 1 sits half a step up
    log_gain = np.zeros((tiles, _TILE_CELLS))
    gain = np.ones((frames, K_HI - K_LO), dtype=np.float32)
    for iteration in range(ITERATIONS):
        measured = mono_spectrum
        if iteration:
            marked = mono + _synthesise(mono_spectrum * (gain - 1), starts, length, count)
            measured = _spectrum(marked, starts, length)
        log_power, response = _cells(_band_power(measured), usable)
        cells_log = log_power[: tiles * TILE_SLOTS].reshape(tiles, _TILE_CELLS)[:, layout.flat]
        cells_log = cells_log.reshape(tiles, CODED_BITS, CELLS_PER_BIT)
        cells_resp = response[: tiles * TILE_SLOTS].reshape(tiles, _TILE_CELLS)[:, layout.flat]
        cells_resp = cells_resp.reshape(tiles, CODED_BITS, CELLS_PER_BIT)
        projection = (cells_log * layout.chips).mean(axis=2)
        error = target_offset - projection
        error -= np.round(error / STEP) * STEP  # move to the nearest lattice point of the bit's coset
        # Weight cells near the floor: moving them costs the least signal energy for the same shift.
        weight = 1.0 - cells_resp
        spread = (cells_resp * weight).sum(axis=2, keepdims=True)
        step = error[..., None] * CELLS_PER_BIT * weight / np.maximum(spread, 1e-6) * layout.chips
        step = np.clip(step, -MAX_LOG_GAIN, MAX_LOG_GAIN)
        log_gain[:, layout.flat] += step.reshape(tiles, -1)
        np.clip(log_gain, -2 * MAX_LOG_GAIN, 2 * MAX_LOG_GAIN, out=log_gain)
        per_slot = log_gain.reshape(tiles * TILE_SLOTS, BANDS)
        per_frame = np.repeat(per_slot, SLOT_FRAMES, axis=0)
        gain = np.repeat(np.exp(per_frame / 2), BAND_BINS, axis=1).astype(np.float32)
    delta = np.stack([_synthesise(spectra[c] * (gain - 1), starts, length, count) for c in range(channels)])
    signal_power = float(np.mean(np.square(samples, dtype=np.float64)))
    delta_power = float(np.mean(np.square(delta, dtype=np.float64)))
    if delta_power == 0.0 or signal_power == 0.0:
        return delta, math.inf
    snr = 10 * math.log10(signal_power / delta_power)
    if snr < MIN_SNR_DB:
        # Loud marks only happen on odd spectra (nearly all energy in one narrow band); keep the
        # promised imperceptibility and accept a weaker mark there.
        delta *= np.float32(10 ** ((snr - MIN_SNR_DB) / 20))
        snr = MIN_SNR_DB
    return delta, snr


@dataclasses.dataclass(frozen=True, slots=True)
class AudioMatch:
    """A decoded payload whose keyed tag verified."""

    payload: int
    #: Seconds from the start of the analysed samples to the start of the first whole tile.
    offset_s: float
    #: Coded bits whose soft evidence disagreed with the re-encoded message (out of 354).
    coded_bit_errors: int


@dataclasses.dataclass(frozen=True, slots=True)
class DetectionOutcome:
    match: AudioMatch | None
    #: Alignments decoded and tag-checked (the Bonferroni factor of the p-value), at most 24.
    tried: int
    #: The false-positive bound: ``tried * 2^-48`` when a tag verified, else 1.
    p_value: float
    tiles: int


def _evidence(
    log_power: Float32Array, response: Float32Array, layout: _Layout, bits: int, starts: npt.NDArray[np.intp]
) -> FloatArray:
    """Soft evidence of the first ``bits`` coded bits for tiles starting at slots ``starts``:
    ``cos(2 pi (projection - dither) / STEP)`` (+1: coded 0, -1: coded 1), weighted by how far the
    bit's cells stand above the floor (a cell under noise carries little)."""
    # Row a of a sliding view over the flattened cells is the tile that starts at slot a.
    tiles_log = sliding_window_view(log_power.ravel(), _TILE_CELLS)[::BANDS]
    tiles_resp = sliding_window_view(response.ravel(), _TILE_CELLS)[::BANDS]
    columns = layout.flat[: bits * CELLS_PER_BIT]
    evidence = np.empty((len(starts), bits))
    for first in range(0, len(starts), _CHUNK_STARTS):
        rows = starts[first : first + _CHUNK_STARTS]
        shape = (len(rows), bits, CELLS_PER_BIT)
        values = tiles_log[rows].take(columns, axis=1).reshape(shape)
        resp = tiles_resp[rows].take(columns, axis=1).reshape(shape)
        projection = (values * layout.chips32[:bits]).mean(axis=2, dtype=np.float64)
        angle = 2 * np.pi * (projection - layout.dither[:bits]) / STEP
        evidence[first : first + len(rows)] = np.cos(angle) * resp.mean(axis=2)
    return evidence


def _tile_starts(slots: int, shift: int) -> npt.NDArray[np.intp]:
    """First slots of the whole tiles in ``slots`` slots when slot 0 is tile slot ``shift``."""
    return np.arange((TILE_SLOTS - shift) % TILE_SLOTS, slots - TILE_SLOTS + 1, TILE_SLOTS, dtype=np.intp)


@dataclasses.dataclass(frozen=True, slots=True)
class _Grid:
    """The cells of the analysed samples for one sub-frame offset and slot phase."""

    offset: float
    phase: int
    log_power: Float32Array
    response: Float32Array


def _grids(mono: Float32Array, rate: int, subs: tuple[int, ...]) -> list[_Grid]:
    """The grids of the sub-frame offsets ``subs`` (in quarters of a hop), both slot phases each."""
    usable = _usable_bands(rate)
    length = _frame_length(rate)
    hop = rate * HOP_S
    grids = []
    for sub in subs:
        offset = sub * hop / SUB_OFFSETS
        count = _frame_count(len(mono), rate, offset)
        if count < TILE_SLOTS * SLOT_FRAMES:
            continue
        power = _band_power(_spectrum(mono, _starts(rate, count, offset), length))
        for phase in range(SLOT_FRAMES):
            log_power, response = _cells(power[phase:], usable)
            if log_power.shape[0] >= TILE_SLOTS:
                # Single precision halves the memory traffic of the gathers; the evidence is a cosine.
                grids.append(_Grid(offset, phase, log_power.astype(np.float32), response.astype(np.float32)))
    return grids


def _rank(grid: _Grid, index: int, layout: _Layout) -> list[tuple[float, int, int]]:
    """(lattice fit, grid index, shift) for every slot shift of ``grid`` that has a whole tile."""
    slots = grid.log_power.shape[0]
    every = np.arange(slots - TILE_SLOTS + 1, dtype=np.intp)
    evidence = _evidence(grid.log_power, grid.response, layout, _RANK_BITS, every)
    scores = []
    for shift in range(TILE_SLOTS):
        starts = _tile_starts(slots, shift)
        if len(starts):
            summed = evidence[starts].sum(axis=0)
            scores.append((float(np.mean(summed**2)) / len(starts), index, shift))
    return scores


def _decode_alignments(
    grids: list[_Grid], chosen: list[tuple[float, int, int]], layout: _Layout, secret: bytes, rate: int
) -> AudioMatch | None:
    """Read the chosen alignments in full, decode them, and return the first whose tag verifies."""
    soft = np.stack(
        [
            _evidence(
                grids[index].log_power,
                grids[index].response,
                layout,
                CODED_BITS,
                _tile_starts(grids[index].log_power.shape[0], shift),
            ).sum(axis=0)
            for _, index, shift in chosen
        ]
    )
    decoded = viterbi_decode(soft, MESSAGE_BITS)
    for rank, (_, index, shift) in enumerate(chosen):
        value = int("".join("1" if bit else "0" for bit in decoded[rank]), 2)
        payload, tag = value >> TAG_BITS, value & ((1 << TAG_BITS) - 1)
        if hmac.compare_digest(_tag(secret, payload).to_bytes(6, "big"), tag.to_bytes(6, "big")):
            grid = grids[index]
            first = int(_tile_starts(grid.log_power.shape[0], shift)[0])
            start_s = (grid.offset + (grid.phase + first * SLOT_FRAMES) * rate * HOP_S) / rate
            signs = 1.0 - 2.0 * conv_encode(_message(secret, payload))
            return AudioMatch(payload, start_s, int(np.sum(np.sign(soft[rank]) != signs)))
    return None


def detect(samples: Float32Array, rate: int, secret: bytes) -> DetectionOutcome:
    """Look for the mark made with ``secret`` in ``samples`` (channels x n) at ``rate``.

    Every alignment is scored on the first ``_RANK_BITS`` coded bits by how closely its projections
    sit on the quantiser lattice (either coset: no knowledge of the bits needed); the best are read
    in full, decoded and their tags checked. In two stages, so marked audio is usually read at half
    the cost: first the sub-frame offsets 0 and 1/2 hop (best ``_FIRST_STAGE`` alignments decoded),
    then, if no tag verified, all four offsets (best ``DECODED_ALIGNMENTS`` not yet decoded). The
    p-value counts every alignment decoded.
    """
    layout = _layout(secret)
    mono = np.ascontiguousarray(samples.mean(axis=0), dtype=np.float32)
    grids: list[_Grid] = []
    scores: list[tuple[float, int, int]] = []
    done: set[tuple[int, int]] = set()
    tried = 0
    for subs, budget in (((0, 2), _FIRST_STAGE), ((1, 3), DECODED_ALIGNMENTS)):
        for grid in _grids(mono, rate, subs):
            grids.append(grid)
            scores.extend(_rank(grid, len(grids) - 1, layout))
        scores.sort(key=lambda item: -item[0])
        chosen = [item for item in scores if (item[1], item[2]) not in done][:budget]
        if not chosen:
            continue
        done.update((index, shift) for _, index, shift in chosen)
        tried += len(chosen)
        match = _decode_alignments(grids, chosen, layout, secret, rate)
        if match is not None:
            tiles = max(grid.log_power.shape[0] // TILE_SLOTS for grid in grids)
            return DetectionOutcome(match, tried, tried * 2.0**-TAG_BITS, tiles)
    tiles = max((grid.log_power.shape[0] // TILE_SLOTS for grid in grids), default=0)
    return DetectionOutcome(None, tried, 1.0, tiles)
