"""HEIF / AVIF: the contract, exiftool and Pillow reading the result, iloc variants, hostile input.

Samples are AVIF files written by Pillow (libavif); the HEIF sample is one of them with the major brand
``mif1`` (a HEIF file whose image items are AV1-coded), since no HEVC encoder is available offline.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from synthguard.aigc import AigcLabel
from synthguard.errors import MediaError, UnsupportedFormatError
from synthguard.labels.metadata import _bmff
from synthguard.labels.metadata.heif import HeifLabeler
from synthguard.media import Container, identify
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import (
    SRGB,
    XMP_META,
    XPACKET_BEGIN,
    XPACKET_END,
    exiftool_record,
    image_metadata,
    label_copy,
    user_comment_exif,
    write_samples,
)

#: Another tool's XMP, bare (as Pillow writes what it is given), and in a packet padded for the label.
OTHER_XMP = XMP_META
PADDED_XMP = XPACKET_BEGIN + OTHER_XMP + b"\n" + b" " * 2047 + XPACKET_END
_CACHE: dict[str, bytes] = {}


def _image(color: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (32, 24), color)
    for x in range(32):
        image.putpixel((x, x % 24), (x * 8, 255 - x * 8, 90))
    return image


def _avif(**options: Any) -> bytes:
    buffer = io.BytesIO()
    _image((200, 30, 40)).save(buffer, "AVIF", **options)
    return buffer.getvalue()


def _rebrand(avif: bytes, major: bytes) -> bytes:
    assert avif[4:8] == b"ftyp"
    return avif[:8] + major + avif[12:]


def _make_all() -> dict[str, bytes]:
    if _CACHE:
        return _CACHE
    exif = Image.Exif()
    exif[0x010F] = "UnitCam"
    exif[0x0112] = 1
    rich = _avif(exif=exif.tobytes(), xmp=OTHER_XMP, icc_profile=SRGB)
    _CACHE["rich.avif"] = rich
    _CACHE["plain.avif"] = _avif()
    _CACHE["padded.avif"] = _avif(xmp=PADDED_XMP)
    _CACHE["mif1.heif"] = _rebrand(rich, b"mif1")
    buffer = io.BytesIO()
    _image((0, 90, 200)).save(buffer, "AVIF", save_all=True, append_images=[_image((10, 200, 10))])
    _CACHE["animated.avif"] = buffer.getvalue()
    _CACHE["iloc-v2.avif"] = with_wide_iloc(rich)
    return _CACHE


def make_images(folder: Path) -> list[Path]:
    return write_samples(folder, _make_all())


def with_wide_iloc(data: bytes) -> bytes:
    """The same image with its iloc rewritten as version 2 with 8-byte offsets and lengths and a base
    offset per item (a layout other writers use), every offset moved by the meta box's growth."""
    stream = io.BytesIO(data)
    boxes = list(_bmff.iter_boxes(stream, 0, len(data)))
    meta = next(b for b in boxes if b.type == b"meta")
    tree = _bmff.parse_tree(data[meta.body_offset : meta.end], b"meta", lambda p: p == (b"meta",))
    node = tree.kid(b"iloc")
    assert node is not None
    iloc = _bmff.Iloc.parse(node.body)
    iloc.version = 2
    grown = len(iloc.to_bytes((8, 8, 4, 0))) - len(node.body)
    for item in iloc.items:
        first = item.extents[0].offset + grown
        item.base_offset = first
        for extent in item.extents:
            extent.offset = extent.offset + grown - first
    node.body = iloc.to_bytes((8, 8, 4, 0))
    new_meta = tree.to_bytes()
    assert len(new_meta) - meta.size == grown
    return data[: meta.offset] + new_meta + data[meta.end :]


def frames(path: Path) -> list[str]:
    with Image.open(path) as im:
        digests = []
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            digests.append(hashlib.sha256(im.convert("RGB").tobytes()).hexdigest())
        return digests


write = functools.partial(label_copy, HeifLabeler())


def read_label(path: Path) -> AigcLabel | None:
    with path.open("rb") as fh:
        raw = HeifLabeler().read(fh)
    return None if raw is None else AigcLabel.parse(raw)


class TestHeifContract(MetadataLabelerContract):
    labeler = HeifLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_images(folder)

    def other_metadata(self, path: Path) -> Any:
        return {**image_metadata(path), "frames": frames(path)}


def test_samples_are_the_containers_served(tmp_path: Path) -> None:
    for path in make_images(tmp_path):
        with path.open("rb") as fh:
            expected = Container.HEIF if path.suffix == ".heif" else Container.AVIF
            assert identify(fh).container is expected, path.name


