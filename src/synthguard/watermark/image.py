"""The invisible image watermark: the 64-bit ProduceID in the luminance, found again without the original.

:func:`embed_image` adds a keyed pattern (see ``_image_mark`` for the scheme) to the luminance of a
Pillow image of at least 256 pixels on its short side, in every mode that has a luminance: grey,
palette (returned as RGB or RGBA), RGB(A), CMYK, YCbCr, LAB and 16-bit grey; alpha is kept as it was.
:func:`detect_image` finds it after JPEG compression, resizing, cropping, small rotations, brightness
and contrast changes and noise, and reports a p-value: the probability bound of evidence this strong
in content that does not carry a mark made with this key. A match is declared only below the
threshold.

The file functions keep the format, mode, ICC profile, EXIF, XMP and DPI; a JPEG is re-encoded at
quality 95 with its own chroma subsampling. Marks are embedded as the image is displayed (EXIF
orientation applied), so a screenshot of the displayed image carries the mark upright; detection of
a file looks at it the same way.

Example::

    marked = embed_image(Image.open("in.png"), "0123456789ABCDEF", secret)
    detection = detect_image(marked, secret, 1e-6)
    assert detection.found and detection.produce_id == "0123456789ABCDEF"
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from synthguard._io import atomic_output
from synthguard.config import Settings
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError, UsageError
from synthguard.watermark import _image_mark
from synthguard.watermark.base import (
    WatermarkDetection,
    payload_bits,
    produce_id_from_bits,
    watermark_secret,
)

__all__ = [
    "IMAGE_FORMATS",
    "IMAGE_SCHEME",
    "MIN_SIDE",
    "detect_image",
    "detect_image_file",
    "embed_image",
    "embed_image_file",
]

#: The scheme's stable name (reported in every detection).
IMAGE_SCHEME: Final = "synthguard-image-v1"
#: The least short side (pixels) an image must have to be marked.
MIN_SIDE: Final = _image_mark.MIN_EMBED_SIDE
#: File formats :func:`embed_image_file` re-encodes.
IMAGE_FORMATS: Final = ("JPEG", "PNG", "WEBP", "TIFF")
_JPEG_QUALITY: Final = 95

# EXIF orientation -> the transpose that shows the image upright, and the one that undoes it.
_UPRIGHT: Final = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_LEFT_RIGHT),
    3: (Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_180),
    4: (Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.FLIP_TOP_BOTTOM),
    5: (Image.Transpose.TRANSPOSE, Image.Transpose.TRANSPOSE),
    6: (Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_90),
    7: (Image.Transpose.TRANSVERSE, Image.Transpose.TRANSVERSE),
    8: (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270),
}

# Modes and the channels that carry the luminance (sign -1: ink channels, where more is darker).
_CARRIERS: Final[dict[str, tuple[tuple[int, ...], float]]] = {
    "L": ((0,), 1.0),
    "LA": ((0,), 1.0),
    "RGB": ((0, 1, 2), 1.0),
    "RGBA": ((0, 1, 2), 1.0),
    "RGBX": ((0, 1, 2), 1.0),
    "CMYK": ((0, 1, 2), -1.0),
    "YCbCr": ((0,), 1.0),
    "LAB": ((0,), 1.0),
    "I;16": ((0,), 257.0),
}


def luminance(image: Image.Image) -> Image.Image:
    """The luminance plane (mode L, or F for 16-bit and wider modes) that marks live in."""
    mode = image.mode
    if mode in ("YCbCr", "LAB"):
        return image.getchannel(0)
    if mode.startswith("I;16"):
        return Image.fromarray(np.asarray(image, dtype=np.float32) / np.float32(257.0), mode="F")
    if mode in ("I", "F"):
        return image.convert("F")
    if mode in ("L", "LA", "RGB", "RGBA", "RGBX", "RGBa", "La", "P", "PA", "CMYK", "1"):
        return image.convert("L")
    return image.convert("RGB").convert("L")


def _carrier(image: Image.Image) -> Image.Image:
    """``image`` in a mode the mark can be added to (palette images become RGB or RGBA)."""
    if image.mode in _CARRIERS:
        return image
    if image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    if image.mode == "P":
        return image.convert("RGB")
    raise UnsupportedFormatError(
        f"{image.mode} image",
        hint="invisible watermarks need a grey, palette, RGB(A), CMYK, YCbCr, LAB or 16-bit grey image",
    )


def _add(image: Image.Image, delta: npt.NDArray[np.float32]) -> Image.Image:
    channels, gain = _CARRIERS[image.mode]
    if image.mode == "I;16":
        values = np.asarray(image, dtype=np.int32)
        values = np.clip(values + np.rint(delta * np.float32(gain)).astype(np.int32), 0, 65535)
        return Image.fromarray(values.astype(np.uint16))
    step = np.rint(delta * np.float32(gain)).astype(np.int16)
    pixels = np.array(image, dtype=np.uint8)
    if pixels.ndim == 2:
        marked = np.clip(pixels.astype(np.int16) + step, 0, 255).astype(np.uint8)
    else:
        marked = pixels
        for channel in channels:
            marked[..., channel] = np.clip(pixels[..., channel].astype(np.int16) + step, 0, 255)
    out = Image.fromarray(marked, mode=image.mode)
    out.info = dict(image.info)
    return out


def embed_image(image: Image.Image, produce_id: str, secret: bytes) -> Image.Image:
    """A copy of ``image`` carrying ``produce_id`` (16 hex digits) under ``secret``.

    The copy has the same size and mode (palette images come back as RGB, or RGBA when they have
    transparency); alpha and ``info`` are kept. Raises ``UnsupportedFormatError`` for an image under
    ``MIN_SIDE`` pixels on its short side or of a mode without luminance (bilevel, HSV, 32-bit), and
    ``InvalidLabelError`` for a malformed ``produce_id``.
    """
    bits = payload_bits(produce_id)
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise UnsupportedFormatError(
            f"image of {width}x{height} pixels",
            hint=f"an invisible watermark needs at least {MIN_SIDE} pixels on the short side",
        )
    carrier = _carrier(image)
    delta = _image_mark.mark_delta(luminance(carrier), secret, bits)
    return _add(carrier, delta)


def detect_image(image: Image.Image, secret: bytes, threshold: float) -> WatermarkDetection:
    """Look for a mark made with ``secret`` in ``image``; ``found`` only when ``p_value < threshold``.

    Never raises for content reasons: an image too small to hold a tile, or without a mark, is a
    detection with ``found=False`` and a p-value of 1 or near it.
    """
    if not 0.0 < threshold < 1.0:
        raise UsageError(f"watermark threshold must be between 0 and 1, got {threshold}")
    luma = luminance(image)
    if min(luma.size) < _image_mark.MIN_DETECT_SIDE:
        return WatermarkDetection(False, None, 1.0, threshold, IMAGE_SCHEME, {"reason": "image too small"})
    result = _image_mark.detect_luma(luma, secret, threshold)
    return to_detection(result, threshold)


def to_detection(result: _image_mark.PlaneResult, threshold: float, **extra: Any) -> WatermarkDetection:
    """A ``WatermarkDetection`` from the scheme's result (shared with the video detector)."""
    p_value = math.exp(result.log_p)
    found = result.bits is not None and p_value < threshold
    details: dict[str, Any] = {
        "statistic": round(result.statistic, 3),
        "log10_p": round(result.log_p / math.log(10.0), 3),
        "alignments_decoded": result.decoded,
        "payload_checked": result.bits is not None,
    }
    if result.alignment is not None:
        details.update(
            scale=round(result.alignment.scale, 4),
            angle=round(result.alignment.angle, 4),
            offset=list(result.alignment.offset),
            pilot_z=round(result.alignment.pilot_z, 2),
            transform=_image_mark.DIHEDRAL_NAMES[result.alignment.variant],
            stretch=round(result.alignment.aspect, 4),
        )
    details.update(extra)
    produce_id = produce_id_from_bits(result.bits) if found and result.bits is not None else None
    return WatermarkDetection(found, produce_id, p_value, threshold, IMAGE_SCHEME, details)


