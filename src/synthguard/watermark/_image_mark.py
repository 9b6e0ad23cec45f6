"""The image watermark on a luminance plane: a keyed, tiled pattern in a resize-normalised grid.

Design (hand-written: no maintained library does keyed, 64-bit, geometry-tolerant marks with a
p-value; ``invisible-watermark``'s dwtDct, the usual choice, survives neither resizing nor cropping).

*Grid.* The luminance is seen through a grid whose short side has ``GRID`` cells (256 for images,
fewer for video), whatever the image size, so a resized copy looks the same to the detector. A cell
is at least 2 pixels when embedding (finer patterns do not survive halving or JPEG); below 512
pixels the detector also looks at 1-pixel cells (a halved copy of a larger original). In that grid
a ``TILE`` x ``TILE`` keyed pattern is repeated over the whole picture. The pattern is the sum of a
*pilot* (keyed +-1 chips) and the *payload*: the 64-bit ProduceID and a CRC-16, convolutionally
coded into ``CODED_LENGTH`` symbols, each spread over several tile cells with keyed signs. The
pattern is weighted by the local activity of the image (stronger in texture, weaker in flat areas,
capped in absolute terms where the image is smooth), scaled back to full resolution and added to
the luminance at a fixed mean strength (PSNR about 40.6 dB; higher where the cap bites).

*Synchronisation without the original.* A repeated pattern makes the autocorrelation of the image's
noise residual peak on the lattice of tile periods; the detector finds that lattice (scale and
rotation, so crops, rotations and resizes that change the grid), resamples the residual so the tile
is square again, folds every tile onto one (summing them) and finds the tile's offset (the crop's
position), its turn or flip (a mirrored copy) and, where the pilot is weak, the half-cell sampling
phase, by circular correlation with the pilot's eight turns and flips.

*Decision.* The folded tile is correlated with the keyed payload chips; a list Viterbi decoder gives
the 16 payloads whose codewords correlate best, the first whose CRC holds is taken, and when none
does nothing is reported, so a near miss never reports a wrong ProduceID. The statistic ``T =
<codeword chips, tile> / ||tile||`` has, under "no mark with this key", a sub-Gaussian tail: the
payload chip signs are keyed coin flips independent of the image and of the alignment (which used
only the image and the pilot: its turn, flip and phase too), so by Hoeffding's inequality ``P(T >=
t) <= exp(-t^2 / 2)`` for one codeword. The p-value is that bound times ``2^64`` (every payload with
a valid CRC) times the most alignments and grids whose payload may be decoded (Bonferroni). Nothing
in it assumes the image is "natural"; it is conservative (a marked photo typically shows p < 1e-15;
an unmarked one p = 1, its CRC failing).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
from PIL import Image

from synthguard.watermark._coding import (
    CODED_LENGTH,
    PAYLOAD_BITS,
    add_crc,
    check_crc,
    conv_encode,
    list_viterbi_decode,
)
from synthguard.watermark.base import derive_key

__all__ = [
    "GRID",
    "MIN_DETECT_SIDE",
    "MIN_EMBED_SIDE",
    "TILE",
    "Alignment",
    "PlaneResult",
    "decide",
    "detect_luma",
    "grid_passes",
    "grid_residual",
    "grid_size",
    "mark_delta",
    "search",
]

Float = npt.NDArray[np.float64]

#: Cells on the short side of the normalised grid.
GRID: Final = 256
#: Side of the repeated tile, in grid cells.
TILE: Final = 32
#: Images smaller than this on the short side are refused by the embedder.
MIN_EMBED_SIDE: Final = 256
#: Below this the detector does not look (it reports "not found").
MIN_DETECT_SIDE: Final = 64
#: Root-mean-square luminance change (8-bit levels) of the mark; about 40.6 dB PSNR.
TARGET_RMS: Final = 2.4
#: Texture weighting: the pattern's local strength goes as (local activity / median) ** MASK_POWER,
#: clipped to [MASK_LOW, 2.5] first. A power below 1 keeps more of the mark in quieter areas (the
#: detector whitens by local activity, so equal strength everywhere would be best for it; full
#: masking best for the eye); 0.6 is the compromise measured on the bench photos.
MASK_POWER: Final = 0.6
MASK_LOW: Final = 0.1
#: The detector divides the residual (a pixel less the mean of its four neighbours) by its local
#: spread to this power: the mark's local strength grows as the spread to MASK_POWER, so the weight
#: that maximises the correlation goes as spread ** (MASK_POWER - 2); 1.4 measured best.
WHITEN_POWER: Final = 1.4
#: Cap on the local strength (RMS, 8-bit levels) in smooth areas: FLAT_RMS + FLAT_SLOPE * activity.
FLAT_RMS: Final = 0.7
FLAT_SLOPE: Final = 0.5
#: Share of the pattern's energy given to the pilot.
PILOT_SHARE: Final = 0.2
#: Range of lattice scales (period / TILE) and rotations (degrees) the detector searches. The
#: lattice is square, so with the pilot's quarter turns +-45 degrees covers every angle; the search
#: is finer within +-_FINE_ANGLES, where most rotations are.
SCALE_RANGE: Final = (0.55, 2.7)
ANGLE_RANGE: Final = 45.0
_FINE_ANGLES: Final = 5.5
#: The most one axis may have been stretched against the other (a copy resized without keeping
#: its aspect ratio) for the detector to look for it.
MAX_STRETCH: Final = 1.5
#: Alignments whose payload is decoded (each counts in the Bonferroni factor).
DECODE_CANDIDATES: Final = 2
_LOG_DECODES: Final = math.log(DECODE_CANDIDATES)
#: Codewords (best first) whose CRC is tried for each decoded alignment; see ``list_viterbi_decode``.
DECODE_LIST: Final = 16
#: A lattice candidate other than the autocorrelation's strongest whose pilot correlation peak is
#: weaker than this (z-score over the tile's offsets, the best of the pilot's eight turns and flips;
#: chance gives a median of 3.7 and 4.7 at the 99th percentile) is not refined or decoded.
MIN_PILOT_Z: Final = 4.5
#: A pilot this clear needs no search of the sampling phase (the search costs four folds).
CLEAR_PILOT_Z: Final = 9.0
#: Lattices taken from the autocorrelation for a first look with the pilot.
LATTICE_CANDIDATES: Final = 3
#: Coordinate refinement of a lattice candidate on the pilot's strength: (axis, relative steps).
_REFINE: Final = (
    ("s", (-0.006, -0.003, 0.003, 0.006)),
    ("a", (-0.25, -0.125, 0.125, 0.25)),
    ("s", (-0.0015, 0.0015)),
    ("a", (-0.0625, 0.0625)),
)
#: For a rotated lattice, scale and angle errors of the autocorrelation go together: a joint search
#: of (relative scale step, angle step) around the estimate, coarse then fine.
_REFINE_ROTATED: Final = (
    tuple((ds, da) for ds in (-0.004, 0.0, 0.004) for da in (-0.2, 0.0, 0.2) if ds or da),
    tuple((ds, da) for ds in (-0.002, 0.0, 0.002) for da in (-0.1, 0.0, 0.1) if ds or da),
    ((-0.001, 0.0), (0.001, 0.0), (0.0, -0.05), (0.0, 0.05)),
)
_LOG_PAYLOADS: Final = PAYLOAD_BITS * math.log(2.0)


#: The 8 turns and flips of a square array (forward, inverse): a mirrored or quarter-turned copy
#: shows the tile turned or flipped the same way. The lattice (found by autocorrelation) does not
#: change; the pilot correlation finds which variant it is, for free (eight 32x32 correlations).
DIHEDRAL: Final[tuple[tuple[Callable[[Float], Float], Callable[[Float], Float]], ...]] = (
    (lambda a: a, lambda a: a),
    (lambda a: np.rot90(a, 1), lambda a: np.rot90(a, -1)),
    (lambda a: np.rot90(a, 2), lambda a: np.rot90(a, 2)),
    (lambda a: np.rot90(a, -1), lambda a: np.rot90(a, 1)),
    (np.flipud, np.flipud),
    (np.fliplr, np.fliplr),
    (np.transpose, np.transpose),
    (lambda a: np.rot90(a, 2).T, lambda a: np.rot90(a, 2).T),
)
#: Names of the variants as reported: what was done to the marked image (turns are anticlockwise,
#: as Pillow's ``Image.Transpose.ROTATE_90``).
DIHEDRAL_NAMES: Final = (
    "none",
    "turned 90",
    "turned 180",
    "turned 270",
    "flipped upside down",
    "mirrored",
    "transposed",
    "anti-transposed",
)


@dataclasses.dataclass(frozen=True, slots=True)
class _KeyMaterial:
    pilot: Float  # (TILE, TILE) +-1
    signs: Float  # (TILE*TILE,) +-1
    symbol_of: npt.NDArray[np.intp]  # (TILE*TILE,) index of the coded symbol each cell carries
    # conjugate spectra of the pilot's 8 dihedral variants (``DIHEDRAL`` order), for correlation
    pilot_spectrum: npt.NDArray[np.complex128]


@functools.lru_cache(maxsize=16)
def _key_material(secret: bytes) -> _KeyMaterial:
    def rng(purpose: str) -> np.random.Generator:
        return np.random.default_rng(int.from_bytes(derive_key(secret, purpose), "big"))

    cells = TILE * TILE
    pilot = rng("image/v1/pilot").integers(0, 2, (TILE, TILE)).astype(np.float64) * 2.0 - 1.0
    signs = rng("image/v1/signs").integers(0, 2, cells).astype(np.float64) * 2.0 - 1.0
    symbol_of = (rng("image/v1/spread").permutation(cells) % CODED_LENGTH).astype(np.intp)
    spectrum = np.conj(np.fft.rfft2(np.stack([forward(pilot) for forward, _ in DIHEDRAL])))
    return _KeyMaterial(pilot=pilot, signs=signs, symbol_of=symbol_of, pilot_spectrum=spectrum)


def _tile_pattern(secret: bytes, bits: list[int]) -> Float:
    keys = _key_material(secret)
    symbols = conv_encode(add_crc(bits))
    data = (symbols[keys.symbol_of] * keys.signs).reshape(TILE, TILE)
    return math.sqrt(PILOT_SHARE) * keys.pilot + math.sqrt(1.0 - PILOT_SHARE) * data


def grid_size(width: int, height: int, *, embed: bool, grid: int = GRID) -> tuple[int, int]:
    """(width, height) of the normalised grid for an image of this size.

    The embedder's cells are at least 2 pixels wide (a 1-pixel pattern does not survive halving or
    JPEG); the detector's are at least 1 pixel, so it still sees the cells of a halved copy. Where the
    two differ (small images) the detector finds the tile at twice the scale, inside its search range."""
    short = min(width, height)
    scale = min(grid, short // 2 if embed else short) / short
    return max(1, round(width * scale)), max(1, round(height * scale))


def _box(a: Float, radius: int) -> Float:
    """Mean over a (2r+1)^2 window, edges replicated (integral image; no scipy)."""
    size = 2 * radius + 1
    padded = np.pad(a, radius + 1, mode="edge")
    c = padded.cumsum(axis=0).cumsum(axis=1)
    s = c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]
    mean: Float = s[: a.shape[0], : a.shape[1]] / (size * size)
    return mean


def _to_grid(luma: Image.Image, *, embed: bool, grid: int) -> Float:
    width, height = luma.size
    gw, gh = grid_size(width, height, embed=embed, grid=grid)
    small = luma.resize((gw, gh), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64)


def mark_delta(
    luma: Image.Image, secret: bytes, bits: list[int], *, grid: int = GRID, rms: float = TARGET_RMS
) -> npt.NDArray[np.float32]:
    """The luminance change (full resolution, float) that marks ``luma`` (mode L or F) with ``bits``.

    ``rms`` is its root-mean-square in 8-bit levels (PSNR = 20 log10(255 / rms) before rounding)."""
    width, height = luma.size
    cells = _to_grid(luma, embed=True, grid=grid)
    gh, gw = cells.shape
    residual = cells - _box(cells, 1)
    activity = np.sqrt(np.maximum(_box(residual * residual, 2), 0.0))
    mask = np.clip(activity / (float(np.median(activity)) + 1e-6), MASK_LOW, 2.5) ** MASK_POWER
    tile = _tile_pattern(secret, bits)
    pattern = np.tile(tile, (-(-gh // TILE), -(-gw // TILE)))[:gh, :gw] * mask
    delta = _upsample(pattern, width, height)
    gain = rms / max(float(np.sqrt(np.mean(delta * delta, dtype=np.float64))), 1e-9)
    # Smooth areas (a white wall, a sky) show a mark and lose SSIM first: there the local strength
    # is capped in absolute terms, whatever the global strength; the mark is then a little weaker.
    allowed = (FLAT_RMS + FLAT_SLOPE * activity) / (gain * mask)
    if float(allowed.min()) < 1.0:
        delta = _upsample(pattern * np.minimum(allowed, 1.0), width, height)
    return delta * np.float32(gain)


def _upsample(pattern: Float, width: int, height: int) -> npt.NDArray[np.float32]:
    up = Image.fromarray(pattern.astype(np.float32), mode="F").resize(
        (width, height), Image.Resampling.BICUBIC
    )
    return np.asarray(up, dtype=np.float32)


def grid_passes(width: int, height: int, *, grid: int = GRID) -> tuple[bool, ...]:
    """The grids (``embed`` flags of ``grid_size``) the detector looks in for an image of this size.

    Large images have one grid. Below 512 pixels the embedder's cells may be 2 pixels (an original
    of this size) or 1 pixel (a halved larger original): both are tried, and both count in the p-value."""
    return (True,) if min(width, height) >= 2 * grid else (True, False)


def grid_residual(luma: Image.Image, *, embed_grid: bool = True, grid: int = GRID) -> Float:
    """The whitened noise residual of ``luma`` in a normalised grid (what detection works on).

    Residuals of frames of one video can be summed before ``decide`` (temporal aggregation)."""
    cells = _to_grid(luma, embed=embed_grid, grid=grid)
    padded = np.pad(cells, 1, mode="edge")
    neighbours = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    residual = cells - 0.25 * neighbours
    local = np.sqrt(np.maximum(_box(residual * residual, 2), 0.0)) + 0.5
    weighted = residual / local**WHITEN_POWER
    spread = float(weighted.std())
    return np.clip(weighted / spread, -3.0, 3.0) if spread > 0 else weighted


class Lattice(NamedTuple):
    """A tile lattice: period scale (of TILE cells), rotation (degrees), and height/width of a period
    (1 unless the copy was stretched along one axis)."""

    scale: float
    angle: float
    aspect: float = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class Alignment:
    """Where the tile lattice was found: period scale, rotation (degrees), offset, pilot strength,
    the sub-cell sampling phase, the turn or flip of the tile (``DIHEDRAL``), and the stretch."""

    scale: float
    angle: float
    offset: tuple[int, int]
    pilot_z: float
    phase: tuple[float, float] = (0.0, 0.0)
    variant: int = 0  # index into DIHEDRAL
    aspect: float = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class PlaneResult:
    """The best payload found in a residual and the natural log of its p-value bound."""

    bits: list[int] | None
    log_p: float
    statistic: float
    alignment: Alignment | None
    decoded: int


def _bilinear(acf: Float, ys: Float, xs: Float) -> Float:
    h, w = acf.shape
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    fy = ys - y0
    fx = xs - x0
    y0m, y1m, x0m, x1m = y0 % h, (y0 + 1) % h, x0 % w, (x0 + 1) % w
    value: Float = (
        acf[y0m, x0m] * (1 - fy) * (1 - fx)
        + acf[y0m, x1m] * (1 - fy) * fx
        + acf[y1m, x0m] * fy * (1 - fx)
        + acf[y1m, x1m] * fy * fx
    )
    return value


def _autocorrelation(residual: Float) -> Float:
    """The residual's autocorrelation (lag 0 at [0, 0], normalised to 1), corrected for overlap."""
    h, w = residual.shape
    ph, pw = 2 * h, 2 * w
    spectrum = np.fft.rfft2(residual - residual.mean(), s=(ph, pw))
    acf = np.fft.irfft2(spectrum * np.conj(spectrum), s=(ph, pw))
    acf /= max(float(acf[0, 0]), 1e-12)
    # A lag (dy, dx) is seen by (h-|dy|)(w-|dx|) pixel pairs.
    dys = np.minimum(np.arange(ph), ph - np.arange(ph))
    dxs = np.minimum(np.arange(pw), pw - np.arange(pw))
    overlap = np.clip(1.0 - dys / h, 0.05, None)[:, None] * np.clip(1.0 - dxs / w, 0.05, None)[None, :]
    corrected: Float = acf / overlap
    return corrected


