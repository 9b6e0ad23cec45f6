"""ISO base media file format boxes (ISO/IEC 14496-12), shared by ``isobmff.py`` and ``heif.py``.

Three pieces, each bounded against hostile input:

- ``iter_boxes``: box headers read from a stream, seeking from one to the next (so a reader never
  touches ``mdat``). Size 1 means a 64-bit largesize follows; size 0 means "to the end of the
  parent" (for a top-level box: to the end of the file, so it can only be the last one). Every size
  is checked against its parent's end; fewer than 8 zero bytes at a parent's end are QuickTime's
  terminator and are allowed.
- ``Node`` and ``parse_tree``: a small editable tree of one box held in memory (``moov``,
  ``meta``). Only the containers a caller asks to descend into get children; every other box is
  kept as its exact bytes, so re-serialising an untouched tree gives back the input (except that a
  size-0 box gets its explicit size).
- ``Iloc`` and the chunk-offset helpers: the absolute file offsets inside ``iloc``, ``stco``,
  ``co64``, ``saio``, ``tfhd`` and ``tfra``, so that a box that grows in front of the media data can
  shift them (``Shift``); ``chunk_ranges`` says where a track's samples lie.
"""

from __future__ import annotations

import array
import dataclasses
import io
import struct
import sys
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final

from synthguard._io import read_exact
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError

__all__ = [
    "FREE_TYPES",
    "MAX_DEPTH",
    "Box",
    "Iloc",
    "IlocExtent",
    "IlocItem",
    "Node",
    "Shift",
    "box_bytes",
    "chunk_offset_tables",
    "chunk_ranges",
    "cstring",
    "handler_type",
    "iter_boxes",
    "meta_prefix_size",
    "parse_tree",
    "shift_chunk_offsets",
    "shift_fragment",
    "stco_entries",
    "stco_overflows",
    "type_name",
]

#: Nesting deeper than this is refused (real files stay under 10 levels).
MAX_DEPTH: Final = 16
#: More boxes than this in one parent is hostile, not media.
MAX_CHILDREN: Final = 4_000_000
FREE_TYPES: Final = frozenset({b"free", b"skip"})
_U32: Final = 0xFFFFFFFF


def type_name(box_type: bytes) -> str:
    """A box type for messages: printable as is, otherwise in hex."""
    text = box_type.decode("latin-1")
    return text if text.isprintable() else box_type.hex()


@dataclasses.dataclass(frozen=True, slots=True)
class Box:
    """One box header: where the box starts, how long its header is, and its total size."""

    type: bytes
    offset: int
    header_size: int
    size: int

    @property
    def body_offset(self) -> int:
        return self.offset + self.header_size

    @property
    def body_size(self) -> int:
        return self.size - self.header_size

    @property
    def end(self) -> int:
        return self.offset + self.size


def iter_boxes(
    src: BinaryIO, start: int, end: int, *, where: str = "the file", origin: int = 0
) -> Iterator[Box]:
    """The boxes between ``start`` and ``end`` of ``src``, read header by header.

    ``end`` must be the parent's end (for the top level: the file size). ``origin`` is added to the
    offsets named in errors when ``src`` holds a box that sits elsewhere in the file.
    """
    pos = start
    count = 0
    while pos < end:
        remaining = end - pos
        src.seek(pos)
        if remaining < 8:
            tail = src.read(remaining)
            if len(tail) == remaining and not tail.strip(b"\x00"):
                return  # QuickTime's 32-bit zero terminator, or zero padding
            raise CorruptMediaError(f"{remaining} stray bytes at the end of {where}", offset=origin + pos)
        head = src.read(8)
        if len(head) != 8:
            raise CorruptMediaError(f"box header in {where} is cut short", offset=origin + pos)
        size, box_type = struct.unpack(">I4s", head)
        header = 8
        if size == 1:
            if remaining < 16:
                raise CorruptMediaError(
                    f"box {type_name(box_type)!r} has no room for its 64-bit size", offset=origin + pos
                )
            (size,) = struct.unpack(">Q", read_exact(src, 8, "box largesize"))
            header = 16
        elif size == 0:
            size = remaining
        if size < header:
            raise CorruptMediaError(
                f"box {type_name(box_type)!r} declares {size} bytes, less than its header",
                offset=origin + pos,
            )
        if size > remaining:
            raise CorruptMediaError(
                f"box {type_name(box_type)!r} of {size} bytes runs past the end of {where} "
                f"({remaining} bytes left)",
                offset=origin + pos,
            )
        count += 1
        if count > MAX_CHILDREN:
            raise MediaLimitError(f"more than {MAX_CHILDREN} boxes in {where}")
        yield Box(box_type, pos, header, size)
        pos += size


