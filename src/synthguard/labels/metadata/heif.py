"""HEIF, AVIF: the label in an XMP item of the top-level ``meta`` box (ISO/IEC 23008-12).

The XMP item is an ``infe`` (version 2) of item type ``mime`` with content type
``application/rdf+xml``, located by ``iloc`` and described by an ``iref`` ``cdsc`` reference to the
primary item (``pitm``); its packet holds ``TC260:AIGC`` (``xmp.py``). A file that already has an XMP
item gets the property set in that packet, everything else in it kept.

Where the packet goes: with construction method 0 (file offsets) in an ``mdat`` box appended at the
end of the file, as exiftool does. Construction method 1 (``idat``) would keep it inside ``meta`` but
exiftool 12 cannot read such items. An existing packet is rewritten where it lies when the new one is
not longer (the rest of its old extent zeroed); otherwise it moves to the appended ``mdat`` and its
old bytes are zeroed, so no stale label stays behind. Only ``meta`` is rebuilt: when it grows in front
of the media data, every construction-method-0 extent after it (and the chunk offsets of an image
sequence's ``moov``) shifts by the growth, the ``iloc`` field sizes widening if a value needs it.

Why hand-written: no maintained library edits HEIF item metadata without re-encoding or a full
rewrite. Pillow and pillow-heif re-encode the image, exiv2 does not write ISO BMFF files, and
exiftool (Perl) rewrites the whole file through its own buffers. Here the coded image data is copied
with ``copy_file_range`` and never decoded; reading parses ``meta`` only.

Variants read: the XMP attribute form, and a label in the EXIF UserComment of an ``Exif`` item.
The payload is the data of the image items (every item that is not ``Exif``, ``mime`` or ``uri ``),
then, for an image sequence, the chunks of its ``moov`` tracks; never the metadata items, so relocating
the XMP packet does not change it.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import copy_range, iter_range, read_exact, require_size, stream_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata import exif, xmp
from synthguard.labels.metadata._bmff import (
    Box,
    Iloc,
    IlocExtent,
    IlocItem,
    Node,
    Shift,
    box_bytes,
    chunk_ranges,
    cstring,
    iter_boxes,
    parse_tree,
    shift_chunk_offsets,
)
from synthguard.media import Container

__all__ = ["HeifLabeler"]

XMP_CONTENT_TYPE: Final = b"application/rdf+xml"
#: Item types whose data is metadata, not the image (the payload leaves them out).
METADATA_ITEM_TYPES: Final = frozenset({b"Exif", b"mime", b"uri "})
#: A ``meta`` box larger than this is refused (real ones are a few KB; thumbnails live in mdat).
MAX_META: Final = 64 * 1024 * 1024
MAX_MOOV: Final = 512 * 1024 * 1024
_STBL_PATH: Final = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
_U16: Final = 0xFFFF
_U32: Final = 0xFFFFFFFF


@dataclasses.dataclass(frozen=True, slots=True)
class _Info:
    """What one ``infe`` says about its item."""

    item_id: int
    version: int
    item_type: bytes
    content_type: bytes
    content_encoding: bytes
    protected: bool

    def is_xmp(self) -> bool:
        return self.content_type == XMP_CONTENT_TYPE and (self.version < 2 or self.item_type == b"mime")

    def is_image(self) -> bool:
        return self.version >= 2 and self.item_type not in METADATA_ITEM_TYPES


def _parse_infe(body: bytes) -> _Info:
    if len(body) < 8:
        raise CorruptMediaError("infe box is too short")
    version = body[0]
    if version < 2:
        item_id, protection = struct.unpack(">HH", body[4:8])
        _, pos = cstring(body, 8)
        content_type, pos = cstring(body, pos)
        encoding, _ = cstring(body, pos)
        return _Info(item_id, version, b"", content_type, encoding, protection != 0)
    if version == 2:
        if len(body) < 12:
            raise CorruptMediaError("infe box is too short")
        item_id, protection, item_type = struct.unpack(">HH4s", body[4:12])
        pos = 12
    elif version == 3:
        if len(body) < 14:
            raise CorruptMediaError("infe box is too short")
        item_id, protection, item_type = struct.unpack(">IH4s", body[4:14])
        pos = 14
    else:
        raise UnsupportedFormatError(f"infe version {version}")
    content_type = encoding = b""
    if item_type == b"mime":
        _, pos = cstring(body, pos)
        content_type, pos = cstring(body, pos)
        encoding, _ = cstring(body, pos)
    return _Info(item_id, version, item_type, content_type, encoding, protection != 0)


@dataclasses.dataclass(slots=True)
class _Meta:
    """A parsed top-level ``meta`` box: its tree plus the item boxes decoded."""

    box: Box
    tree: Node
    iloc: Iloc
    infos: list[_Info]
    infe_boxes: list[bytes]
    primary: int | None

    @classmethod
    def parse(cls, src: BinaryIO, box: Box) -> _Meta:
        require_size(box.body_size, MAX_META, "meta box")
        src.seek(box.body_offset)
        body = read_exact(src, box.body_size, "meta box")
        tree = parse_tree(
            body, b"meta", lambda p: p == (b"meta",), large=box.header_size == 16, origin=box.body_offset
        )
        iloc_node = tree.kid(b"iloc")
        iloc = Iloc.parse(iloc_node.body) if iloc_node else Iloc(0, b"\x00\x00\x00", 4, 4, 0, 0, [])
        infe_boxes = _infe_boxes(tree.kid(b"iinf"))
        infos = [_parse_infe(b[8:]) for b in infe_boxes]
        pitm = tree.kid(b"pitm")
        primary = None
        if pitm is not None:
            if len(pitm.body) < 6:
                raise CorruptMediaError("pitm box is too short")
            wide = pitm.body[0] != 0 and len(pitm.body) >= 8
            primary = int.from_bytes(pitm.body[4:8] if wide else pitm.body[4:6], "big")
        return cls(box, tree, iloc, infos, infe_boxes, primary)

    def idat(self) -> bytes:
        node = self.tree.kid(b"idat")
        return b"" if node is None else node.body

    def xmp_infos(self) -> list[_Info]:
        return [i for i in self.infos if i.is_xmp()]


def _infe_boxes(iinf: Node | None) -> list[bytes]:
    if iinf is None:
        return []
    body = iinf.body
    start = 6 if body[:1] == b"\x00" else 8
    if len(body) < start:
        raise CorruptMediaError("iinf box is too short")
    stream = io.BytesIO(body)
    boxes = []
    for box in iter_boxes(stream, start, len(body), where="box 'iinf'"):
        if box.type == b"infe":
            boxes.append(body[box.offset : box.end])
    # the header of each kept box may be 16 bytes: normalise to header + body with an 8-byte header
    return [b if b[:4] != b"\x00\x00\x00\x01" else box_bytes(b"infe", b[16:]) for b in boxes]


def _extent_ranges(item: IlocItem, limit: int) -> list[tuple[int, int]]:
    """(start, length) of each extent: file offsets (method 0) or offsets in ``idat`` (method 1);
    a zero length means "to the end" of the file or ``idat``, which spans ``limit``."""
    ranges = []
    for extent in item.extents:
        start = item.base_offset + extent.offset
        length = extent.length if extent.length else limit - start
        if start < 0 or length < 0 or start + length > limit:
            raise CorruptMediaError(f"item {item.item_id}'s data lies outside the file", offset=start)
        ranges.append((start, length))
    return ranges


def _check_local(item: IlocItem) -> None:
    if item.data_reference_index:
        raise UnsupportedFormatError("HEIF item stored in another file", hint=f"item {item.item_id}")
    if item.construction_method > 1:
        raise UnsupportedFormatError(
            f"HEIF item built by construction method {item.construction_method}",
            hint=f"item {item.item_id}",
        )


def _item_bytes(src: BinaryIO, meta: _Meta, item_id: int, limit: int) -> bytes:
    """An item's data (at most ``limit`` bytes), from the file or from ``idat``."""
    item = meta.iloc.item(item_id)
    if item is None:
        return b""
    _check_local(item)
    size = stream_size(src) if item.construction_method == 0 else len(meta.idat())
    ranges = _extent_ranges(item, size)
    require_size(sum(length for _, length in ranges), limit, f"item {item_id}")
    if item.construction_method == 1:
        idat = meta.idat()
        return b"".join(idat[s : s + n] for s, n in ranges)
    parts = []
    for start, length in ranges:
        src.seek(start)
        parts.append(read_exact(src, length, f"item {item_id}"))
    return b"".join(parts)


