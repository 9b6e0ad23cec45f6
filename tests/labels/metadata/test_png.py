"""PNG: the contract, exiftool and Pillow reading the output, chunk placement, variants, hostile input."""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.metadata.png import PngLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import (
    OTHER_XMP,
    SRGB,
    RecordingFile,
    assert_exiftool_reads_label,
    copy_modes,
    exif_bytes,
    exiftool_tags,
    gradient,
    image_info,
    label_copy,
    read_bytes,
    user_comment_exif,
    xmp_packet,
)

# -- PNG specifics --------------------------------------------------------------------------------


def chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def chunk_offsets(data: bytes, ctype: bytes) -> list[tuple[int, int]]:
    """(data start, data end) of every chunk of a type."""
    found, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == ctype:
            found.append((pos + 8, pos + 8 + length))
        pos += 12 + length
    return found


def insert_before(data: bytes, ctype: bytes, new: bytes) -> bytes:
    """Insert ``new`` before the first chunk of type ``ctype``."""
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == ctype:
            return data[:pos] + new + data[pos:]
        pos += 12 + length
    raise AssertionError(f"no {ctype!r} chunk")


def itxt(keyword: bytes, text: bytes, compressed: bool = False) -> bytes:
    body = zlib.compress(text) if compressed else text
    return chunk(b"iTXt", keyword + b"\x00" + bytes([int(compressed), 0]) + b"\x00\x00" + body)


def is_xmp(item: tuple[bytes, bytes]) -> bool:
    return item[0] == b"iTXt" and item[1].startswith(b"XML:com.adobe.xmp\x00")


def make_pngs(folder: Path) -> list[Path]:
    rich = folder / "rich.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "A PNG")
    info.add_text("Comment", "zipped comment " * 8, zip=True)
    info.add_itxt("Description", "Beschreibung ü", lang="de", tkey="Beschreibung")
    info.add_itxt("XML:com.adobe.xmp", OTHER_XMP.decode())
    gradient("RGB").save(rich, pnginfo=info, icc_profile=SRGB, exif=exif_bytes())

    apng = folder / "apng.png"
    frames = [gradient("RGBA", (24, 16), shift) for shift in (0, 90)]
    frame_info = PngImagePlugin.PngInfo()
    frame_info.add_text("Software", "unit-test")
    frames[0].save(apng, save_all=True, append_images=frames[1:], duration=120, loop=0, pnginfo=frame_info)

    rgba = folder / "rgba.png"
    gradient("RGBA").save(rgba)

    palette = folder / "palette.png"
    buffer = io.BytesIO()
    gradient("P").save(buffer, "PNG", transparency=5)
    # a text chunk after the image data must stay where it is, byte for byte
    palette.write_bytes(insert_before(buffer.getvalue(), b"IEND", chunk(b"tEXt", b"Late\x00after IDAT")))

    late = folder / "late-xmp.png"
    buffer = io.BytesIO()
    gradient("L").save(buffer, "PNG")
    late.write_bytes(
        insert_before(buffer.getvalue(), b"IEND", itxt(b"XML:com.adobe.xmp", xmp_packet(10), True))
    )

    return [
        rich,
        apng,
        rgba,
        palette,
        late,
        *copy_modes(folder, ("1.png", "L.png", "LA.png", "P.png", "RGBA.png")),
    ]


class TestPngContract(MetadataLabelerContract):
    labeler = PngLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_pngs(folder)

    def other_metadata(self, path: Path) -> Any:
        tags = exiftool_tags(path)
        # moving a late XMP chunk before IDAT cures this warning for late-xmp.png
        if "found after PNG IDAT" in str(tags.get("ExifTool:Warning")) and path.name.endswith("late-xmp.png"):
            del tags["ExifTool:Warning"]
        return {"pillow": image_info(path), "exiftool": tags}


write = functools.partial(label_copy, PngLabeler())
read = functools.partial(read_bytes, PngLabeler())


@pytest.mark.tools
def test_exiftool_reads_the_label(tmp_path: Path) -> None:
    assert_exiftool_reads_label(PngLabeler(), make_pngs(tmp_path), tmp_path, ("rich.png", "late-xmp.png"))