def meta_prefix_size(head: bytes) -> int:
    """4 when a ``meta`` box is a full box (ISO: version and flags first), 0 for QuickTime's plain
    form; ``head`` is the first 12 bytes of its body. Told apart by where ``hdlr`` sits."""
    if head[4:8] == b"hdlr":
        return 0
    if head[8:12] == b"hdlr" or head[:4] == b"\x00\x00\x00\x00":
        return 4
    return 0


def handler_type(hdlr_body: bytes) -> bytes:
    """The handler type of an ``hdlr`` box's body (after version/flags and pre_defined)."""
    return hdlr_body[8:12] if len(hdlr_body) >= 12 else b""


def cstring(data: bytes, pos: int) -> tuple[bytes, int]:
    """A NUL-terminated string at ``pos`` (the end of ``data`` also ends it) and the next position."""
    end = data.find(b"\x00", pos)
    if end < 0:
        return data[pos:], len(data)
    return data[pos:end], end + 1


def box_bytes(box_type: bytes, body: bytes, *, large: bool = False) -> bytes:
    """A serialised box; a 64-bit size when asked for or when 32 bits do not hold it."""
    size = len(body) + 8
    if large or size > _U32:
        return struct.pack(">I4sQ", 1, box_type, size + 8) + body
    return struct.pack(">I4s", size, box_type) + body


@dataclasses.dataclass(slots=True, eq=False)
class Node:
    """An editable box. A leaf keeps ``body``; a container has ``prefix`` (e.g. a full box's version
    and flags), ``children`` and ``tail`` (trailing zero padding or a terminator)."""

    type: bytes
    body: bytes = b""
    children: list[Node] | None = None
    prefix: bytes = b""
    tail: bytes = b""
    large: bool = False

    def kids(self, box_type: bytes) -> list[Node]:
        return [c for c in self.children or () if c.type == box_type]

    def kid(self, box_type: bytes) -> Node | None:
        return next((c for c in self.children or () if c.type == box_type), None)

    def content(self) -> bytes:
        if self.children is None:
            return self.body
        return b"".join([self.prefix, *(c.to_bytes() for c in self.children), self.tail])

    def to_bytes(self) -> bytes:
        return box_bytes(self.type, self.content(), large=self.large)


def parse_tree(
    data: bytes,
    box_type: bytes,
    descend: Callable[[tuple[bytes, ...]], bool],
    *,
    large: bool = False,
    origin: int = 0,
) -> Node:
    """The tree of one box whose body is ``data``. ``descend(path)`` (the types from this box down,
    inclusive) says which boxes are containers; ``meta`` containers get their full-box prefix."""
    stream = io.BytesIO(data)

    def build(node_type: bytes, start: int, end: int, path: tuple[bytes, ...], is_large: bool) -> Node:
        if len(path) > MAX_DEPTH:
            raise MediaLimitError(f"boxes nested more than {MAX_DEPTH} deep")
        if not descend(path):
            return Node(node_type, body=data[start:end], large=is_large)
        prefix = 0
        if node_type == b"meta":
            prefix = meta_prefix_size(data[start : start + 12])
        prefix = min(prefix, end - start)
        node = Node(node_type, children=[], prefix=data[start : start + prefix], large=is_large)
        assert node.children is not None
        last = start + prefix
        where = f"box {type_name(node_type)!r}"
        for child in iter_boxes(stream, start + prefix, end, where=where, origin=origin):
            node.children.append(
                build(
                    child.type,
                    child.body_offset,
                    child.end,
                    (*path, child.type),
                    child.header_size == 16,
                )
            )
            last = child.end
        node.tail = data[last:end]
        return node

    return build(box_type, 0, len(data), (box_type,), large)