def _exif_label(data: bytes) -> str | None:
    if len(data) < 4:
        return None
    (skip,) = struct.unpack(">I", data[:4])
    if 4 + skip > len(data):
        raise CorruptMediaError("Exif item's TIFF header offset points past its data")
    return exif.read_user_comment_label(data[4 + skip :])


def _top_meta(boxes: list[Box]) -> Box:
    metas = [b for b in boxes if b.type == b"meta"]
    if not metas:
        raise CorruptMediaError("no top-level meta box: not a HEIF image")
    if len(metas) > 1:
        raise CorruptMediaError("more than one top-level meta box", offset=metas[1].offset)
    return metas[0]


# -- writing -------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Plan:
    """A label write: ``meta`` replaced, same-length ``patches`` (old-file offset, bytes; sorted,
    disjoint, outside ``meta``) applied, the file cut at ``tail_end`` and ``appended`` written after."""

    meta: Box
    new_meta: bytes
    patches: list[tuple[int, bytes]]
    tail_end: int
    appended: bytes


def _overlaps(iloc: Iloc, item_id: int, start: int, end: int) -> bool:
    for other in iloc.items:
        if other.item_id == item_id or other.construction_method or other.data_reference_index:
            continue
        for extent in other.extents:
            s = other.base_offset + extent.offset
            if s < end and start < s + (extent.length or end):
                return True
    return False