def test_chunk_placed_before_image_data_and_others_kept(tmp_path: Path) -> None:
    label = make_label()
    for src in make_pngs(tmp_path)[:4]:
        before = chunks(src.read_bytes())
        after = chunks(write(src, tmp_path / f"o-{src.name}", label))
        xmp_at = [i for i, item in enumerate(after) if is_xmp(item)]
        assert len(xmp_at) == 1
        first_image = next(i for i, (t, _) in enumerate(after) if t in (b"IDAT", b"fcTL"))
        had_xmp = any(is_xmp(c) for c in before)
        # an existing XMP chunk before the image data is updated where it is
        assert xmp_at[0] < first_image if had_xmp else xmp_at[0] == first_image - 1
        xmp_chunk = after[xmp_at[0]][1]
        assert xmp_chunk.startswith(b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<?xpacket")
        assert [c for c in after if not is_xmp(c)] == [c for c in before if not is_xmp(c)]
        with Image.open(tmp_path / f"o-{src.name}") as im:
            im.load()  # also checks every CRC


def test_late_compressed_xmp_is_moved_and_merged(tmp_path: Path) -> None:
    src = make_pngs(tmp_path)[4]
    label = make_label()
    out = chunks(write(src, tmp_path / "out.png", label))
    xmps = [data for item in out if is_xmp(item) for data in [item[1]]]
    assert len(xmps) == 1
    assert b"A title" in xmps[0] and b"<TC260:AIGC>" in xmps[0]
    types = [t for t, _ in out]
    assert types.index(b"iTXt") < types.index(b"IDAT")


def test_in_place_with_padding(tmp_path: Path) -> None:
    src = make_pngs(tmp_path)[0]
    target = tmp_path / "ip.png"
    target.write_bytes(src.read_bytes())
    label = make_label()
    with target.open("r+b") as fh:
        assert PngLabeler().write_in_place(fh, label.to_json())
    assert target.stat().st_size == src.stat().st_size
    assert AigcLabel.parse(read(target.read_bytes()) or "") == label
    with Image.open(target) as im:
        im.load()


def test_reads_variants_and_prefers_xmp(tmp_path: Path) -> None:
    label = make_label()
    base = make_pngs(tmp_path)[2].read_bytes()
    raw = label.to_json().encode()
    text_variants = [
        chunk(b"tEXt", b"AIGC\x00" + raw),
        chunk(b"zTXt", b"AIGC\x00\x00" + zlib.compress(raw)),
        itxt(b"AIGC", raw),
        itxt(b"AIGC", raw, compressed=True),
    ]
    for variant in text_variants:
        assert AigcLabel.parse(read(insert_before(base, b"IDAT", variant)) or "") == label
    with_exif = insert_before(base, b"IDAT", chunk(b"eXIf", user_comment_exif(label)[6:]))
    assert AigcLabel.parse(read(with_exif) or "") == label
    # the standard carrier wins over a variant, and a write leaves the variant alone
    src = tmp_path / "variant.png"
    src.write_bytes(insert_before(base, b"IDAT", text_variants[0]))
    other = make_label(ProduceID="00000000000000AB")
    out = write(src, tmp_path / "labeled.png", other)
    assert AigcLabel.parse(read(out) or "") == other
    assert (b"tEXt", b"AIGC\x00" + raw) in chunks(out)


def test_read_touches_only_headers_and_metadata(tmp_path: Path) -> None:
    noisy = Image.effect_noise((300, 300), 80).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, "PNG", compress_level=0)
    data = insert_before(buffer.getvalue(), b"IDAT", itxt(b"XML:com.adobe.xmp", xmp_packet(0)))
    recording = RecordingFile(data)
    assert PngLabeler().read(recording) is None
    for start, end in chunk_offsets(data, b"IDAT"):
        assert not recording.touched(start + 64, end), "read IDAT data"


def test_unsupported_and_hostile_input(tmp_path: Path) -> None:
    base = make_pngs(tmp_path)[2].read_bytes()
    label = make_label().to_json()
    labeler = PngLabeler()
    ihdr_end = 8 + 25
    cases: dict[str, tuple[bytes, type[MediaError]]] = {
        "not a png": (b"GIF89a" + base[6:], UnsupportedFormatError),
        "huge length": (base[:ihdr_end] + b"\xff\xff\xff\xfftEXt" + base[ihdr_end + 8 :], CorruptMediaError),
        "past the end": (base[:ihdr_end] + b"\x00\x10\x00\x00tEXt" + b"x" * 50, CorruptMediaError),
        "bad type": (base[:ihdr_end] + chunk(b"t\x00Xt", b"a") + base[ihdr_end:], CorruptMediaError),
        "no IEND": (base[:-12], CorruptMediaError),
        "no IHDR first": (base[:8] + chunk(b"tEXt", b"a\x00b") + base[8:], CorruptMediaError),
        "no IDAT": (base[:ihdr_end] + chunk(b"IEND", b""), CorruptMediaError),
        "zip bomb": (
            insert_before(base, b"IDAT", itxt(b"XML:com.adobe.xmp", b" " * (40 * 1024 * 1024), True)),
            MediaLimitError,
        ),
        "truncated zlib": (
            insert_before(
                base,
                b"IDAT",
                chunk(
                    b"iTXt",
                    b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + zlib.compress(bytes(range(256)) * 4)[:-10],
                ),
            ),
            CorruptMediaError,
        ),
        "XML bomb": (
            insert_before(
                base,
                b"IDAT",
                itxt(
                    b"XML:com.adobe.xmp",
                    b'<!DOCTYPE l [<!ENTITY a "AIGC">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>',
                ),
            ),
            MediaError,
        ),
        "too many chunks": (
            base[:ihdr_end] + chunk(b"tEXt", b"k\x00v") * 100_001 + base[ihdr_end:],
            MediaLimitError,
        ),
    }
    for name, (data, error) in cases.items():
        with pytest.raises(error):
            labeler.write(io.BytesIO(data), io.BytesIO(), label)
        if name not in ("no IDAT",):
            with pytest.raises(error):
                labeler.read(io.BytesIO(data))
