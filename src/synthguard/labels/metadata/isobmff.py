"""MP4, MOV, M4A: the label as the QuickTime metadata key ``AIGC`` in ``moov/udta/meta``.

The carrier is exactly what ``ffmpeg -metadata AIGC=... -movflags use_metadata_tags`` writes, and what
ffprobe shows as the format tag ``AIGC``: a ``meta`` box (a full box) whose ``hdlr`` has the handler
type ``mdta``, the key ``AIGC`` (namespace ``mdta``) in its ``keys`` box, and in its ``ilst`` the item
named by the key's 1-based index holding one ``data`` atom (type 1, UTF-8; locale 0) with the JSON.

Why hand-written: mutagen writes only iTunes (``mdir``) tags and cannot write ``mdta`` keys, and ffmpeg
re-muxes the whole file (every chunk rewritten, boxes it does not know dropped). Here only ``moov`` is
rewritten and the media data is copied with ``copy_file_range``; reading seeks from box header to box
header inside ``moov`` and never touches ``mdat``, so a 2 GB file reads in a few KB.

Other metadata stays as it was: an existing ``mdta`` meta keeps its other keys (only ``AIGC`` is added
or replaced, and there is exactly one). A file never gets a second ``mdta`` key table: ffmpeg (5.1 and
8) reads only the first and maps later items through it, so when Apple's ``moov/meta`` (handler
``mdta``, e.g. ``com.apple.quicktime.*`` keys) is the only one, the key goes there. iTunes tags in a
``udta/meta`` with handler ``mdir`` stay untouched and the ``mdta`` meta goes after them in the same
``udta`` (mutagen reads the first ``meta``; ffmpeg and exiftool read both, exiftool's ``-validate``
notes the second ``meta``); chapters, QuickTime ``©xxx`` atoms and unknown boxes are kept.

When ``moov`` changes size and media data follows it, the change is absorbed, in this order, by a
``free``/``skip`` box inside ``moov`` (or its ``udta``/``meta``), or by a top-level ``free``/``skip``
right after ``moov``; only otherwise are the absolute offsets after ``moov`` shifted: every ``stco``/
``co64`` (an ``stco`` that would overflow 32 bits becomes ``co64``), ``saio``, a ``moov``-level
``iloc``, and in fragmented files each ``moof``'s ``tfhd`` base_data_offset and the ``mfra`` index.

Variants read (never written, never removed): a ``mdta`` meta directly in ``moov`` (Apple's place), an
``ilst`` item without ``keys`` (a freeform ``----`` item named ``AIGC``, or an item of type ``AIGC``),
an ``AIGC`` atom directly in ``udta``, and ``TC260:AIGC`` in an XMP packet (the spec's fallback for
any format, as exiftool writes it: a top-level XMP ``uuid`` box; or ``udta/XMP_``).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import copy_range, iter_range, read_exact, require_size, stream_size
from synthguard.errors import CorruptMediaError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata import xmp
from synthguard.labels.metadata._bmff import (
    FREE_TYPES,
    Box,
    Node,
    Shift,
    box_bytes,
    chunk_offset_tables,
    handler_type,
    iter_boxes,
    meta_prefix_size,
    parse_tree,
    shift_chunk_offsets,
    shift_fragment,
    stco_entries,
    stco_overflows,
    type_name,
)
from synthguard.media import Container

__all__ = ["IsobmffLabeler"]

KEY: Final = b"AIGC"
#: The ``uuid`` box type that holds an XMP packet in ISOBMFF files (Adobe XMP spec, part 3).
XMP_UUID: Final = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
KEY_NAMESPACE: Final = b"mdta"
#: A ``moov`` larger than this is refused (hours of video stay far below).
MAX_MOOV: Final = 512 * 1024 * 1024
#: ``keys`` boxes and label values larger than this are not metadata.
MAX_VALUE: Final = 1024 * 1024
#: ``moof``/``mfra`` boxes read to shift their offsets.
MAX_FRAGMENT_HEADER: Final = 64 * 1024 * 1024
_UTF8: Final = 1
_UTF16: Final = 2
#: The ``hdlr`` ffmpeg writes for ``-movflags use_metadata_tags``.
_MDTA_HDLR: Final = b"\x00" * 8 + b"mdta" + b"\x00" * 13

_CONTAINERS: Final = frozenset(
    {
        (b"moov",),
        (b"moov", b"trak"),
        (b"moov", b"trak", b"mdia"),
        (b"moov", b"trak", b"mdia", b"minf"),
        (b"moov", b"trak", b"mdia", b"minf", b"stbl"),
        (b"moov", b"udta"),
        (b"moov", b"udta", b"meta"),
        (b"moov", b"udta", b"meta", b"ilst"),
        (b"moov", b"meta"),
        (b"moov", b"meta", b"ilst"),
    }
)


# -- reading (seeks from header to header; never reads mdat or the sample tables) ------------


def _top_level(src: BinaryIO) -> list[Box]:
    return list(iter_boxes(src, 0, stream_size(src)))


def _first_moov(src: BinaryIO) -> Box:
    for box in iter_boxes(src, 0, stream_size(src)):
        if box.type == b"moov":
            return box
    raise CorruptMediaError("no moov box: not a playable MP4/QuickTime file")


def _children(src: BinaryIO, box: Box, skip: int = 0) -> list[Box]:
    return list(iter_boxes(src, box.body_offset + skip, box.end, where=f"box {type_name(box.type)!r}"))


def _body(src: BinaryIO, box: Box, skip: int = 0, limit: int = MAX_VALUE) -> bytes:
    require_size(box.body_size, limit, f"box {type_name(box.type)!r}")
    src.seek(box.body_offset + skip)
    return read_exact(src, box.body_size - skip, f"box {type_name(box.type)!r}")


def _meta_children(src: BinaryIO, meta: Box) -> tuple[bytes, list[Box]]:
    """A ``meta`` box's handler type and children (full box or QuickTime's plain form)."""
    src.seek(meta.body_offset)
    prefix = meta_prefix_size(src.read(min(12, meta.body_size)))
    kids = _children(src, meta, prefix)
    hdlr = next((k for k in kids if k.type == b"hdlr"), None)
    return (b"" if hdlr is None else handler_type(_body(src, hdlr))), kids


def _decode_value(data_body: bytes) -> str:
    """The text of a ``data`` atom's body (type indicator, locale, value)."""
    if len(data_body) < 8:
        raise CorruptMediaError("data atom is too short")
    kind = int.from_bytes(data_body[1:4], "big")
    value = data_body[8:]
    try:
        text = value.decode("utf-16-be") if kind == _UTF16 else value.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptMediaError("the AIGC value is not valid text") from None
    return text.strip("\x00 \t\r\n")