def _lattice_candidates(residual: Float, count: int) -> list[Lattice]:
    """The ``count`` strongest square tile lattices in the residual's autocorrelation, then the
    lattice of a copy stretched along one axis when the two axes' periods differ."""
    acf = _autocorrelation(residual)
    # Coarse grid (scale steps of 1%, half degrees), then a finer look around the best few.
    log_scales = np.arange(math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1]), 0.01)
    # Half-degree steps where rotations are common (a straightened horizon, a hand-held screenshot),
    # whole degrees beyond.
    wide = np.arange(math.ceil(_FINE_ANGLES), ANGLE_RANGE + 1e-9, 1.0)
    angles = np.concatenate([-wide[::-1], np.arange(-_FINE_ANGLES, _FINE_ANGLES + 1e-9, 0.5), wide])
    ls, an = np.meshgrid(log_scales, angles, indexing="ij")
    score = _lattice_score(acf, ls.ravel(), an.ravel())
    coarse: list[tuple[float, float]] = []
    for index in np.argsort(score)[::-1][:500]:
        scale, angle = float(ls.flat[index]), float(an.flat[index])
        if all(abs(scale - fs) > 0.03 or abs(angle - fa) > 1.0 for fs, fa in coarse):
            coarse.append((scale, angle))
            if len(coarse) == count:
                break
    found: list[Lattice] = []
    for scale, angle in coarse:
        for step_s, step_a in ((0.0025, 0.125), (0.0005, 0.025)):
            fine_s, fine_a = np.meshgrid(np.arange(-5, 6) * step_s, np.arange(-5, 6) * step_a, indexing="ij")
            trial_s = scale + fine_s.ravel()
            trial_a = angle + fine_a.ravel()
            best = int(np.argmax(_lattice_score(acf, trial_s, trial_a, far=True)))
            scale, angle = float(trial_s[best]), float(trial_a[best])
        found.append(Lattice(math.exp(scale), angle))
    stretched = _stretched_lattice(acf)
    if stretched is not None:
        found.append(stretched)
    return found


