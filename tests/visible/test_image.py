"""Visible labels on images: placement, measured glyph height, untouched pixels, formats, errors."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps, JpegImagePlugin

from synthguard.config import Settings
from synthguard.errors import (
    ConfigError,
    CorruptMediaError,
    MediaLimitError,
    UnsupportedFormatError,
    UsageError,
)
from synthguard.visible import _render
from synthguard.visible.apply import apply_visible_label
from synthguard.visible.image import estimate_jpeg_quality, label_image, label_image_file

RNG = np.random.default_rng(7)


def _busy(width: int, height: int) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _diff_box(a: Image.Image, b: Image.Image) -> tuple[int, int, int, int] | None:
    x = np.asarray(a.convert("RGBA"), dtype=np.int16)
    y = np.asarray(b.convert("RGBA"), dtype=np.int16)
    changed = np.abs(x - y).max(axis=2) > 0
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _glyph_height(labelled: Image.Image, box: tuple[int, int, int, int], style: str) -> int:
    """Height of the text's ink measured on the output pixels: pixels of the text colour inside
    the label's box (black for the dark style, white otherwise)."""
    grey = np.asarray(labelled.convert("L").crop(box), dtype=np.int16)
    ink = grey <= 40 if style == "dark" else grey >= 215
    # outlines are the other colour; the plate is dark: text-coloured pixels are glyph pixels
    rows = np.flatnonzero(ink.sum(axis=1) >= 2)
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def _save(img: Image.Image, path: Path, **params: Any) -> Path:
    img.save(path, **params)
    return path


@pytest.mark.parametrize(
    ("background", "style"),
    [((245, 245, 240), "dark"), ((12, 14, 20), "light"), (None, "plate")],
)
@pytest.mark.parametrize("position", ["bottom-right", "top-left", "top", "left"])
def test_png_label_is_where_configured_tall_enough_and_nothing_else_changes(
    tmp_path: Path, background: tuple[int, int, int] | None, style: str, position: str
) -> None:
    source = _busy(640, 400) if background is None else Image.new("RGB", (640, 400), background)
    src = _save(source, tmp_path / "in.png")
    result = label_image_file(src, tmp_path / "out.png", Settings(visible_position=position))
    with Image.open(tmp_path / "out.png") as out:
        out.load()
        assert (out.format, out.mode, out.size) == ("PNG", "RGB", (640, 400))
        changed = _diff_box(source, out)
        assert changed is not None
        box = tuple(result.placements[0]["box"])
        # nothing outside the label's box changed (pixel-exact)
        assert box[0] <= changed[0] and box[1] <= changed[1]
        assert changed[2] <= box[2] and changed[3] <= box[3]
        assert result.placements[0]["style"] == style
        height = _glyph_height(out, box, style)
    assert height >= 0.05 * 400
    assert result.glyph_height_fraction is not None and result.glyph_height_fraction >= 0.05
    assert result.conforms
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    if "right" in position:
        assert centre_x > 480
    elif "left" in position:
        assert centre_x < 160
    else:
        assert 280 < centre_x < 360
    if position.startswith("top"):
        assert centre_y < 100
    elif position.startswith("bottom"):
        assert centre_y > 300
    else:
        assert 150 < centre_y < 250


def test_checker_reads_the_label(tmp_path: Path) -> None:
    checker = pytest.importorskip("synthguard.visible.checker")
    src = _save(Image.new("RGB", (800, 600), (230, 230, 225)), tmp_path / "in.png")
    label_image_file(src, tmp_path / "out.png", Settings())
    report = checker.check_file(tmp_path / "out.png")
    assert report.found and report.conforms
    assert any(f.where == "bottom-right" for f in report.findings)


def test_jpeg_keeps_quality_subsampling_exif_and_icc(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    icc = b"\x00" * 128  # Pillow carries ICC bytes through unparsed
    src = _save(
        _busy(480, 320), tmp_path / "in.jpg", quality=62, subsampling=0, exif=exif.tobytes(), icc_profile=icc
    )
    result = label_image_file(src, tmp_path / "out.jpg", Settings())
    with Image.open(src) as before, Image.open(tmp_path / "out.jpg") as after:
        assert after.format == "JPEG"
        assert after.quantization == before.quantization
        assert JpegImagePlugin.get_sampling(after) == JpegImagePlugin.get_sampling(before) == 0
        assert after.getexif()[0x010F] == "Camera maker"
        assert after.info["icc_profile"] == icc
    assert result.details["jpeg_quality"] == 62


@pytest.mark.parametrize("quality", [10, 35, 50, 75, 90, 100])
def test_jpeg_quality_estimate_matches_libjpeg_scaling(quality: int) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "JPEG", quality=quality)
    with Image.open(buffer) as img:
        assert estimate_jpeg_quality(img.quantization) == quality