@pytest.mark.tools
def test_exiftool_reads_the_label_and_keeps_the_rest(tmp_path: Path) -> None:
    label = make_label()
    for src in make_images(tmp_path):
        dst = tmp_path / f"out-{src.name}"
        write(src, dst, label)
        record = exiftool_record(
            dst, "-XMP-TC260:AIGC", "-XMP-dc:Title", "-Make", "-ProfileDescription", "-Warning"
        )
        assert AigcLabel.parse(record["Aigc"]) == label, src.name
        assert "Warning" not in record, (src.name, record.get("Warning"))
        if src.name in ("rich.avif", "mif1.heif", "iloc-v2.avif"):
            assert record["Title"] == "A title"
            assert record["Make"] == "UnitCam"
            assert record["ProfileDescription"]
        assert frames(dst) == frames(src)


def _xmp_items(path: Path) -> int:
    return path.read_bytes().count(b"mimeXMP\x00application/rdf+xml")


def test_existing_xmp_item_is_updated_not_duplicated(tmp_path: Path) -> None:
    src = next(p for p in make_images(tmp_path) if p.name == "rich.avif")
    assert _xmp_items(src) == 1
    dst, again = tmp_path / "out.avif", tmp_path / "again.avif"
    write(src, dst, make_label())
    assert _xmp_items(dst) == 1
    # the packet moved to the end (it grew); its old bytes were blanked, not left behind
    assert dst.read_bytes().count(b"A title") == 1
    second = make_label(ProduceID="00000000000000AB")
    write(dst, again, second)
    assert read_label(again) == second
    assert again.read_bytes().count(b"A title") == 1
    assert again.stat().st_size - dst.stat().st_size < 64


def test_new_xmp_item_references_the_primary_item(tmp_path: Path) -> None:
    src = next(p for p in make_images(tmp_path) if p.name == "plain.avif")
    assert _xmp_items(src) == 0
    dst = tmp_path / "out.avif"
    write(src, dst, make_label())
    data = dst.read_bytes()
    assert _xmp_items(dst) == 1
    at = data.index(b"cdsc")
    from_id, count, to_id = struct.unpack(">HHH", data[at + 4 : at + 10])
    assert count == 1 and to_id == 1 and from_id > 1


def test_in_place_when_meta_keeps_its_size(tmp_path: Path) -> None:
    samples = {p.name: p for p in make_images(tmp_path)}
    labeler = HeifLabeler()
    # a padded packet takes the label within its own length: nothing moves
    padded = samples["padded.avif"]
    size = padded.stat().st_size
    label = make_label()
    with padded.open("r+b") as fh:
        assert labeler.write_in_place(fh, label.to_json())
    assert padded.stat().st_size == size
    assert read_label(padded) == label
    # a first label that grows meta in front of the image data is refused, the file untouched
    plain = samples["plain.avif"]
    before = plain.read_bytes()
    with plain.open("r+b") as fh:
        assert not labeler.write_in_place(fh, label.to_json())
    assert plain.read_bytes() == before
    # once labeled, relabeling is in place (the packet sits in the last mdat)
    labeled = tmp_path / "labeled.avif"
    write(plain, labeled, label)
    second = make_label(ProduceID="00000000000000AB", ContentPropagator="PLATFORM01")
    with labeled.open("r+b") as fh:
        assert labeler.write_in_place(fh, second.to_json())
    assert read_label(labeled) == second
    assert frames(labeled) == frames(plain)
    assert labeled.read_bytes().count(b'"ProduceID"') == 1


def test_iloc_round_trip_and_widening() -> None:
    items = [
        _bmff.IlocItem(1, 0, 0, 0, [_bmff.IlocExtent(0, 100, 10)]),
        _bmff.IlocItem(2, 0, 0, 0, [_bmff.IlocExtent(0, 50, 5)]),
    ]
    iloc = _bmff.Iloc(
        version=0,
        flags=b"\x00\x00\x00",
        offset_size=4,
        length_size=4,
        base_offset_size=0,
        index_size=0,
        items=items,
    )
    body = iloc.to_bytes(iloc.sizes())
    assert _bmff.Iloc.parse(body) == iloc
    iloc.shift(_bmff.Shift(80, 2**32))
    assert iloc.sizes() == (8, 4, 0, 0)
    again = _bmff.Iloc.parse(iloc.to_bytes(iloc.sizes()))
    assert [i.extents[0].offset for i in again.items] == [100 + 2**32, 50]
    # an item beyond 16-bit IDs needs version 2
    iloc.items.append(_bmff.IlocItem(70000, 1, 0, 0, [_bmff.IlocExtent(0, 0, 3)]))
    wide = _bmff.Iloc.parse(iloc.to_bytes(iloc.sizes()))
    assert wide.version == 2 and wide.item(70000) is not None


