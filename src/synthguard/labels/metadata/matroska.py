"""Matroska and WebM: a ``SimpleTag`` with ``TagName`` ``AIGC`` and the JSON as ``TagString``, in a
``Tag`` whose ``Targets`` is empty (the whole segment), in ``Segment/Tags``.

Other ``Tag`` and ``SimpleTag`` elements are kept; the label joins an existing segment-wide ``Tag``
(ffmpeg's, with ``ENCODER``) or comes in a new one. ``CRC-32`` elements of rebuilt masters (ffmpeg
writes one in every level-1 element) are recomputed. libavformat shows the tag as format tag
``AIGC``.

Layout: readers find ``Tags`` before the first ``Cluster`` or through the ``SeekHead`` (libavformat
reads the header elements up to the first cluster, then follows the ``SeekHead``), so the new
``Tags`` goes, in this order of preference:

1. where the old one was, when it fits there with the ``Void`` elements after it;
2. else into a ``Void`` before the first cluster (ffmpeg and mkvmerge reserve ``Void`` space after
   the ``SeekHead``), the old one becoming a ``Void``;
3. else at the end of the segment (known size only), the old one becoming a ``Void``;

with the ``SeekHead`` entries for ``Tags`` pointed at the new place (or one added), rewritten inside
the ``SeekHead`` and the ``Void`` after it. Those three never move a cluster and can be done in
place (``write_in_place``). When none fits:

4. the ``Tags`` (with a 512-byte ``Void`` reserve for relabeling) replaces the old one, or goes
   before the first cluster, and everything after it moves: every ``SeekPosition`` and every
   ``CueClusterPosition`` (and ``CueCodecState``) past the insertion point grows by the size
   inserted, their elements re-encoded (to a fixed point, as wider numbers may grow them).

Clusters are never rewritten (``copy_range``); a ``Position`` element inside a moved cluster keeps
its old value (libavformat ignores it). The Segment's size field keeps its width where the new size
fits (else it is widened, which moves no segment-relative position); an unknown size stays
unknown, and such a segment (a live recording) never gets ``Tags`` appended after its end. Level-1
elements of unknown size other than clusters are refused; an unknown-size cluster ends where an
element that cannot be its child begins.

Reading walks the level-1 element headers up to the first cluster and follows the SeekHead: a few
small reads whatever the file's length; the clusters are walked only to move them (plan 4) and for
``payload``.

Why hand-written: no maintained Python library edits Matroska tags without remuxing. ffmpeg/PyAV
rewrite every cluster; mkvpropedit (MKVToolNix) is a separate C++ program, not installed
everywhere; enzyme and pymkv only read or drive mkvmerge; mutagen has no Matroska support.

Payload: the ``Cluster`` elements' bytes, in file order.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final

from synthguard._io import copy_range, iter_range, read_exact, require_size, stream_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.media import Container

__all__ = ["MatroskaLabeler"]

_EBML: Final = 0x1A45DFA3
_DOCTYPE: Final = 0x4282
_SEGMENT: Final = 0x18538067
_SEEKHEAD: Final = 0x114D9B74
_SEEK: Final = 0x4DBB
_SEEK_ID: Final = 0x53AB
_SEEK_POSITION: Final = 0x53AC
_CUES: Final = 0x1C53BB6B
_TAGS: Final = 0x1254C367
_CLUSTER: Final = 0x1F43B675
_VOID: Final = 0xEC
_CRC32: Final = 0xBF
_TAG: Final = 0x7373
_TARGETS: Final = 0x63C0
_TARGET_TYPE_VALUE: Final = 0x68CA
_TARGET_UIDS: Final = frozenset({0x63C5, 0x63C9, 0x63C4, 0x63C6})
_SIMPLE_TAG: Final = 0x67C8
_TAG_NAME: Final = 0x45A3
_TAG_STRING: Final = 0x4487
_CUE_POINT: Final = 0xBB
_CUE_TRACK_POSITIONS: Final = 0xB7
_CUE_REFERENCE: Final = 0xDB
#: CueClusterPosition, CueCodecState, CueRefCluster, CueRefCodecState: segment positions.
_CUE_POSITIONS: Final = frozenset({0xF1, 0xEA, 0x97, 0xEB})
#: Timestamp, SilentTracks, Position, PrevSize, SimpleBlock, BlockGroup, EncryptedBlock, Void, CRC.
_CLUSTER_CHILDREN: Final = frozenset({0xE7, 0x5854, 0xA7, 0xAB, 0xA3, 0xA0, 0xAF, _VOID, _CRC32})

_LABEL_NAME: Final = b"AIGC"
_MAX_EBML_HEADER: Final = 4096
_MAX_TAGS: Final = 16 << 20
_MAX_SEEKHEAD: Final = 1 << 20
_MAX_CUES: Final = 256 << 20
_MAX_LABEL: Final = 1 << 20
_MAX_HEADER_ELEMENTS: Final = 100_000
_MAX_ELEMENTS: Final = 50_000_000
_MAX_SEEKHEADS: Final = 8
_MAX_VOID_RUN: Final = 1000
#: Void bytes left after Tags that had to move clusters, so that relabeling fits in place.
_RESERVE: Final = 512

Edit = tuple[int, int, bytes]  # replace [start, end) of the source with the bytes


# -- EBML primitives -------------------------------------------------------------------------


def _vint(buf: bytes, pos: int, end: int, base: int) -> tuple[int, int, bool]:
    """An EBML variable-size integer at ``pos``: (value, length, all ones = unknown)."""
    if pos >= end:
        raise CorruptMediaError("EBML element truncated", offset=base + pos)
    first = buf[pos]
    if first == 0:
        raise CorruptMediaError("malformed EBML size (more than 8 bytes)", offset=base + pos)
    length = 9 - first.bit_length()
    if pos + length > end:
        raise CorruptMediaError("EBML element truncated", offset=base + pos)
    mask = (1 << (7 * length)) - 1
    value = int.from_bytes(buf[pos : pos + length], "big") & mask
    return value, length, value == mask


@dataclasses.dataclass(frozen=True, slots=True)
class _Element:
    id: int
    offset: int  # of the ID
    header: int  # ID and size field
    size: int | None  # None: unknown size
    size_width: int

    @property
    def data_offset(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        if self.size is None:
            raise CorruptMediaError(f"element {self.id:#x} has an unknown size", offset=self.offset)
        return self.data_offset + self.size

    @property
    def total(self) -> int:
        return self.end - self.offset


def _header(buf: bytes, pos: int, end: int, base: int = 0) -> _Element:
    if pos >= end:
        raise CorruptMediaError("EBML element truncated", offset=base + pos)
    first = buf[pos]
    id_len = 9 - first.bit_length() if first else 9
    if id_len > 4:
        raise CorruptMediaError(f"malformed EBML element ID {first:#04x}", offset=base + pos)
    if pos + id_len > end:
        raise CorruptMediaError("EBML element ID truncated", offset=base + pos)
    element_id = int.from_bytes(buf[pos : pos + id_len], "big")
    size, size_len, unknown = _vint(buf, pos + id_len, end, base)
    return _Element(element_id, base + pos, id_len + size_len, None if unknown else size, size_len)


def _read_element(src: BinaryIO, pos: int, limit: int) -> _Element:
    """The element header at ``pos``; a known size must end by ``limit``."""
    src.seek(pos)
    buf = src.read(max(0, min(12, limit - pos)))
    element = _header(buf, 0, len(buf), pos)
    if element.size is not None and element.end > limit:
        raise CorruptMediaError(
            f"element {element.id:#x} of {element.size} bytes runs past its parent's end at {limit}",
            offset=pos,
        )
    return element


def _children(buf: bytes, start: int, end: int) -> list[_Element]:
    """The children laid in ``buf[start:end]`` (offsets are indexes into ``buf``)."""
    found: list[_Element] = []
    pos = start
    while pos < end:
        child = _header(buf, pos, end)
        if child.size is None or child.end > end:
            raise CorruptMediaError(
                f"element {child.id:#x} has an unknown size or runs past its parent", offset=pos
            )
        found.append(child)
        pos = child.end
    return found


def _split_crc(buf: bytes, element: _Element) -> tuple[bool, list[_Element]]:
    """A master's children, without a leading CRC-32 (and whether there was one)."""
    children = _children(buf, element.data_offset, element.end)
    if children and children[0].id == _CRC32 and children[0].size == 4:
        return True, children[1:]
    return False, children


