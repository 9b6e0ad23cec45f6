"""The image watermark: round trips in every mode, each attack of issue 4, keys, p-values, files."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageEnhance

from synthguard.config import Settings
from synthguard.errors import (
    ConfigError,
    CorruptMediaError,
    InvalidLabelError,
    UnsupportedFormatError,
    UsageError,
)
from synthguard.watermark._coding import (
    CODED_LENGTH,
    add_crc,
    check_crc,
    conv_encode,
    list_viterbi_decode,
    viterbi_decode,
)
from synthguard.watermark.base import payload_bits
from synthguard.watermark.image import (
    IMAGE_SCHEME,
    detect_image,
    detect_image_file,
    embed_image,
    embed_image_file,
)
from tests.watermark.conftest import WATERMARK_KEY

SECRET = WATERMARK_KEY.encode()
OTHER = b"a-different-watermark-key-42"
PID = "0123456789ABCDEF"
THRESHOLD = 1e-6


@pytest.fixture(scope="module")
def marked(photo: Image.Image) -> Image.Image:
    return embed_image(photo, PID, SECRET)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, subsampling=2)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def scaled(image: Image.Image, factor: float) -> Image.Image:
    w, h = image.size
    return image.resize((round(w * factor), round(h * factor)), Image.Resampling.BICUBIC)


def crop_area(image: Image.Image, fx: float, fy: float, ox: float, oy: float) -> Image.Image:
    w, h = image.size
    cw, ch = round(w * fx), round(h * fy)
    x, y = round((w - cw) * ox), round((h - ch) * oy)
    return image.crop((x, y, x + cw, y + ch))


def noisy(image: Image.Image) -> Image.Image:
    rng = np.random.default_rng(5)
    pixels = np.asarray(image, dtype=np.float64) + rng.normal(0, 5, (image.size[1], image.size[0], 3))
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


ATTACKS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg-q50-420": lambda im: jpeg(im, 50),
    "resize-50": lambda im: scaled(im, 0.5),
    "crop-80-corner": lambda im: crop_area(im, 0.8944, 0.8944, 1.0, 1.0),
    "crop-80-middle": lambda im: crop_area(im, 0.8944, 0.8944, 0.37, 0.61),
    "crop-80-width": lambda im: crop_area(im, 0.8, 1.0, 0.5, 0.0),
    "crop-80-height": lambda im: crop_area(im, 1.0, 0.8, 0.0, 0.13),
    "brightness+20": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "brightness-20": lambda im: ImageEnhance.Brightness(im).enhance(0.8),
    "contrast+20": lambda im: ImageEnhance.Contrast(im).enhance(1.2),
    "contrast-20": lambda im: ImageEnhance.Contrast(im).enhance(0.8),
    "noise-sigma-5": noisy,
    "rotate+2": lambda im: im.rotate(2, resample=Image.Resampling.BICUBIC),
    "rotate-2-expand": lambda im: im.rotate(-2, resample=Image.Resampling.BICUBIC, expand=True),
    "scale-0.75-jpeg-75": lambda im: jpeg(scaled(im, 0.75), 75),
    "mirrored-jpeg-75": lambda im: jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 75),
    "turned-90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "upside-down-crop": lambda im: crop_area(
        im.transpose(Image.Transpose.FLIP_TOP_BOTTOM), 0.9, 0.9, 0.3, 0.6
    ),
    "transposed": lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    "rotate+10": lambda im: im.rotate(10, resample=Image.Resampling.BICUBIC),
    "rotate-30-expand": lambda im: im.rotate(-30, resample=Image.Resampling.BICUBIC, expand=True),
    "stretched-100x80": lambda im: im.resize((im.size[0], round(im.size[1] * 0.8)), Image.Resampling.BICUBIC),
    "stretched-85x100-jpeg-75": lambda im: jpeg(
        im.resize((round(im.size[0] * 0.85), im.size[1]), Image.Resampling.BICUBIC), 75
    ),
}


# -- the channel code -------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_code_round_trip(value: int) -> None:
    payload = [(value >> (63 - i)) & 1 for i in range(64)]
    info = add_crc(payload)
    assert check_crc(viterbi_decode(conv_encode(info))) == payload


def test_code_corrects_errors_and_the_crc_rejects_garbage() -> None:
    rng = np.random.default_rng(1)
    payload = payload_bits(PID)
    symbols = conv_encode(add_crc(payload))
    soft = symbols + rng.normal(0, 0.7, CODED_LENGTH)
    assert int(np.sum(np.sign(soft) != symbols)) > 0  # some symbols arrive wrong ...
    assert check_crc(viterbi_decode(soft)) == payload  # ... and are corrected
    garbage = [check_crc(viterbi_decode(rng.normal(0, 1, CODED_LENGTH))) for _ in range(50)]
    assert garbage == [None] * 50


def test_list_decoder_gives_distinct_codewords_best_first() -> None:
    rng = np.random.default_rng(3)
    soft = conv_encode(add_crc(payload_bits(PID))) + rng.normal(0, 1.4, CODED_LENGTH)
    paths = list_viterbi_decode(soft, 16)
    assert paths[0] == viterbi_decode(soft)
    assert len({tuple(path) for path in paths}) == 16
    scores = [float(conv_encode(path) @ soft) for path in paths]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(ValueError):
        list_viterbi_decode(soft, 0)


# -- round trips ------------------------------------------------------------------------------------


def test_round_trip_reports_the_produce_id(photo: Image.Image, marked: Image.Image) -> None:
    detection = detect_image(marked, SECRET, THRESHOLD)
    assert detection.found
    assert detection.produce_id == PID
    assert detection.scheme == IMAGE_SCHEME
    assert detection.p_value < 1e-20
    assert marked.size == photo.size and marked.mode == "RGB"
    difference = np.asarray(marked, dtype=np.float64) - np.asarray(photo, dtype=np.float64)
    psnr = 10 * math.log10(255**2 / float(np.mean(difference**2)))
    assert psnr >= 40.0
    # the mark only moves the luminance: the three channels change alike (up to clipping)
    assert float(np.mean(np.abs(difference[..., 0] - difference[..., 2]))) < 0.05


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "PA", "CMYK", "YCbCr", "I;16"])
def test_round_trip_in_every_mode(photo: Image.Image, mode: str) -> None:
    source = scaled(photo, 0.6)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(source.convert("L"), dtype=np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode in ("LA", "RGBA", "PA"):
        base = source.convert(mode[:-1] if mode != "PA" else "RGB").convert(mode)
        alpha = Image.linear_gradient("L").resize(source.size)
        base.putalpha(alpha)
        image = base
    else:
        image = source.convert(mode)
    result = embed_image(image, PID, SECRET)
    expected_mode = {"P": "RGB", "PA": "RGBA"}.get(mode, mode)
    assert result.mode == expected_mode
    assert result.size == image.size
    if "A" in mode:
        assert np.array_equal(np.asarray(result.getchannel("A")), np.asarray(image.getchannel("A")))
    detection = detect_image(result, SECRET, THRESHOLD)
    assert detection.found and detection.produce_id == PID


@pytest.mark.parametrize("size", [(256, 256), (300, 700)])
def test_smallest_images_round_trip(photo: Image.Image, size: tuple[int, int]) -> None:
    image = photo.resize(size, Image.Resampling.BICUBIC)
    detection = detect_image(embed_image(image, PID, SECRET), SECRET, THRESHOLD)
    assert detection.found and detection.produce_id == PID


# -- attacks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_survives_attack(marked: Image.Image, attack: str) -> None:
    detection = detect_image(ATTACKS[attack](marked), SECRET, THRESHOLD)
    assert detection.found, detection.details
    assert detection.produce_id == PID


def test_a_stretched_copy_reports_the_stretch(marked: Image.Image) -> None:
    width, height = marked.size
    squashed = marked.resize((width, round(height * 0.8)), Image.Resampling.BICUBIC)
    detection = detect_image(squashed, SECRET, THRESHOLD)
    assert detection.found and detection.produce_id == PID
    assert detection.details["stretch"] == pytest.approx(0.8, abs=0.01)
    assert detect_image(marked, SECRET, THRESHOLD).details["stretch"] == 1.0


@pytest.mark.parametrize(
    ("transpose", "name"),
    [
        (Image.Transpose.FLIP_LEFT_RIGHT, "mirrored"),
        (Image.Transpose.ROTATE_180, "turned 180"),
        (Image.Transpose.TRANSVERSE, "anti-transposed"),
    ],
)
def test_a_turned_or_flipped_copy_reports_what_was_done(
    marked: Image.Image, transpose: Image.Transpose, name: str
) -> None:
    detection = detect_image(marked.transpose(transpose), SECRET, THRESHOLD)
    assert detection.found and detection.produce_id == PID
    assert detection.details["transform"] == name
    assert detect_image(marked, SECRET, THRESHOLD).details["transform"] == "none"


@pytest.fixture(scope="module")
def marked_small(photo: Image.Image) -> Image.Image:
    """The photo at the smallest size the embedder takes (256x256), marked."""
    return embed_image(photo.resize((256, 256), Image.Resampling.LANCZOS), PID, SECRET)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_survives_attack_at_the_smallest_size(marked_small: Image.Image, attack: str) -> None:
    detection = detect_image(ATTACKS[attack](marked_small), SECRET, THRESHOLD)
    assert detection.found, detection.details
    assert detection.produce_id == PID


# -- keys and p-values ------------------------------------------------------------------------------


def test_wrong_key_finds_nothing(marked: Image.Image) -> None:
    detection = detect_image(marked, OTHER, THRESHOLD)
    assert not detection.found
    assert detection.produce_id is None
    assert detection.p_value >= THRESHOLD


def test_unmarked_photo_has_a_large_p_value(photo: Image.Image) -> None:
    detection = detect_image(photo, SECRET, THRESHOLD)
    assert not detection.found
    assert detection.p_value >= THRESHOLD


def test_a_threshold_of_zero_is_refused(photo: Image.Image) -> None:
    with pytest.raises(UsageError):
        detect_image(photo, SECRET, 0.0)


@pytest.mark.slow
def test_no_false_positive_on_200_unmarked_crops(photo: Image.Image, marked: Image.Image) -> None:
    rng = np.random.default_rng(2026)
    found = 0
    for i in range(200):
        source = marked if i % 4 == 0 else photo  # every fourth: marked, but read with another key
        key = OTHER if i % 4 == 0 else SECRET
        side = int(rng.integers(256, 600))
        width = min(source.size[0], int(side * rng.uniform(1.0, 1.5)))
        x = int(rng.integers(0, source.size[0] - width + 1))
        y = int(rng.integers(0, source.size[1] - side + 1))
        crop = source.crop((x, y, x + width, y + side))
        detection = detect_image(crop, key, THRESHOLD)
        found += detection.found
        assert detection.p_value >= THRESHOLD
    assert found == 0


# -- refusals ---------------------------------------------------------------------------------------


def test_small_images_are_refused_on_embed_and_not_found_on_detect(photo: Image.Image) -> None:
    small = photo.resize((255, 400))
    with pytest.raises(UnsupportedFormatError, match="256 pixels"):
        embed_image(small, PID, SECRET)
    assert not detect_image(photo.resize((40, 40)), SECRET, THRESHOLD).found


def test_bilevel_images_and_bad_ids_are_refused(photo: Image.Image) -> None:
    with pytest.raises(UnsupportedFormatError, match="1 image"):
        embed_image(photo.convert("1"), PID, SECRET)
    with pytest.raises(InvalidLabelError):
        embed_image(photo, "not-an-id", SECRET)


# -- files ------------------------------------------------------------------------------------------


def test_jpeg_file_keeps_exif_and_icc(
    tmp_path: Path, photo: Image.Image, watermark_settings: Settings
) -> None:
    src = tmp_path / "in.jpg"
    exif = Image.Exif()
    exif[0x010E] = "a description"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo.save(src, "JPEG", quality=90, exif=exif, icc_profile=icc)
    before = src.read_bytes()
    dst = tmp_path / "out.jpg"
    embed_image_file(src, dst, PID, watermark_settings)
    assert src.read_bytes() == before
    with Image.open(dst) as out:
        assert out.format == "JPEG" and out.mode == "RGB"
        assert out.getexif()[0x010E] == "a description"
        assert out.info["icc_profile"] == icc
    detection = detect_image_file(dst, watermark_settings)
    assert detection.found and detection.produce_id == PID


def test_png_file_keeps_mode_alpha_and_text(
    tmp_path: Path, photo: Image.Image, watermark_settings: Settings
) -> None:
    from PIL import PngImagePlugin

    src = tmp_path / "in.png"
    image = scaled(photo, 0.5).convert("RGBA")
    image.putalpha(128)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "kept")
    image.save(src, pnginfo=info)
    dst = tmp_path / "out.png"
    embed_image_file(src, dst, PID, watermark_settings)
    with Image.open(dst) as out:
        assert out.mode == "RGBA"
        assert out.text["Comment"] == "kept"  # type: ignore[attr-defined]
        assert set(np.unique(np.asarray(out.getchannel("A")))) == {128}
    assert detect_image_file(dst, watermark_settings).produce_id == PID


def test_exif_orientation_marks_the_displayed_image(
    tmp_path: Path, photo: Image.Image, watermark_settings: Settings
) -> None:
    src = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    scaled(photo, 0.6).save(src, "JPEG", quality=92, exif=exif)
    dst = tmp_path / "out.jpg"
    embed_image_file(src, dst, PID, watermark_settings)
    assert detect_image_file(dst, watermark_settings).produce_id == PID
    with Image.open(dst) as out:
        shown = out.transpose(Image.Transpose.ROTATE_270).convert("RGB")  # a screenshot of it
    assert detect_image(shown, SECRET, THRESHOLD).produce_id == PID


def test_file_errors_are_typed(tmp_path: Path, photo: Image.Image, watermark_settings: Settings) -> None:
    good = tmp_path / "good.jpg"
    photo.save(good, "JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CorruptMediaError):
        embed_image_file(truncated, tmp_path / "o.jpg", PID, watermark_settings)
    with pytest.raises(CorruptMediaError):
        detect_image_file(truncated, watermark_settings)
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    with pytest.raises(UnsupportedFormatError):
        detect_image_file(text, watermark_settings)
    gif = tmp_path / "in.gif"
    photo.save(gif, "GIF")
    with pytest.raises(UnsupportedFormatError, match="GIF"):
        embed_image_file(gif, tmp_path / "o.gif", PID, watermark_settings)
    with pytest.raises(UsageError):
        embed_image_file(good, good, PID, watermark_settings)
    with pytest.raises(ConfigError):
        embed_image_file(good, tmp_path / "o.jpg", PID, Settings())
    assert not (tmp_path / "o.jpg").exists()


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=0, max_size=3000))
def test_fuzzed_bytes_raise_only_typed_errors(data: bytes) -> None:
    import tempfile

    from synthguard.errors import MediaError

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
        try:
            detection = detect_image_file(path, Settings(watermark_key=WATERMARK_KEY))
        except MediaError:
            return
        assert not detection.found


def test_smooth_areas_get_a_capped_mark_that_is_still_found() -> None:
    rng = np.random.default_rng(3)
    ramp = np.linspace(60, 200, 640)[None, :] + np.zeros((400, 1))
    smooth = np.clip(ramp + rng.normal(0, 0.5, ramp.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(smooth)
    marked = embed_image(image, PID, SECRET)
    change = np.asarray(marked, dtype=np.float64) - smooth
    assert float(np.sqrt(np.mean(change**2))) < 1.2  # the cap (0.7 RMS in smooth areas), not 2.4
    detection = detect_image(marked, SECRET, THRESHOLD)
    assert detection.found and detection.produce_id == PID
