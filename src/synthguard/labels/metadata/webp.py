"""WebP: the XMP packet in the RIFF chunk ``XMP `` of the extended format, with the VP8X XMP flag set.

Why hand-written: labeling is "add one RIFF chunk, set one flag bit, fix the RIFF size". Pillow would
decode and re-encode the image (lossy for VP8); ``webpmux`` is a separate C tool not present everywhere
and rewrites the file through memory; exiv2 (pyexiv2) rewrites the whole file. Here the chunk headers
are walked with seeks (image data is never read), the edits are spliced in and the bulk is copied by
the kernel (``copy_range``).

A simple file (one ``VP8 `` or ``VP8L`` chunk) is turned into the extended format: a ``VP8X`` chunk
is put first, with the canvas size taken from the VP8 key-frame header or the VP8L header, the alpha
flag set when the VP8L header says alpha is used (or an ``ALPH`` chunk exists), and the XMP flag. The
``XMP `` chunk goes where the container spec orders it: after the image data and ``EXIF`` (VP8X, ICCP,
ANIM, image data, EXIF, XMP), before any unknown trailing chunks. An existing ``XMP `` chunk is merged
in its place. Odd-sized chunks are padded and the RIFF size is fixed; bytes after the RIFF are kept.

Variant read: the wrapped label in the EXIF UserComment of an ``EXIF`` chunk. The payload is the
fourcc and data of the image chunks (``VP8 ``, ``VP8L``, ``ALPH``, ``ANIM``, ``ANMF``); ``VP8X``
(whose flags a metadata write changes), ``ICCP``, ``EXIF`` and ``XMP `` are metadata.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import iter_range, read_exact, require_size, stream_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata import exif, xmp
from synthguard.labels.metadata._chunks import Edit, read_at, splice
from synthguard.media import Container

__all__ = ["WebpLabeler"]

FLAG_ICC: Final = 0x20
FLAG_ALPHA: Final = 0x10
FLAG_EXIF: Final = 0x08
FLAG_XMP: Final = 0x04
FLAG_ANIMATION: Final = 0x02
_PAYLOAD: Final = frozenset({b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"})
#: Chunks the container spec orders before ``XMP ``.
_BEFORE_XMP: Final = frozenset({b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L", b"EXIF"})
_MAX_CHUNKS: Final = 100_000
_MAX_RIFF_SIZE: Final = 0xFFFFFFFE
_EXIF_PREFIX: Final = b"Exif\x00\x00"


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    offset: int  # of the fourcc
    size: int  # of the data, without the pad byte
    fourcc: bytes
    #: An odd-sized last chunk whose pad byte is missing (seen in the wild; tolerated).
    unpadded: bool = False

    @property
    def data_offset(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        pad = 1 if self.size & 1 and not self.unpadded else 0
        return self.offset + 8 + self.size + pad


@dataclasses.dataclass(frozen=True, slots=True)
class Riff:
    size: int  # the RIFF header's size field
    chunks: list[Chunk]


def scan(src: BinaryIO) -> Riff:
    """The RIFF size and the chunks inside the RIFF, each checked against it; reads only headers."""
    if src.writable():
        src.flush()  # headers are read with read_at, which bypasses the stream's buffer
    src.seek(0)
    head = src.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WEBP":
        raise UnsupportedFormatError("not a WebP (no RIFF/WEBP header)")
    (riff_size,) = struct.unpack("<I", head[4:8])
    riff_end = 8 + riff_size
    if riff_size < 4 + 8:
        raise CorruptMediaError(f"RIFF size {riff_size} leaves no room for a chunk", offset=4)
    if riff_end > stream_size(src):
        raise CorruptMediaError("WebP is shorter than its RIFF size (truncated)", offset=4)
    chunks: list[Chunk] = []
    pos = 12
    while pos < riff_end:
        if pos + 8 > riff_end:
            raise CorruptMediaError("RIFF chunk header runs past the RIFF end", offset=pos)
        fourcc, size = struct.unpack("<4sI", read_at(src, pos, 8).ljust(8, b"\x00"))
        data_end = pos + 8 + size
        if data_end > riff_end:
            raise CorruptMediaError(f"chunk {fourcc!r} runs past the RIFF end", offset=pos)
        chunk = Chunk(pos, size, fourcc, unpadded=bool(size & 1) and data_end == riff_end)
        chunks.append(chunk)
        if len(chunks) > _MAX_CHUNKS:
            raise MediaLimitError(f"WebP has more than {_MAX_CHUNKS} chunks")
        pos = chunk.end
    if not chunks:
        raise CorruptMediaError("WebP has no chunk", offset=12)
    return Riff(riff_size, chunks)


def _data(src: BinaryIO, chunk: Chunk, limit: int = xmp.MAX_PACKET) -> bytes:
    require_size(chunk.size, limit, f"WebP {chunk.fourcc.decode('latin-1')!r} chunk")
    src.seek(chunk.data_offset)
    return read_exact(src, chunk.size, f"WebP {chunk.fourcc.decode('latin-1')!r} chunk")


def _pack_chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) & 1 else b"")


def _canvas(src: BinaryIO, chunk: Chunk) -> tuple[int, int, bool]:
    """Width, height and "alpha is used" from a VP8 key-frame header or a VP8L header."""
    head = _head(src, chunk, min(chunk.size, 10))
    if chunk.fourcc == b"VP8 ":
        if len(head) < 10 or head[0] & 1 or head[3:6] != b"\x9d\x01\x2a":
            raise CorruptMediaError("VP8 chunk does not start with a key frame", offset=chunk.offset)
        width, height = struct.unpack("<HH", head[6:10])
        width, height, alpha = width & 0x3FFF, height & 0x3FFF, False
    else:
        if len(head) < 5 or head[0] != 0x2F:
            raise CorruptMediaError("VP8L chunk lacks its signature", offset=chunk.offset)
        (bits,) = struct.unpack("<I", head[1:5])
        width, height, alpha = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    if not width or not height:
        raise CorruptMediaError("WebP image has a zero dimension", offset=chunk.offset)
    return width, height, alpha


def _head(src: BinaryIO, chunk: Chunk, n: int) -> bytes:
    src.seek(chunk.data_offset)
    return read_exact(src, n, f"WebP {chunk.fourcc.decode('latin-1')!r} chunk header")


def _vp8x_for_simple(src: BinaryIO, riff: Riff) -> bytes:
    """The VP8X chunk that turns a simple (VP8/VP8L) file into the extended format, with XMP."""
    width, height, alpha = _canvas(src, riff.chunks[0])
    kinds = {c.fourcc for c in riff.chunks}
    flags = FLAG_XMP
    if alpha or b"ALPH" in kinds:
        flags |= FLAG_ALPHA
    if b"EXIF" in kinds:
        flags |= FLAG_EXIF
    data = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return _pack_chunk(b"VP8X", data)


def _target(src: BinaryIO, riff: Riff) -> tuple[Chunk | None, bytes | None]:
    """The ``XMP `` chunk to update (the first holding a label, else the first) and its packet."""
    first: tuple[Chunk, bytes] | None = None
    for chunk in riff.chunks:
        if chunk.fourcc == b"XMP ":
            packet = _data(src, chunk)
            if xmp.read_aigc(packet) is not None:
                return chunk, packet
            first = first or (chunk, packet)
    return first if first is not None else (None, None)


def _vp8x_flags(src: BinaryIO, chunk: Chunk) -> int:
    if chunk.size < 10:
        raise CorruptMediaError("VP8X chunk is shorter than 10 bytes", offset=chunk.offset)
    return _head(src, chunk, 1)[0]


class WebpLabeler(MetadataLabeler, InPlaceWriter):
    name = "webp-xmp"
    containers = frozenset({Container.WEBP})
    carrier = "XMP packet in the RIFF chunk 'XMP ' (extended format, VP8X XMP flag)"

    def read(self, src: BinaryIO) -> str | None:
        exif_label: str | None = None
        for chunk in scan(src).chunks:
            if chunk.fourcc == b"XMP ":
                found = xmp.read_aigc(_data(src, chunk))
                if found is not None:
                    return found
            elif chunk.fourcc == b"EXIF" and exif_label is None:
                tiff = _data(src, chunk).removeprefix(_EXIF_PREFIX)
                exif_label = exif.read_user_comment_label(tiff)
        return exif_label

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        riff = scan(src)
        first = riff.chunks[0]
        target, packet = _target(src, riff)
        new_chunk = _pack_chunk(b"XMP ", xmp.set_aigc(packet, label_json))
        edits: list[Edit] = []
        if first.fourcc == b"VP8X":
            flags = _vp8x_flags(src, first)
            if not flags & FLAG_XMP:
                edits.append(Edit(first.data_offset, 1, bytes([flags | FLAG_XMP])))
        elif first.fourcc in (b"VP8 ", b"VP8L"):
            edits.append(Edit(first.offset, 0, _vp8x_for_simple(src, riff)))
        else:
            raise CorruptMediaError(f"WebP starts with chunk {first.fourcc!r}", offset=first.offset)
        if target is not None:
            edits.append(Edit(target.offset, target.end - target.offset, new_chunk))
        else:
            anchor = [c for c in riff.chunks if c.fourcc in _BEFORE_XMP][-1]
            pad = b"\x00" if anchor.unpadded else b""
            edits.append(Edit(anchor.end, 0, pad + new_chunk))
        new_size = riff.size + sum(len(e.data) - e.length for e in edits)
        if new_size > _MAX_RIFF_SIZE:
            raise MediaLimitError("the labeled WebP would exceed the 4 GiB RIFF limit")
        edits.append(Edit(4, 4, struct.pack("<I", new_size)))
        splice(src, dst, edits)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        riff = scan(f)
        first = riff.chunks[0]
        target, packet = _target(f, riff)
        if first.fourcc != b"VP8X" or target is None or target.unpadded:
            return False
        flags = _vp8x_flags(f, first)
        new_chunk = _pack_chunk(b"XMP ", xmp.set_aigc(packet, label_json))
        if len(new_chunk) != target.end - target.offset:
            return False
        f.seek(target.offset)
        f.write(new_chunk)
        if not flags & FLAG_XMP:
            f.seek(first.data_offset)
            f.write(bytes([flags | FLAG_XMP]))
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        for chunk in scan(src).chunks:
            if chunk.fourcc in _PAYLOAD:
                yield chunk.fourcc
                yield from iter_range(src, chunk.data_offset, chunk.size)