def _size_width(value: int) -> int:
    width = 1
    while value > (1 << (7 * width)) - 2:
        width += 1
    if width > 8:
        raise MediaLimitError(f"an EBML size of {value} does not fit in 8 bytes")
    return width


def _size_field(value: int, width: int = 0) -> bytes:
    width = max(width, _size_width(value))
    if width > 8:
        raise MediaLimitError("an EBML size field holds at most 8 bytes")
    return (value | (1 << (7 * width))).to_bytes(width, "big")


def _id_bytes(element_id: int) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def _element(element_id: int, data: bytes, width: int = 0) -> bytes:
    return _id_bytes(element_id) + _size_field(len(data), width) + data


def _uint(value: int, width: int = 0) -> bytes:
    return value.to_bytes(max(width, (value.bit_length() + 7) // 8, 1), "big")


def _with_crc(has_crc: bool, data: bytes) -> bytes:
    if not has_crc:
        return data
    return b"\xbf\x84" + struct.pack("<I", zlib.crc32(data)) + data


def _void(total: int) -> bytes:
    """A Void element exactly ``total`` (>= 2) bytes long."""
    for width in range(1, 9):
        size = total - 1 - width
        if 0 <= size <= (1 << (7 * width)) - 2:
            return b"\xec" + _size_field(size, width) + bytes(size)
    raise ValueError(f"no Void element is {total} bytes long")


def _fit(element_id: int, data: bytes, room: int, width: int = 0) -> bytes | None:
    """The element followed by a Void filler, exactly ``room`` bytes; ``None`` if it cannot be."""
    first = max(width, _size_width(len(data)))
    for w in range(first, 9):
        element = _element(element_id, data, w)
        rest = room - len(element)
        if rest == 0:
            return element
        if rest >= 2:
            return element + _void(rest)
        if rest < 0:
            return None
        # one byte left over: a wider size field takes it
    return None


# -- the segment's layout --------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Scan:
    file_size: int
    segment: _Element
    end: int  # of the segment's data (the file's end for an unknown size)
    level1: list[_Element]  # in file order; up to the first cluster unless ``full``
    first_cluster: _Element | None
    extra: list[_Element]  # Tags and SeekHeads reached only through a SeekHead
    full: bool

    def rel(self, pos: int) -> int:
        return pos - self.segment.data_offset

    def known(self) -> list[_Element]:
        return self.level1 + self.extra

    def seekheads(self) -> list[_Element]:
        return [e for e in self.known() if e.id == _SEEKHEAD]

    def primary_seekhead(self) -> _Element | None:
        return next((e for e in self.level1 if e.id == _SEEKHEAD), None)

    def before_clusters(self, element: _Element) -> bool:
        return self.first_cluster is None or element.offset < self.first_cluster.offset


def _check_doctype(src: BinaryIO, file_size: int) -> _Element:
    ebml = _read_element(src, 0, file_size)
    if ebml.id != _EBML:
        raise UnsupportedFormatError("not an EBML file")
    if ebml.size is None:
        raise CorruptMediaError("EBML header of unknown size", offset=0)
    require_size(ebml.size, _MAX_EBML_HEADER, "EBML header")
    src.seek(0)
    buf = read_exact(src, ebml.end, "EBML header")
    for child in _children(buf, ebml.data_offset, ebml.end):
        if child.id == _DOCTYPE:
            doctype = buf[child.data_offset : child.end].rstrip(b"\x00")
            if doctype not in (b"matroska", b"webm"):
                raise UnsupportedFormatError(f"EBML document type {doctype.decode('latin-1')!r}")
    return ebml


def _cluster_end(src: BinaryIO, cluster: _Element, limit: int) -> int:
    """Where an unknown-size cluster ends: at the first element that cannot be its child."""
    pos = cluster.data_offset
    while pos < limit:
        child = _read_element(src, pos, limit)
        if child.id not in _CLUSTER_CHILDREN:
            break
        pos = child.end
    return pos


def _scan(src: BinaryIO, full: bool) -> _Scan:
    """The Segment's level-1 elements: up to the first cluster (and what the SeekHeads point to),
    or all of them when ``full``."""
    file_size = stream_size(src)
    ebml = _check_doctype(src, file_size)
    segment = _read_element(src, ebml.end, file_size)
    if segment.id != _SEGMENT:
        raise CorruptMediaError("no Segment after the EBML header", offset=ebml.end)
    end = file_size if segment.size is None else segment.end
    level1: list[_Element] = []
    first_cluster = None
    limit = _MAX_ELEMENTS if full else _MAX_HEADER_ELEMENTS
    pos = segment.data_offset
    while pos < end:
        element = _read_element(src, pos, end)
        if element.id == _EBML and segment.size is None:
            end = pos  # a chained segment follows: it is not ours
            break
        if element.id == _CLUSTER:
            if first_cluster is None:
                first_cluster = element
            if not full:
                break
            if element.size is None:
                size = _cluster_end(src, element, end) - element.data_offset
                element = dataclasses.replace(element, size=size)
        elif element.size is None:
            raise CorruptMediaError(
                f"level-1 element {element.id:#x} of unknown size is not supported", offset=pos
            )
        elif element.id == _CRC32 and not level1:
            raise UnsupportedFormatError(
                "Matroska Segment with a CRC-32 over all of its data",
                hint="any edit would invalidate it",
            )
        level1.append(element)
        if len(level1) > limit:
            raise MediaLimitError(f"more than {limit} level-1 elements")
        pos = element.end
    scan = _Scan(file_size, segment, end, level1, first_cluster, [], full)
    if not full:
        scan.extra = _follow_seekheads(src, scan)
    return scan


def _read_whole(src: BinaryIO, element: _Element, limit: int, what: str) -> bytes:
    """The element's bytes (header included); offsets inside are relative to its start."""
    require_size(element.total, limit, what)
    src.seek(element.offset)
    return read_exact(src, element.total, what)


def _local(element: _Element) -> _Element:
    """The element re-based to offset 0, to walk the bytes ``_read_whole`` returned."""
    return dataclasses.replace(element, offset=0)


@dataclasses.dataclass(frozen=True, slots=True)
class _Seek:
    target: int  # the SeekID as an element ID
    position: int  # segment-relative


def _seek_of(buf: bytes, seek: _Element) -> _Seek | None:
    """A Seek element's entry; ``None`` when it lacks its ID or position."""
    target = position = None
    for child in _children(buf, seek.data_offset, seek.end):
        value = buf[child.data_offset : child.end]
        if child.id == _SEEK_ID and target is None:
            target = int.from_bytes(value, "big")
        elif child.id == _SEEK_POSITION and position is None and len(value) <= 8:
            position = int.from_bytes(value, "big")
    return None if target is None or position is None else _Seek(target, position)


def _seek_entries(buf: bytes, element: _Element) -> list[_Seek]:
    entries = (_seek_of(buf, s) for s in _split_crc(buf, element)[1] if s.id == _SEEK)
    return [e for e in entries if e is not None]


def _follow_seekheads(src: BinaryIO, scan: _Scan) -> list[_Element]:
    """Tags and SeekHeads that only a SeekHead points to (after the clusters, usually)."""
    seen = {e.offset for e in scan.level1}
    queue = [e for e in scan.level1 if e.id == _SEEKHEAD]
    extra: list[_Element] = []
    for seekhead in queue:
        if len(queue) > _MAX_SEEKHEADS:
            raise MediaLimitError(f"more than {_MAX_SEEKHEADS} SeekHeads")
        buf = _read_whole(src, seekhead, _MAX_SEEKHEAD, "SeekHead")
        for entry in _seek_entries(buf, _local(seekhead)):
            if entry.target not in (_TAGS, _SEEKHEAD):
                continue
            pos = scan.segment.data_offset + entry.position
            if pos in seen or not scan.segment.data_offset <= pos < scan.end:
                continue
            seen.add(pos)
            try:
                element = _read_element(src, pos, scan.end)
            except CorruptMediaError:
                continue  # a stale entry: readers ignore it too
            if element.id != entry.target or element.size is None:
                continue
            extra.append(element)
            if element.id == _SEEKHEAD:
                queue.append(element)
    return extra


# -- tags ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Found:
    """An ``AIGC`` SimpleTag inside a Tags element's bytes."""

    tag: _Element
    simple: _Element
    value: bytes | None
    string_at: int  # offset of the TagString element (-1: none)
    is_global: bool


def _is_global(buf: bytes, tag: _Element) -> bool:
    """A Tag for the whole segment: no UID in its Targets, TargetTypeValue absent or 50."""
    for child in _children(buf, tag.data_offset, tag.end):
        if child.id != _TARGETS:
            continue
        for target in _children(buf, child.data_offset, child.end):
            value = int.from_bytes(buf[target.data_offset : target.end], "big")
            if target.id in _TARGET_UIDS and value != 0:
                return False
            if target.id == _TARGET_TYPE_VALUE and value != 50:
                return False
    return True


def _tags_in(buf: bytes) -> list[_Element]:
    return [t for t in _split_crc(buf, _header(buf, 0, len(buf)))[1] if t.id == _TAG]


def _find_labels(buf: bytes) -> list[_Found]:
    found = []
    for tag in _tags_in(buf):
        is_global = _is_global(buf, tag)
        for simple in _children(buf, tag.data_offset, tag.end):
            if simple.id != _SIMPLE_TAG:
                continue
            name = value = None
            string_at = -1
            for child in _children(buf, simple.data_offset, simple.end):
                if child.id == _TAG_NAME and name is None:
                    name = buf[child.data_offset : child.end].rstrip(b"\x00")
                elif child.id == _TAG_STRING and value is None:
                    value = buf[child.data_offset : child.end]
                    string_at = child.offset
            if name == _LABEL_NAME:
                found.append(_Found(tag, simple, value, string_at, is_global))
    return found


def _raw(buf: bytes, element: _Element) -> bytes:
    return buf[element.offset : element.end]


def _rebuild(
    buf: bytes, element: _Element, replace: Callable[[_Element], bytes | None], add: bytes = b""
) -> bytes:
    """``element`` with each child for which ``replace`` returns bytes replaced, ``add`` appended,
    its CRC-32 recomputed."""
    has_crc, children = _split_crc(buf, element)
    parts = []
    for child in children:
        new = replace(child)
        parts.append(_raw(buf, child) if new is None else new)
    data = _with_crc(has_crc, b"".join(parts) + add)
    return _element(element.id, data, element.size_width)


def _simple_tag(label: bytes) -> bytes:
    return _element(_SIMPLE_TAG, _element(_TAG_NAME, _LABEL_NAME) + _element(_TAG_STRING, label))


def _tags_data(buf: bytes | None, label: bytes) -> bytes:
    """The data of the Tags element with the label (CRC-32 included when it had one)."""
    new_simple = _simple_tag(label)
    new_tag = _element(_TAG, _element(_TARGETS, b"") + new_simple)
    if buf is None:
        return new_tag
    tags = _header(buf, 0, len(buf))
    has_crc, children = _split_crc(buf, tags)
    found = next((f for f in _find_labels(buf) if f.is_global), None)
    holder = found.tag if found else next((t for t in _tags_in(buf) if _is_global(buf, t)), None)

    def new_string(child: _Element) -> bytes | None:
        # only the first TagString: the one the label was read from
        return _element(_TAG_STRING, label) if found and child.offset == found.string_at else None

    def in_tag(child: _Element) -> bytes | None:
        if found is None or child != found.simple:
            return None
        add = b"" if found.value is not None else _element(_TAG_STRING, label)
        return _rebuild(buf, child, new_string, add)

    parts = []
    for child in children:
        if child == holder:
            parts.append(_rebuild(buf, child, in_tag, b"" if found else new_simple))
        else:
            parts.append(_raw(buf, child))
    if holder is None:
        parts.append(new_tag)
    return _with_crc(has_crc, b"".join(parts))


def _visible_tags(src: BinaryIO, scan: _Scan) -> list[tuple[_Element, bytes]]:
    return [(e, _read_whole(src, e, _MAX_TAGS, "Tags")) for e in scan.known() if e.id == _TAGS]


def _target(tags: list[tuple[_Element, bytes]]) -> tuple[_Element, bytes] | None:
    """The Tags element the label goes into: the one holding it, else one with a segment-wide
    Tag, else the first."""
    for element, buf in tags:
        if any(f.is_global for f in _find_labels(buf)):
            return element, buf
    for element, buf in tags:
        if any(_is_global(buf, t) for t in _tags_in(buf)):
            return element, buf
    return tags[0] if tags else None


# -- planning the edits ----------------------------------------------------------------------


def _void_run_end(src: BinaryIO, pos: int, limit: int) -> int:
    """The end of the Void elements starting at ``pos`` (``pos`` itself when there are none)."""
    for _ in range(_MAX_VOID_RUN):
        if pos >= limit:
            return pos
        try:
            element = _read_element(src, pos, limit)
        except CorruptMediaError:
            return pos
        if element.id != _VOID or element.size is None:
            return pos
        pos = element.end
    return pos


def _seekhead_data(
    buf: bytes, element: _Element, position: Callable[[_Seek], int], add: bytes = b""
) -> bytes:
    """A SeekHead's data with each entry's position from ``position``; numbers keep their width
    unless they need more."""

    def seek(child: _Element) -> bytes | None:
        entry = _seek_of(buf, child) if child.id == _SEEK else None
        if entry is None:
            return None
        new = position(entry)

        def value(grand: _Element) -> bytes | None:
            if grand.id != _SEEK_POSITION:
                return None
            return _element(_SEEK_POSITION, _uint(new, grand.size or 0), grand.size_width)

        return _rebuild(buf, child, value)

    whole = _rebuild(buf, element, seek, add)
    return whole[_header(whole, 0, len(whole)).header :]


def _seek_entry(target: int, position: int) -> bytes:
    return _element(_SEEK, _element(_SEEK_ID, _id_bytes(target)) + _element(_SEEK_POSITION, _uint(position)))


@dataclasses.dataclass(slots=True)
class _Context:
    src: BinaryIO
    scan: _Scan
    old: _Element | None  # the Tags element replaced
    data: bytes  # the new Tags element's data


def _point_seekheads(ctx: _Context, new_pos: int, required: bool, barrier: int) -> list[Edit] | None:
    """Edits pointing the SeekHeads at Tags at ``new_pos`` (absolute): entries for the old Tags
    are updated (all of them, or ``None``: a stale entry would send readers to a Void), else one is
    added to the first SeekHead (``None`` if it does not fit and ``required``). Each SeekHead is
    rewritten inside itself and the Voids after it, never past ``barrier``."""
    scan = ctx.scan
    rel = scan.rel(new_pos)
    old_rel = -1 if ctx.old is None else scan.rel(ctx.old.offset)

    def position(entry: _Seek) -> int:
        return rel if entry.target == _TAGS and entry.position == old_rel else entry.position

    edits: list[Edit] = []
    referenced = False
    for seekhead in scan.seekheads():
        buf = _read_whole(ctx.src, seekhead, _MAX_SEEKHEAD, "SeekHead")
        local = _local(seekhead)
        if not any(e.target == _TAGS and e.position == old_rel for e in _seek_entries(buf, local)):
            continue
        referenced = True
        edit = _fitted(ctx.src, scan, seekhead, _seekhead_data(buf, local, position), barrier)
        if edit is None:
            return None
        edits.append(edit)
    if referenced:
        return edits
    primary = scan.primary_seekhead()
    if primary is not None:
        buf = _read_whole(ctx.src, primary, _MAX_SEEKHEAD, "SeekHead")
        data = _seekhead_data(buf, _local(primary), lambda e: e.position, _seek_entry(_TAGS, rel))
        edit = _fitted(ctx.src, scan, primary, data, barrier)
        if edit is not None:
            return [edit]
    return None if required else []


def _fitted(src: BinaryIO, scan: _Scan, seekhead: _Element, data: bytes, barrier: int) -> Edit | None:
    slot_end = _void_run_end(src, seekhead.end, scan.end)
    if seekhead.offset < barrier < slot_end:
        slot_end = barrier
    fitted = _fit(_SEEKHEAD, data, slot_end - seekhead.offset, seekhead.size_width)
    return None if fitted is None else (seekhead.offset, slot_end, fitted)


def _segment_size_edit(scan: _Scan, growth: int, widen: bool) -> list[Edit] | None:
    segment = scan.segment
    if growth == 0 or segment.size is None:
        return []
    new = segment.size + growth
    width = segment.size_width
    if _size_width(new) > width and not widen:
        return None
    start = segment.offset + segment.header - segment.size_width
    return [(start, segment.data_offset, _size_field(new, width))]


def _plan_in_slot(ctx: _Context) -> list[Edit] | None:
    """1. The new Tags where the old one was, with the Voids after it."""
    if ctx.old is None:
        return None
    slot_end = _void_run_end(ctx.src, ctx.old.end, ctx.scan.end)
    fitted = _fit(_TAGS, ctx.data, slot_end - ctx.old.offset, ctx.old.size_width)
    return None if fitted is None else [(ctx.old.offset, slot_end, fitted)]


def _void_runs(ctx: _Context) -> list[tuple[int, int]]:
    """Runs of level-1 Voids before the first cluster, outside the old Tags' slot."""
    runs: list[tuple[int, int]] = []
    slot = (ctx.old.offset, _void_run_end(ctx.src, ctx.old.end, ctx.scan.end)) if ctx.old else (0, 0)
    for element in ctx.scan.level1:
        if element.id != _VOID or not ctx.scan.before_clusters(element):
            continue
        if slot[0] <= element.offset < slot[1]:
            continue
        if runs and runs[-1][1] == element.offset:
            runs[-1] = (runs[-1][0], element.end)
        else:
            runs.append((element.offset, element.end))
    return runs


def _old_to_void(ctx: _Context) -> list[Edit]:
    return [] if ctx.old is None else [(ctx.old.offset, ctx.old.end, _void(ctx.old.total))]


def _plan_void(ctx: _Context) -> list[Edit] | None:
    """2. The new Tags at the end of a Void run before the first cluster."""
    for start, end in _void_runs(ctx):
        room = end - start
        placed = None
        for width in range(_size_width(len(ctx.data)), 9):
            tags = _element(_TAGS, ctx.data, width)
            gap = room - len(tags)
            if gap == 0 or gap >= 2:
                placed = tags
                break
            if gap < 0:
                break
        if placed is None:
            continue
        at = end - len(placed)
        # before the first cluster readers find it by walking: a SeekHead entry is a bonus
        seeks = _point_seekheads(ctx, at, required=False, barrier=at)
        if seeks is None:
            continue
        edits = [*seeks, *_old_to_void(ctx), (at, end, placed)]
        if at > start and not any(s <= start and at <= e for s, e, _ in seeks):
            edits.append((start, at, _void(at - start)))
        return sorted(edits)
    return None


def _plan_end(ctx: _Context, in_place: bool) -> list[Edit] | None:
    """3. The new Tags at the end of a segment of known size."""
    scan = ctx.scan
    if scan.segment.size is None:
        return None
    tags = _element(_TAGS, ctx.data, ctx.old.size_width if ctx.old else 0)
    if ctx.old is not None and ctx.old.end == scan.end:  # already last: it grows where it is
        edits: list[Edit] = [(ctx.old.offset, scan.end, tags)]
        growth = len(tags) - ctx.old.total
    else:
        seeks = _point_seekheads(ctx, scan.end, required=True, barrier=scan.end)
        if seeks is None:
            return None
        edits = [*seeks, *_old_to_void(ctx), (scan.end, scan.end, tags)]
        growth = len(tags)
    size = _segment_size_edit(scan, growth, widen=not in_place)
    if size is None:
        return None
    if in_place and scan.end != scan.file_size:
        return None
    return sorted(size + edits)


def _plan_shift(src: BinaryIO, old_offset: int | None, data: bytes) -> list[Edit]:
    """4. Insert (or grow) the Tags and move what follows, fixing every position."""
    scan = _scan(src, full=True)
    old = next((e for e in scan.level1 if e.offset == old_offset), None)
    block = _element(_TAGS, data, old.size_width if old else 0) + _void(_RESERVE)
    if old is not None:
        at, until = old.offset, _void_run_end(src, old.end, scan.end)
    else:
        at = until = scan.first_cluster.offset if scan.first_cluster else scan.end
    seekheads = [e for e in scan.level1 if e.id == _SEEKHEAD]
    cues = [e for e in scan.level1 if e.id == _CUES]
    originals = {
        e.offset: (e, _read_whole(src, e, _MAX_SEEKHEAD if e.id == _SEEKHEAD else _MAX_CUES, "index"))
        for e in seekheads + cues
    }
    current = {offset: buf for offset, (_, buf) in originals.items()}
    base = scan.segment.data_offset
    referenced = old is not None and any(
        s.target == _TAGS and s.position == scan.rel(old.offset)
        for e, buf in originals.values()
        if e.id == _SEEKHEAD
        for s in _seek_entries(buf, _local(e))
    )
    primary = seekheads[0] if seekheads and scan.before_clusters(seekheads[0]) else None
    for _ in range(16):
        edits = sorted([(at, until, block)] + [(o, originals[o][0].end, b) for o, b in current.items()])

        def moved(pos: int, edits: list[Edit] = edits) -> int:
            return pos + sum(len(d) - (e - s) for s, e, d in edits if pos >= e)

        tags_at = at + sum(len(d) - (e - s) for s, e, d in edits if e <= at and (s, e) != (at, until))
        rebuilt = {}
        for offset, (element, buf) in originals.items():
            local = _local(element)
            if element.id == _SEEKHEAD:
                add = b""
                if element == primary and not referenced:
                    add = _seek_entry(_TAGS, tags_at - base)
                seeks = _seekhead_data(buf, local, lambda s: moved(base + s.position) - base, add)
                rebuilt[offset] = _element(_SEEKHEAD, seeks, element.size_width)
            else:
                rebuilt[offset] = _remap_cues(buf, local, lambda p: moved(base + p) - base)
        if rebuilt == current:
            break
        current = rebuilt
    else:
        raise MediaLimitError("the Matroska indexes did not settle after moving the clusters")
    growth = sum(len(d) - (e - s) for s, e, d in edits)
    size = _segment_size_edit(scan, growth, widen=True) or []
    return sorted(size + edits)


#: Where positions live: Cues > CuePoint > CueTrackPositions > CueReference (only there, so
#: that hostile nesting cannot recurse without bound).
_CUE_NESTING: Final = {
    _CUES: _CUE_POINT,
    _CUE_POINT: _CUE_TRACK_POSITIONS,
    _CUE_TRACK_POSITIONS: _CUE_REFERENCE,
}


def _remap_cues(buf: bytes, element: _Element, moved: Callable[[int], int]) -> bytes:
    """The Cues element with its segment positions moved; other bytes as they were."""

    def under(parent: int) -> Callable[[_Element], bytes | None]:
        def child(sub: _Element) -> bytes | None:
            if sub.id == _CUE_NESTING.get(parent):
                return _rebuild(buf, sub, under(sub.id))
            if parent != _CUES and sub.id in _CUE_POSITIONS and sub.size is not None and sub.size <= 8:
                old = int.from_bytes(buf[sub.data_offset : sub.end], "big")
                new = moved(old)
                if new == old:
                    return None
                return _element(sub.id, _uint(new, sub.size), sub.size_width)
            return None

        return child

    return _rebuild(buf, element, under(_CUES))


def _plan(src: BinaryIO, label_json: str, in_place: bool) -> tuple[list[Edit] | None, _Context]:
    """Edits that move no cluster (plans 1-3), or ``None``; and what plan 4 needs."""
    scan = _scan(src, full=False)
    target = _target(_visible_tags(src, scan))
    old, buf = target if target else (None, None)
    ctx = _Context(src, scan, old, _tags_data(buf, label_json.encode("utf-8")))
    if (edits := _plan_in_slot(ctx)) is not None:
        return edits, ctx
    if (edits := _plan_void(ctx)) is not None:
        return edits, ctx
    return _plan_end(ctx, in_place), ctx


def _apply(src: BinaryIO, dst: BinaryIO, edits: list[Edit]) -> None:
    pos = 0
    for start, end, data in edits:
        copy_range(src, dst, pos, start - pos)
        dst.write(data)
        pos = end
    copy_range(src, dst, pos)


class MatroskaLabeler(MetadataLabeler, InPlaceWriter):
    name = "matroska-tags"
    containers = frozenset({Container.MATROSKA, Container.WEBM})
    carrier = "SimpleTag 'AIGC' in a segment-wide Tag of Segment/Tags"

    def read(self, src: BinaryIO) -> str | None:
        scan = _scan(src, full=False)
        labels = [f for _, buf in _visible_tags(src, scan) for f in _find_labels(buf)]
        # the standard carrier (segment-wide) first, then one under other Targets
        for found in sorted(labels, key=lambda f: not f.is_global):
            if found.value is not None:
                require_size(len(found.value), _MAX_LABEL, "AIGC TagString")
                return found.value.rstrip(b"\x00").decode("utf-8", errors="replace")
        return None

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        edits, ctx = _plan(src, label_json, in_place=False)
        if edits is None:
            edits = _plan_shift(src, ctx.old.offset if ctx.old else None, ctx.data)
        _apply(src, dst, edits)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        edits, _ = _plan(f, label_json, in_place=True)
        if edits is None:
            return False
        size = stream_size(f)
        for start, end, data in sorted(edits, reverse=True):  # the new Tags first, sizes last
            if len(data) != end - start and end != size:
                return False
        for start, end, data in sorted(edits, reverse=True):
            f.seek(start)
            f.write(data)
            if end == size and len(data) != end - start:
                f.truncate()
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        scan = _scan(src, full=True)
        for element in scan.level1:
            if element.id == _CLUSTER:
                yield from iter_range(src, element.offset, element.total)