def _stretched_lattice(acf: Float) -> Lattice | None:
    """The lattice of an unturned copy resized without keeping its aspect ratio: the strongest
    periods along x and along y, found separately, paired by the whole lattice's score; None when
    the best pair is square (within 1%) or stretched more than ``MAX_STRETCH``."""
    h, w = acf.shape[0] // 2, acf.shape[1] // 2
    periods = TILE * np.exp(np.arange(math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1]), 0.0025))
    zeros = np.zeros_like(periods)
    along_x = np.zeros_like(periods)
    along_y = np.zeros_like(periods)
    for k in range(1, 7):
        lags = k * periods
        along_x += np.where(lags < 0.5 * w, _bilinear(acf, zeros, lags), 0.0)
        along_y += np.where(lags < 0.5 * h, _bilinear(acf, lags, zeros), 0.0)
    best: tuple[float, Lattice] | None = None
    for period_x in _peaks(periods, along_x, 3):
        for period_y in _peaks(periods, along_y, 3):
            stretch = abs(math.log(period_y / period_x))
            if stretch <= 0.01 or stretch > math.log(MAX_STRETCH):
                continue
            score = 0.0
            for i, j in _FAR_POINTS:
                lag_x, lag_y = i * period_x, j * period_y
                if abs(lag_x) < 0.5 * w and abs(lag_y) < 0.5 * h:
                    score += float(_bilinear(acf, np.array([lag_y]), np.array([lag_x]))[0])
            if best is None or score > best[0]:
                best = (score, Lattice(period_x / TILE, 0.0, period_y / period_x))
    return None if best is None else best[1]


