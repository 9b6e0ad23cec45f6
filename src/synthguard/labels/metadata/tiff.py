"""TIFF: the XMP packet as the value of tag 700 (0x02BC, type BYTE or UNDEFINED) in IFD0.

Why hand-written: a TIFF's strips and tiles may lie anywhere and are found only through offsets, so a
writer that re-lays the file out (libtiff through Pillow, exiv2) rewrites every byte, and Pillow
re-encodes. Here nothing that exists moves: the file is copied unchanged (``copy_range``), a new IFD0
(the same 12-byte entries, sorted by tag, with tag 700 added or updated) and the packet are appended,
and the header's first-IFD offset is pointed at it. Every other out-of-line value keeps its offset,
and the next-IFD pointer is kept, so the other pages, the EXIF IFD, the ICC profile and the image data
are untouched. Both byte orders are handled; BigTIFF is refused (``media.py``).

Relabeling does not grow the file each time: when IFD0 and its XMP value are the file's tail (our own
output, or a writer that puts IFD0 last) and nothing else lives there, that tail is rewritten. When
the existing value has room for the new packet (``xmp.set_aigc`` keeps a padded packet's length), the
packet is written over it, in the copy (``write``) or in the file itself (``write_in_place``). When
the packet had to move, the old value, now unreferenced, is zeroed so that no stale label is left in
the file, unless anything else (another IFD, a strip) uses those bytes.

Variant read: the wrapped label in the EXIF UserComment (tag 0x9286 of the EXIF IFD). Reading touches
the header, IFD0, its XMP value and the EXIF IFD only. The payload is the bytes of the strips (or
tiles) of every IFD in the IFD0 chain, in order.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import iter_range, read_exact, require_size, stream_size
from synthguard.errors import CorruptMediaError, MediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata import exif, xmp
from synthguard.labels.metadata._chunks import Edit, splice
from synthguard.media import Container

__all__ = ["TiffLabeler"]

XMP_TAG: Final = 700
_BYTE: Final = 1
_UNDEFINED: Final = 7
_STRIP_TAGS: Final = ((273, 279), (324, 325))  # (Strip|Tile)Offsets, (Strip|Tile)ByteCounts
_MAX_ENTRIES: Final = 4096
_MAX_IFDS: Final = 65_536
#: Strip/tile offset or byte-count arrays larger than this are hostile (16 M strips).
_MAX_ARRAY: Final = 64 * 1024 * 1024
_MAX_OFFSET: Final = 0xFFFFFFFF
#: A label is a few hundred bytes; a UserComment beyond this is not one.
_MAX_USER_COMMENT: Final = 1024 * 1024

Range = tuple[int, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    tag: int
    type: int
    count: int
    raw: bytes  # the 12 bytes of the entry as stored
    entry_offset: int
    order: str

    @property
    def value_size(self) -> int:
        return exif.TYPE_SIZES.get(self.type, 1) * self.count

    @property
    def inline(self) -> bool:
        return self.value_size <= 4

    @property
    def value_offset(self) -> int:
        if self.inline:
            return self.entry_offset + 8
        return int(struct.unpack(self.order + "I", self.raw[8:12])[0])

    @property
    def value_range(self) -> Range:
        return self.value_offset, self.value_offset + self.value_size


@dataclasses.dataclass(frozen=True, slots=True)
class Ifd:
    offset: int
    entries: list[Entry]
    next_offset: int

    @property
    def end(self) -> int:
        return self.offset + 2 + 12 * len(self.entries) + 4

    def find(self, tag: int) -> Entry | None:
        return next((e for e in self.entries if e.tag == tag), None)


@dataclasses.dataclass(frozen=True, slots=True)
class Header:
    order: str  # "<" or ">"
    first_ifd: int
    size: int  # of the file


def read_header(src: BinaryIO) -> Header:
    src.seek(0)
    head = src.read(8)
    if head[:4] == b"II*\x00":
        order = "<"
    elif head[:4] == b"MM\x00*":
        order = ">"
    elif head[:4] in (b"II+\x00", b"MM\x00+"):
        raise UnsupportedFormatError("BigTIFF")
    else:
        raise UnsupportedFormatError("not a TIFF (no II*/MM* header)")
    if len(head) < 8:
        raise CorruptMediaError("TIFF header truncated", offset=0)
    (first,) = struct.unpack(order + "I", head[4:8])
    return Header(order, first, stream_size(src))


def read_ifd(src: BinaryIO, header: Header, offset: int) -> Ifd:
    """The IFD at ``offset``, with its extent checked against the file."""
    if offset < 8 or offset + 2 > header.size:
        raise CorruptMediaError("IFD offset points outside the file", offset=offset)
    src.seek(offset)
    (count,) = struct.unpack(header.order + "H", read_exact(src, 2, "IFD entry count"))
    if count > _MAX_ENTRIES:
        raise MediaLimitError(f"IFD claims {count} entries, more than {_MAX_ENTRIES}")
    body = read_exact(src, 12 * count + 4, "IFD")
    entries = []
    for i in range(count):
        raw = body[12 * i : 12 * i + 12]
        tag, type_, n = struct.unpack(header.order + "HHI", raw[:8])
        entries.append(Entry(tag, type_, n, raw, offset + 2 + 12 * i, header.order))
    (next_offset,) = struct.unpack(header.order + "I", body[-4:])
    return Ifd(offset, entries, next_offset)


def iter_ifds(src: BinaryIO, header: Header) -> Iterator[Ifd]:
    """IFD0 and the IFDs chained after it; a chain that loops is corrupt."""
    if header.first_ifd == 0:
        raise CorruptMediaError("TIFF has no IFD", offset=4)
    seen: set[int] = set()
    offset = header.first_ifd
    while offset:
        if offset in seen:
            raise CorruptMediaError("IFD chain loops back", offset=offset)
        if len(seen) >= _MAX_IFDS:
            raise MediaLimitError(f"TIFF has more than {_MAX_IFDS} IFDs")
        seen.add(offset)
        ifd = read_ifd(src, header, offset)
        yield ifd
        offset = ifd.next_offset


def _value(src: BinaryIO, header: Header, entry: Entry, limit: int) -> bytes:
    start, end = entry.value_range
    if entry.inline:
        return entry.raw[8 : 8 + entry.value_size]
    require_size(entry.value_size, limit, f"value of TIFF tag {entry.tag}")
    if start < 8 or end > header.size:
        raise CorruptMediaError(f"value of tag {entry.tag} lies outside the file", offset=entry.entry_offset)
    src.seek(start)
    return read_exact(src, entry.value_size, f"value of TIFF tag {entry.tag}")


def _array(src: BinaryIO, header: Header, entry: Entry) -> list[int]:
    codes = {3: "H", 4: "I"}
    if entry.type not in codes:
        raise CorruptMediaError(
            f"tag {entry.tag} has type {entry.type}, not SHORT or LONG", offset=entry.entry_offset
        )
    data = _value(src, header, entry, _MAX_ARRAY)
    return list(struct.unpack(f"{header.order}{entry.count}{codes[entry.type]}", data))


def _strips(src: BinaryIO, header: Header, ifd: Ifd) -> list[Range]:
    """The byte ranges of the strips (or tiles) of one IFD, each checked against the file."""
    for offsets_tag, counts_tag in _STRIP_TAGS:
        offsets_entry, counts_entry = ifd.find(offsets_tag), ifd.find(counts_tag)
        if offsets_entry is None or counts_entry is None:
            continue
        offsets = _array(src, header, offsets_entry)
        counts = _array(src, header, counts_entry)
        if len(offsets) != len(counts):
            raise CorruptMediaError(
                f"{len(offsets)} strip offsets but {len(counts)} byte counts", offset=ifd.offset
            )
        ranges = [(o, o + n) for o, n in zip(offsets, counts, strict=True)]
        for start, end in ranges:
            if end > header.size:
                raise CorruptMediaError("a strip or tile runs past the end of the file", offset=start)
        return ranges
    return []


def _overlaps(a: Range, ranges: list[Range]) -> bool:
    return any(a[0] < end and start < a[1] for start, end in ranges if start < end)


def _others(src: BinaryIO, header: Header, ifd0: Ifd, old: Entry) -> list[Range]:
    """Every byte range the file uses besides IFD0 itself and the old XMP value: IFD0's other
    out-of-line values, and the structures, values and strips of every IFD in the chain."""
    used = [e.value_range for e in ifd0.entries if e is not old and not e.inline]
    for index, ifd in enumerate(iter_ifds(src, header)):
        if index:
            used.append((ifd.offset, ifd.end))
            used.extend(e.value_range for e in ifd.entries if not e.inline)
        used.extend(_strips(src, header, ifd))
    return used


def _tail_start(ifd0: Ifd, old: Entry, size: int) -> int | None:
    """Where IFD0 and its XMP value start when they are, together, the end of the file."""
    value_start, value_end = old.value_range
    if ifd0.end <= value_start <= ifd0.end + 1 and size - 1 <= value_end <= size:
        return ifd0.offset
    if value_end <= ifd0.offset <= value_end + 1 and size - 1 <= ifd0.end <= size:
        return value_start
    return None


def _exif_label(src: BinaryIO, header: Header, ifd0: Ifd) -> str | None:
    """The label in the EXIF UserComment, if any. An EXIF IFD that cannot be walked holds no label
    (many TIFFs in the wild carry a broken one, and the image itself is fine), so it is no error."""
    pointer = ifd0.find(exif.EXIF_IFD_POINTER)
    if pointer is None or pointer.count != 1 or pointer.type not in (4, 13):
        return None
    (offset,) = struct.unpack(header.order + "I", pointer.raw[8:12])
    try:
        comment = read_ifd(src, header, offset).find(exif.USER_COMMENT)
        raw = None if comment is None else _value(src, header, comment, _MAX_USER_COMMENT)
    except MediaError:
        return None
    return None if raw is None else exif.user_comment_label(raw, header.order)


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    header: Header
    ifd0: Ifd
    old: Entry | None
    packet: bytes
    #: Byte ranges in use besides IFD0 and the old value (only computed when there is an old value).
    others: list[Range]

    @property
    def new_type(self) -> int:
        return self.old.type if self.old is not None and self.old.type in (_BYTE, _UNDEFINED) else _BYTE

    def old_value_is_own(self) -> bool:
        """The old value is out of line and shares its bytes with nothing else in the file."""
        old = self.old
        if old is None or old.inline or old.value_offset < 8:
            return False
        structures = [(0, 8), (self.ifd0.offset, self.ifd0.end)]
        return not _overlaps(old.value_range, self.others + structures)

    def fits_in_place(self) -> bool:
        """The new packet can overwrite the old value without touching anything else."""
        return self.old is not None and len(self.packet) <= self.old.value_size and self.old_value_is_own()

    def in_place_edits(self) -> list[Edit]:
        assert self.old is not None
        count = struct.pack(self.header.order + "HI", self.new_type, len(self.packet))
        filler = bytes(self.old.value_size - len(self.packet))
        return [
            Edit(self.old.entry_offset + 2, 6, count),
            Edit(self.old.value_offset, self.old.value_size, self.packet + filler),
        ]


def _plan(src: BinaryIO, label_json: str) -> _Plan:
    header = read_header(src)
    ifd0 = read_ifd(src, header, header.first_ifd) if header.first_ifd else None
    if ifd0 is None:
        raise CorruptMediaError("TIFF has no IFD", offset=4)
    xmp_entries = [e for e in ifd0.entries if e.tag == XMP_TAG]
    if len(xmp_entries) > 1:
        raise CorruptMediaError("IFD0 holds more than one XMP tag", offset=ifd0.offset)
    old = xmp_entries[0] if xmp_entries else None
    packet = xmp.set_aigc(None if old is None else _value(src, header, old, xmp.MAX_PACKET), label_json)
    others = [] if old is None else _others(src, header, ifd0, old)
    return _Plan(header, ifd0, old, packet, others)


class TiffLabeler(MetadataLabeler, InPlaceWriter):
    name = "tiff-xmp"
    containers = frozenset({Container.TIFF})
    carrier = "XMP packet in IFD0 tag 700 (0x02BC)"

    def read(self, src: BinaryIO) -> str | None:
        header = read_header(src)
        if header.first_ifd == 0:
            raise CorruptMediaError("TIFF has no IFD", offset=4)
        ifd0 = read_ifd(src, header, header.first_ifd)
        entry = ifd0.find(XMP_TAG)
        if entry is not None:
            found = xmp.read_aigc(_value(src, header, entry, xmp.MAX_PACKET))
            if found is not None:
                return found
        return _exif_label(src, header, ifd0)

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        plan = _plan(src, label_json)
        header, ifd0, old, order = plan.header, plan.ifd0, plan.old, plan.header.order
        if plan.fits_in_place():
            splice(src, dst, plan.in_place_edits())
            return
        tail = None if old is None or old.inline else _tail_start(ifd0, old, header.size)
        if tail is not None and (tail < 8 or _overlaps((tail, header.size), plan.others)):
            tail = None
        base_end = header.size if tail is None else tail
        ifd_at = base_end + (base_end & 1)
        kept = [(e.tag, e.raw) for e in ifd0.entries if e.tag != XMP_TAG]
        count = len(kept) + 1
        if count > _MAX_ENTRIES:
            raise MediaLimitError(f"IFD0 would hold more than {_MAX_ENTRIES} entries")
        packet_at = ifd_at + 2 + 12 * count + 4
        if packet_at + len(plan.packet) > _MAX_OFFSET:
            raise MediaLimitError("the labeled TIFF would exceed 4 GiB (classic TIFF offsets)")
        new_entry = struct.pack(order + "HHII", XMP_TAG, plan.new_type, len(plan.packet), packet_at)
        raws = [raw for _, raw in sorted([*kept, (XMP_TAG, new_entry)], key=lambda item: item[0])]
        new_ifd = (
            struct.pack(order + "H", count) + b"".join(raws) + struct.pack(order + "I", ifd0.next_offset)
        )
        edits = [Edit(4, 4, struct.pack(order + "I", ifd_at))]
        if old is not None and tail is None and plan.old_value_is_own():
            # the packet moved: zero the old one so that no stale label stays in the file
            edits.append(Edit(old.value_offset, old.value_size, bytes(old.value_size)))
        splice(src, dst, edits, end=base_end)
        dst.write(b"\x00" * (ifd_at - base_end) + new_ifd + plan.packet)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        plan = _plan(f, label_json)
        if not plan.fits_in_place():
            return False
        for edit in plan.in_place_edits():
            f.seek(edit.offset)
            f.write(edit.data)
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        header = read_header(src)
        for ifd in iter_ifds(src, header):
            for start, end in _strips(src, header, ifd):
                yield from iter_range(src, start, end - start)
