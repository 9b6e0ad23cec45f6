"""PDQ hashing of images: agreement with the reference hashes, every Pillow mode, hostile input."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthguard.errors import (
    ConfigError,
    CorruptMediaError,
    MediaError,
    MediaLimitError,
    UnsupportedFormatError,
    UsageError,
)
from synthguard.review.images import (
    REDUCE_TO,
    Dihedral,
    ImageReviewConfig,
    PdqHash,
    dihedral_hashes,
    hamming,
    hash_image,
    hash_pixels,
    load_pixels,
)

PDQ = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"
EXPECTED: dict[str, str] = json.loads((PDQ / "expected-pdq.json").read_text())
ORIGINAL = PDQ / "bridge-mods" / "aaa-orig.jpg"
MODES = PDQ / "misc-images" / "modes"
#: Implementations of PDQ differ by a few bits on the same image (the data's README).
REFERENCE_TOLERANCE = 16
MATCH = 31


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """The bridge photo at 400 px wide: small enough that no reduction happens before hashing."""
    with Image.open(ORIGINAL) as image:
        return image.convert("RGB").resize((400, 251), Image.Resampling.BOX)


def png_bytes(image: Image.Image, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# -- agreement with the reference implementation ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hash_within_16_bits_of_reference(name: str) -> None:
    expected = PdqHash.from_hex(EXPECTED[name], quality=100)
    found = hash_image(PDQ / name)
    assert hamming(found, expected) <= REFERENCE_TOLERANCE, (name, found.hex, expected.hex)
    if not name.startswith("misc-images/small"):  # the photos are full of structure
        assert found.quality >= 50


@pytest.mark.parametrize("edit", sorted(p.name for p in (PDQ / "bridge-mods").glob("*.jpg")))
def test_every_bridge_edit_matches_the_original(edit: str) -> None:
    assert hash_image(ORIGINAL).distance(hash_image(PDQ / "bridge-mods" / edit)) <= MATCH


def test_dihedral_hashes_follow_the_dihedral_order() -> None:
    """Variant k of the original is the hash of the k-th file in dih/ (named after the same order)."""
    variants = dihedral_hashes(PDQ / "dih" / "bridge-1-original.jpg")
    files = sorted((PDQ / "dih").glob("*.jpg"))
    assert len(variants) == len(files) == len(Dihedral) == 8
    for variant, path in zip(variants, files, strict=True):
        distances = [variant.distance(hash_image(other)) for other in files]
        assert distances.index(min(distances)) == files.index(path)
        assert min(distances) <= REFERENCE_TOLERANCE
    assert variants[0] == hash_image(PDQ / "dih" / "bridge-1-original.jpg")


def test_reduction_before_hashing_keeps_the_aspect_and_bounds_the_size() -> None:
    pixels = load_pixels(ORIGINAL)
    assert pixels.shape == (321, REDUCE_TO, 3) and pixels.dtype == np.uint8


# -- every kind of image ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in MODES.iterdir() if p.suffix != ".md"))
def test_every_mode_file_hashes_like_the_original(name: str) -> None:
    found = hash_image(MODES / name)
    assert found.quality >= 50
    assert found.distance(hash_image(MODES / "original.jpg")) <= REFERENCE_TOLERANCE


def _in_mode(photo: Image.Image, mode: str) -> Image.Image:
    grey = np.asarray(photo.convert("L"))
    if mode == "I;16":  # 16-bit data uses its whole range, as a 16-bit PNG does
        return Image.frombytes("I;16", photo.size, (grey.astype("<u2") * 257).tobytes())
    if mode == "I;16B":
        return Image.frombytes("I;16B", photo.size, (grey.astype(">u2") * 257).tobytes())
    if mode == "I-16bit":
        return Image.fromarray(grey.astype(np.int32) * 257, "I")
    if mode == "I-wide":  # an arbitrary range, negative included: stretched
        return Image.fromarray(grey.astype(np.int32) * 1_000_000 - 100_000_000, "I")
    if mode == "F-unit":
        return Image.fromarray(grey.astype(np.float32) / 255, "F")
    if mode == "La":
        return photo.convert("RGBA").convert("RGBa").convert("L").convert("LA").convert("La")
    return photo.convert(mode)


#: Every Pillow mode; the suffixed ones are the same mode with another range of values.
PILLOW_MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"]
PILLOW_MODES += ["I", "I;16", "I;16B", "I-16bit", "I-wide", "F", "F-unit"]


@pytest.mark.parametrize("mode", PILLOW_MODES)
def test_every_pillow_mode_hashes_like_rgb(photo: Image.Image, mode: str) -> None:
    image = _in_mode(photo, mode)
    found = hash_image(image)
    assert found.quality >= 50
    assert image.mode == mode.split("-")[0]
    assert found.distance(hash_image(photo)) <= REFERENCE_TOLERANCE


@pytest.mark.parametrize(
    ("mode", "dtype", "factor"), [("I;16", "<u2", 257), ("I;16B", ">u2", 257), ("I", "<i4", 1)]
)
def test_deep_modes_survive_the_reduction(mode: str, dtype: str, factor: int) -> None:
    """Large 16-bit images go through the reduction (where Pillow garbles big-endian 16-bit data)."""
    with Image.open(ORIGINAL) as image:
        grey = image.convert("L")
    deep = Image.frombytes(mode, grey.size, (np.asarray(grey).astype(dtype) * factor).tobytes())
    assert max(deep.size) > REDUCE_TO
    assert hash_image(deep).distance(hash_image(grey)) <= 4


def test_transparent_pixels_are_composited_over_white() -> None:
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    noise[:, :, 3] = 0  # fully transparent: whatever hides under it must not count
    white = hash_image(Image.new("RGB", (64, 64), "white"))
    assert hash_image(Image.fromarray(noise, "RGBA")) == white
    assert white.quality < 50


def test_half_transparent_image_hashes_as_seen_on_white(photo: Image.Image) -> None:
    rgba = photo.convert("RGBA")
    rgba.putalpha(128)
    seen = Image.alpha_composite(Image.new("RGBA", photo.size, "white"), rgba).convert("RGB")
    assert hash_image(png_bytes(rgba)) == hash_image(seen)


def test_palette_transparency_is_honoured() -> None:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.paste(1, (8, 8, 24, 24))
    image.info["transparency"] = 0  # black background is transparent: shown white
    expected = Image.new("RGB", (32, 32), "white")
    expected.paste((255, 0, 0), (8, 8, 24, 24))
    assert hash_image(png_bytes(image, transparency=0)) == hash_image(expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(photo: Image.Image, orientation: int) -> None:
    # Store the pixels as a camera would, so that applying the tag shows ``photo`` upright.
    stored_as = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    stored = photo.transpose(stored_as[orientation]) if orientation in stored_as else photo
    exif = Image.Exif()
    exif[0x0112] = orientation
    assert hash_image(png_bytes(stored, exif=exif.tobytes())) == hash_image(photo)
    if orientation != 1:
        assert hash_image(stored).distance(hash_image(photo)) > MATCH


def test_sources_path_bytes_and_image_agree() -> None:
    data = ORIGINAL.read_bytes()
    by_path = hash_image(ORIGINAL)
    assert hash_image(str(ORIGINAL)) == by_path
    assert hash_image(data) == by_path
    assert hash_image(bytearray(data)) == by_path
    # A caller's image is decoded at full size (never drafted): the same picture, a few bits apart.
    with Image.open(ORIGINAL) as image:
        assert hash_image(image).distance(by_path) <= 4
        assert image.size == (1600, 1004)  # the caller's object was not changed to a reduced scale
    with Image.open(PDQ / "bridge-mods" / "square-512x512.jpg") as image:
        assert hash_image(image) == hash_image(PDQ / "bridge-mods" / "square-512x512.jpg")


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (3, 2), (2, 5)])
def test_tiny_images_hash_with_low_quality(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    found = hash_image(png_bytes(image))
    assert 0 <= found.quality < 50
    assert not ImageReviewConfig().trusts(found)
    assert len(dihedral_hashes(image)) == 8


def test_flat_image_is_not_trusted() -> None:
    flat = hash_image(Image.new("L", (300, 200), 128))
    assert flat.quality < 50 and not ImageReviewConfig().trusts(flat)
    assert ImageReviewConfig(min_quality=0).trusts(flat)


# -- hostile and broken input ----------------------------------------------------------------------


def test_bytes_that_are_not_an_image() -> None:
    with pytest.raises(UnsupportedFormatError):
        hash_image(b"this is plain text, not an image\n" * 50)
    with pytest.raises(UnsupportedFormatError):
        hash_image(bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8)))


def test_eps_is_refused_not_run() -> None:
    with pytest.raises(UnsupportedFormatError):
        hash_image(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = ORIGINAL.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptMediaError) as caught:
        hash_image(path)
    assert caught.value.path == str(path)


def test_broken_png_data() -> None:
    header = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
    with pytest.raises(CorruptMediaError):
        hash_image(header + chunk(b"IDAT", b"not zlib at all") + chunk(b"IEND", b""))
    with pytest.raises(MediaError):
        hash_image(header)  # no data at all: Pillow cannot even identify it


def test_declared_decompression_bomb_is_refused_from_the_header() -> None:
    """A 170-byte PNG that declares 100000 x 100000 pixels (30 GB decoded)."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(1000))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    assert len(bomb) < 200
    with pytest.raises(MediaLimitError):
        hash_image(bomb)