def _heif(meta_children: bytes, mdat: bytes = b"\x00" * 16, *, metas: int = 1) -> bytes:
    ftyp = _bmff.box_bytes(b"ftyp", b"mif1\x00\x00\x00\x00mif1heic")
    hdlr = _bmff.box_bytes(b"hdlr", b"\x00" * 8 + b"pict" + b"\x00" * 13)
    meta = _bmff.box_bytes(b"meta", b"\x00" * 4 + hdlr + meta_children)
    return ftyp + meta * metas + _bmff.box_bytes(b"mdat", mdat)


def _iloc(*items: tuple[int, int, int], count: int | None = None, head: bytes = b"\x44\x00") -> bytes:
    body = b"\x00\x00\x00\x00" + head + struct.pack(">H", len(items) if count is None else count)
    for item_id, offset, length in items:
        body += struct.pack(">HHHII", item_id, 0, 1, offset, length)
    return _bmff.box_bytes(b"iloc", body)


def _iinf(*entries: bytes) -> bytes:
    return _bmff.box_bytes(b"iinf", b"\x00" * 4 + struct.pack(">H", len(entries)) + b"".join(entries))


def _infe(item_id: int, item_type: bytes, extra: bytes = b"") -> bytes:
    return _bmff.box_bytes(b"infe", b"\x02\x00\x00\x00" + struct.pack(">HH", item_id, 0) + item_type + extra)


XMP_INFE = _infe(2, b"mime", b"XMP\x00application/rdf+xml\x00")


def _heif_with_data(children: Any, mdat: bytes) -> bytes:
    """``_heif`` where ``children(offset)`` gets the file offset of the mdat body (field sizes are
    fixed, so building twice gives the same layout)."""
    first = _heif(children(0), mdat)
    return _heif(children(len(first) - len(mdat)), mdat)


PITM = _bmff.box_bytes(b"pitm", b"\x00" * 4 + b"\x00\x01")


@pytest.mark.tools
def test_minimal_heif_is_labeled(tmp_path: Path) -> None:
    image = _infe(1, b"hvc1", b"\x00")
    data = _heif_with_data(lambda at: PITM + _iloc((1, at, 16)) + _iinf(image), b"\x01" * 16)
    src, dst = tmp_path / "min.heic", tmp_path / "out.heic"
    src.write_bytes(data)
    label = make_label()
    write(src, dst, label)
    assert read_label(dst) == label
    with src.open("rb") as a, dst.open("rb") as b:
        assert b"".join(HeifLabeler().payload(a)) == b"".join(HeifLabeler().payload(b)) == b"\x01" * 16
    assert AigcLabel.parse(exiftool_record(dst, "-XMP-TC260:AIGC")["Aigc"]) == label


def test_reads_exif_user_comment_variant(tmp_path: Path) -> None:
    label = make_label()
    path = tmp_path / "exif.avif"
    path.write_bytes(_avif(exif=user_comment_exif(label)))
    assert read_label(path) == label


def test_hostile_structures_raise_typed_errors() -> None:
    labeler = HeifLabeler()
    cases = {
        "no meta": _bmff.box_bytes(b"ftyp", b"mif1\x00\x00\x00\x00") + _bmff.box_bytes(b"mdat", b"x"),
        "two metas": _heif(PITM, metas=2),
        "iloc count": _heif(PITM + _iloc(count=0xFFFF)),
        "iloc version 3": _heif(PITM + _bmff.box_bytes(b"iloc", b"\x03\x00\x00\x00\x44\x00\x00\x00")),
        "iloc field size 5": _heif(PITM + _iloc(head=b"\x54\x00")),
        "xmp past the end": _heif(PITM + _iloc((2, 10**6, 100)) + _iinf(XMP_INFE)),
        "xmp huge": _heif(PITM + _iloc((2, 0, 0xFFFFFFFF)) + _iinf(XMP_INFE)),
        "infe truncated": _heif(PITM + _iinf(_bmff.box_bytes(b"infe", b"\x02\x00\x00\x00\x00"))),
        "infe version 9": _heif(PITM + _iinf(_bmff.box_bytes(b"infe", b"\x09" + b"\x00" * 12))),
        "iinf child past end": _heif(
            PITM + _bmff.box_bytes(b"iinf", b"\x00" * 6 + struct.pack(">I4s", 99, b"infe"))
        ),
        "xmp not xml": _heif_with_data(lambda at: PITM + _iloc((2, at, 40)) + _iinf(XMP_INFE), b"<AIGC" * 8),
    }
    write_only = {"two metas"}  # the reader stops at the first meta box
    for name, blob in cases.items():
        if name not in write_only:
            with pytest.raises(MediaError):
                labeler.read(io.BytesIO(blob))
                raise AssertionError(f"read accepted {name}")
        with pytest.raises(MediaError):
            labeler.write(io.BytesIO(blob), io.BytesIO(), make_label().to_json())
            raise AssertionError(f"write accepted {name}")