def test_exif_orientation_puts_the_label_at_the_displayed_corner(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated a quarter turn clockwise
    source = Image.new("RGB", (600, 400), (240, 240, 240))
    src = _save(source, tmp_path / "in.jpg", quality=95, exif=exif.tobytes())
    label_image_file(src, tmp_path / "out.jpg", Settings())
    with Image.open(src) as before, Image.open(tmp_path / "out.jpg") as after:
        shown_before, shown_after = ImageOps.exif_transpose(before), ImageOps.exif_transpose(after)
        assert shown_after.size == (400, 600)
        grey = np.abs(
            np.asarray(shown_after.convert("L"), dtype=np.int16)
            - np.asarray(shown_before.convert("L"), dtype=np.int16)
        )
        changed = grey > 60
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        assert rows.min() > 450 and cols.min() > 200  # bottom-right as displayed
        # upright: the label is wider than tall as displayed
        assert cols.max() - cols.min() > 2 * (rows.max() - rows.min())


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "1"])
def test_modes_are_kept_and_only_the_box_changes(tmp_path: Path, mode: str) -> None:
    base = Image.new("RGB", (300, 200), (200, 180, 160))
    if mode == "P":
        source = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    elif mode == "I;16":
        source = Image.fromarray(np.full((200, 300), 40000, np.uint16))
    elif mode == "RGBA":
        source = Image.new("RGBA", (300, 200), (10, 200, 30, 0))  # fully transparent
    else:
        source = base.convert(mode)
    src = _save(source, tmp_path / "in.png")
    result = label_image_file(src, tmp_path / "out.png", Settings())
    with Image.open(tmp_path / "out.png") as out:
        out.load()
        assert out.mode == source.mode
        box = result.placements[0]["box"]
        a, b = np.asarray(source), np.asarray(out)
        mask = np.ones(a.shape[:2], bool)
        mask[box[1] : box[3], box[0] : box[2]] = False
        assert np.array_equal(a[mask], b[mask])
        assert not np.array_equal(a[~mask], b[~mask])
        if mode == "RGBA":
            assert b[..., 3][~mask].max() == 255  # the label is opaque on a transparent image


def test_cmyk_jpeg(tmp_path: Path) -> None:
    src = _save(Image.new("CMYK", (320, 240), (0, 40, 80, 10)), tmp_path / "in.jpg", quality=90)
    label_image_file(src, tmp_path / "out.jpg", Settings())
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.mode == "CMYK"


def _frames(n: int, size: tuple[int, int]) -> list[Image.Image]:
    return [Image.new("RGB", size, (40 * i % 256, 90, 200 - 30 * i)) for i in range(n)]


@pytest.mark.parametrize(("fmt", "suffix"), [("GIF", "gif"), ("PNG", "png"), ("WEBP", "webp")])
def test_every_frame_of_an_animation_is_labelled_with_timing_kept(
    tmp_path: Path, fmt: str, suffix: str
) -> None:
    frames = _frames(4, (240, 160))
    durations = [100, 200, 300, 400]
    params: dict[str, Any] = {"save_all": True, "append_images": frames[1:], "duration": durations, "loop": 3}
    if fmt == "GIF":
        params["disposal"] = 2
    if fmt == "WEBP":
        params["lossless"] = True
    src = _save(frames[0], tmp_path / f"in.{suffix}", format=fmt, **params)
    result = label_image_file(src, tmp_path / f"out.{suffix}", Settings())
    assert result.details["frames"] == 4
    box = result.placements[0]["box"]
    with Image.open(src) as before, Image.open(tmp_path / f"out.{suffix}") as after:
        assert after.format == fmt and after.n_frames == 4
        assert after.info.get("loop") == 3
        for index in range(4):
            before.seek(index)
            after.seek(index)
            after.load()  # WebP sets a frame's duration when it is decoded
            assert after.info["duration"] == durations[index]
            if fmt == "GIF":
                assert after.disposal_method == 2
            a = np.asarray(before.convert("RGB"), dtype=np.int16)
            b = np.asarray(after.convert("RGB"), dtype=np.int16)
            inside = np.abs(a - b)[box[1] : box[3], box[0] : box[2]]
            assert inside.max() > 100  # the label is on this frame
            outside = np.abs(a - b)
            outside[box[1] : box[3], box[0] : box[2]] = 0
            assert outside.max() <= (0 if fmt != "GIF" else 8)


