"""PDQ perceptual hashes of images: decode safely, normalise to RGB, hash with the reference code.

A ``PdqHash`` is 256 bits and a quality from 0 to 100 (how much structure the image had: a flat or
tiny image scores near 0, a photo 100). Two images match when the Hamming distance of their hashes is
at most ``ImageReviewConfig.max_distance`` (default 31), and only hashes of quality at least
``min_quality`` (default 50) are trusted for matching: a low-quality hash says "too little to go on",
which callers report as such (``hash_index.MatchStatus.LOW_QUALITY``), never as "no match".

The pipeline, from any source (a path, bytes, or a Pillow image):

1. **Open** with Pillow, restricted to the raster formats in ``IMAGE_FORMATS`` (no EPS, which would run
   Ghostscript, and no TGA, which has no magic number and accepts random bytes). A declared size over
   the pixel limit (``max_pixels``, default Pillow's ``Image.MAX_IMAGE_PIXELS``) raises
   ``MediaLimitError`` before any pixel is decoded, so a 100000x100000 "bomb" costs a header read.
   Bytes that are no image raise ``UnsupportedFormatError``; a truncated or broken image
   ``CorruptMediaError``. Animated images: the first frame.
2. **Reduce** to at most ``REDUCE_TO`` (512) pixels on the long side, aspect kept, with a box filter
   (JPEGs opened here are first decoded at a reduced DCT scale, ``Image.draft``; a Pillow image
   given by the caller is decoded as it is, so a large JPEG given that way can hash a few bits away
   from the same file given by path or bytes). The reference tool reduces every
   image over 512 px too (to 512x512, nearest neighbour); keeping the aspect measured closer to the
   reference hashes of ``../shared/testdata/pdq`` (at most 4 bits off, against 12 at full size), makes
   hashing a 1080p photo about 10x cheaper, and bounds the memory of every later step.
3. **Convert** every Pillow mode to 8-bit RGB. Transparency (an alpha band, a palette or ``tRNS``
   transparent colour) is composited over **white**, the background most viewers show: the hash
   describes what a person sees, and garbage hidden under transparent pixels cannot change it.
   16-bit and 32-bit integer images (``I``, ``I;16``...) and float images (``F``) are mapped to 0-255
   by their nominal range (0-255, 0-65535, or 0.0-1.0 for floats), else stretched from their actual
   minimum and maximum; PDQ ignores the mean brightness, so only the quality depends on this choice.
4. **Orient** by the EXIF orientation tag (unreadable EXIF counts as "no rotation").
5. **Hash** with ``pdqhash`` (Cython bindings of Meta's C++ reference implementation); the eight
   dihedral hashes come from the same DCT in one call (``dihedral_hashes``).

>>> from PIL import Image
>>> h = hash_image(Image.new("RGB", (1, 1)))
>>> h.quality, hamming(h, h)
(0, 0)
"""

from __future__ import annotations

import dataclasses
import enum
import io
import os
import struct
from pathlib import Path
from typing import BinaryIO, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pdqhash  # type: ignore[import-untyped]  # no stubs: two functions, wrapped here
from PIL import Image, UnidentifiedImageError

from synthguard.errors import (
    ConfigError,
    CorruptMediaError,
    MediaError,
    MediaLimitError,
    UnsupportedFormatError,
    UsageError,
)

__all__ = [
    "DEFAULT_IMAGE_CONFIG",
    "HASH_BITS",
    "IMAGE_FORMATS",
    "REDUCE_TO",
    "Dihedral",
    "ImageReviewConfig",
    "ImageSource",
    "PdqHash",
    "dihedral_hashes",
    "dihedral_hashes_of_pixels",
    "hamming",
    "hash_image",
    "hash_pixels",
    "load_pixels",
]

HASH_BITS: Final = 256
_HASH_BYTES: Final = HASH_BITS // 8
#: Long side, in pixels, that images are reduced to before hashing (see the module docstring).
REDUCE_TO: Final = 512
#: Pillow formats that are opened (JPEG includes MPO); anything else is ``UnsupportedFormatError``.
IMAGE_FORMATS: Final = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "ICO", "PPM", "JPEG2000")
#: Pixel limit when Pillow's own ``Image.MAX_IMAGE_PIXELS`` has been switched off (``None``).
_FALLBACK_MAX_PIXELS: Final = 89_478_485