# -- absolute offsets -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Shift:
    """Offsets at or after ``threshold`` (the old end of the box that changed size) move by
    ``delta``; offsets before it stay."""

    threshold: int
    delta: int

    def __call__(self, offset: int) -> int:
        return offset + self.delta if offset >= self.threshold else offset


def _table(body: bytes, width: int, what: str, origin: int) -> tuple[list[int], int]:
    """A version/flags + count + entries table; returns the entries and the bytes they end at."""
    if len(body) < 8:
        raise CorruptMediaError(f"{what} box is too short", offset=origin)
    (count,) = struct.unpack(">I", body[4:8])
    if count * width > len(body) - 8:
        raise CorruptMediaError(f"{what} declares {count} entries, more than it holds", offset=origin)
    values = array.array("Q" if width == 8 else "I")
    if values.itemsize != width:
        raise MediaLimitError(f"no {width}-byte array type on this platform")
    values.frombytes(body[8 : 8 + count * width])
    if sys.byteorder == "little":
        values.byteswap()
    return values.tolist(), 8 + count * width


def _pack(values: list[int], width: int, what: str) -> bytes:
    if any(v < 0 for v in values) or (width == 4 and any(v > _U32 for v in values)):
        raise MediaLimitError(f"a shifted {what} offset does not fit in {width * 8} bits")
    out = array.array("Q" if width == 8 else "I", values)
    if sys.byteorder == "little":
        out.byteswap()
    return out.tobytes()


def stco_overflows(node: Node, shift: Shift) -> bool:
    """Whether shifting this ``stco`` would push an entry past 32 bits (it must become ``co64``)."""
    values, _ = _table(node.body, 4, "stco", 0)
    return any(shift(v) > _U32 for v in values)


def stco_entries(node: Node) -> int:
    return len(_table(node.body, 4, "stco", 0)[0])


def _sample_tables(moov: Node) -> Iterator[Node]:
    for trak in moov.kids(b"trak"):
        for mdia in trak.kids(b"mdia"):
            for minf in mdia.kids(b"minf"):
                for stbl in minf.kids(b"stbl"):
                    yield from stbl.children or ()


def chunk_offset_tables(moov: Node) -> list[Node]:
    """The ``stco`` and ``co64`` boxes of every track."""
    return [n for n in _sample_tables(moov) if n.type in (b"stco", b"co64")]


def chunk_ranges(moov: Node) -> list[tuple[int, int]]:
    """(file offset, length) of every chunk of every track, from ``stco``/``co64``, ``stsc`` and
    ``stsz`` (what a track's samples occupy in ``mdat``), in track order then chunk order."""
    ranges: list[tuple[int, int]] = []
    for trak in moov.kids(b"trak"):
        stbls = [s for m in trak.kids(b"mdia") for i in m.kids(b"minf") for s in i.kids(b"stbl")]
        for stbl in stbls:
            ranges.extend(_track_chunks(stbl))
    return ranges