def _peaks(positions: Float, values: Float, count: int) -> list[float]:
    """The ``count`` highest local maxima of ``values``, at least 3% apart in position."""
    inner = (values[1:-1] >= values[:-2]) & (values[1:-1] >= values[2:])
    found: list[float] = []
    for index in np.argsort(-values[1:-1] * np.where(inner, 1.0, np.nan)):
        if not inner[index]:
            break
        position = float(positions[index + 1])
        if all(abs(math.log(position / other)) > 0.03 for other in found):
            found.append(position)
            if len(found) == count:
                break
    return found


_NEAR_POINTS: Final = ((1, 0), (2, 0), (3, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, -1), (2, 1), (1, 2))
_FAR_POINTS: Final = (
    *_NEAR_POINTS,
    *((i, 0) for i in range(4, 9)),
    *((0, j) for j in range(4, 9)),
    (2, 2),
    (2, -2),
    (3, 1),
    (1, 3),
    (3, -1),
    (1, -3),
)


def _lattice_score(acf: Float, log_scales: Float, angles_deg: Float, *, far: bool = False) -> Float:
    """Autocorrelation summed over the first lattice points of each (scale, angle)."""
    h, w = acf.shape[0] // 2, acf.shape[1] // 2
    period = TILE * np.exp(log_scales)
    a = np.radians(angles_deg)
    v1x, v1y = period * np.cos(a), period * np.sin(a)
    v2x, v2y = -period * np.sin(a), period * np.cos(a)
    score = np.zeros_like(period)
    limit_y, limit_x = 0.5 * h, 0.5 * w
    for i, j in _FAR_POINTS if far else _NEAR_POINTS:
        ly = i * v1y + j * v2y
        lx = i * v1x + j * v2x
        valid = (np.abs(ly) < limit_y) & (np.abs(lx) < limit_x)
        score += np.where(valid, _bilinear(acf, ly, lx), 0.0)
    return score