def _new_item_id(meta: _Meta) -> int:
    ids = [i.item_id for i in meta.infos] + [i.item_id for i in meta.iloc.items]
    return max([*ids, meta.primary or 0]) + 1


def _add_xmp_item(meta: _Meta, item_id: int) -> None:
    tree = meta.tree
    assert tree.children is not None
    version = 2 if item_id <= _U16 else 3
    id_bytes = item_id.to_bytes(2 if version == 2 else 4, "big")
    infe = bytes([version, 0, 0, 0]) + id_bytes + b"\x00\x00mimeXMP\x00" + XMP_CONTENT_TYPE + b"\x00"
    boxes = [*meta.infe_boxes, box_bytes(b"infe", infe)]
    iinf = tree.kid(b"iinf")
    if iinf is None:
        iinf = Node(b"iinf", body=b"\x00" * 6)
        tree.children.append(iinf)
    iinf_version = 1 if iinf.body[0] or len(boxes) > _U16 else 0
    count = struct.pack(">H" if iinf_version == 0 else ">I", len(boxes))
    iinf.body = bytes([iinf_version]) + iinf.body[1:4] + count + b"".join(boxes)
    meta.iloc.items.append(IlocItem(item_id, 0, 0, 0, [IlocExtent(0, 0, 0)]))
    if meta.primary is not None:
        _add_reference(tree, b"cdsc", item_id, meta.primary)


def _add_reference(tree: Node, kind: bytes, from_id: int, to_id: int) -> None:
    assert tree.children is not None
    iref = tree.kid(b"iref")
    if iref is None:
        iref = Node(b"iref", body=b"\x00" * 4)
        tree.children.append(iref)
    body = iref.body
    if len(body) < 4:
        raise CorruptMediaError("iref box is too short")
    version = body[0]
    refs = [body[b.offset : b.end] for b in iter_boxes(io.BytesIO(body), 4, len(body), where="box 'iref'")]
    if version == 0 and max(from_id, to_id) > _U16:
        refs = [_widen_reference(r) for r in refs]
        version = 1
    fmt = ">H" if version == 0 else ">I"
    refs.append(box_bytes(kind, struct.pack(fmt, from_id) + struct.pack(">H", 1) + struct.pack(fmt, to_id)))
    iref.body = bytes([version]) + body[1:4] + b"".join(refs)


def _widen_reference(ref: bytes) -> bytes:
    """A version-0 (16-bit IDs) reference box re-encoded with 32-bit IDs."""
    header = 16 if ref[:4] == b"\x00\x00\x00\x01" else 8
    body = ref[header:]
    if len(body) < 4:
        raise CorruptMediaError("iref entry is too short")
    from_id, count = struct.unpack(">HH", body[:4])
    if len(body) < 4 + 2 * count:
        raise CorruptMediaError("iref entry declares more references than it holds")
    ids = struct.unpack(f">{count}H", body[4 : 4 + 2 * count])
    return box_bytes(ref[header - 4 : header], struct.pack(f">IH{count}I", from_id, count, *ids))