#: A path, the encoded bytes of an image, or a decoded Pillow image.
ImageSource: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image
RgbArray: TypeAlias = npt.NDArray[np.uint8]

# Pillow raises these (besides OSError) on malformed headers and data; all mean "corrupt".
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError)
_ALPHA_MODES: Final = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
# EXIF orientation (tag 0x0112) -> the transposition that shows the image upright.
_ORIENTATION: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class Dihedral(enum.Enum):
    """The eight rotations and flips of an image, in the order the reference code returns them.

    As in the reference code and its test images (``dih/bridge-2-rotate-90.jpg``), rotations are
    anticlockwise: ``ROTATE_90`` is the image turned a quarter anticlockwise (``numpy.rot90(a, 1)``).
    ``FLIP_X`` turns it upside down (``numpy.flipud``: about the x axis), ``FLIP_Y`` mirrors left and
    right (``numpy.fliplr``), ``FLIP_PLUS_1`` mirrors about the main diagonal (a transpose),
    ``FLIP_MINUS_1`` about the other. A match's variant is the transform that takes the QUERY to the
    known image: a copy turned a quarter anticlockwise matches its original as ``ROTATE_270``.
    """

    ORIGINAL = "original"
    ROTATE_90 = "rotate-90"
    ROTATE_180 = "rotate-180"
    ROTATE_270 = "rotate-270"
    FLIP_X = "flip-x"
    FLIP_Y = "flip-y"
    FLIP_PLUS_1 = "flip-plus-1"
    FLIP_MINUS_1 = "flip-minus-1"


@dataclasses.dataclass(frozen=True, slots=True)
class ImageReviewConfig:
    """Settings of image review. Defaults follow the review spec (distance 31, quality 50)."""

    #: Largest Hamming distance (of 256 bits) that counts as a match.
    max_distance: int = 31
    #: Hashes of lower quality are not trusted for matching.
    min_quality: int = 50
    #: Largest image (width x height) decoded; ``None``: Pillow's ``Image.MAX_IMAGE_PIXELS`` at call
    #: time. Pillow itself refuses anything over twice its own limit, whatever is set here.
    max_pixels: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.max_distance <= HASH_BITS:
            raise ConfigError(f"max_distance must be 0..{HASH_BITS}, got {self.max_distance}")
        if not 0 <= self.min_quality <= 100:
            raise ConfigError(f"min_quality must be 0..100, got {self.min_quality}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ConfigError(f"max_pixels must be positive, got {self.max_pixels}")

    def pixel_limit(self) -> int:
        """The limit in force now."""
        if self.max_pixels is not None:
            return self.max_pixels
        pillow_limit = Image.MAX_IMAGE_PIXELS
        return int(pillow_limit) if pillow_limit else _FALLBACK_MAX_PIXELS

    def trusts(self, pdq: PdqHash) -> bool:
        """Whether ``pdq`` is good enough to match on (quality at least ``min_quality``)."""
        return pdq.quality >= self.min_quality


DEFAULT_IMAGE_CONFIG: Final = ImageReviewConfig()


@dataclasses.dataclass(frozen=True, slots=True)
class PdqHash:
    """A 256-bit PDQ hash and its quality (0-100).

    ``value`` holds the bits big-endian: its hex form is the 64 lower-case digits that the reference
    implementation prints and that hash-sharing databases (ThreatExchange) exchange.

    >>> h = PdqHash.from_hex("d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22", quality=100)
    >>> h.hex[:8], int(h) >> 252, h.distance(h)
    ('d8f8f0cc', 13, 0)
    """

    value: bytes
    quality: int

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes) or len(self.value) != _HASH_BYTES:
            raise UsageError(f"a PDQ hash is {_HASH_BYTES} bytes")
        if (
            isinstance(self.quality, bool)
            or not isinstance(self.quality, int)
            or not 0 <= self.quality <= 100
        ):
            raise UsageError(f"PDQ quality must be an integer 0..100, got {self.quality!r}")

    @classmethod
    def from_hex(cls, text: str, *, quality: int) -> PdqHash:
        """Parse the 64-digit hex form (either case)."""
        if len(text) != 2 * _HASH_BYTES:
            raise UsageError(f"a PDQ hash in hex is {2 * _HASH_BYTES} digits, got {len(text)}")
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise UsageError(f"not a hex PDQ hash: {text!r}") from None
        return cls(value, quality)

    @classmethod
    def from_int(cls, number: int, *, quality: int) -> PdqHash:
        if not 0 <= number < 1 << HASH_BITS:
            raise UsageError("a PDQ hash is an integer of 0..2**256-1")
        return cls(number.to_bytes(_HASH_BYTES, "big"), quality)

    @property
    def hex(self) -> str:
        return self.value.hex()

    def __int__(self) -> int:
        return int.from_bytes(self.value, "big")

    def distance(self, other: PdqHash) -> int:
        """Hamming distance to ``other`` (0-256)."""
        return hamming(self, other)

    def __repr__(self) -> str:
        return f"PdqHash({self.hex!r}, quality={self.quality})"


