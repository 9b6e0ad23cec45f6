"""PNG: the XMP packet in an ``iTXt`` chunk with keyword ``XML:com.adobe.xmp``, uncompressed, before IDAT.

Why hand-written: labeling is "insert (or replace) one ancillary chunk, copy every other chunk as it
is". Pillow would decode and re-encode the pixels and drop chunks it does not know (APNG frames,
``sPLT``, private chunks); pypng rewrites every chunk through Python; exiv2 (pyexiv2) rewrites the
whole file through its own buffers. Here the chunk headers are walked with seeks (the image data is
never read), the new chunk is spliced in, and the bulk is copied by the kernel (``copy_range``).

The chunk goes immediately before the first image-data chunk (``IDAT``, or an APNG ``fcTL`` that
precedes it), which is where exiftool writes XMP. An XMP ``iTXt`` chunk that is already there
(compressed or not) is merged, never duplicated; one found after the image data is moved before it,
because readers that stop at ``IDAT`` would not see it (the spec asks for "before IDAT").

Variants read (seen in the wild): a ``tEXt``/``zTXt``/``iTXt`` chunk with keyword ``AIGC`` holding the
raw JSON, and the wrapped label in the EXIF UserComment of an ``eXIf`` chunk. They are left as they
are on writing (migration is a separate, explicit step).

The payload is the type and data of the chunks that define the pixels: the critical chunks (``IHDR``,
``PLTE``, ``IDAT``, ``IEND`` and any other critical chunk), the APNG chunks ``acTL``/``fcTL``/``fdAT``
and ``tRNS`` (it changes decoded alpha). Text, EXIF, colour-profile and other ancillary chunks are
metadata and stay out of it.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import iter_range, read_exact, require_size, stream_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata import exif, xmp
from synthguard.labels.metadata._chunks import Edit, inflate_limited, read_at, splice
from synthguard.media import Container

__all__ = ["PngLabeler"]

SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD: Final = b"XML:com.adobe.xmp"
AIGC_KEYWORD: Final = b"AIGC"
_MAX_CHUNK_LENGTH: Final = 2**31 - 1
#: Chunks other than image data beyond this count are hostile, not an image.
_MAX_OTHER_CHUNKS: Final = 100_000
_IMAGE_DATA: Final = frozenset({b"IDAT", b"fdAT"})
#: The first of these marks where the image data starts (an APNG's first fcTL precedes IDAT).
_IMAGE_START: Final = frozenset({b"IDAT", b"fdAT", b"fcTL"})
_PIXEL_ANCILLARY: Final = frozenset({b"acTL", b"fcTL", b"fdAT", b"tRNS"})
_TEXT: Final = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_MAX_KEYWORD: Final = 79
_EXIF_PREFIX: Final = b"Exif\x00\x00"


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    offset: int  # of the length field
    length: int  # of the data
    type: bytes

    @property
    def data_offset(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        return self.offset + 12 + self.length

    def is_payload(self) -> bool:
        return not self.type[0] & 0x20 or self.type in _PIXEL_ANCILLARY


def iter_chunks(src: BinaryIO) -> Iterator[Chunk]:
    """The chunks from ``IHDR`` to ``IEND``, each checked against the file size; reads only headers.

    Reads each header at its offset, so a consumer may read chunk data between two steps.
    """
    if src.writable():
        src.flush()  # headers are read with read_at, which bypasses the stream's buffer
    src.seek(0)
    if src.read(8) != SIGNATURE:
        raise UnsupportedFormatError("not a PNG (no PNG signature)")
    size = stream_size(src)
    pos = 8
    others = 0
    while True:
        head = read_at(src, pos, 8)
        if len(head) < 8:
            raise CorruptMediaError("PNG ends before its IEND chunk", offset=pos)
        length, ctype = struct.unpack(">I4s", head)
        if not ctype.isalpha():
            raise CorruptMediaError(f"invalid PNG chunk type {ctype!r}", offset=pos)
        if length > _MAX_CHUNK_LENGTH:
            raise CorruptMediaError(f"PNG chunk {ctype!r} claims {length} bytes", offset=pos)
        chunk = Chunk(pos, length, ctype)
        if chunk.end > size:
            raise CorruptMediaError(f"PNG chunk {ctype!r} runs past the end of the file", offset=pos)
        if pos == 8 and ctype != b"IHDR":
            raise CorruptMediaError("PNG does not start with IHDR", offset=pos)
        if ctype not in _IMAGE_DATA:
            others += 1
            if others > _MAX_OTHER_CHUNKS:
                raise MediaLimitError(f"PNG has more than {_MAX_OTHER_CHUNKS} non-image chunks")
        yield chunk
        if ctype == b"IEND":
            return
        pos = chunk.end


def _data(src: BinaryIO, chunk: Chunk) -> bytes:
    require_size(chunk.length, xmp.MAX_PACKET, f"PNG {chunk.type.decode()} chunk")
    src.seek(chunk.data_offset)
    return read_exact(src, chunk.length, f"PNG {chunk.type.decode()} chunk")


def _keyword(src: BinaryIO, chunk: Chunk) -> bytes | None:
    """The keyword of a text chunk (read from its first bytes only), or ``None`` if it has none."""
    if chunk.type not in _TEXT:
        return None
    head = read_at(src, chunk.data_offset, min(chunk.length, _MAX_KEYWORD + 1))
    end = head.find(b"\x00")
    return head[:end] if end > 0 else None


def _text(chunk: Chunk, data: bytes) -> bytes:
    """The text of a ``tEXt``, ``zTXt`` or ``iTXt`` chunk, decompressed (bounded) where needed."""
    what = f"PNG {chunk.type.decode()} chunk"
    keyword_end = data.find(b"\x00")
    if keyword_end < 0:
        raise CorruptMediaError(f"{what} has no keyword", offset=chunk.offset)
    rest = data[keyword_end + 1 :]
    if chunk.type == b"tEXt":
        return rest
    if len(rest) < (1 if chunk.type == b"zTXt" else 2):
        raise CorruptMediaError(f"{what} is truncated", offset=chunk.offset)
    if chunk.type == b"zTXt":
        if rest[0] != 0:
            raise CorruptMediaError(f"{what} has compression method {rest[0]}", offset=chunk.offset)
        return inflate_limited(rest[1:], xmp.MAX_PACKET, what)
    flag, method, rest = rest[0], rest[1], rest[2:]
    language_end = rest.find(b"\x00")
    translated_end = rest.find(b"\x00", language_end + 1) if language_end >= 0 else -1
    if translated_end < 0:
        raise CorruptMediaError(f"{what} lacks its language fields", offset=chunk.offset)
    text = rest[translated_end + 1 :]
    if flag == 0:
        return text
    if flag == 1 and method == 0:
        return inflate_limited(text, xmp.MAX_PACKET, what)
    raise CorruptMediaError(f"{what} has compression {flag}/{method}", offset=chunk.offset)


def _variant_label(chunk: Chunk, data: bytes) -> str | None:
    """The raw JSON of an ``AIGC`` text chunk (a variant seen in the wild), if it looks like one."""
    encoding = "utf-8" if chunk.type == b"iTXt" else "latin-1"
    text = _text(chunk, data).decode(encoding, errors="replace").strip("\x00 \t\r\n")
    return text if text.startswith("{") else None


def _exif_label(data: bytes) -> str | None:
    # some writers keep the JPEG "Exif\0\0" prefix in eXIf
    return exif.read_user_comment_label(data.removeprefix(_EXIF_PREFIX))


def make_xmp_chunk(packet: bytes) -> bytes:
    """An uncompressed ``iTXt`` chunk (empty language and translated keyword) holding ``packet``."""
    data = XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet
    if len(data) > _MAX_CHUNK_LENGTH:
        raise MediaLimitError(f"XMP chunk of {len(data)} bytes is larger than a PNG chunk may be")
    body = b"iTXt" + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    #: Where the image data starts: the new chunk goes right before it.
    image_start: int
    #: The XMP chunk to update (the first holding a label, else the first), and its packet.
    target: Chunk | None
    packet: bytes | None


def _layout(src: BinaryIO) -> _Layout:
    image_start: int | None = None
    target: tuple[Chunk, bytes] | None = None
    labeled = False
    for chunk in iter_chunks(src):
        if image_start is None and chunk.type in _IMAGE_START:
            image_start = chunk.offset
        if labeled or chunk.type != b"iTXt" or _keyword(src, chunk) != XMP_KEYWORD:
            continue
        packet = _text(chunk, _data(src, chunk))
        if xmp.read_aigc(packet) is not None:
            target, labeled = (chunk, packet), True
        elif target is None:
            target = (chunk, packet)
    if image_start is None:
        raise CorruptMediaError("PNG has no IDAT chunk")
    if target is None:
        return _Layout(image_start, None, None)
    return _Layout(image_start, target[0], target[1])


class PngLabeler(MetadataLabeler, InPlaceWriter):
    name = "png-xmp"
    containers = frozenset({Container.PNG})
    carrier = "XMP packet in an iTXt chunk (XML:com.adobe.xmp) before IDAT"

    def read(self, src: BinaryIO) -> str | None:
        variant: str | None = None
        exif_label: str | None = None
        for chunk in iter_chunks(src):
            if chunk.type in _TEXT:
                keyword = _keyword(src, chunk)
                if keyword == XMP_KEYWORD and chunk.type == b"iTXt":
                    found = xmp.read_aigc(_text(chunk, _data(src, chunk)))
                    if found is not None:
                        return found
                elif keyword == AIGC_KEYWORD and variant is None:
                    variant = _variant_label(chunk, _data(src, chunk))
            elif chunk.type == b"eXIf" and exif_label is None:
                exif_label = _exif_label(_data(src, chunk))
        return variant if variant is not None else exif_label

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        layout = _layout(src)
        new_chunk = make_xmp_chunk(xmp.set_aigc(layout.packet, label_json))
        target = layout.target
        if target is not None and target.offset < layout.image_start:
            edits = [Edit(target.offset, target.end - target.offset, new_chunk)]
        else:
            edits = [Edit(layout.image_start, 0, new_chunk)]
            if target is not None:
                edits.append(Edit(target.offset, target.end - target.offset, b""))
        splice(src, dst, edits)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        layout = _layout(f)
        target = layout.target
        if target is None or target.offset > layout.image_start:
            return False
        new_chunk = make_xmp_chunk(xmp.set_aigc(layout.packet, label_json))
        if len(new_chunk) != target.end - target.offset:
            return False
        f.seek(target.offset)
        f.write(new_chunk)
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        for chunk in iter_chunks(src):
            if chunk.is_payload():
                yield chunk.type
                yield from iter_range(src, chunk.data_offset, chunk.length)