def _plan(src: BinaryIO, label_json: str) -> _Plan:
    size = stream_size(src)
    boxes = list(iter_boxes(src, 0, size))
    box = _top_meta(boxes)
    meta = _Meta.parse(src, box)
    iloc = meta.iloc
    patches: list[tuple[int, bytes]] = []
    placed: list[tuple[int, bytes]] = []  # (item ID, packet) for the appended mdat
    last = boxes[-1]
    tail_end = size
    xmp_items = [(info, _item_bytes(src, meta, info.item_id, xmp.MAX_PACKET)) for info in meta.xmp_infos()]
    labeled = [(info, data) for info, data in xmp_items if xmp.read_aigc(data) is not None]
    targets = labeled or xmp_items[:1]
    for info, old in targets:
        if info.protected or info.content_encoding:
            raise UnsupportedFormatError("protected or content-encoded XMP item in HEIF")
        packet = xmp.set_aigc(old or None, label_json)
        item = iloc.item(info.item_id)
        if item is None:
            item = IlocItem(info.item_id, 0, 0, 0, [])
            iloc.items.append(item)
        elif item.construction_method == 0 and item.extents:
            ranges = _extent_ranges(item, size)
            for start, length in ranges:
                if start < box.end and box.offset < start + length:
                    raise UnsupportedFormatError("HEIF XMP item stored inside the meta box")
                if _overlaps(iloc, item.item_id, start, start + length):
                    raise CorruptMediaError(f"XMP item {item.item_id} shares bytes with another item")
            if (
                len(ranges) == 1
                and last.type == b"mdat"
                and ranges[0] == (last.body_offset, last.body_size)
                and last is not box
            ):
                tail_end = last.offset  # our own trailing mdat from an earlier label: replace it
            elif len(ranges) == 1 and len(packet) <= ranges[0][1]:
                start, length = ranges[0]
                patches.append((start, packet + bytes(length - len(packet))))
                item.extents[0].length = len(packet)
                continue
            else:
                patches.extend((start, bytes(length)) for start, length in ranges)
        elif item.construction_method == 1:
            idat = meta.tree.kid(b"idat")
            if idat is not None:
                blank = bytearray(idat.body)
                for start, length in _extent_ranges(item, len(blank)):
                    blank[start : start + length] = bytes(length)
                idat.body = bytes(blank)
        item.construction_method = item.data_reference_index = item.base_offset = 0
        item.extents = [IlocExtent(0, 0, len(packet))]
        placed.append((item.item_id, packet))
    if not targets:
        item_id = _new_item_id(meta)
        _add_xmp_item(meta, item_id)
        packet = xmp.set_aigc(None, label_json)
        meta.iloc.items[-1].extents[0].length = len(packet)
        placed.append((item_id, packet))
    appended = box_bytes(b"mdat", b"".join(p for _, p in placed)) if placed else b""
    if appended and tail_end == size:
        tail_end = last.end  # stray zero padding after the last box would end up before the new mdat
        if last is not box and last.size > 0:
            src.seek(last.offset)
            if src.read(4) == b"\x00\x00\x00\x00":  # "to the end of the file": no longer true
                if last.size > _U32:
                    raise MediaLimitError("the last box runs to the end of the file and is over 4 GB")
                patches.append((last.offset, struct.pack(">I", last.size)))
    new_meta, delta = _fit_meta(meta, placed, tail_end, len(appended) - sum(len(p) for _, p in placed))
    patches.extend(_moov_patches(src, boxes, Shift(box.end, delta)))
    patches.sort()
    edge = 0
    for at, data in patches:
        end = at + len(data)
        if at < edge or (at < box.end and box.offset < end) or end > tail_end:
            raise CorruptMediaError("HEIF items overlap each other or the meta box", offset=at)
        edge = end
    return _Plan(box, new_meta, patches, tail_end, appended)


def _fit_meta(meta: _Meta, placed: list[tuple[int, bytes]], tail_end: int, header: int) -> tuple[bytes, int]:
    """Serialise ``meta`` with every offset after it shifted by its own growth (which depends on
    the iloc field sizes, which depend on the offsets: iterate until it settles)."""
    iloc_node = meta.tree.kid(b"iloc")
    if iloc_node is None:
        assert meta.tree.children is not None
        iloc_node = Node(b"iloc")
        meta.tree.children.append(iloc_node)
    moved = frozenset(item_id for item_id, _ in placed)
    delta, sizes = 0, (0, 0, 0, 0)
    for _ in range(8):
        iloc = copy.deepcopy(meta.iloc)
        iloc.shift(Shift(meta.box.end, delta), skip=moved)
        position = tail_end + delta + header
        for item_id, packet in placed:
            item = iloc.item(item_id)
            assert item is not None
            item.extents[0].offset = position
            position += len(packet)
        sizes = iloc.sizes(sizes)
        iloc_node.body = iloc.to_bytes(sizes)
        new_meta = meta.tree.to_bytes()
        if len(new_meta) - meta.box.size == delta:
            return new_meta, delta
        delta = len(new_meta) - meta.box.size
    raise CorruptMediaError("the meta box's size did not settle", offset=meta.box.offset)