def hamming(a: PdqHash, b: PdqHash) -> int:
    """Number of bits in which ``a`` and ``b`` differ (0-256)."""
    return (int(a) ^ int(b)).bit_count()


def hash_image(source: ImageSource, *, config: ImageReviewConfig = DEFAULT_IMAGE_CONFIG) -> PdqHash:
    """The PDQ hash of an image as a person sees it (see the module docstring for each step).

    Raises ``MediaLimitError`` (too many pixels), ``UnsupportedFormatError`` (not an image),
    ``CorruptMediaError`` (truncated or broken), ``MediaError`` (no such file), ``UsageError`` (a
    source of another type).
    """
    return hash_pixels(load_pixels(source, config=config))


def dihedral_hashes(
    source: ImageSource, *, config: ImageReviewConfig = DEFAULT_IMAGE_CONFIG
) -> list[PdqHash]:
    """The hashes of the image's eight rotations and flips, in ``Dihedral`` order (first: as is)."""
    return dihedral_hashes_of_pixels(load_pixels(source, config=config))


def hash_pixels(rgb: RgbArray) -> PdqHash:
    """The PDQ hash of an RGB array (height x width x 3, ``uint8``), as ``load_pixels`` returns."""
    vector, quality = pdqhash.compute(_checked(rgb))
    return _to_hash(vector, quality)


def dihedral_hashes_of_pixels(rgb: RgbArray) -> list[PdqHash]:
    """``dihedral_hashes`` of an RGB array, in ``Dihedral`` order."""
    vectors, quality = pdqhash.compute_dihedral(_checked(rgb))
    return [_to_hash(vector, quality) for vector in vectors]


def load_pixels(source: ImageSource, *, config: ImageReviewConfig = DEFAULT_IMAGE_CONFIG) -> RgbArray:
    """Decode ``source`` into the RGB array that is hashed: at most ``REDUCE_TO`` on the long side,
    composited over white, upright. Steps 1 to 4 of the module docstring; errors as ``hash_image``."""
    if isinstance(source, Image.Image):
        return _prepare(source, config, opened_here=False)
    if isinstance(source, bytes | bytearray | memoryview):
        return _open_and_prepare(io.BytesIO(bytes(source)), config)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise MediaError("no such file", path=path) from None
        except OSError as exc:
            raise MediaError(f"cannot open: {exc.strerror}", path=path) from None
        try:
            with handle:
                return _open_and_prepare(handle, config)
        except MediaError as exc:
            raise exc.with_path(path) from exc.__cause__
    raise UsageError(f"an image source is a path, bytes or a Pillow image, not {type(source).__name__}")