def test_configured_pixel_limit(photo: Image.Image) -> None:
    data = png_bytes(photo)
    config = ImageReviewConfig(max_pixels=400 * 251 - 1)
    with pytest.raises(MediaLimitError):
        hash_image(data, config=config)
    with pytest.raises(MediaLimitError):
        hash_image(photo, config=config)  # an already decoded image obeys the same limit
    assert hash_image(data, config=ImageReviewConfig(max_pixels=400 * 251)).quality >= 50


@pytest.mark.parametrize("pillow_limit", [60_000, 30_000])
def test_pillow_limit_is_the_default(
    photo: Image.Image, monkeypatch: pytest.MonkeyPatch, pillow_limit: int
) -> None:
    """Over Pillow's limit (a warning in Pillow) or over twice it (an error): both MediaLimitError."""
    data = png_bytes(photo)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    with pytest.raises(MediaLimitError):
        hash_image(data)


def test_missing_file_and_wrong_source(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        hash_image(tmp_path / "absent.jpg")
    with pytest.raises(UsageError):
        hash_image(12345)  # type: ignore[arg-type]


def test_pixels_are_checked() -> None:
    with pytest.raises(UsageError):
        hash_pixels(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(UsageError):
        hash_pixels(np.zeros((8, 8, 3), dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(CorruptMediaError):
        hash_pixels(np.zeros((0, 8, 3), dtype=np.uint8))


# -- the hash value --------------------------------------------------------------------------------


def test_hash_forms_round_trip() -> None:
    text = EXPECTED["bridge-mods/aaa-orig.jpg"]
    pdq = PdqHash.from_hex(text.upper(), quality=87)
    assert pdq.hex == text and len(pdq.value) == 32 and pdq.quality == 87
    assert PdqHash.from_int(int(pdq), quality=87) == pdq
    assert int(pdq) == int(text, 16)
    assert repr(pdq) == f"PdqHash('{text}', quality=87)"


def test_hamming() -> None:
    zero = PdqHash(bytes(32), 100)
    ones = PdqHash(b"\xff" * 32, 100)
    one_bit = PdqHash.from_int(1 << 200, quality=100)
    assert hamming(zero, ones) == 256 and hamming(ones, zero) == 256
    assert hamming(zero, one_bit) == 1 and zero.distance(zero) == 0


@pytest.mark.parametrize(
    ("value", "quality"),
    [(bytes(31), 50), (bytes(33), 50), ("00" * 32, 50), (bytes(32), -1), (bytes(32), 101), (bytes(32), True)],
)
def test_invalid_hashes(value: object, quality: object) -> None:
    with pytest.raises(UsageError):
        PdqHash(value, quality)  # type: ignore[arg-type]


def test_invalid_hex() -> None:
    with pytest.raises(UsageError):
        PdqHash.from_hex("zz" * 32, quality=100)
    with pytest.raises(UsageError):
        PdqHash.from_hex("00" * 31, quality=100)
    with pytest.raises(UsageError):
        PdqHash.from_int(1 << 256, quality=100)


@pytest.mark.parametrize(
    "settings", [{"max_distance": -1}, {"max_distance": 257}, {"min_quality": 101}, {"max_pixels": 0}]
)
def test_invalid_config(settings: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        ImageReviewConfig(**settings)
