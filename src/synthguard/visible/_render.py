"""Rendering a text label as a sprite and compositing it onto pixels (shared by images and video).

The label's size is set by measurement, not by font size: the text is drawn alone, the ink bounding
box of its pixels (alpha at least one half) is measured, and the font size is raised until that box
is at least the required fraction of the shortest side. Legibility is chosen from the pixels under
the label: on a calm region, text in whichever of black or white contrasts more with the region's
mean (WCAG contrast ratio), outlined in the other; on a busy region (high luminance spread), white
text on a translucent dark plate.

Pillow draws (FreeType, with stroke outlines); NumPy composites only the label's box, so pixels
outside it are never touched.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from synthguard.errors import UsageError
from synthguard.visible.font import label_font

__all__ = [
    "LabelPlan",
    "Sprite",
    "choose_style",
    "composite",
    "display_box_to_stored",
    "make_sprite",
    "plan_box",
    "to_display",
    "to_stored",
]

#: Rendered ink is made this much taller than the minimum, so resampling and lossy coding that
#: soften the glyph edges still leave the measured height above the minimum.
SAFETY: Final = 1.08
#: Smallest ink height drawn when the image has room for it (below this, glyphs are unreadable).
MIN_LEGIBLE_PX: Final = 10
#: Luminance standard deviation (0-255) above which a region counts as busy.
BUSY_STD: Final = 42.0
_REF_SIZE: Final = 100

Array = NDArray[np.uint8]


@dataclasses.dataclass(frozen=True)
class Sprite:
    """A rendered label: straight-alpha RGBA pixels and where the text's ink lies inside them."""

    rgba: Array
    ink_box: tuple[int, int, int, int]
    font_size: int
    style: str
    contrast: float

    @property
    def ink_height(self) -> int:
        return self.ink_box[3] - self.ink_box[1]

    @property
    def size(self) -> tuple[int, int]:
        return int(self.rgba.shape[1]), int(self.rgba.shape[0])


@dataclasses.dataclass(frozen=True)
class LabelPlan:
    """Where a sprite goes in display coordinates and how tall its ink is relative to the image."""

    box: tuple[int, int, int, int]
    ink_box: tuple[int, int, int, int]
    glyph_height_fraction: float


def _luminance(rgb: NDArray[np.floating]) -> NDArray[np.floating]:
    result: NDArray[np.floating] = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return result


def _relative_luminance(value: float) -> float:
    c = value / 255.0
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def contrast_ratio(a: float, b: float) -> float:
    """WCAG 2 contrast ratio between two grey levels (0-255)."""
    la, lb = _relative_luminance(a), _relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def choose_style(region: Array) -> tuple[str, float]:
    """``("plate"|"dark"|"light", contrast)`` for the pixels under a label (RGB or grey, any size).

    ``dark`` is black text outlined in white, ``light`` white text outlined in black; ``contrast``
    is the contrast ratio of the text colour against the region's mean (for ``plate``, against the
    plate composited on the mean).
    """
    pixels = region.astype(np.float32)
    if pixels.ndim == 2:
        lum = pixels
    else:
        lum = _luminance(pixels[..., :3]) if pixels.shape[2] >= 3 else pixels[..., 0]
    if lum.size > 4096:  # a sample is enough for mean and spread
        step = int(math.sqrt(lum.size / 4096)) + 1
        lum = lum[::step, ::step]
    mean = float(lum.mean()) if lum.size else 128.0
    spread = float(lum.std()) if lum.size else 0.0
    if spread > BUSY_STD:
        return "plate", contrast_ratio(255.0, mean * (1 - _PLATE_ALPHA / 255))
    black, white = contrast_ratio(0.0, mean), contrast_ratio(255.0, mean)
    return ("dark", black) if black >= white else ("light", white)


_PLATE_ALPHA: Final = 165