def _item_value(src: BinaryIO, item: Box) -> str | None:
    for child in _children(src, item):
        if child.type == b"data":
            return _decode_value(_body(src, child))
    return None


def _parse_keys(body: bytes) -> list[tuple[bytes, bytes]]:
    if len(body) < 8:
        raise CorruptMediaError("keys box is too short")
    (count,) = struct.unpack(">I", body[4:8])
    if count * 8 > len(body) - 8:
        raise CorruptMediaError(f"keys box declares {count} keys, more than it holds")
    keys, pos = [], 8
    for _ in range(count):
        if pos + 8 > len(body):
            raise CorruptMediaError("keys box ends inside a key")
        (size,) = struct.unpack(">I", body[pos : pos + 4])
        if size < 8 or pos + size > len(body):
            raise CorruptMediaError(f"key of {size} bytes does not fit the keys box")
        keys.append((body[pos + 4 : pos + 8], body[pos + 8 : pos + size]))
        pos += size
    return keys


def _aigc_indexes(keys: list[tuple[bytes, bytes]]) -> list[int]:
    return [i for i, (ns, name) in enumerate(keys, 1) if ns == KEY_NAMESPACE and name == KEY]


def _read_keyed(src: BinaryIO, kids: list[Box]) -> str | None:
    keys_box = next((k for k in kids if k.type == b"keys"), None)
    if keys_box is None:
        return None
    indexes = _aigc_indexes(_parse_keys(_body(src, keys_box)))
    if not indexes:
        return None
    for ilst in (k for k in kids if k.type == b"ilst"):
        for item in _children(src, ilst):
            if int.from_bytes(item.type, "big") in indexes:
                value = _item_value(src, item)
                if value is not None:
                    return value
    return None


