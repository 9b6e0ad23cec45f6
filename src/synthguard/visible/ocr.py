"""Reading text in images and video frames with RapidOCR (PP-OCRv4 models shipped in its wheel).

The engine is loaded once per process, lazily, on first use (:func:`engine`; about a second) and
never downloads anything. Its own resizing is replaced by ours: it is told not to scale up, and
:func:`read_lines` gives it

1. the whole picture scaled to at most 960 pixels on its long side (and at least 480 on its short
   side, so a label of 5% of a small image is still about 24 pixels tall): this finds every label
   tall enough to conform (5% of the shortest side) wherever it is, in one detector run;
2. with ``thorough=True`` also the four edge bands (a fifth of the picture each) at full
   resolution, in tiles of at most 1280 pixels: labels must sit on an edge or a corner, and there
   small, non-conforming labels (down to about 1% of the shortest side) are still read.

The angle classifier is skipped: labels are upright. :func:`ink_height` measures the height of the
text's strokes inside a detected box (the detector's boxes are padded), which is what GB 45438's 5%
rule is about.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["OcrLine", "engine", "ink_height", "read_lines"]

#: Long side of the whole-picture pass: a 5% label of a 16:9 picture is then 27 pixels tall.
_MAX_SIDE: Final = 960
#: Long side of an edge tile in the thorough pass (full resolution).
_TILE: Final = 1280
_MIN_SHORT_SIDE: Final = 480
_BAND: Final = 0.2
_TILE_OVERLAP: Final = 96
_MIN_SCORE: Final = 0.5

_lock = threading.Lock()
_engine: Any = None


@dataclasses.dataclass(frozen=True)
class OcrLine:
    """One line of text: what it says, its box ``(x0, y0, x1, y1)`` in the picture's pixels, and the
    recogniser's confidence."""

    text: str
    box: tuple[int, int, int, int]
    score: float


def engine() -> Any:
    """The process's RapidOCR engine, made on first use (thread-safe)."""
    global _engine
    with _lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR(
                det_limit_type="max",
                det_limit_side_len=_TILE,
                max_side_len=4 * _TILE,
                min_side_len=16,
                use_cls=False,
                print_verbose=False,
            )
        return _engine


def _run(rgb: npt.NDArray[np.uint8]) -> list[tuple[list[list[float]], str, float]]:
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        return []
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    result, _ = engine()(bgr, use_cls=False)
    return list(result or [])


def _scaled(image: Image.Image, scale: float) -> npt.NDArray[np.uint8]:
    if abs(scale - 1.0) < 1e-3:
        return np.asarray(image)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))


def _lines(raw: list[tuple[list[list[float]], str, float]], scale: float, dx: int, dy: int) -> list[OcrLine]:
    lines = []
    for quad, text, score in raw:
        if float(score) < _MIN_SCORE or not str(text).strip():
            continue
        xs = [p[0] / scale + dx for p in quad]
        ys = [p[1] / scale + dy for p in quad]
        box = (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))
        lines.append(OcrLine(str(text), box, float(score)))
    return lines


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])) or 1
    return inter / smaller > 0.5


def _bands(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Edge bands split into tiles of at most ``_TILE`` pixels, overlapping."""
    bh, bw = max(8, round(height * _BAND)), max(8, round(width * _BAND))
    regions = [
        (0, 0, width, bh),
        (0, height - bh, width, height),
        (0, bh, bw, height - bh),
        (width - bw, bh, width, height - bh),
    ]
    tiles = []
    for x0, y0, x1, y1 in regions:
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            continue
        step_x = _TILE - _TILE_OVERLAP
        step_y = _TILE - _TILE_OVERLAP
        for ty in range(y0, max(y0 + 1, y1 - _TILE_OVERLAP), step_y):
            for tx in range(x0, max(x0 + 1, x1 - _TILE_OVERLAP), step_x):
                tiles.append((tx, ty, min(tx + _TILE, x1), min(ty + _TILE, y1)))
    return tiles


def read_lines(image: Image.Image, *, thorough: bool = False, max_upscale: float = 8.0) -> list[OcrLine]:
    """The lines of text in an RGB ``image``, boxes in its own pixels, top to bottom.

    ``thorough`` adds a full-resolution pass over the edge bands (slower; finds labels smaller
    than about 2% of the shortest side). A small picture is enlarged towards 480 pixels on its
    short side, by at most ``max_upscale`` (a crop around a known label needs little).
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    scale = min(1.0, _MAX_SIDE / max(width, height))
    if min(width, height) * scale < _MIN_SHORT_SIDE:
        scale = min(
            _MIN_SHORT_SIDE / min(width, height), _MAX_SIDE / max(width, height), max(1.0, max_upscale)
        )
    found = _lines(_run(_scaled(image, scale)), scale, 0, 0)
    if thorough and scale < 0.99:
        for x0, y0, x1, y1 in _bands(width, height):
            tile = np.asarray(image.crop((x0, y0, x1, y1)))
            for line in _lines(_run(tile), 1.0, x0, y0):
                if not any(_overlaps(line.box, other.box) for other in found):
                    found.append(line)
    found.sort(key=lambda line: (line.box[1], line.box[0]))
    return found


def ink_height(gray: npt.NDArray[Any], box: tuple[int, int, int, int]) -> int:
    """Height in pixels of the strokes inside ``box`` of a grayscale picture.

    Rows whose horizontal contrast (mean absolute difference between neighbouring pixels) reaches a
    quarter of the strongest row's are ink; the height runs from the first such row to the last.
    Works for dark-on-light, light-on-dark and outlined text. Returns the box height when the box
    holds no contrast at all.
    """
    x0, y0, x1, y1 = box
    h, w = int(gray.shape[0]), int(gray.shape[1])
    x0, x1 = max(0, x0), min(w, x1)
    y0, y1 = max(0, y0), min(h, y1)
    crop = np.asarray(gray[y0:y1, x0:x1], dtype=np.float32)
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        return max(0, y1 - y0)
    energy = np.abs(np.diff(crop, axis=1)).mean(axis=1)
    peak = float(energy.max())
    if peak <= 1e-6:
        return y1 - y0
    rows = np.flatnonzero(energy >= 0.25 * peak)
    return int(rows[-1] - rows[0] + 1)