def test_tiny_image(tmp_path: Path) -> None:
    src = _save(Image.new("RGB", (32, 32), (250, 250, 250)), tmp_path / "in.png")
    result = label_image_file(src, tmp_path / "out.png", Settings())
    assert result.glyph_height_fraction is not None and result.glyph_height_fraction >= 0.05
    x0, y0, x1, y1 = result.placements[0]["box"]
    assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32


@pytest.mark.slow
def test_huge_image(tmp_path: Path) -> None:
    src = _save(Image.new("L", (16384, 1200), 30), tmp_path / "in.png", compress_level=1)
    result = label_image_file(src, tmp_path / "out.png", Settings())
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (16384, 1200)
        height = _glyph_height(out, tuple(result.placements[0]["box"]), "light")
    assert height >= 0.05 * 1200


def test_in_memory_label_changes_only_its_box() -> None:
    img = _busy(400, 300)
    before = img.copy()
    placed = label_image(img, "人工智能生成", position="bottom-left", fraction=0.08)
    assert placed.fraction >= 0.08
    assert _diff_box(before, img) is not None
    changed = _diff_box(before, img)
    assert changed is not None
    assert placed.box[0] <= changed[0] and changed[2] <= placed.box[2]


def test_decompression_bomb_is_a_limit_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _save(Image.new("RGB", (400, 400)), tmp_path / "in.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(MediaLimitError):
        label_image_file(src, tmp_path / "out.png", Settings())
    assert list(tmp_path.iterdir()) == [src]


def test_truncated_image_leaves_nothing(tmp_path: Path) -> None:
    good = _save(_busy(200, 200), tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CorruptMediaError):
        label_image_file(bad, tmp_path / "out.png", Settings())
    assert not (tmp_path / "out.png").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unreadable_and_unsupported_inputs(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(UnsupportedFormatError):
        label_image_file(junk, tmp_path / "out.png", Settings())
    bmp = _save(Image.new("RGB", (64, 64)), tmp_path / "in.bmp")
    with pytest.raises(UnsupportedFormatError, match="BMP"):
        label_image_file(bmp, tmp_path / "out.bmp", Settings())
    with pytest.raises(UsageError):
        label_image_file(tmp_path / "missing.png", tmp_path / "out.png", Settings())
    assert not (tmp_path / "out.png").exists()


def test_bad_wording_is_refused_before_writing(tmp_path: Path) -> None:
    src = _save(Image.new("RGB", (64, 64)), tmp_path / "in.png")
    with pytest.raises(ConfigError, match="generation element"):
        label_image_file(src, tmp_path / "out.png", Settings(visible_short_wording="AI作品"))
    assert not (tmp_path / "out.png").exists()


def test_wording_outside_the_bundled_font_is_refused(tmp_path: Path) -> None:
    src = _save(Image.new("RGB", (64, 64)), tmp_path / "in.png")
    with pytest.raises(ConfigError, match="font lacks: 偽"):
        label_image_file(src, tmp_path / "out.png", Settings(visible_short_wording="AI生成偽"))


def test_input_is_never_the_output(tmp_path: Path) -> None:
    src = _save(Image.new("RGB", (64, 64)), tmp_path / "in.png")
    with pytest.raises(UsageError):
        label_image_file(src, src, Settings())


def test_apply_dispatches_images(tmp_path: Path) -> None:
    src = _save(Image.new("RGB", (200, 100), (0, 0, 0)), tmp_path / "in.webp", lossless=True)
    result = apply_visible_label(src, tmp_path / "out.webp", Settings())
    assert result.modality == "image" and result.details["format"] == "WEBP"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_display_and_stored_boxes_agree(orientation: int) -> None:
    stored = RNG.integers(0, 256, (7, 11, 3), dtype=np.uint8)
    shown = _render.to_display(stored, orientation)
    assert np.array_equal(_render.to_stored(shown, orientation), stored)
    box = (1, 2, 4, 6)
    sbox = _render.display_box_to_stored(box, (11, 7), orientation)
    region = stored[sbox[1] : sbox[3], sbox[0] : sbox[2]]
    assert np.array_equal(_render.to_display(region, orientation), shown[box[1] : box[3], box[0] : box[2]])


def test_mpo_primary_image_is_labelled_as_jpeg(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (320, 240), (200, 200, 200)), Image.new("RGB", (320, 240), (9, 9, 9))
    src = _save(first, tmp_path / "in.mpo", format="MPO", save_all=True, append_images=[second])
    result = label_image_file(src, tmp_path / "out.jpg", Settings())
    assert result.details["frames"] == 1
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.format == "JPEG" and out.size == (320, 240)


def test_tiff_keeps_compression(tmp_path: Path) -> None:
    src = _save(_busy(200, 150), tmp_path / "in.tif", compression="tiff_lzw")
    label_image_file(src, tmp_path / "out.tif", Settings())
    with Image.open(tmp_path / "out.tif") as out:
        assert out.format == "TIFF" and out.info["compression"] == "tiff_lzw"


def test_bundled_font_is_small_licensed_and_covers_the_defaults() -> None:
    from synthguard.visible.font import font_bytes, font_path, missing_characters

    assert len(font_bytes()) < 100_000
    assert (Path(font_path()).parent / "OFL.txt").read_text(encoding="utf-8").count(
        "SIL OPEN FONT LICENSE"
    ) == 1
    assert missing_characters("AI生成人工智能生成合成AI-generated由") == ""


def test_transparent_gif_label_is_opaque_on_every_frame(tmp_path: Path) -> None:
    frames = []
    for i in range(3):
        frame = Image.new("RGBA", (240, 160), (0, 0, 0, 0))
        frame.paste((255, 0, 0, 255), (10 + 20 * i, 10, 60 + 20 * i, 60))
        frames.append(frame)
    src = _save(
        frames[0], tmp_path / "in.gif", save_all=True, append_images=frames[1:], duration=100, disposal=2
    )
    result = label_image_file(src, tmp_path / "out.gif", Settings())
    box = tuple(result.placements[0]["box"])
    with Image.open(tmp_path / "out.gif") as out:
        counts = []
        for index in range(out.n_frames):
            out.seek(index)
            alpha = np.asarray(out.convert("RGBA").crop(box))[..., 3]
            counts.append(int((alpha == 255).sum()))
    # the black outline must not fall on the (black) transparent palette entry
    assert min(counts) > 0.5 * max(counts) > 0


def _segments(path: Path) -> list[bytes]:
    from synthguard.labels.metadata.jpeg import scan_segments

    data = path.read_bytes()
    with path.open("rb") as fh:
        segments, _ = scan_segments(fh)
    return [data[s.offset : s.end] for s in segments if s.is_app()]


def test_jpeg_header_segments_are_kept_byte_for_byte(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    plain = _save(_busy(320, 240), tmp_path / "plain.jpg", quality=80, exif=exif.tobytes(), comment=b"note")
    data = plain.read_bytes()
    iptc = b"\xff\xed" + (2 + 18).to_bytes(2, "big") + b"Photoshop 3.0\x00" + b"8BIM"
    src = tmp_path / "in.jpg"
    src.write_bytes(data[:2] + iptc + data[2:])  # an APP13 (IPTC) segment Pillow would drop
    label_image_file(src, tmp_path / "out.jpg", Settings())
    assert _segments(tmp_path / "out.jpg") == _segments(src)
    with Image.open(tmp_path / "out.jpg") as out:
        out.load()
        assert out.getexif()[0x010F] == "Maker" and out.info["comment"] == b"note"


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _png_chunk_list(path: Path) -> list[tuple[bytes, bytes]]:
    data, pos, chunks = path.read_bytes(), 8, []
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]))
        pos += 12 + size
    return chunks