def _read_unkeyed(src: BinaryIO, kids: list[Box]) -> str | None:
    """``ilst`` items naming AIGC themselves: type ``AIGC``, or freeform ``----`` with name AIGC."""
    for ilst in (k for k in kids if k.type == b"ilst"):
        for item in _children(src, ilst):
            if item.type == KEY:
                value = _item_value(src, item)
                if value is not None:
                    return value
            elif item.type == b"----":
                parts = _children(src, item)
                names = [_body(src, p)[4:] for p in parts if p.type == b"name"]
                if KEY in (n.rstrip(b"\x00") for n in names):
                    value = _item_value(src, item)
                    if value is not None:
                        return value
    return None


def _read_udta_atom(body: bytes) -> str:
    """A ``udta/AIGC`` atom: a ``data`` atom, a QuickTime text (length, language, text) or raw."""
    if body[4:8] == b"data":
        (size,) = struct.unpack(">I", body[:4])
        if 16 <= size <= len(body):
            return _decode_value(body[8:size])
    if len(body) >= 4 and int.from_bytes(body[:2], "big") == len(body) - 4:
        body = body[4:]
    try:
        return body.decode("utf-8").strip("\x00 \t\r\n")
    except UnicodeDecodeError:
        raise CorruptMediaError("the udta AIGC atom is not valid text") from None


def _read_xmp(src: BinaryIO, udta_kids: list[list[Box]]) -> str | None:
    """The XMP fallback other tools write (exiftool: a top-level ``uuid`` box with the XMP UUID;
    Adobe: ``moov/udta/XMP_``): ``TC260:AIGC`` in it, read as a variant, never written."""
    packets = [a for kids in udta_kids for a in kids if a.type == b"XMP_"]
    packets += [b for b in _top_level(src) if b.type == b"uuid"]
    for box in packets:
        skip = 0
        if box.type == b"uuid":
            src.seek(box.body_offset)
            if box.body_size < 16 or src.read(16) != XMP_UUID:
                continue
            skip = 16
        found = xmp.read_aigc(_body(src, box, skip, limit=xmp.MAX_PACKET))
        if found is not None:
            return found
    return None


# -- writing -------------------------------------------------------------------------------


def _descend(path: tuple[bytes, ...]) -> bool:
    return path in _CONTAINERS


def _data_item(index: int, value: bytes) -> Node:
    data = box_bytes(b"data", struct.pack(">II", _UTF8, 0) + value)
    return Node(index.to_bytes(4, "big"), body=data)


def _is_mdta(meta: Node) -> bool:
    hdlr = meta.kid(b"hdlr")
    return hdlr is not None and handler_type(hdlr.body) == KEY_NAMESPACE


def _put_key(meta: Node, value: bytes, *, create: bool) -> bool:
    """Set ``AIGC`` in an ``mdta`` meta: replace an existing key's item (dropping duplicate keys and
    renumbering the items after them), or with ``create`` add the key. Returns whether it was set."""
    assert meta.children is not None
    keys_node = meta.kid(b"keys")
    keys = _parse_keys(keys_node.body) if keys_node is not None else []
    hits = _aigc_indexes(keys)
    if not hits and not create:
        return False
    if keys_node is None:
        keys_node = Node(b"keys", body=b"\x00" * 8)
        hdlr = meta.kid(b"hdlr")
        meta.children.insert(0 if hdlr is None else meta.children.index(hdlr) + 1, keys_node)
    ilst = meta.kid(b"ilst")
    if ilst is None:
        ilst = Node(b"ilst", children=[])
        meta.children.insert(meta.children.index(keys_node) + 1, ilst)
    if ilst.children is None:
        raise CorruptMediaError("ilst box cannot be parsed")
    if hits:
        keep, drop = hits[0], set(hits[1:])
    else:
        keys.append((KEY_NAMESPACE, KEY))
        keep, drop = len(keys), set()
    old_count = len(keys)

    def renumber(index: int) -> int:
        return index - sum(1 for d in drop if d < index)

    new_keep = renumber(keep)
    items: list[Node] = []
    placed = False
    for item in ilst.children:
        index = int.from_bytes(item.type, "big")
        if index == keep or index in drop:
            if not placed:
                items.append(_data_item(new_keep, value))
                placed = True
            continue
        if drop and 0 < index <= old_count:
            item.type = renumber(index).to_bytes(4, "big")
        items.append(item)
    if not placed:
        items.append(_data_item(new_keep, value))
    ilst.children = items
    kept = [k for i, k in enumerate(keys, 1) if i not in drop]
    entries = b"".join(struct.pack(">I4s", len(name) + 8, ns) + name for ns, name in kept)
    keys_node.body = keys_node.body[:4] + struct.pack(">I", len(kept)) + entries
    return True