def _track_chunks(stbl: Node) -> list[tuple[int, int]]:
    offsets_node = stbl.kid(b"co64") or stbl.kid(b"stco")
    stsc, stsz = stbl.kid(b"stsc"), stbl.kid(b"stsz")
    if offsets_node is None:
        return []
    if stsc is None or stsz is None:
        raise UnsupportedFormatError("track without stsc/stsz sample tables (stz2 or none)")
    width = 8 if offsets_node.type == b"co64" else 4
    offsets, _ = _table(offsets_node.body, width, type_name(offsets_node.type), 0)
    if len(stsc.body) < 8:
        raise CorruptMediaError("stsc box is too short")
    (run_count,) = struct.unpack(">I", stsc.body[4:8])
    if run_count * 12 > len(stsc.body) - 8:
        raise CorruptMediaError(f"stsc declares {run_count} entries, more than it holds")
    fields = struct.unpack(f">{3 * run_count}I", stsc.body[8 : 8 + 12 * run_count])
    if len(stsz.body) < 12:
        raise CorruptMediaError("stsz box is too short")
    fixed, sample_count = struct.unpack(">II", stsz.body[4:12])
    if fixed == 0:
        sizes, _ = _table(stsz.body[4:], 4, "stsz", 0)
        if len(sizes) != sample_count:
            raise CorruptMediaError("stsz declares a different sample count")
    chunks: list[tuple[int, int]] = []
    sample = 0
    for r in range(run_count):
        first, per_chunk = fields[3 * r], fields[3 * r + 1]
        last = fields[3 * (r + 1)] - 1 if r + 1 < run_count else len(offsets)
        if first < 1 or last > len(offsets) or last < first:
            raise CorruptMediaError("stsc runs do not match the chunk offset table")
        for chunk in range(first, last + 1):
            if sample + per_chunk > sample_count:
                raise CorruptMediaError("stsc needs more samples than stsz declares")
            length = fixed * per_chunk if fixed else sum(sizes[sample : sample + per_chunk])
            chunks.append((offsets[chunk - 1], length))
            sample += per_chunk
    return chunks


def shift_chunk_offsets(moov: Node, shift: Shift, promote: frozenset[int] = frozenset()) -> None:
    """Shift every absolute offset in a parsed ``moov`` (descended to ``stbl`` and ``meta``): chunk
    offsets, ``saio`` offsets and a ``moov``-level ``iloc``. ``stco`` boxes whose ``id`` is in
    ``promote`` become ``co64``; any other value that no longer fits raises ``MediaLimitError``
    (so sizes change only through ``promote``)."""
    for node in list(_sample_tables(moov)):
        if node.type in (b"stco", b"co64"):
            width = 8 if node.type == b"co64" else 4
            values, used = _table(node.body, width, type_name(node.type), 0)
            values = [shift(v) for v in values]
            if id(node) in promote:
                node.type, width = b"co64", 8
            node.body = node.body[:8] + _pack(values, width, "chunk") + node.body[used:]
        elif node.type == b"saio":
            node.body = _shift_saio(node.body, shift)
    for meta in moov.kids(b"meta"):
        iloc = meta.kid(b"iloc")
        if iloc is not None:
            parsed = Iloc.parse(iloc.body)
            before = (parsed.offset_size, parsed.length_size, parsed.base_offset_size, parsed.index_size)
            parsed.shift(shift)
            if parsed.sizes() != before:
                raise MediaLimitError("a shifted item location no longer fits its iloc field")
            iloc.body = parsed.to_bytes(before)


def _shift_saio(body: bytes, shift: Shift) -> bytes:
    if len(body) < 8:
        raise CorruptMediaError("saio box is too short")
    version, flags = body[0], int.from_bytes(body[1:4], "big")
    pos = 4 + (8 if flags & 1 else 0)
    width = 8 if version else 4
    if len(body) < pos + 4:
        raise CorruptMediaError("saio box is too short")
    values, used = _table(body[pos - 4 :], width, "saio", 0)
    packed = _pack([shift(v) for v in values], width, "auxiliary information")
    return body[: pos + 4] + packed + body[pos - 4 + used :]


def shift_fragment(box_type: bytes, body: bytes, shift: Shift, origin: int) -> bytes:
    """A ``moof`` (``tfhd`` base_data_offset) or ``mfra`` (``tfra`` moof offsets) body with its
    absolute offsets shifted; other boxes come back unchanged."""
    if box_type == b"moof":
        tree = parse_tree(body, b"moof", lambda p: p in ((b"moof",), (b"moof", b"traf")), origin=origin)
        for traf in tree.kids(b"traf"):
            for tfhd in traf.kids(b"tfhd"):
                b = tfhd.body
                if len(b) < 8:
                    raise CorruptMediaError("tfhd box is too short", offset=origin)
                if int.from_bytes(b[1:4], "big") & 1:
                    if len(b) < 16:
                        raise CorruptMediaError("tfhd box is too short", offset=origin)
                    (base,) = struct.unpack(">Q", b[8:16])
                    tfhd.body = b[:8] + struct.pack(">Q", shift(base)) + b[16:]
        return tree.content()
    if box_type == b"mfra":
        tree = parse_tree(body, b"mfra", lambda p: p == (b"mfra",), origin=origin)
        for tfra in tree.kids(b"tfra"):
            tfra.body = _shift_tfra(tfra.body, shift, origin)
        return tree.content()
    return body


