"""GIF: the XMP packet in the ``XMP DataXMP`` application extension, followed by the "magic trailer".

The XMP specification (part 3) stores the packet's bytes raw after the 11-byte application identifier,
followed by a 258-byte trailer (``0x01, 0xFF, 0xFE, ..., 0x01, 0x00, 0x00``): a GIF reader that walks
the packet as sub-blocks always lands in the trailer's ramp and is carried to its final block
terminator, so readers that do not know XMP skip it.

Why hand-written: labeling is "insert one extension block, copy every other byte". Pillow would
decode and re-encode the frames (changing the LZW data and dropping extensions it does not know);
exiv2 does not write GIF; exiftool is a Perl program, not a library. Here the blocks are walked
(extensions, image descriptors with local colour tables and LZW sub-block chains), with every length
checked against the file, the new block is spliced in and the bulk is copied by the kernel.

The block goes after the global colour table and any leading extensions (looping, comments), before
the first graphic block (graphic control extension, image or plain text), so that no extension comes
between a graphic control extension and the image it governs. An existing XMP extension is updated in
its place. A GIF87a header becomes GIF89a (extensions need 89a), as exiftool does.

The payload is the logical screen descriptor, the global colour table and every block except the
application and comment extensions (the graphic control extensions, image descriptors, local colour
tables and LZW data, plain text extensions, the trailer). The 6-byte signature is left out because a
write may change its version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import iter_range, read_exact, require_size, stream_size
from synthguard.errors import CorruptMediaError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata import xmp
from synthguard.labels.metadata._chunks import Edit, read_at, splice
from synthguard.media import Container

__all__ = ["GifLabeler"]

XMP_APP_ID: Final = b"XMP DataXMP"
MAGIC_TRAILER: Final = b"\x01" + bytes(range(255, -1, -1)) + b"\x00"
_EXTENSION: Final = 0x21
_IMAGE: Final = 0x2C
_TRAILER: Final = 0x3B
_APPLICATION: Final = 0xFF
_COMMENT: Final = 0xFE
_GRAPHIC_CONTROL: Final = 0xF9
_PLAIN_TEXT: Final = 0x01
_XMP_HEAD: Final = bytes([_EXTENSION, _APPLICATION, len(XMP_APP_ID)]) + XMP_APP_ID
_BUFFER: Final = 1 << 16


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    introducer: int  # 0x21 extension, 0x2C image, 0x3B trailer
    label: int  # the extension label; 0 for an image or the trailer
    offset: int
    end: int
    #: The application identifier (11 bytes) of an application extension, else b"".
    app_id: bytes = b""

    def is_graphic(self) -> bool:
        return self.introducer == _IMAGE or (
            self.introducer == _EXTENSION and self.label in (_GRAPHIC_CONTROL, _PLAIN_TEXT)
        )

    def is_payload(self) -> bool:
        return not (self.introducer == _EXTENSION and self.label in (_APPLICATION, _COMMENT))

    def is_xmp(self) -> bool:
        return self.app_id == XMP_APP_ID


@dataclasses.dataclass(frozen=True, slots=True)
class Header:
    version: bytes  # b"87a" or b"89a"
    blocks_start: int  # after the logical screen descriptor and the global colour table
    size: int  # of the file


def _table_size(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def read_header(src: BinaryIO) -> Header:
    src.seek(0)
    head = src.read(13)
    if head[:6] not in (b"GIF87a", b"GIF89a"):
        raise UnsupportedFormatError("not a GIF (no GIF87a/GIF89a signature)")
    if len(head) < 13:
        raise CorruptMediaError("GIF logical screen descriptor truncated", offset=6)
    size = stream_size(src)
    start = 13 + _table_size(head[10])
    if start > size:
        raise CorruptMediaError("GIF global colour table runs past the end of the file", offset=13)
    return Header(head[3:6], start, size)


def skip_sub_blocks(src: BinaryIO, pos: int, size: int) -> int:
    """The offset after the block terminator of the sub-block chain starting at ``pos``.

    Reads the chain in 64 KiB windows (one length byte per sub-block is all that is looked at).
    """
    while True:
        if pos >= size:
            raise CorruptMediaError("GIF sub-blocks run past the end of the file", offset=pos)
        src.seek(pos)
        window = src.read(_BUFFER)
        if not window:
            raise CorruptMediaError("GIF sub-blocks run past the end of the file", offset=pos)
        # the hot loop of GIF parsing (one step per 255-byte sub-block): locals only
        index, limit = 0, len(window)
        while index < limit:
            length = window[index]
            if length == 0:
                end = pos + index + 1
                if end > size:
                    raise CorruptMediaError("GIF sub-blocks run past the end of the file", offset=end)
                return end
            index += 1 + length
        pos += index


def iter_blocks(src: BinaryIO, header: Header) -> Iterator[Block]:
    """The blocks after the global colour table, up to and with the trailer.

    A file that ends cleanly between two blocks without a trailer (common in the wild) just ends.
    Reads each block at its offset, so a consumer may read between two steps.
    """
    pos, size = header.blocks_start, header.size
    if src.writable():
        src.flush()  # block heads are read with read_at, which bypasses the stream's buffer
    while pos < size:
        head = read_at(src, pos, 3)
        if not head:
            raise CorruptMediaError("GIF ends inside a block", offset=pos)
        introducer = head[0]
        if introducer == _TRAILER:
            yield Block(_TRAILER, 0, pos, pos + 1)
            return
        if introducer == _EXTENSION:
            if len(head) < 3:
                raise CorruptMediaError("GIF extension truncated", offset=pos)
            label, app_id = head[1], b""
            if label == _APPLICATION and head[2] == len(XMP_APP_ID):
                app_id = read_at(src, pos + 3, len(XMP_APP_ID))
            block = Block(_EXTENSION, label, pos, skip_sub_blocks(src, pos + 2, size), app_id)
        elif introducer == _IMAGE:
            src.seek(pos)
            descriptor = read_exact(src, 10, "GIF image descriptor")
            data_start = pos + 10 + _table_size(descriptor[9]) + 1  # + LZW minimum code size
            if data_start > size:
                raise CorruptMediaError("GIF image runs past the end of the file", offset=pos)
            block = Block(_IMAGE, 0, pos, skip_sub_blocks(src, data_start, size))
        else:
            raise CorruptMediaError(f"unknown GIF block introducer {introducer:#04x}", offset=pos)
        yield block
        pos = block.end


def _join_sub_blocks(data: bytes) -> bytes:
    parts, pos = [], 0
    while pos < len(data) and data[pos]:
        parts.append(data[pos + 1 : pos + 1 + data[pos]])
        pos += 1 + data[pos]
    return b"".join(parts)


def _packet(src: BinaryIO, block: Block) -> bytes:
    """The XMP packet of an ``XMP DataXMP`` extension (raw with the magic trailer, or sub-blocks)."""
    start = block.offset + len(_XMP_HEAD)
    require_size(block.end - start, xmp.MAX_PACKET + len(MAGIC_TRAILER), "GIF XMP extension")
    src.seek(start)
    data = read_exact(src, block.end - start, "GIF XMP extension")
    if data.endswith(MAGIC_TRAILER):
        return data[: -len(MAGIC_TRAILER)]
    return _join_sub_blocks(data)


def _xmp_block(packet: bytes) -> bytes:
    if b"\x00" in packet:
        # a NUL would end the extension early for every GIF reader
        raise CorruptMediaError("XMP packet holds a NUL byte and cannot be stored raw in a GIF")
    return _XMP_HEAD + packet + MAGIC_TRAILER


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    header: Header
    insert_at: int
    target: Block | None
    packet: bytes | None


def _layout(src: BinaryIO) -> _Layout:
    header = read_header(src)
    insert_at: int | None = None
    end = header.blocks_start
    has_image = False
    target: tuple[Block, bytes] | None = None
    labeled = False
    for block in iter_blocks(src, header):
        if insert_at is None and (block.is_graphic() or block.introducer == _TRAILER):
            insert_at = block.offset
        has_image = has_image or block.introducer == _IMAGE
        end = block.end
        if block.is_xmp() and not labeled:
            packet = _packet(src, block)
            if xmp.read_aigc(packet) is not None:
                target, labeled = (block, packet), True
            elif target is None:
                target = (block, packet)
    if not has_image:
        raise CorruptMediaError("GIF has no image", offset=header.blocks_start)
    return _Layout(
        header,
        end if insert_at is None else insert_at,
        None if target is None else target[0],
        None if target is None else target[1],
    )


class GifLabeler(MetadataLabeler, InPlaceWriter):
    name = "gif-xmp"
    containers = frozenset({Container.GIF})
    carrier = "XMP packet in the 'XMP DataXMP' application extension"

    def read(self, src: BinaryIO) -> str | None:
        header = read_header(src)
        for block in iter_blocks(src, header):
            if block.is_xmp():
                found = xmp.read_aigc(_packet(src, block))
                if found is not None:
                    return found
        return None

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        layout = _layout(src)
        new_block = _xmp_block(xmp.set_aigc(layout.packet, label_json))
        edits = [Edit(3, 3, b"89a")] if layout.header.version != b"89a" else []
        if layout.target is not None:
            target = layout.target
            edits.append(Edit(target.offset, target.end - target.offset, new_block))
        else:
            edits.append(Edit(layout.insert_at, 0, new_block))
        splice(src, dst, edits)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        layout = _layout(f)
        target = layout.target
        if target is None:
            return False
        new_block = _xmp_block(xmp.set_aigc(layout.packet, label_json))
        if len(new_block) != target.end - target.offset:
            return False
        f.seek(target.offset)
        f.write(new_block)
        if layout.header.version != b"89a":
            f.seek(3)
            f.write(b"89a")
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        header = read_header(src)
        yield from iter_range(src, 6, header.blocks_start - 6)
        for block in iter_blocks(src, header):
            if block.is_payload():
                yield from iter_range(src, block.offset, block.end - block.offset)