def _open_and_prepare(stream: BinaryIO, config: ImageReviewConfig) -> RgbArray:
    try:
        image = Image.open(stream, formats=IMAGE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaLimitError(f"image too large to decode: {exc}") from None
    except UnidentifiedImageError:
        raise UnsupportedFormatError(
            "unknown", hint=f"not an image in a format decoded here ({', '.join(IMAGE_FORMATS)})"
        ) from None
    except _DECODE_ERRORS as exc:
        raise CorruptMediaError(f"unreadable image header: {exc}") from None
    with image:
        return _prepare(image, config, opened_here=True)


def _prepare(image: Image.Image, config: ImageReviewConfig, *, opened_here: bool) -> RgbArray:
    width, height = image.size
    limit = config.pixel_limit()
    if width * height > limit:
        raise MediaLimitError(f"image is {width}x{height} pixels, more than the limit of {limit} pixels")
    if width < 1 or height < 1:
        raise CorruptMediaError(f"image has no pixels ({width}x{height})")
    target = _reduced_size(width, height)
    try:
        if opened_here and target != (width, height) and image.format in ("JPEG", "MPO"):
            # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT: most of the decoding cost saved.
            # (Never on a caller's image: draft would change how their object decodes.)
            image.draft(None, target)
        image.load()
        # Only after load: PNG's getexif() loads the image itself and would swallow a decoding error.
        orientation = _orientation(image)
        sixteen_bit = image.mode.startswith("I;16")
        image = _flatten_mode(image)
        if image.size != target:
            image = image.resize(target, Image.Resampling.BOX)
        image = _to_rgb(image, sixteen_bit=sixteen_bit)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaLimitError(f"image too large to decode: {exc}") from None
    except MemoryError:
        raise MediaLimitError("image too large to decode in the memory available") from None
    except _DECODE_ERRORS as exc:
        raise CorruptMediaError(f"cannot decode image: {exc}") from None
    transposition = _ORIENTATION.get(orientation)
    if transposition is not None:
        image = image.transpose(transposition)
    return np.asarray(image, dtype=np.uint8)


def _reduced_size(width: int, height: int) -> tuple[int, int]:
    longest = max(width, height)
    if longest <= REDUCE_TO:
        return width, height
    scale = REDUCE_TO / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except (*_DECODE_ERRORS, TypeError):
        return 1  # broken EXIF is not a broken image; the dihedral search covers rotations anyway
    return value if isinstance(value, int) else 1


def _flatten_mode(image: Image.Image) -> Image.Image:
    """Before the reduction: modes that Pillow cannot reduce well become modes it can. Bilevel and
    palette images are resized by nearest neighbour only, and the 16-bit modes other than
    little-endian ``I;16`` come out of a resize garbled (byte order): they become ``I``, exactly."""
    mode = image.mode
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode.startswith("I;"):
        return image.convert("I")
    return image


def _to_rgb(image: Image.Image, *, sixteen_bit: bool) -> Image.Image:
    """After the reduction: 8-bit RGB, transparency composited over white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "F"):
        return _deep_grey_to_l(image, sixteen_bit=sixteen_bit).convert("RGB")
    has_alpha = mode in _ALPHA_MODES or (mode in ("L", "RGB") and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    if mode == "La":  # premultiplied grey: Pillow converts it to LA only
        image = image.convert("LA")
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _deep_grey_to_l(image: Image.Image, *, sixteen_bit: bool) -> Image.Image:
    """32-bit integer or float grey to 8 bits, by the nominal range of the data (module docstring)."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if sixteen_bit:
        scaled = values / 257.0
    elif image.mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif low >= 0.0 and high <= 255.0:
        scaled = values
    elif image.mode == "I" and low >= 0.0 and high <= 65535.0:
        scaled = values / 257.0
    elif high > low:
        scaled = (values - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def _checked(rgb: RgbArray) -> RgbArray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise UsageError("pixels must be a height x width x 3 uint8 array")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise CorruptMediaError("image has no pixels")
    return rgb


def _to_hash(vector: npt.NDArray[np.integer], quality: int) -> PdqHash:
    # pdqhash returns 256 0/1 values, most significant bit first (the order of the hex form).
    bits = np.packbits(np.asarray(vector, dtype=np.uint8))
    return PdqHash(bits.tobytes(), int(quality))