def _shift_tfra(body: bytes, shift: Shift, origin: int) -> bytes:
    if len(body) < 16:
        raise CorruptMediaError("tfra box is too short", offset=origin)
    version = body[0]
    (sizes, count) = struct.unpack(">II", body[8:16])
    per = (16 if version else 8) + ((sizes >> 4) & 3) + ((sizes >> 2) & 3) + (sizes & 3) + 3
    if count * per > len(body) - 16:
        raise CorruptMediaError(f"tfra declares {count} entries, more than it holds", offset=origin)
    out = bytearray(body)
    for i in range(count):
        pos = 16 + i * per + (8 if version else 4)
        if version:
            (value,) = struct.unpack(">Q", out[pos : pos + 8])
            out[pos : pos + 8] = struct.pack(">Q", shift(value))
        else:
            (value,) = struct.unpack(">I", out[pos : pos + 4])
            moved = shift(value)
            if moved > _U32:
                raise MediaLimitError("a tfra moof offset no longer fits in 32 bits")
            out[pos : pos + 4] = struct.pack(">I", moved)
    return bytes(out)


# -- iloc (ISO/IEC 14496-12 8.11.3) -----------------------------------------------------------


@dataclasses.dataclass(slots=True)
class IlocExtent:
    index: int
    offset: int
    length: int


@dataclasses.dataclass(slots=True)
class IlocItem:
    item_id: int
    construction_method: int
    data_reference_index: int
    base_offset: int
    extents: list[IlocExtent]


_SIZES: Final = (0, 4, 8)


def _uint(data: bytes, pos: int, size: int, what: str) -> tuple[int, int]:
    if size == 0:
        return 0, pos
    if pos + size > len(data):
        raise CorruptMediaError(f"iloc box ends inside {what}")
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def _needed(values: list[int], current: int) -> int:
    """The smallest of 0/4/8 bytes, at least ``current``, that holds every value."""
    top = max(values, default=0)
    if top < 0:
        raise CorruptMediaError("an item location became negative")
    need = 0 if top == 0 else 4 if top <= _U32 else 8
    if top > 0xFFFFFFFFFFFFFFFF:
        raise MediaLimitError("an item location does not fit in 64 bits")
    return max(need, current)


