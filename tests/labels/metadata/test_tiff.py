"""TIFF: the contract, exiftool and Pillow reading the output, the appended IFD0, tail reuse, in-place
writes, variants and hostile input, in both byte orders."""

from __future__ import annotations

import functools
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.metadata.tiff import TiffLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import (
    OTHER_XMP,
    SRGB,
    RecordingFile,
    assert_exiftool_reads_label,
    exiftool_tags,
    gradient,
    image_info,
    label_copy,
    read_bytes,
    user_comment,
    xmp_packet,
)

_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 7: 1}


def packbits(data: bytes) -> bytes:
    """PackBits with literal runs only (valid, if not small)."""
    return b"".join(bytes([len(data[i : i + 128]) - 1]) + data[i : i + 128] for i in range(0, len(data), 128))


def make_entry(order: str, tag: int, type_: int, values: list[int] | bytes) -> tuple[int, int, int, bytes]:
    """(tag, type, count, value bytes) of one IFD entry; SHORT and LONG values are packed."""
    if isinstance(values, bytes):
        return tag, type_, len(values), values
    return tag, type_, len(values), b"".join(struct.pack(order + {3: "H", 4: "I"}[type_], v) for v in values)


def build_tiff(
    order: str,
    pages: list[Image.Image],
    *,
    xmp: bytes | None = None,
    xmp_first: bool = False,
    user_comment: bytes | None = None,
    tile: int = 0,
    compress: bool = False,
) -> bytes:
    """A hand-made RGB TIFF written as libtiff does: each page's data and values, then its IFD; the
    last page first, so that IFD0 (and the XMP before it, unless ``xmp_first``) ends the file."""
    out = bytearray((b"II*\x00" if order == "<" else b"MM\x00*") + bytes(4))
    if xmp is not None and xmp_first:
        xmp_at = len(out)
        out += xmp + b"\x00" * (len(xmp) & 1)

    def put(data: bytes) -> int:
        if len(out) & 1:
            out.append(0)
        at = len(out)
        out.extend(data)
        return at

    next_ifd = 0
    for index in reversed(range(len(pages))):
        image = pages[index]
        width, height = image.size
        if tile:
            pieces = [
                image.crop((x, y, x + tile, y + tile)).tobytes()
                for y in range(0, height, tile)
                for x in range(0, width, tile)
            ]
        else:
            rows = max(1, height // 2)
            pieces = [
                image.crop((0, y, width, min(height, y + rows))).tobytes() for y in range(0, height, rows)
            ]
        pieces = [packbits(p) if compress else p for p in pieces]
        offsets = [put(p) for p in pieces]
        entries: list[tuple[int, int, int, bytes]] = []

        def entry(tag: int, type_: int, values: list[int] | bytes, entries: list[Any] = entries) -> None:
            entries.append(make_entry(order, tag, type_, values))

        entry(256, 4, [width])
        entry(257, 4, [height])
        entry(258, 3, [8, 8, 8])
        entry(259, 3, [32773 if compress else 1])
        entry(262, 3, [2])
        entry(277, 3, [3])
        entry(284, 3, [1])
        if tile:
            entry(322, 3, [tile])
            entry(323, 3, [tile])
            entry(324, 4, offsets)
            entry(325, 4, [len(p) for p in pieces])
        else:
            entry(273, 4, offsets)
            entry(278, 3, [max(1, height // 2)])
            entry(279, 4, [len(p) for p in pieces])
        if index == 0:
            entry(305, 2, b"hand-made\x00")
            if user_comment is not None or order == ">":
                exif_entries = [(0x9003, 2, b"2024:01:02 03:04:05\x00")]
                if user_comment is not None:
                    exif_entries.append((0x9286, 7, user_comment))
                exif_values = [put(raw) for _, _, raw in exif_entries]
                body = struct.pack(order + "H", len(exif_entries))
                for (tag, type_, raw), at in zip(exif_entries, exif_values, strict=True):
                    body += struct.pack(order + "HHII", tag, type_, len(raw), at)
                entry(0x8769, 4, [put(body + bytes(4))])
            if xmp is not None:
                entries.append((700, 1, len(xmp), xmp))
        blobs = []
        for tag, type_, count, raw in sorted(entries):
            if len(raw) <= 4:
                blobs.append(struct.pack(order + "HHI", tag, type_, count) + raw.ljust(4, b"\x00"))
            else:
                at = xmp_at if tag == 700 and xmp_first else put(raw)
                blobs.append(struct.pack(order + "HHII", tag, type_, count, at))
        next_ifd = put(
            struct.pack(order + "H", len(blobs)) + b"".join(blobs) + struct.pack(order + "I", next_ifd)
        )
    out[4:8] = struct.pack(order + "I", next_ifd)
    return bytes(out)


def make_tiffs(folder: Path) -> list[Path]:
    rich = folder / "rich-le.tif"
    exif = Image.Exif()
    exif[0x010F] = "UnitCam"
    exif[0x0112] = 6
    exif[700] = OTHER_XMP
    gradient("RGB").save(rich, icc_profile=SRGB, exif=exif)

    multi = folder / "multipage-le.tif"
    frames = [gradient("RGB", (20, 10), s) for s in (0, 60, 120)]
    frames[0].save(multi, save_all=True, append_images=frames[1:])

    lzw = folder / "lzw-le.tif"
    gradient("RGB").save(lzw, compression="tiff_lzw", icc_profile=SRGB)

    be16 = folder / "gray16-be.tif"
    Image.new("I;16B", (20, 10), 1000).save(be16)

    hand = folder / "packbits-be.tif"
    hand.write_bytes(build_tiff(">", [gradient("RGB", (12, 9)), gradient("RGB", (7, 5), 99)], compress=True))

    tiled = folder / "tiled-be.tif"
    tiled.write_bytes(
        build_tiff(">", [gradient("RGB", (32, 32))], tile=16, xmp=xmp_packet(0), xmp_first=True)
    )

    tail = folder / "xmp-tail-le.tif"
    tail.write_bytes(build_tiff("<", [gradient("RGB", (10, 6))], xmp=xmp_packet(0)))
    return [rich, multi, lzw, be16, hand, tiled, tail]


write = functools.partial(label_copy, TiffLabeler())
read = functools.partial(read_bytes, TiffLabeler())


def ifd_chain(data: bytes) -> list[tuple[int, list[bytes], int]]:
    """(offset, raw entries, next offset) of each IFD."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    chain = []
    while offset:
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        raws = [data[offset + 2 + 12 * i : offset + 14 + 12 * i] for i in range(count)]
        (next_offset,) = struct.unpack(order + "I", data[offset + 2 + 12 * count : offset + 6 + 12 * count])
        chain.append((offset, raws, next_offset))
        offset = next_offset
    return chain


def tag_of(raw: bytes, order: str) -> int:
    return int(struct.unpack(order + "H", raw[:2])[0])


def pillow_tags(path: Path) -> list[dict[int, Any]]:
    """Every tag of every page as Pillow reads it, but XMP."""
    pages = []
    with Image.open(path) as im:
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            pages.append({k: v for k, v in im.tag_v2.items() if k != 700})
    return pages


class TestTiffContract(MetadataLabelerContract):
    labeler = TiffLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_tiffs(folder)

    def other_metadata(self, path: Path) -> Any:
        return {"pillow": image_info(path), "tags": pillow_tags(path), "exiftool": exiftool_tags(path)}


@pytest.mark.tools
def test_exiftool_reads_the_label(tmp_path: Path) -> None:
    assert_exiftool_reads_label(
        TiffLabeler(), make_tiffs(tmp_path), tmp_path, ("rich-le.tif", "tiled-be.tif", "xmp-tail-le.tif")
    )


def test_new_ifd0_appended_and_everything_else_kept(tmp_path: Path) -> None:
    label = make_label()
    for src in make_tiffs(tmp_path)[1:5]:
        original = src.read_bytes()
        data = write(src, tmp_path / f"o-{src.name}", label)
        order = "<" if data[:2] == b"II" else ">"
        assert data[8 : len(original)] == original[8:], "the original bytes are kept in place"
        before, after = ifd_chain(original), ifd_chain(data)
        assert after[0][0] >= len(original) and after[0][0] % 2 == 0
        tags = [tag_of(r, order) for r in after[0][1]]
        assert tags == sorted(tags) and tags.count(700) == 1
        assert [r for r in after[0][1] if tag_of(r, order) != 700] == sorted(
            before[0][1], key=lambda r: tag_of(r, order)
        )
        assert after[0][2] == before[0][2] and after[1:] == before[1:]


def test_relabel_reuses_the_tail(tmp_path: Path) -> None:
    for src in make_tiffs(tmp_path):
        once = write(src, tmp_path / f"1-{src.name}", make_label())
        twice = write(tmp_path / f"1-{src.name}", tmp_path / f"2-{src.name}", make_label())
        thrice = write(
            tmp_path / f"2-{src.name}", tmp_path / f"3-{src.name}", make_label(ProduceID="00000000000000AB")
        )
        assert len(once) == len(twice) == len(thrice), src.name
        assert thrice.count(b'"ProduceID"') == 1


def test_foreign_xmp_packet_moved_leaves_no_stale_label(tmp_path: Path) -> None:
    foreign = make_label(ProduceID="00000000000000CD")
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/">'
        f"<TC260:AIGC>{foreign.to_json()}</TC260:AIGC></rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    src = tmp_path / "foreign.tif"
    src.write_bytes(build_tiff("<", [gradient("RGB", (9, 7))], xmp=packet, xmp_first=True))
    assert AigcLabel.parse(read(src.read_bytes()) or "") == foreign
    label = make_label()
    out = write(src, tmp_path / "out.tif", label)
    assert AigcLabel.parse(read(out) or "") == label
    assert out.count(b'"ProduceID"') == 1
    with Image.open(src) as a, Image.open(tmp_path / "out.tif") as b:
        assert a.tobytes() == b.tobytes()


def test_in_place(tmp_path: Path) -> None:
    samples = make_tiffs(tmp_path)
    label = make_label()
    padded = tmp_path / "ip.tif"
    padded.write_bytes(samples[0].read_bytes())
    with padded.open("r+b") as fh:
        assert TiffLabeler().write_in_place(fh, label.to_json())
    assert padded.stat().st_size == samples[0].stat().st_size
    assert AigcLabel.parse(read(padded.read_bytes()) or "") == label
    # write() also updates a roomy value where it is: same size, same IFD0
    copied = write(samples[0], tmp_path / "copy.tif", label)
    assert len(copied) == samples[0].stat().st_size
    assert ifd_chain(copied)[0][0] == ifd_chain(samples[0].read_bytes())[0][0]
    for src in samples[1:]:
        target = tmp_path / f"no-room-{src.name}"
        target.write_bytes(src.read_bytes())
        with target.open("r+b") as fh:
            assert not TiffLabeler().write_in_place(fh, label.to_json())
        assert target.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("order", ["<", ">"])
def test_reads_exif_user_comment(order: str) -> None:
    label = make_label()
    comment = user_comment(label)
    data = build_tiff(order, [gradient("RGB", (8, 8))], user_comment=comment)
    assert AigcLabel.parse(read(data) or "") == label
    unicode = b"UNICODE\x00" + json.dumps({"AIGC": label.to_dict()}).encode(
        "utf-16-le" if order == "<" else "utf-16-be"
    )
    assert (
        AigcLabel.parse(read(build_tiff(order, [gradient("RGB", (8, 8))], user_comment=unicode)) or "")
        == label
    )
    assert read(build_tiff(order, [gradient("RGB", (8, 8))], user_comment=b"ASCII\x00\x00\x00hello")) is None
    # a broken EXIF IFD pointer holds no label and does not stop labeling
    chain = ifd_chain(data)
    pointer = next(i for i, r in enumerate(chain[0][1]) if tag_of(r, order) == 0x8769)
    at = chain[0][0] + 2 + 12 * pointer + 8
    broken = data[:at] + struct.pack(order + "I", len(data) + 100) + data[at + 4 :]
    assert read(broken) is None
    out = io.BytesIO()
    TiffLabeler().write(io.BytesIO(broken), out, label.to_json())
    assert AigcLabel.parse(read(out.getvalue()) or "") == label


def test_read_touches_only_headers(tmp_path: Path) -> None:
    noisy = Image.effect_noise((120, 120), 80).convert("RGB")
    data = build_tiff(">", [noisy, noisy], xmp=OTHER_XMP)
    recording = RecordingFile(data)
    assert TiffLabeler().read(recording) is None
    for _, raws, _ in ifd_chain(data):
        for raw in raws:
            if tag_of(raw, ">") == 273:
                count = struct.unpack(">I", raw[4:8])[0]
                (at,) = struct.unpack(">I", raw[8:12])
                offsets = struct.unpack(f">{count}I", data[at : at + 4 * count])
                assert not any(recording.touched(o, o + 100) for o in offsets)


def test_unsupported_and_hostile_input(tmp_path: Path) -> None:
    base = build_tiff("<", [gradient("RGB", (8, 8))], xmp=xmp_packet(0))
    label = make_label().to_json()
    labeler = TiffLabeler()
    chain = ifd_chain(base)
    ifd0 = chain[0][0]
    count = len(chain[0][1])
    xmp_entry = next(ifd0 + 2 + 12 * i for i, r in enumerate(chain[0][1]) if tag_of(r, "<") == 700)
    strip_entry = next(ifd0 + 2 + 12 * i for i, r in enumerate(chain[0][1]) if tag_of(r, "<") == 273)

    def patched(at: int, value: bytes, data: bytes = base) -> bytes:
        return data[:at] + value + data[at + len(value) :]

    duplicate_xmp = patched(ifd0, struct.pack("<H", count + 1))
    duplicate_xmp = (
        duplicate_xmp[: ifd0 + 2 + 12 * count]
        + base[xmp_entry : xmp_entry + 12]
        + duplicate_xmp[ifd0 + 2 + 12 * count :]
    )
    cases: dict[str, tuple[bytes, type[MediaError], bool, bool]] = {
        # name: (data, error, raised by read, raised by payload)
        "big tiff": (b"II+\x00" + base[4:], UnsupportedFormatError, True, True),
        "no IFD": (patched(4, bytes(4)), CorruptMediaError, True, True),
        "IFD past end": (patched(4, struct.pack("<I", len(base) + 10)), CorruptMediaError, True, True),
        "IFD runs past end": (
            patched(4, struct.pack("<I", len(base))) + struct.pack("<H", 10) + bytes(20),
            CorruptMediaError,
            True,
            True,
        ),
        "absurd entry count": (patched(ifd0, struct.pack("<H", 60000)), MediaLimitError, True, True),
        "XMP past end": (
            patched(xmp_entry + 8, struct.pack("<I", len(base) - 3)),
            CorruptMediaError,
            True,
            False,
        ),
        "XMP huge": (patched(xmp_entry + 4, struct.pack("<I", 2**31)), MediaLimitError, True, False),
        "strip past end": (
            patched(strip_entry + 8, struct.pack("<I", len(base))),
            CorruptMediaError,
            False,
            True,
        ),
        "strip wrong type": (patched(strip_entry + 2, struct.pack("<H", 5)), CorruptMediaError, False, True),
        "IFD chain loops": (
            patched(ifd0 + 2 + 12 * count, struct.pack("<I", ifd0)),
            CorruptMediaError,
            False,
            True,
        ),
        "two XMP tags": (duplicate_xmp, CorruptMediaError, False, False),
    }
    for data, error, on_read, on_payload in cases.values():
        with pytest.raises(error):
            labeler.write(io.BytesIO(data), io.BytesIO(), label)
        if on_read:
            with pytest.raises(error):
                labeler.read(io.BytesIO(data))
        else:
            labeler.read(io.BytesIO(data))
        if on_payload:
            with pytest.raises(error):
                b"".join(labeler.payload(io.BytesIO(data)))