@functools.lru_cache(maxsize=256)
def _ink(text: str, size: int) -> tuple[int, int, int, int]:
    """Ink bounding box (alpha >= 128) of ``text`` drawn at ``size`` with its top-left at the
    origin of the font's bbox; measured on pixels."""
    font = label_font(size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    canvas = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(canvas).text((1 - left, 1 - top), text, font=font, fill=255)
    mask = np.asarray(canvas) >= 128
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise UsageError(f"label text {text!r} draws no visible pixels")
    return (
        int(cols[0]) - 1 + left,
        int(rows[0]) - 1 + top,
        int(cols[-1]) + left,
        int(rows[-1]) + top,
    )


def _size_for(text: str, ink_px: int) -> int:
    ref = _ink(text, _REF_SIZE)
    size = max(4, math.ceil(_REF_SIZE * ink_px / (ref[3] - ref[1])))
    for _ in range(8):
        box = _ink(text, size)
        if box[3] - box[1] >= ink_px:
            break
        size += 1
    return size


def _width_per_ink(text: str) -> float:
    ref = _ink(text, _REF_SIZE)
    return (ref[2] - ref[0]) / (ref[3] - ref[1])


@functools.lru_cache(maxsize=64)
def make_sprite(text: str, ink_px: int, style: str) -> Sprite:
    """Draw ``text`` so that its ink is at least ``ink_px`` pixels tall, in ``style``."""
    size = _size_for(text, ink_px)
    font = label_font(size)
    ink = _ink(text, size)
    ink_h = ink[3] - ink[1]
    if style == "plate":
        stroke = max(1, round(ink_h * 0.03))
        pad_x, pad_y = max(2, round(ink_h * 0.35)), max(2, round(ink_h * 0.25))
        fill, stroke_fill = (255, 255, 255, 255), (0, 0, 0, 255)
    else:
        stroke = max(1, round(ink_h * 0.07))
        pad_x = pad_y = stroke + 1
        dark = style == "dark"
        fill = (0, 0, 0, 255) if dark else (255, 255, 255, 255)
        stroke_fill = (255, 255, 255, 255) if dark else (0, 0, 0, 255)
    width = ink[2] - ink[0] + 2 * pad_x
    height = ink_h + 2 * pad_y
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    if style == "plate":
        draw.rounded_rectangle(
            (0, 0, width - 1, height - 1), radius=max(1, round(ink_h * 0.2)), fill=(0, 0, 0, _PLATE_ALPHA)
        )
    origin = (pad_x - ink[0], pad_y - ink[1])
    text_layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(text_layer).text(
        origin, text, font=font, fill=fill, stroke_width=stroke, stroke_fill=stroke_fill
    )
    canvas.alpha_composite(text_layer)
    contrast = 21.0 if style != "plate" else contrast_ratio(255.0, 0.0)
    return Sprite(
        rgba=np.asarray(canvas).copy(),
        ink_box=(pad_x, pad_y, pad_x + ink[2] - ink[0], pad_y + ink_h),
        font_size=size,
        style=style,
        contrast=contrast,
    )


def target_ink(text: str, width: int, height: int, fraction: float) -> int:
    """Ink height in pixels for a ``width`` x ``height`` (display) image: at least ``fraction`` of
    the shortest side (with a safety margin), at least ``MIN_LEGIBLE_PX`` where that still fits."""
    short = min(width, height)
    required = max(1, math.ceil(fraction * short * SAFETY))
    per_ink = _width_per_ink(text)
    # the sprite adds pads of about 0.7 ink heights; keep it within 90% of the width
    fit = int(0.9 * width / (per_ink + 0.75))
    fit = min(fit, int(0.6 * height))
    if fit < math.ceil(fraction * short):
        raise UsageError(
            f"the label {text!r} does not fit a {width}x{height} image with glyphs at "
            f"{fraction:.0%} of the shortest side; use a shorter wording"
        )
    return max(min(max(required, MIN_LEGIBLE_PX), fit), math.ceil(fraction * short))


def plan_box(width: int, height: int, sprite_size: tuple[int, int], position: str) -> tuple[int, int]:
    """Top-left corner of a sprite at ``position`` (edge or corner) in a ``width`` x ``height`` frame."""
    sw, sh = sprite_size
    margin = max(1, round(0.025 * min(width, height)))
    if "left" in position:
        x = margin
    elif "right" in position:
        x = width - sw - margin
    else:
        x = (width - sw) // 2
    if position.startswith("top"):
        y = margin
    elif position.startswith("bottom"):
        y = height - sh - margin
    else:
        y = (height - sh) // 2
    return max(0, min(x, width - sw)), max(0, min(y, height - sh))


def composite(region: Array, sprite: Array) -> Array:
    """``sprite`` (straight-alpha RGBA, same height and width) over ``region`` (grey, grey+alpha,
    RGB or RGBA uint8); returns a new array of the region's shape."""
    alpha = sprite[..., 3:4].astype(np.float32) / 255.0
    channels = 1 if region.ndim == 2 else region.shape[2]
    base = region.reshape(region.shape[0], region.shape[1], channels).astype(np.float32)
    colour = sprite[..., :3].astype(np.float32)
    if channels in (1, 2):
        colour = _luminance(colour)[..., None]
    n = colour.shape[2]
    out = base.copy()
    out[..., :n] = colour * alpha + base[..., :n] * (1.0 - alpha)
    if channels in (2, 4):  # alpha channel: the label is opaque where drawn
        out[..., n] = alpha[..., 0] * 255.0 + base[..., n] * (1.0 - alpha[..., 0])
    result: Array = np.clip(out + 0.5, 0, 255).astype(np.uint8).reshape(region.shape)
    return result


# Stored pixels S, display D = S.transpose(m) (EXIF orientation 2-8, video rotation).
def to_display(a: Array, orientation: int) -> Array:
    """Stored-orientation pixels as displayed (EXIF orientation numbering)."""
    ops = {
        1: lambda x: x,
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.swapaxes(0, 1),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: x[::-1, ::-1].swapaxes(0, 1),
        8: lambda x: np.rot90(x, 1),
    }
    return np.ascontiguousarray(ops[orientation](a))


def to_stored(a: Array, orientation: int) -> Array:
    """The inverse of :func:`to_display`."""
    inverse = {6: 8, 8: 6}.get(orientation, orientation)
    return to_display(a, inverse)


def display_box_to_stored(
    box: tuple[int, int, int, int], stored_size: tuple[int, int], orientation: int
) -> tuple[int, int, int, int]:
    """A half-open box in display coordinates as the box of the same pixels in stored coordinates."""
    w, h = stored_size

    def f(x: int, y: int) -> tuple[int, int]:
        if orientation == 2:
            return w - 1 - x, y
        if orientation == 3:
            return w - 1 - x, h - 1 - y
        if orientation == 4:
            return x, h - 1 - y
        if orientation == 5:
            return y, x
        if orientation == 6:
            return y, h - 1 - x
        if orientation == 7:
            return w - 1 - y, h - 1 - x
        if orientation == 8:
            return w - 1 - y, x
        return x, y

    ax, ay = f(box[0], box[1])
    bx, by = f(box[2] - 1, box[3] - 1)
    return min(ax, bx), min(ay, by), max(ax, bx) + 1, max(ay, by) + 1