@dataclasses.dataclass(slots=True)
class Iloc:
    """The item location box, parsed completely (versions 0, 1 and 2)."""

    version: int
    flags: bytes
    offset_size: int
    length_size: int
    base_offset_size: int
    index_size: int
    items: list[IlocItem]

    @classmethod
    def parse(cls, body: bytes) -> Iloc:
        if len(body) < 8:
            raise CorruptMediaError("iloc box is too short")
        version = body[0]
        if version > 2:
            raise UnsupportedFormatError(f"iloc version {version}")
        offset_size, length_size = body[4] >> 4, body[4] & 15
        base_offset_size, index_size = body[5] >> 4, (body[5] & 15 if version else 0)
        for size in (offset_size, length_size, base_offset_size, index_size):
            if size not in _SIZES:
                raise CorruptMediaError(f"iloc field size {size} is not 0, 4 or 8")
        if version < 2:
            (count,), pos = struct.unpack(">H", body[6:8]), 8
        else:
            if len(body) < 10:
                raise CorruptMediaError("iloc box is too short")
            (count,), pos = struct.unpack(">I", body[6:10]), 10
        id_size = 2 if version < 2 else 4
        minimum = id_size + (2 if version else 0) + 2 + base_offset_size + 2
        if count * minimum > len(body) - pos:
            raise CorruptMediaError(f"iloc declares {count} items, more than it holds")
        items = []
        per_extent = (index_size if version else 0) + offset_size + length_size
        for _ in range(count):
            item_id, pos = _uint(body, pos, id_size, "an item ID")
            method = 0
            if version:
                method, pos = _uint(body, pos, 2, "a construction method")
                method &= 15
            dref, pos = _uint(body, pos, 2, "a data reference index")
            base, pos = _uint(body, pos, base_offset_size, "a base offset")
            extent_count, pos = _uint(body, pos, 2, "an extent count")
            if extent_count * per_extent > len(body) - pos:
                raise CorruptMediaError(f"iloc item {item_id} declares more extents than it holds")
            extents = []
            for _ in range(extent_count):
                index = 0
                if version and index_size:
                    index, pos = _uint(body, pos, index_size, "an extent index")
                offset, pos = _uint(body, pos, offset_size, "an extent offset")
                length, pos = _uint(body, pos, length_size, "an extent length")
                extents.append(IlocExtent(index, offset, length))
            items.append(IlocItem(item_id, method, dref, base, extents))
        return cls(version, body[1:4], offset_size, length_size, base_offset_size, index_size, items)

    def item(self, item_id: int) -> IlocItem | None:
        return next((i for i in self.items if i.item_id == item_id), None)

    def sizes(self, at_least: tuple[int, int, int, int] = (0, 0, 0, 0)) -> tuple[int, int, int, int]:
        """(offset, length, base offset, index) field sizes that hold every value: never smaller
        than the box's own or ``at_least``."""
        extents = [e for i in self.items for e in i.extents]
        return (
            _needed([e.offset for e in extents], max(self.offset_size, at_least[0])),
            _needed([e.length for e in extents], max(self.length_size, at_least[1])),
            _needed([i.base_offset for i in self.items], max(self.base_offset_size, at_least[2])),
            _needed([e.index for e in extents], max(self.index_size, at_least[3])),
        )

    def to_bytes(self, sizes: tuple[int, int, int, int]) -> bytes:
        offset_size, length_size, base_size, index_size = sizes
        version = self.version
        if any(i.construction_method for i in self.items) or index_size:
            version = max(version, 1)
        if len(self.items) > 0xFFFF or any(i.item_id > 0xFFFF for i in self.items):
            version = 2
        out = bytearray([version, *self.flags])
        out.append(offset_size << 4 | length_size)
        out.append(base_size << 4 | (index_size if version else 0))
        out += struct.pack(">H" if version < 2 else ">I", len(self.items))
        for item in self.items:
            out += struct.pack(">H" if version < 2 else ">I", item.item_id)
            if version:
                out += struct.pack(">H", item.construction_method)
            out += struct.pack(">H", item.data_reference_index)
            out += item.base_offset.to_bytes(base_size, "big")
            if len(item.extents) > 0xFFFF:
                raise MediaLimitError(f"iloc item {item.item_id} has more than 65535 extents")
            out += struct.pack(">H", len(item.extents))
            for extent in item.extents:
                if version and index_size:
                    out += extent.index.to_bytes(index_size, "big")
                out += extent.offset.to_bytes(offset_size, "big")
                out += extent.length.to_bytes(length_size, "big")
        return bytes(out)

    def shift(self, shift: Shift, skip: frozenset[int] = frozenset()) -> None:
        """Shift the file offsets (construction method 0, this file) of every item not in ``skip``."""
        for item in self.items:
            if item.item_id in skip or item.construction_method or item.data_reference_index:
                continue
            positions = [item.base_offset + e.offset for e in item.extents]
            if not positions and item.base_offset:
                item.base_offset = shift(item.base_offset)
            elif item.base_offset and all(p >= shift.threshold for p in positions):
                item.base_offset += shift.delta
            else:
                for extent, position in zip(item.extents, positions, strict=True):
                    extent.offset = shift(position) - item.base_offset
            if item.base_offset < 0 or any(e.offset < 0 for e in item.extents):
                raise CorruptMediaError(f"item {item.item_id}'s location cannot be shifted")