def _set_label(moov: Node, value: bytes) -> None:
    assert moov.children is not None
    udtas = moov.kids(b"udta")
    udta_metas = [m for u in udtas for m in u.kids(b"meta") if _is_mdta(m)]
    moov_metas = [m for m in moov.kids(b"meta") if _is_mdta(m)]
    replaced = [_put_key(m, value, create=False) for m in udta_metas + moov_metas]
    if any(replaced):
        return
    # never a second key table: ffmpeg keeps the first it reads and maps every later ilst through
    # it, so a new udta/meta next to Apple's moov/meta would show Apple's values under wrong names
    existing = udta_metas + moov_metas
    if existing:
        _put_key(existing[0], value, create=True)
        return
    if not udtas:
        udtas = [Node(b"udta", children=[])]
        moov.children.append(udtas[0])
    udta = udtas[0]
    assert udta.children is not None
    meta = Node(
        b"meta",
        prefix=b"\x00" * 4,
        children=[Node(b"hdlr", body=_MDTA_HDLR), Node(b"keys", body=b"\x00" * 8)],
    )
    # the spec's place even beside ffmpeg's and iTunes' udta/meta (handler mdir), which nearly every
    # ffmpeg-made file has; ffprobe, exiftool and mutagen read both
    udta.children.append(meta)
    _put_key(meta, value, create=True)


def _node_size(node: Node) -> int:
    return len(node.content()) + (16 if node.large else 8)


def _absorb_inner(moov: Node, delta: int) -> bool:
    """Resize a ``free``/``skip`` box inside ``moov`` by ``-delta`` (or add one when shrinking by at
    least 8 bytes) so that ``moov`` keeps its size."""
    parents = [moov, *moov.kids(b"udta")]
    parents += [m for p in parents for m in p.kids(b"meta")]
    for parent in parents:
        assert parent.children is not None
        for node in parent.kids(b"free") + parent.kids(b"skip"):
            header = 16 if node.large else 8
            size = _node_size(node) - delta
            if size == 0:
                parent.children.remove(node)
                return True
            if size >= header:
                node.body = bytes(size - header)
                return True
    if delta <= -8:
        udta = moov.kid(b"udta") or moov
        assert udta.children is not None
        udta.children.append(Node(b"free", body=bytes(-delta - 8)))
        return True
    return False


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """What a label write changes: ``moov`` and, when it absorbs the change, the ``free`` after it."""

    moov: Box
    new_moov: bytes
    after: list[Box]
    free: Box | None = None
    free_size: int = 0
    shift: Shift | None = None


def _plan(src: BinaryIO, label_json: str) -> _Plan:
    boxes = _top_level(src)
    moovs = [b for b in boxes if b.type == b"moov"]
    if not moovs:
        raise CorruptMediaError("no moov box: not a playable MP4/QuickTime file")
    if len(moovs) > 1:
        raise CorruptMediaError("more than one moov box", offset=moovs[1].offset)
    moov = moovs[0]
    require_size(moov.body_size, MAX_MOOV, "moov box")
    src.seek(moov.body_offset)
    body = read_exact(src, moov.body_size, "moov box")
    tree = parse_tree(body, b"moov", _descend, large=moov.header_size == 16, origin=moov.body_offset)
    _set_label(tree, label_json.encode("utf-8"))
    after = boxes[boxes.index(moov) + 1 :]
    new = tree.to_bytes()
    delta = len(new) - moov.size
    if delta == 0 or not after:
        return _Plan(moov, new, after)
    if _absorb_inner(tree, delta):
        return _Plan(moov, tree.to_bytes(), after)
    following = after[0]
    if following.type in FREE_TYPES and (following.size - delta == 0 or following.size - delta >= 8):
        return _Plan(moov, new, after, free=following, free_size=following.size - delta)
    return _shifted_plan(moov, tree, delta, after)