def _fold(
    residual: Image.Image,
    scale: float,
    angle: float,
    phase: tuple[float, float] = (0.0, 0.0),
    aspect: float = 1.0,
) -> Float | None:
    """Resample (mode F ``residual``) so the lattice is square with period TILE; sum all tiles.

    ``phase`` shifts the sampling by fractions of a tile cell (x, y): a crop at an odd pixel puts
    the cells between the samples, which a half-cell shift puts back on them. ``aspect`` is the
    lattice's period height over width (a copy stretched along one axis)."""
    w, h = residual.size
    theta = math.radians(angle)
    c, s = math.cos(theta) * scale, math.sin(theta) * scale
    # Output (x, y) -> input (c*x - s*a*y + x0, s*x + c*a*y + y0); cover the input's extent.
    det = c * c + s * s
    corners = [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)]
    xs = [(c * x + s * y) / det for x, y in corners]
    ys = [(-s * x + c * y) / (det * aspect) for x, y in corners]
    ox, oy = min(xs) + phase[0], min(ys) + phase[1]
    out_w = int((max(xs) - ox) // TILE) * TILE
    out_h = int((max(ys) - oy) // TILE) * TILE
    if out_w < TILE or out_h < TILE:
        return None
    x0 = c * ox - s * aspect * oy
    y0 = s * ox + c * aspect * oy
    if angle == 0.0:  # a plain rescale: the separable resize is several times faster
        box = (x0, y0, x0 + out_w * scale, y0 + out_h * scale * aspect)
        warped = residual.resize((out_w, out_h), Image.Resampling.BILINEAR, box=box)
    else:
        warped = residual.transform(
            (out_w, out_h),
            Image.Transform.AFFINE,
            (c, -s * aspect, x0, s, c * aspect, y0),
            resample=Image.Resampling.BILINEAR,
        )
    tiles = np.asarray(warped, dtype=np.float64).reshape(out_h // TILE, TILE, out_w // TILE, TILE)
    folded: Float = tiles.sum(axis=(0, 2))
    return folded


def _pilot_peak(folded: Float, pilot: npt.NDArray[np.complex128]) -> tuple[float, tuple[int, int], int]:
    """The strongest pilot correlation over the tile's offsets and the pilot's dihedral variants:
    (z-score, offset, variant)."""
    corr = np.fft.irfft2(np.fft.rfft2(folded)[None] * pilot, s=folded.shape)
    mean = corr.mean(axis=(1, 2))
    std = corr.std(axis=(1, 2))
    peaks = corr.reshape(len(pilot), -1).max(axis=1)
    zs = np.where(std > 0, (peaks - mean) / np.where(std > 0, std, 1.0), 0.0)
    variant = int(np.argmax(zs))
    dy, dx = divmod(int(np.argmax(corr[variant])), TILE)
    return float(zs[variant]), (dy, dx), variant


def _refine(
    residual: Image.Image, pilot: npt.NDArray[np.complex128], start: Alignment
) -> tuple[Alignment, Float] | None:
    """Search around ``start`` for the strongest pilot: coordinate-wise (scale, angle, scale, angle;
    scale and stretch for a stretched lattice), or jointly when the lattice is rotated, at
    ``start``'s sampling phase."""
    stages: list[tuple[tuple[float, float, float], ...]]
    if abs(start.angle) > 0.3:
        stages = [tuple((ds, da, 0.0) for ds, da in stage) for stage in _REFINE_ROTATED]
    elif start.aspect != 1.0:
        stages = [
            tuple((step, 0.0, 0.0) if axis == "s" else (0.0, 0.0, step) for step in steps)
            for axis, steps in _REFINE
        ]
    else:
        stages = [
            tuple((step, 0.0, 0.0) if axis == "s" else (0.0, step, 0.0) for step in steps)
            for axis, steps in _REFINE
        ]
    best: tuple[Alignment, Float] | None = None
    phase = start.phase
    scale, angle, aspect = start.scale, start.angle, start.aspect
    for stage in stages:
        trials = [(scale, angle, aspect)] if best is None else []
        trials += [(scale * (1 + ds), angle + da, aspect * (1 + dr)) for ds, da, dr in stage]
        for trial_scale, trial_angle, trial_aspect in trials:
            folded = _fold(residual, trial_scale, trial_angle, phase, trial_aspect)
            if folded is None:
                continue
            z, offset, variant = _pilot_peak(folded, pilot)
            if best is None or z > best[0].pilot_z:
                found = Alignment(trial_scale, trial_angle, offset, z, phase, variant, trial_aspect)
                best = (found, folded)
        if best is not None:
            scale, angle, aspect = best[0].scale, best[0].angle, best[0].aspect
    return best


_PHASES: Final = ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5))


def _best_phase(
    residual: Image.Image, pilot: npt.NDArray[np.complex128], lattice: Lattice
) -> tuple[float, float]:
    """Of the half-cell sampling phases, the one where the pilot correlates best."""
    best, best_z = _PHASES[0], -math.inf
    for phase in _PHASES:
        folded = _fold(residual, lattice.scale, lattice.angle, phase, lattice.aspect)
        if folded is not None:
            z, _, _ = _pilot_peak(folded, pilot)
            if z > best_z:
                best, best_z = phase, z
    return best


def _coarse(
    residual: Float,
    pilot: npt.NDArray[np.complex128],
    hints: Sequence[Lattice] = (),
    unscaled: float = 1.0,
) -> list[Alignment]:
    """The lattice candidates worth refining: the autocorrelation's strongest always (its estimate can
    be a little off, which a first look with the pilot would punish), the others, the lattice of a
    copy not resized (period scale ``unscaled``), and the ``hints`` a caller found elsewhere, only
    where the pilot already shows (at its best sampling phase); strongest pilot first after the first."""
    found: list[Alignment] = []
    image = Image.fromarray(residual.astype(np.float32), mode="F")
    found_here = _lattice_candidates(residual, LATTICE_CANDIDATES)
    # A copy not resized (the original, a crop) has the lattice ``unscaled``; one turned but not
    # resized (a rotated video keeps its frame size) has it at the angle the autocorrelation found,
    # which is right more often than its scale where fewer than four tiles span the short side.
    few_tiles = min(residual.shape) < 4 * TILE * unscaled
    turned = [
        Lattice(unscaled, lattice.angle)
        for lattice in found_here
        if few_tiles and abs(lattice.angle) > 0.3 and abs(math.log(lattice.scale / unscaled)) > 0.03
    ]
    lattices: list[Lattice] = []
    for lattice in [*found_here, Lattice(unscaled, 0.0), *hints, *turned]:
        if not any(_same_lattice(lattice, other) for other in lattices):
            lattices.append(lattice)
    for rank, lattice in enumerate(lattices):
        scale, angle, aspect = lattice
        folded = _fold(image, scale, angle, aspect=aspect)
        if folded is None:
            continue
        z, offset, variant = _pilot_peak(folded, pilot)
        phase = (0.0, 0.0)
        if z < CLEAR_PILOT_Z:
            phase = _best_phase(image, pilot, lattice)
            if phase != (0.0, 0.0):
                folded = _fold(image, scale, angle, phase, aspect)
                assert folded is not None
                z, offset, variant = _pilot_peak(folded, pilot)
        if rank == 0 or z >= MIN_PILOT_Z:
            found.append(Alignment(scale, angle, offset, z, phase, variant, aspect))
    found[1:] = sorted(found[1:], key=lambda item: item.pilot_z, reverse=True)
    if len(found) > 1 and found[1].pilot_z > found[0].pilot_z:
        found[0], found[1] = found[1], found[0]
    return found


def _same_lattice(a: Lattice, b: Lattice) -> bool:
    """Whether two candidates are close enough for refinement to reach one from the other."""
    return (
        abs(math.log(a.scale / b.scale)) < 0.005
        and abs(a.angle - b.angle) < 0.1
        and abs(math.log(a.aspect / b.aspect)) < 0.005
    )


def detect_luma(luma: Image.Image, secret: bytes, threshold: float) -> PlaneResult:
    """Look for the mark in one luminance plane (mode L or F), in every grid it may be in."""
    if min(luma.size) < MIN_DETECT_SIDE:
        return PlaneResult(bits=None, log_p=0.0, statistic=0.0, alignment=None, decoded=0)
    passes = grid_passes(*luma.size)
    return search(lambda embed_grid: grid_residual(luma, embed_grid=embed_grid), passes, secret, threshold)


def search(
    residual_of: Callable[[bool], Float], passes: tuple[bool, ...], secret: bytes, threshold: float
) -> PlaneResult:
    """Look in the residual of each grid of ``passes`` (``grid_passes``; ``residual_of`` gives it)
    until a payload's p-value is under ``threshold``; the most significant result.

    With two grids (small images), the coarse grid's lattices are also tried, rescaled, in the fine
    one: its autocorrelation is the clearer, the fine grid keeps more of a resized or cropped mark.
    The lattice of an image that was not resized (``unscaled``: 1 in the embedder's grid) is always
    a candidate: its autocorrelation peak can lose to a periodic structure in the picture. Hints
    change which alignments are decoded, never how many, so the p-value is unaffected."""
    stop = math.log(threshold)
    best = PlaneResult(bits=None, log_p=0.0, statistic=0.0, alignment=None, decoded=0)
    hints: list[Lattice] = []
    unscaled = 1.0
    residuals: dict[bool, Float] = {}
    for embed_grid in passes:
        residual = residuals.pop(embed_grid, None)
        if residual is None:
            residual = residual_of(embed_grid)
        result = decide(residual, secret, tests=len(passes), hints=hints, unscaled=unscaled, stop_below=stop)
        if best.alignment is None or result.log_p < best.log_p:
            best = result
        if result.log_p < stop:
            break
        if embed_grid and False in passes:
            residuals[False] = residual_of(False)
            unscaled = residuals[False].shape[1] / residual.shape[1]
            coarse = _lattice_candidates(residual, 2)
            hints = [lattice._replace(scale=lattice.scale * unscaled) for lattice in coarse]
    return best


def _decode(soft: Float) -> tuple[list[int], list[int] | None]:
    """The best codeword's info bits and, of the ``DECODE_LIST`` best, the first whose CRC holds."""
    paths = list_viterbi_decode(soft, DECODE_LIST)
    for info in paths:
        payload = check_crc(info)
        if payload is not None:
            return info, payload
    return paths[0], None


def decide(
    residual: Float,
    secret: bytes,
    *,
    tests: int = 1,
    hints: Sequence[Lattice] = (),
    unscaled: float = 1.0,
    stop_below: float = 0.0,
) -> PlaneResult:
    """Look for the mark of ``secret`` in a grid residual (from ``grid_residual``, maybe summed).

    At most ``DECODE_CANDIDATES`` alignments are decoded; the p-value always counts all of them (the
    search stops once the natural log of a p-value is under ``stop_below``, so the number actually
    tried depends on the data), times ``tests``, the number of residuals the caller looks in.
    ``hints`` are more lattices to try, ``unscaled`` the period scale of a copy not resized."""
    log_decodes = _LOG_DECODES + math.log(tests)
    keys = _key_material(secret)
    best = PlaneResult(bits=None, log_p=0.0, statistic=0.0, alignment=None, decoded=0)
    decoded = 0
    image = Image.fromarray(residual.astype(np.float32), mode="F")
    for candidate in _coarse(residual, keys.pilot_spectrum, hints, unscaled)[:DECODE_CANDIDATES]:
        refined = _refine(image, keys.pilot_spectrum, candidate)
        if refined is None:
            continue
        alignment, folded = refined
        norm = float(np.sqrt(np.sum(folded * folded)))
        if norm == 0.0:
            continue
        decoded += 1
        dy, dx = alignment.offset
        upright = DIHEDRAL[alignment.variant][1]
        tile = upright(np.roll(folded, (-dy, -dx), axis=(0, 1))).reshape(-1)
        chips = tile * keys.signs
        soft = np.bincount(keys.symbol_of, weights=chips, minlength=CODED_LENGTH).astype(np.float64)
        info, payload = _decode(soft)
        statistic = float(conv_encode(info) @ soft) / norm
        log_p = 0.0
        if payload is not None and statistic > 0:
            log_p = min(0.0, _LOG_PAYLOADS + log_decodes - statistic * statistic / 2.0)
        if best.alignment is None or log_p < best.log_p:
            best = PlaneResult(payload, log_p, statistic, alignment, decoded)
        if log_p < stop_below:
            break
    return dataclasses.replace(best, decoded=decoded)
