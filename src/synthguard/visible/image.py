"""Visible labels on images (GB 45438 5.3): text on an edge or corner, glyphs >= 5% of the shortest side.

:func:`label_image` draws the label on a Pillow image (every mode Pillow decodes: grey, palette,
RGB(A), CMYK, 16-bit), touching only the pixels of the label's box, upright as displayed (EXIF
orientation honoured). :func:`label_image_file` keeps the file's format and what describes it: mode,
alpha, ICC profile, EXIF, XMP, PNG text chunks, DPI; a JPEG is re-encoded with its own quantisation
tables (so at its own quality, which is also estimated and reported the way libjpeg scales its
tables) and its own chroma subsampling, its header segments (EXIF, XMP, ICC, IPTC) copied byte
for byte; every frame of an animated GIF, WebP or APNG is labelled with durations, loop count and
disposal kept.

Pillow's decompression-bomb guard stays on; tripping it is a ``MediaLimitError``.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np
from PIL import Image, ImageSequence, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from synthguard._io import atomic_output
from synthguard.errors import (
    CorruptMediaError,
    MediaLimitError,
    UnsupportedFormatError,
    UsageError,
)
from synthguard.visible import _render
from synthguard.visible.font import check_renderable
from synthguard.visible.result import VisibleResult
from synthguard.visible.wording import IMAGE_POSITIONS, wording_from_settings

__all__ = ["ImageLabel", "estimate_jpeg_quality", "label_image", "label_image_file"]

_FORMATS: Final = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "TIFF")
#: Frames of an animation are held in memory to re-encode them: their total pixels are bounded.
MAX_ANIMATION_PIXELS: Final = 4 * 89_478_485
_STYLE_SAMPLES: Final = 8

# libjpeg's standard tables (ITU T.81 Annex K), in natural (row-major) order as Pillow gives them.
_STD_LUMA: Final = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_STD_CHROMA: Final = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *([99] * 32),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ImageLabel:
    """Where a label went on one image: ``box`` in stored pixel coordinates, the text's ink box,
    the ink height as a fraction of the shortest side, the style and the font size used."""

    box: tuple[int, int, int, int]
    ink_box: tuple[int, int, int, int]
    fraction: float
    position: str
    style: str
    font_size: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "where": self.position,
            "box": list(self.box),
            "ink_box": list(self.ink_box),
            "style": self.style,
            "font_size": self.font_size,
        }


def estimate_jpeg_quality(quantization: dict[int, Sequence[int]]) -> int:
    """The libjpeg quality (1-100) whose scaled standard tables are nearest to ``quantization``.

    Same idea as ImageMagick's and libjpeg's ``jpeg_quality_scaling``: a quality q scales the
    Annex K tables by ``5000/q`` (q < 50) or ``200 - 2q`` percent; the q with the least absolute
    difference from the file's luma (and chroma, when present) tables is returned.
    """
    luma = list(quantization.get(0, []))
    chroma = list(quantization.get(1, []))
    if len(luma) != 64:
        return 75
    best_q, best_err = 75, math.inf
    for q in range(1, 101):
        scale = 5000 / q if q < 50 else 200 - 2 * q
        err = 0.0
        for got, base in zip(luma, _STD_LUMA, strict=True):
            err += abs(got - min(255, max(1, (base * scale + 50) // 100)))
        if len(chroma) == 64:
            for got, base in zip(chroma, _STD_CHROMA, strict=True):
                err += abs(got - min(255, max(1, (base * scale + 50) // 100)))
        if err < best_err:
            best_q, best_err = q, err
    return best_q


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block must not stop labelling
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _display_size(img: Image.Image, orientation: int) -> tuple[int, int]:
    w, h = img.size
    return (h, w) if orientation >= 5 else (w, h)


def _work_region(region: Image.Image) -> tuple[np.ndarray[Any, Any], str]:
    """Pixels to composite on, and the mode they are in."""
    mode = region.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        return np.asarray(region), mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(region).astype(np.float64)
        return np.clip(wide / 257.0 + 0.5, 0, 255).astype(np.uint8), "L"
    if mode in ("P", "PA", "RGBX", "RGBa", "La"):
        return np.asarray(region.convert("RGBA")), "RGBA"
    if mode in ("1",):
        return np.asarray(region.convert("L")), "L"
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(region.convert("RGB")), "RGB"
    raise UnsupportedFormatError(f"image mode {mode}", hint="no label can be drawn on it")


def _back_to_mode(pixels: np.ndarray[Any, Any], work_mode: str, original: Image.Image) -> Image.Image:
    mode = original.mode
    img = Image.fromarray(pixels, work_mode)
    if mode == work_mode:
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = pixels.astype(np.uint32) * 257
        if mode == "I":
            return Image.fromarray(wide.astype(np.int32))
        out = Image.fromarray(wide.astype(np.uint16))
        return out if mode == "I;16" else out.convert(mode)
    if mode == "1":
        return img.point(lambda v: 255 if v >= 128 else 0).convert("1")
    if mode in ("P", "PA"):
        return _to_palette(img, original)
    return img.convert(mode)


def _to_palette(rgba: Image.Image, original: Image.Image) -> Image.Image:
    """Map composited RGBA back onto the image's own palette (pixels outside the box keep their
    indices). Opaque label pixels never take the transparency index (its colour is often black,
    which would make a black outline invisible); pixels under half opacity do."""
    palette = list(original.getpalette() or [])
    transparency = original.info.get("transparency")
    entries = len(palette) // 3
    stand_in: int | None = None
    if isinstance(transparency, int) and 0 <= transparency < entries and entries > 1:
        # give the transparent entry a copy of another entry's colour, then move its matches there
        stand_in = 1 if transparency == 0 else 0
        palette[3 * transparency : 3 * transparency + 3] = palette[3 * stand_in : 3 * stand_in + 3]
    palette_image = Image.new("P", (1, 1))
    palette_image.putpalette(palette)
    indexed = rgba.convert("RGB").quantize(palette=palette_image, dither=Image.Dither.NONE)
    if isinstance(transparency, int):
        idx = np.asarray(indexed).copy()
        if stand_in is not None:
            idx[idx == transparency] = stand_in
        idx[np.asarray(rgba)[..., 3] < 128] = transparency
        indexed = Image.fromarray(idx, "P")
    indexed.putpalette(original.getpalette() or [])
    if original.mode == "PA":
        indexed = indexed.convert("PA")
    return indexed


def _palette_with_black_and_white(img: Image.Image) -> Image.Image:
    """Add black and white to a palette with room for them, so a label's colours exist in it (the
    transparent entry does not count: its colour is never shown)."""
    if img.mode not in ("P", "PA"):
        return img
    palette = img.getpalette() or []
    transparency = img.info.get("transparency")
    colours = {tuple(palette[i : i + 3]) for i in range(0, len(palette), 3) if i // 3 != transparency}
    missing = [c for c in ((0, 0, 0), (255, 255, 255)) if c not in colours]
    if missing and len(palette) // 3 + len(missing) <= 256:
        for colour in missing:
            palette.extend(colour)
        img.putpalette(palette)
    return img


def _region_style(img: Image.Image, box: tuple[int, int, int, int]) -> str:
    pixels, _ = _work_region(img.crop(box))
    style, _contrast = _render.choose_style(pixels)
    return style


def label_image(
    img: Image.Image,
    text: str,
    *,
    position: str = "bottom-right",
    fraction: float = 0.05,
    orientation: int | None = None,
    style: str | None = None,
) -> ImageLabel:
    """Draw ``text`` on ``img`` in place, upright as displayed, at ``position`` (an edge or corner),
    its ink at least ``fraction`` of the displayed shortest side. Only the returned box changes.

    ``orientation`` is the EXIF orientation (read from ``img`` when ``None``); ``style`` forces
    ``"plate"``, ``"dark"`` or ``"light"`` (chosen from the pixels under the label when ``None``).
    """
    if position not in IMAGE_POSITIONS:
        raise UsageError(f"label position must be one of {', '.join(IMAGE_POSITIONS)}, got {position!r}")
    check_renderable(text)
    if orientation is None:
        orientation = _orientation(img)
    width, height = _display_size(img, orientation)
    ink_px = _render.target_ink(text, width, height, fraction)
    if style is None:
        probe = _render.make_sprite(text, ink_px, "plate")
        x, y = _render.plan_box(width, height, probe.size, position)
        probe_box = (x, y, x + probe.size[0], y + probe.size[1])
        style = _region_style(img, _render.display_box_to_stored(probe_box, img.size, orientation))
    return _apply_sprite(img, _render.make_sprite(text, ink_px, style), position, orientation)


def _apply_sprite(img: Image.Image, sprite: _render.Sprite, position: str, orientation: int) -> ImageLabel:
    width, height = _display_size(img, orientation)
    x, y = _render.plan_box(width, height, sprite.size, position)
    display_box = (x, y, x + sprite.size[0], y + sprite.size[1])
    box = _render.display_box_to_stored(display_box, img.size, orientation)
    region = img.crop(box)
    pixels, work_mode = _work_region(region)
    shown = _render.to_display(pixels, orientation)
    labelled = _render.to_stored(_render.composite(shown, sprite.rgba), orientation)
    img.paste(_back_to_mode(labelled, work_mode, region), box[:2])
    ix0, iy0, ix1, iy1 = sprite.ink_box
    ink_display = (x + ix0, y + iy0, x + ix1, y + iy1)
    return ImageLabel(
        box=box,
        ink_box=_render.display_box_to_stored(ink_display, img.size, orientation),
        fraction=sprite.ink_height / min(width, height),
        position=position,
        style=sprite.style,
        font_size=sprite.font_size,
    )


def _open_raw(src: Path) -> Image.Image:
    img = Image.open(src)
    try:
        img.load()
    except BaseException:
        img.close()
        raise
    return img


def _open(src: Path) -> Image.Image:
    """``Image.open`` + ``load``, Pillow's errors mapped to the exception tree, the format checked."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open_raw(src)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaLimitError(f"image too large to label safely: {exc}", path=src) from None
    except UnidentifiedImageError:
        raise UnsupportedFormatError("unknown", path=src, hint="not an image Pillow can read") from None
    except FileNotFoundError:
        raise UsageError(f"{src}: no such file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMediaError(f"cannot decode image: {exc}", path=src) from None
    if img.format not in _FORMATS:
        img.close()
        raise UnsupportedFormatError(
            f"{img.format} image", path=src, hint="visible labels re-encode JPEG, PNG, GIF, WebP, TIFF"
        )
    return img


def _frames(img: Image.Image, src: Path) -> list[Image.Image]:
    # an MPO's later images are previews or depth maps: the primary image is what people see and
    # the file is written back as a plain JPEG
    n = 1 if img.format == "MPO" else getattr(img, "n_frames", 1)
    if n * img.size[0] * img.size[1] > MAX_ANIMATION_PIXELS:
        raise MediaLimitError(f"{n} frames of {img.size[0]}x{img.size[1]} are too many to label", path=src)
    if n == 1:
        return [img]  # drawn on in place: the decoded image is ours, and no copy doubles the memory
    frames: list[Image.Image] = []
    try:
        for frame in ImageSequence.Iterator(img):
            if len(frames) == n:
                break
            copy = frame.copy()
            copy.info = dict(frame.info)
            disposal = getattr(frame, "disposal_method", None)
            if disposal is not None:  # GIF keeps it off ``info``
                copy.info["disposal"] = disposal
            frames.append(copy)
    except (OSError, EOFError, ValueError) as exc:
        raise CorruptMediaError(f"cannot decode frame {len(frames)}: {exc}", path=src) from None
    return frames


def _webp_lossless(src: Path) -> bool:
    with src.open("rb") as fh:
        head = fh.read(1 << 16)
    return b"VP8L" in head and b"VP8 " not in head


def _save_params(img: Image.Image, frames: list[Image.Image], src: Path) -> dict[str, Any]:
    info = frames[0].info  # the file's own (after iterating, ``img.info`` is the last frame's)
    fmt = "JPEG" if img.format == "MPO" else str(img.format)
    params: dict[str, Any] = {"format": fmt}
    for key in ("icc_profile", "exif", "dpi", "xmp", "comment"):
        if info.get(key):
            params[key] = info[key]
    if fmt == "JPEG":
        quantization = getattr(img, "quantization", None)
        if quantization:
            params["qtables"] = [list(quantization[k]) for k in sorted(quantization)]
        sampling = JpegImagePlugin.get_sampling(img)
        if sampling >= 0:
            params["subsampling"] = sampling
        if info.get("progressive") or info.get("progression"):
            params["progressive"] = True
        params["optimize"] = True
    elif fmt == "PNG":
        text = getattr(img, "text", {})
        if text:
            pnginfo = PngImagePlugin.PngInfo()
            for key, value in text.items():
                try:
                    value.encode("latin-1")
                    pnginfo.add_text(key, value)
                except UnicodeEncodeError:
                    pnginfo.add_itxt(key, value)
            params["pnginfo"] = pnginfo
        if "transparency" in info:
            params["transparency"] = info["transparency"]
        if img.mode in ("P", "L", "1") and info.get("bits"):
            params["bits"] = info["bits"]
    elif fmt == "GIF":
        for key in ("transparency", "background", "version"):
            if key in info:
                params[key] = info[key]
    elif fmt == "WEBP":
        if _webp_lossless(src):
            params["lossless"] = True
        else:
            params["quality"] = 90
        if "background" in info and len(frames) > 1:
            params["background"] = info["background"]
    elif fmt == "TIFF":
        if info.get("compression") and info["compression"] != "raw":
            params["compression"] = info["compression"]
        tags = getattr(img, "tag_v2", None)
        if tags is not None:
            params["tiffinfo"] = tags
    if len(frames) > 1:
        params["save_all"] = True
        params["append_images"] = frames[1:]
        params["duration"] = [f.info.get("duration", info.get("duration", 100)) for f in frames]
        if "loop" in info:
            params["loop"] = info["loop"]
        if fmt in ("GIF", "PNG"):
            disposal = [_disposal(f) for f in frames]
            if any(d is not None for d in disposal):
                params["disposal"] = [d or 0 for d in disposal]
        if fmt == "PNG":
            blend = [f.info.get("blend") for f in frames]
            if any(b is not None for b in blend):
                params["blend"] = [b or 0 for b in blend]
            if info.get("default_image"):
                params["default_image"] = True
    return params


def _disposal(frame: Image.Image) -> int | None:
    value = frame.info.get("disposal")
    return int(value) if value is not None else None


def _keep_jpeg_segments(src: Path, encoded: bytes) -> bytes:
    """The encoded JPEG with the source's APPn and COM segments (EXIF, XMP, ICC, IPTC, comments,
    maker data) byte for byte in place of the encoder's; the encoder's APP14 stays (its Adobe colour
    transform describes the new scan) and MPF goes (its offsets point into the old file). Returns
    the encoder's output unchanged if either file's header cannot be parsed."""
    from synthguard.labels.metadata.jpeg import scan_segments

    try:
        with src.open("rb") as fh:
            old_segments, _ = scan_segments(fh)
            kept: list[bytes] = []
            for segment in old_segments:
                if not segment.is_app() or segment.marker == 0xEE:
                    continue
                fh.seek(segment.offset)
                data = fh.read(segment.end - segment.offset)
                if not (segment.marker == 0xE2 and data[4:8] == b"MPF\x00"):
                    kept.append(data)
        new_segments, scan = scan_segments(io.BytesIO(encoded))
    except (CorruptMediaError, UnsupportedFormatError, MediaLimitError, OSError):
        return encoded
    adobe = [encoded[s.offset : s.end] for s in new_segments if s.marker == 0xEE]
    tables = [encoded[s.offset : s.end] for s in new_segments if not s.is_app()]
    return b"\xff\xd8" + b"".join(kept + adobe + tables) + encoded[scan:]


#: Ancillary PNG chunks whose meaning survives a change of the pixels (colour space, text, time,
#: physical size, EXIF); unknown ones are copied only when their safe-to-copy bit says so.
_PNG_KEEP: Final = frozenset(
    {b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP", b"mDCV", b"cLLI", b"mDCv", b"cLLi", b"sBIT",
     b"pHYs", b"sPLT", b"tIME", b"tEXt", b"zTXt", b"iTXt", b"eXIf"}
)  # fmt: skip
#: Chunks taken from the new encoding: structure, palette-bound chunks and the pixels.
_PNG_NEW: Final = frozenset({b"IHDR", b"PLTE", b"tRNS", b"bKGD", b"IDAT", b"IEND"})


def _png_chunks(fh: BinaryIO) -> list[tuple[bytes, int, int]]:
    """(type, offset, total length) of each chunk; ``ValueError`` on a malformed file."""
    fh.seek(0)
    if fh.read(8) != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    chunks: list[tuple[bytes, int, int]] = []
    pos = 8
    while True:
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError("PNG ends without IEND")
        size = int.from_bytes(head[:4], "big")
        if size > 0x7FFFFFFF or len(chunks) > 100_000:
            raise ValueError("PNG chunk too large or too many chunks")
        chunks.append((head[4:8], pos, 12 + size))
        pos += 12 + size
        if head[4:8] == b"IEND":
            return chunks


def _keep_png_chunks(src: Path, encoded: bytes) -> bytes:
    """The encoded PNG with the source's ancillary chunks (gAMA, cHRM, iCCP, sBIT, pHYs, text,
    eXIf, tIME, safe-to-copy private chunks) byte for byte, before or after the image data as they
    were; palette-bound chunks and the pixels come from the new encoding, and chunks unsafe to copy
    after a pixel change (hIST, unknown unsafe ones) are dropped. Animated PNGs are left alone."""
    try:
        with src.open("rb") as fh:
            old = _png_chunks(fh)
            if any(kind == b"acTL" for kind, _, _ in old):
                return encoded
            before: list[bytes] = []
            after: list[bytes] = []
            seen_data = False
            for kind, offset, length in old:
                seen_data = seen_data or kind == b"IDAT"
                ancillary, safe_to_copy = kind[0] & 0x20, kind[3] & 0x20  # lowercase letters
                if kind in _PNG_NEW or (kind not in _PNG_KEEP and not (ancillary and safe_to_copy)):
                    continue
                fh.seek(offset)
                (after if seen_data else before).append(fh.read(length))
        new = _png_chunks(io.BytesIO(encoded))
    except (OSError, ValueError):
        return encoded
    parts = [encoded[:8]]
    for kind, offset, length in new:
        chunk = encoded[offset : offset + length]
        if kind == b"IHDR":
            parts += [chunk, *before]
        elif kind == b"IEND":
            parts += [*after, chunk]
        elif kind in _PNG_NEW:
            parts.append(chunk)
    return b"".join(parts)


def label_image_file(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], settings: Any
) -> VisibleResult:
    """Write ``src`` with a visible label to ``dst`` (atomically), in ``src``'s format.

    Raises ``UnsupportedFormatError`` for formats that cannot be re-encoded here,
    ``CorruptMediaError`` for undecodable input, ``MediaLimitError`` for decompression bombs and
    ``ConfigError`` for a non-conforming wording. ``src`` is never modified.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise UsageError(f"{src}: output must differ from the input (inputs are never modified)")
    wording = wording_from_settings(settings)
    text = wording.text("short", bilingual=bool(getattr(settings, "visible_bilingual", False)))
    check_renderable(text, "setting visible_short_wording")
    position = str(getattr(settings, "visible_position", "bottom-right"))
    fraction = float(getattr(settings, "visible_min_glyph_fraction", 0.05))
    with _open(src) as img:
        frames = _frames(img, src)
        orientation = _orientation(img)
        # one style for every frame, so an animation's label does not flicker between styles
        width, height = _display_size(img, orientation)
        ink_px = _render.target_ink(text, width, height, fraction)
        probe = _render.make_sprite(text, ink_px, "plate")
        x, y = _render.plan_box(width, height, probe.size, position)
        probe_box = (x, y, x + probe.size[0], y + probe.size[1])
        box = _render.display_box_to_stored(probe_box, img.size, orientation)
        step = max(1, len(frames) // _STYLE_SAMPLES)
        styles = [_region_style(f, box) for f in frames[::step]]
        style = "plate" if "plate" in styles or len(set(styles)) > 1 else styles[0]
        sprite = _render.make_sprite(text, ink_px, style)
        placed: ImageLabel | None = None
        for index, frame in enumerate(frames):
            frames[index] = _palette_with_black_and_white(frame)
            placed = _apply_sprite(frames[index], sprite, position, orientation)
        assert placed is not None
        params = _save_params(img, frames, src)
        details: dict[str, Any] = {
            "format": params["format"],
            "mode": frames[0].mode,
            "size": list(img.size),
            "frames": len(frames),
            "orientation": orientation,
            "style": placed.style,
            "font_size": placed.font_size,
        }
        quantization = getattr(img, "quantization", None)
        if params["format"] == "JPEG" and quantization:
            details["jpeg_quality"] = estimate_jpeg_quality(quantization)
            details["jpeg_subsampling"] = params.get("subsampling")
        buffer = io.BytesIO()
        try:
            frames[0].save(buffer, **params)
        except (OSError, ValueError, TypeError) as exc:
            raise UnsupportedFormatError(
                f"{params['format']} {frames[0].mode} image", path=src, hint=f"cannot re-encode it: {exc}"
            ) from None
    encoded = buffer.getvalue()
    if details["format"] == "JPEG":
        encoded = _keep_jpeg_segments(src, encoded)
    elif details["format"] == "PNG" and len(frames) == 1:
        encoded = _keep_png_chunks(src, encoded)
    with atomic_output(dst) as fh:
        fh.write(encoded)
    return VisibleResult(
        modality="image",
        wording=text,
        placements=[placed.as_dict()],
        glyph_height_fraction=placed.fraction,
        details=details,
        conforms=placed.fraction >= 0.05,
    )