def _open(path: Path) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(path)
        try:
            image.load()
        except BaseException:
            image.close()  # Pillow keeps the file open until the image is closed
            raise
    return image


def _open_or_raise(path: Path) -> Image.Image:
    try:
        return _open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaLimitError(f"image too large to watermark safely: {exc}", path=path) from None
    except UnidentifiedImageError:
        raise UnsupportedFormatError("unknown", path=path, hint="not an image Pillow can read") from None
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMediaError(f"cannot decode image: {exc}", path=path) from None


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError):
        return 1
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def _webp_lossless(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    return b"VP8L" in head and b"VP8 " not in head


def _save_params(image: Image.Image, fmt: str, path: Path) -> dict[str, Any]:
    info = image.info
    params: dict[str, Any] = {"format": fmt}
    for key in ("icc_profile", "exif", "dpi", "xmp", "comment"):
        if info.get(key):
            params[key] = info[key]
    if fmt == "JPEG":
        params["quality"] = _JPEG_QUALITY
        sampling = JpegImagePlugin.get_sampling(image)
        if sampling >= 0:
            params["subsampling"] = sampling
        if info.get("progressive") or info.get("progression"):
            params["progressive"] = True
    elif fmt == "PNG":
        text = getattr(image, "text", {})
        if text:
            pnginfo = PngImagePlugin.PngInfo()
            for key, value in text.items():
                try:
                    value.encode("latin-1")
                    pnginfo.add_text(key, value)
                except UnicodeEncodeError:
                    pnginfo.add_itxt(key, value)
            params["pnginfo"] = pnginfo
    elif fmt == "WEBP":
        if _webp_lossless(path):
            params["lossless"] = True
        else:
            params["quality"] = _JPEG_QUALITY
    elif fmt == "TIFF" and info.get("compression") not in (None, "raw", "jpeg"):
        params["compression"] = info["compression"]
    return params


def embed_image_file(src: Path, dst: Path, produce_id: str, settings: Settings) -> None:
    """Write ``src`` carrying the watermark to ``dst`` (atomically), in ``src``'s format.

    Keeps mode (palette becomes RGB/RGBA), ICC profile, EXIF, XMP, DPI and PNG text; a JPEG is
    re-encoded at quality 95. Raises ``ConfigError`` without a watermark key,
    ``UnsupportedFormatError`` for formats other than ``IMAGE_FORMATS``, animations and images too
    small, ``CorruptMediaError`` for undecodable input, ``MediaLimitError`` for decompression bombs.
    ``src`` is never modified.
    """
    src, dst = Path(src), Path(dst)
    secret = watermark_secret(settings)
    if src.resolve() == dst.resolve():
        raise UsageError(f"{src}: output must differ from the input (inputs are never modified)")
    with _open_or_raise(src) as image:
        fmt = "JPEG" if image.format == "MPO" else str(image.format)
        if fmt not in IMAGE_FORMATS:
            raise UnsupportedFormatError(
                f"{fmt} image", path=src, hint="watermarks re-encode JPEG, PNG, WebP and TIFF"
            )
        if getattr(image, "n_frames", 1) > 1:
            raise UnsupportedFormatError(f"animated {fmt}", path=src, hint="animations are not watermarked")
        params = _save_params(image, fmt, src)
        orientation = _orientation(image)
        upright, back = _UPRIGHT.get(orientation, (None, None))
        shown = image.transpose(upright) if upright is not None else image
        try:
            marked = embed_image(shown, produce_id, secret)
        except UnsupportedFormatError as exc:
            raise exc.with_path(src) from None
        if back is not None:
            marked = marked.transpose(back)
        if fmt == "JPEG" and marked.mode in ("RGBA", "LA"):
            raise UnsupportedFormatError(f"JPEG {marked.mode}", path=src)
        buffer = io.BytesIO()
        try:
            marked.save(buffer, **params)
        except (OSError, ValueError, TypeError) as exc:
            raise UnsupportedFormatError(
                f"{fmt} {marked.mode} image", path=src, hint=f"cannot re-encode it: {exc}"
            ) from None
    with atomic_output(dst) as fh:
        fh.write(buffer.getbuffer())


def detect_image_file(path: Path, settings: Settings) -> WatermarkDetection:
    """Look for the configured key's mark in the image at ``path`` (shown upright, first frame).

    Raises ``ConfigError`` without a watermark key and the ``MediaError`` tree for unreadable files.
    """
    path = Path(path)
    secret = watermark_secret(settings)
    with _open_or_raise(path) as image:
        upright, _ = _UPRIGHT.get(_orientation(image), (None, None))
        shown = image.transpose(upright) if upright is not None else image
        return detect_image(shown, secret, settings.watermark_p_threshold)