def test_png_ancillary_chunks_are_kept_and_unsafe_ones_dropped(tmp_path: Path) -> None:
    plain = _save(Image.new("RGB", (200, 120), (90, 120, 160)), tmp_path / "plain.png")
    data = plain.read_bytes()
    ihdr_end = 8 + 12 + 13
    before = (
        _png_chunk(b"gAMA", (45455).to_bytes(4, "big"))
        + _png_chunk(b"sBIT", bytes([8, 8, 8]))
        + _png_chunk(b"prVt", b"safe to copy")
        + _png_chunk(b"prVT", b"unsafe to copy")
    )
    src = tmp_path / "in.png"
    src.write_bytes(
        data[:ihdr_end] + before + data[ihdr_end:-12] + _png_chunk(b"tEXt", b"k\x00v") + data[-12:]
    )
    label_image_file(src, tmp_path / "out.png", Settings())
    kinds = [kind for kind, _ in _png_chunk_list(tmp_path / "out.png")]
    assert kinds[:4] == [b"IHDR", b"gAMA", b"sBIT", b"prVt"]
    assert b"prVT" not in kinds
    assert kinds[-2:] == [b"tEXt", b"IEND"] and kinds.count(b"tEXt") == 1
    with Image.open(tmp_path / "out.png") as out:
        out.load()
        assert out.info["gamma"] == pytest.approx(0.45455)