def _shifted_plan(moov: Box, tree: Node, delta: int, after: list[Box]) -> _Plan:
    """Shift every offset after ``moov``; an ``stco`` that overflows becomes ``co64`` (4 more bytes
    per entry, so ``moov`` grows again: repeat until nothing else overflows)."""
    tables = [t for t in chunk_offset_tables(tree) if t.type == b"stco"]
    promoted: set[int] = set()
    while True:
        total = delta + sum(4 * stco_entries(t) for t in tables if id(t) in promoted)
        shift = Shift(moov.end, total)
        more = {id(t) for t in tables if id(t) not in promoted and stco_overflows(t, shift)}
        if not more:
            break
        promoted |= more
    shift_chunk_offsets(tree, shift, frozenset(promoted))
    new = tree.to_bytes()
    if len(new) - moov.size != shift.delta:
        raise CorruptMediaError("moov changed size while its offsets were shifted", offset=moov.offset)
    return _Plan(moov, new, after, shift=shift)


def _write_free(dst: BinaryIO, size: int) -> None:
    if size == 0:
        return
    header = struct.pack(">I4s", size, b"free") if size <= 0xFFFFFFFF else b""
    if not header:
        header = struct.pack(">I4sQ", 1, b"free", size)
    dst.write(header)
    _write_zeros(dst, size - len(header))


def _write_zeros(dst: BinaryIO, count: int) -> None:
    block = bytes(min(count, 1 << 20))
    while count > 0:
        dst.write(block[: min(count, len(block))])
        count -= len(block)


def _copy_tail(src: BinaryIO, dst: BinaryIO, start: int, plan: _Plan) -> None:
    """Copy from ``start`` to the end, shifting the offsets inside ``moof``/``mfra`` boxes."""
    shift = plan.shift
    fragments = [b for b in plan.after if b.offset >= start and b.type in (b"moof", b"mfra")]
    if shift is None or not fragments:
        copy_range(src, dst, start)
        return
    pos = start
    for box in fragments:
        copy_range(src, dst, pos, box.offset - pos)
        require_size(box.body_size, MAX_FRAGMENT_HEADER, f"box {type_name(box.type)!r}")
        src.seek(box.body_offset)
        body = read_exact(src, box.body_size, f"box {type_name(box.type)!r}")
        new_body = shift_fragment(box.type, body, shift, box.body_offset)
        dst.write(box_bytes(box.type, new_body, large=box.header_size == 16))
        pos = box.end
    copy_range(src, dst, pos)


class IsobmffLabeler(MetadataLabeler, InPlaceWriter):
    name = "isobmff-mdta"
    containers = frozenset({Container.MP4, Container.MOV, Container.M4A})
    carrier = "QuickTime metadata key AIGC in moov/udta/meta (handler mdta)"

    def read(self, src: BinaryIO) -> str | None:
        moov = _first_moov(src)
        moov_kids = _children(src, moov)
        udtas = [b for b in moov_kids if b.type == b"udta"]
        udta_kids = [_children(src, u) for u in udtas]
        metas = [m for kids in udta_kids for m in kids if m.type == b"meta"]
        metas += [m for m in moov_kids if m.type == b"meta"]
        parsed = [_meta_children(src, m) for m in metas]
        for handler, kids in parsed:
            if handler == KEY_NAMESPACE:
                found = _read_keyed(src, kids)
                if found is not None:
                    return found
        for _, kids in parsed:
            found = _read_unkeyed(src, kids)
            if found is not None:
                return found
        for kids in udta_kids:
            for atom in kids:
                if atom.type == KEY:
                    return _read_udta_atom(_body(src, atom))
        return _read_xmp(src, udta_kids)

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        plan = _plan(src, label_json)
        moov = plan.moov
        copy_range(src, dst, 0, moov.offset)
        dst.write(plan.new_moov)
        pos = moov.end
        if plan.free is not None:
            _write_free(dst, plan.free_size)
            pos = plan.free.end
        _copy_tail(src, dst, pos, plan)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        plan = _plan(f, label_json)
        if plan.shift is not None:
            return False
        moov = plan.moov
        new_end = moov.offset + len(plan.new_moov)
        f.seek(moov.offset)
        f.write(plan.new_moov)
        if not plan.after:
            f.truncate(new_end)
        elif plan.free is not None and plan.free_size:
            f.seek(new_end)
            header = struct.pack(">I4s", plan.free_size, b"free")
            if plan.free_size > 0xFFFFFFFF:
                header = struct.pack(">I4sQ", 1, b"free", plan.free_size)
            f.write(header)
            # the old moov's tail now lies inside the free box: blank it (it held the old label)
            _write_zeros(f, max(0, moov.end - new_end - len(header)))
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        for box in _top_level(src):
            if box.type == b"mdat":
                yield from iter_range(src, box.body_offset, box.body_size)