def _moov_tree(src: BinaryIO, moov: Box) -> Node:
    """An image sequence's ``moov``, descended to the sample tables."""
    require_size(moov.body_size, MAX_MOOV, "moov box")
    src.seek(moov.body_offset)
    body = read_exact(src, moov.body_size, "moov box")
    return parse_tree(
        body,
        b"moov",
        lambda p: p == _STBL_PATH[: len(p)],
        large=moov.header_size == 16,
        origin=moov.body_offset,
    )


def _moov_patches(src: BinaryIO, boxes: list[Box], shift: Shift) -> list[tuple[int, bytes]]:
    """An image sequence's ``moov`` with its chunk offsets shifted (same size, or refused)."""
    if not shift.delta:
        return []
    patches = []
    for moov in (b for b in boxes if b.type == b"moov"):
        tree = _moov_tree(src, moov)
        shift_chunk_offsets(tree, shift)
        new = tree.to_bytes()
        if len(new) != moov.size:
            raise MediaLimitError("the image sequence's moov would change size")
        patches.append((moov.offset, new))
    return patches


def _copy_patched(
    src: BinaryIO, dst: BinaryIO, start: int, end: int, patches: list[tuple[int, bytes]]
) -> None:
    pos = start
    for at, data in patches:
        if at < start or at >= end:
            continue
        if at < pos or at + len(data) > end:
            raise CorruptMediaError("overlapping HEIF edits", offset=at)
        copy_range(src, dst, pos, at - pos)
        dst.write(data)
        pos = at + len(data)
    copy_range(src, dst, pos, end - pos)


class HeifLabeler(MetadataLabeler, InPlaceWriter):
    name = "heif-xmp"
    containers = frozenset({Container.HEIF, Container.AVIF})
    carrier = "XMP item (mime application/rdf+xml) in the HEIF meta box"

    def read(self, src: BinaryIO) -> str | None:
        box = next((b for b in iter_boxes(src, 0, stream_size(src)) if b.type == b"meta"), None)
        if box is None:
            raise CorruptMediaError("no top-level meta box: not a HEIF image")
        meta = _Meta.parse(src, box)
        for info in meta.xmp_infos():
            if info.protected or info.content_encoding:
                continue
            found = xmp.read_aigc(_item_bytes(src, meta, info.item_id, xmp.MAX_PACKET))
            if found is not None:
                return found
        for info in meta.infos:
            if info.item_type == b"Exif" and not info.protected:
                found = _exif_label(_item_bytes(src, meta, info.item_id, xmp.MAX_PACKET))
                if found is not None:
                    return found
        return None

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        plan = _plan(src, label_json)
        _copy_patched(src, dst, 0, plan.meta.offset, plan.patches)
        dst.write(plan.new_meta)
        _copy_patched(src, dst, plan.meta.end, plan.tail_end, plan.patches)
        dst.write(plan.appended)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        plan = _plan(f, label_json)
        if len(plan.new_meta) != plan.meta.size:
            return False
        f.seek(plan.meta.offset)
        f.write(plan.new_meta)
        for at, data in plan.patches:
            f.seek(at)
            f.write(data)
        if plan.appended:
            f.truncate(plan.tail_end)
            f.seek(plan.tail_end)
            f.write(plan.appended)
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        size = stream_size(src)
        boxes = list(iter_boxes(src, 0, size))
        meta = _Meta.parse(src, _top_meta(boxes))
        for info in sorted((i for i in meta.infos if i.is_image()), key=lambda i: i.item_id):
            item = meta.iloc.item(info.item_id)
            if item is None:
                continue
            _check_local(item)
            if item.construction_method == 1:
                idat = meta.idat()
                for start, length in _extent_ranges(item, len(idat)):
                    yield idat[start : start + length]
                continue
            for start, length in _extent_ranges(item, size):
                yield from iter_range(src, start, length)
        for moov in (b for b in boxes if b.type == b"moov"):
            for start, length in chunk_ranges(_moov_tree(src, moov)):
                yield from iter_range(src, start, length)