def test_xmp_in_another_file_is_unsupported() -> None:
    iloc = _bmff.box_bytes(
        b"iloc", b"\x00\x00\x00\x00\x44\x00\x00\x01" + struct.pack(">HHHII", 2, 1, 1, 0, 10)
    )
    blob = _heif(PITM + iloc + _iinf(XMP_INFE))
    with pytest.raises(UnsupportedFormatError):
        HeifLabeler().read(io.BytesIO(blob))


@pytest.mark.tools
def test_xmp_item_in_idat_moves_to_file_offsets(tmp_path: Path) -> None:
    old = make_label()
    packet = OTHER_XMP.replace(
        b"</rdf:RDF>",
        b'<rdf:Description rdf:about="" xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/"><TC260:AIGC>'
        + old.to_json().replace('"', "&quot;").encode()
        + b"</TC260:AIGC></rdf:Description></rdf:RDF>",
    )
    idat = _bmff.box_bytes(b"idat", packet)

    def children(at: int) -> bytes:
        iloc = b"\x01\x00\x00\x00\x44\x00" + struct.pack(">H", 2)
        iloc += struct.pack(">HHHHII", 1, 0, 0, 1, at, 16)  # image: file offsets
        iloc += struct.pack(">HHHHII", 2, 1, 0, 1, 0, len(packet))  # XMP: in idat
        infos = _iinf(_infe(1, b"hvc1", b"\x00"), XMP_INFE)
        return PITM + _bmff.box_bytes(b"iloc", iloc) + infos + idat

    src, dst = tmp_path / "idat.heic", tmp_path / "out.heic"
    src.write_bytes(_heif_with_data(children, b"\x02" * 16))
    assert read_label(src) == old
    new = make_label(ProduceID="00000000000000AB")
    write(src, dst, new)
    assert read_label(dst) == new
    assert dst.read_bytes().count(b"ProduceID") == 1  # the idat copy was blanked
    assert dst.read_bytes().count(b"A title") == 1
    record = exiftool_record(dst, "-XMP-TC260:AIGC", "-XMP-dc:Title")
    assert AigcLabel.parse(record["Aigc"]) == new and record["Title"] == "A title"
    with src.open("rb") as a, dst.open("rb") as b:
        assert b"".join(HeifLabeler().payload(a)) == b"".join(HeifLabeler().payload(b)) == b"\x02" * 16


def test_payload_of_an_image_sequence_covers_every_frame(tmp_path: Path) -> None:
    src = next(p for p in make_images(tmp_path) if p.name == "animated.avif")
    data = src.read_bytes()
    moov = next(b for b in _bmff.iter_boxes(io.BytesIO(data), 0, len(data)) if b.type == b"moov")
    stbl = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
    tree = _bmff.parse_tree(data[moov.body_offset : moov.end], b"moov", lambda p: p == stbl[: len(p)])
    start, length = _bmff.chunk_ranges(tree)[-1]
    meta = next(b for b in _bmff.iter_boxes(io.BytesIO(data), 0, len(data)) if b.type == b"meta")
    items = _bmff.parse_tree(data[meta.body_offset : meta.end], b"meta", lambda p: p == (b"meta",))
    iloc = items.kid(b"iloc")
    assert iloc is not None
    item_ends = [
        i.base_offset + e.offset + e.length for i in _bmff.Iloc.parse(iloc.body).items for e in i.extents
    ]
    assert start + length > max(item_ends)  # the last frame lies outside every item
    edited = bytearray(data)
    edited[start + length - 1] ^= 0xFF  # a byte of the last frame only
    labeler = HeifLabeler()
    before = b"".join(labeler.payload(io.BytesIO(data)))
    assert b"".join(labeler.payload(io.BytesIO(bytes(edited)))) != before
    assert data[start : start + length] in before
