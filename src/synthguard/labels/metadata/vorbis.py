"""FLAC, Ogg Vorbis and Opus: the Vorbis comment ``AIGC=<json>``.

A Vorbis comment is a vendor string and a list of ``KEY=value`` fields. Here exactly one field is
named ``AIGC`` (field names are case-insensitive: any ``aigc=`` field is the label too, and a second
one is folded into the first); every other field, their order, the vendor string and anything after
the list (the framing bit, Opus's binary extension data) are kept byte for byte.

Why hand-written rather than mutagen, which reads and writes these tags: mutagen decodes every field as
text (a field that is not UTF-8 comes back altered), and edits files in place, so that a comment that
outgrows FLAC padding makes it move every audio byte through Python, and an Ogg comment that needs
another page makes it rewrite every page of the file. The structures are small and fully specified, so
this module edits them directly and copies the audio with ``copy_range``; mutagen and ffprobe serve the
tests as independent readers.

FLAC (optionally behind an ID3v2 tag, which is kept): the ``VORBIS_COMMENT`` metadata block is replaced
(or inserted after ``STREAMINFO``); every other block is copied as it is. A ``PADDING`` block absorbs the
change of size when it can, so that the frames do not move and relabeling is done in place; when it
cannot, the padding is set to 1 KiB for the next time. Payload: every byte after the last metadata
block (the frames).

Ogg Vorbis / Opus: the comment header packet is rebuilt and the header pages after the first (comment
and, for Vorbis, setup header) are paginated again into the same number of pages when the packets
allow it, so that no later page changes; otherwise every later page of the stream is renumbered, with
its checksum, in one streaming pass. Only the first logical stream is labeled; a stream multiplexed
into the header pages is refused. Payload: the bodies of the pages after the header pages (the audio
packets' bytes), which renumbering never changes.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import copy_range, iter_range, read_exact, stream_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata.id3 import read_id3v2_header
from synthguard.media import Container

__all__ = ["Comments", "VorbisCommentLabeler", "ogg_crc", "paginate"]

FIELD: Final = b"AIGC"
#: Header packets (or a FLAC comment block) larger than this are refused as hostile.
MAX_HEADER: Final = 64 * 1024 * 1024
_MAX_BLOCKS: Final = 100_000
_GROWTH_PADDING: Final = 1024
#: Moving more than this inside a file in place is left to a rewrite.
_MAX_IN_PLACE_MOVE: Final = 16 * 1024 * 1024

_STREAMINFO: Final = 0
_PADDING: Final = 1
_VORBIS_COMMENT: Final = 4
_FLAC_MAX_BLOCK: Final = (1 << 24) - 1


# -- the comment list ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Comments:
    """A Vorbis comment: vendor, ``KEY=value`` fields (raw bytes), and what follows the list."""

    vendor: bytes
    fields: tuple[bytes, ...]
    tail: bytes = b""

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> Comments:
        """Parse a comment list; ``offset`` (where ``data`` starts in the file) is for errors."""

        def u32(pos: int) -> int:
            if pos + 4 > len(data):
                raise CorruptMediaError("Vorbis comment truncated", offset=offset + pos)
            value: int = struct.unpack_from("<I", data, pos)[0]
            return value

        vendor_length = u32(0)
        pos = 4
        if vendor_length > len(data) - pos:
            raise CorruptMediaError("Vorbis comment vendor string runs past its packet", offset=offset)
        vendor = data[pos : pos + vendor_length]
        pos += vendor_length
        count = u32(pos)
        pos += 4
        if count > (len(data) - pos) // 4:
            raise CorruptMediaError(f"Vorbis comment claims {count} fields", offset=offset + pos - 4)
        fields = []
        for _ in range(count):
            length = u32(pos)
            pos += 4
            if length > len(data) - pos:
                raise CorruptMediaError("Vorbis comment field runs past its packet", offset=offset + pos)
            fields.append(data[pos : pos + length])
            pos += length
        return cls(vendor, tuple(fields), data[pos:])

    def to_bytes(self) -> bytes:
        parts = [struct.pack("<I", len(self.vendor)), self.vendor, struct.pack("<I", len(self.fields))]
        for field in self.fields:
            parts += [struct.pack("<I", len(field)), field]
        parts.append(self.tail)
        return b"".join(parts)

    def label(self) -> str | None:
        """The first ``AIGC`` field's value."""
        for field in self.fields:
            if _is_label(field):
                try:
                    return field[len(FIELD) + 1 :].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CorruptMediaError("the AIGC Vorbis comment is not UTF-8") from exc
        return None

    def with_label(self, label_json: str) -> Comments:
        """A copy with exactly one ``AIGC`` field, where the first one was (else at the end)."""
        new = FIELD + b"=" + label_json.encode("utf-8")
        fields: list[bytes] = []
        placed = False
        for field in self.fields:
            if not _is_label(field):
                fields.append(field)
            elif not placed:
                fields.append(new)
                placed = True
        if not placed:
            fields.append(new)
        return dataclasses.replace(self, fields=tuple(fields))


def _is_label(field: bytes) -> bool:
    key, sep, _ = field.partition(b"=")
    return bool(sep) and key.upper() == FIELD


# -- FLAC ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Block:
    type: int
    offset: int  # of its 4-byte header
    length: int  # of its body

    @property
    def body(self) -> int:
        return self.offset + 4

    @property
    def end(self) -> int:
        return self.offset + 4 + self.length


#: A piece of output: bytes, or ``(offset, length)`` of the source.
_Piece = bytes | tuple[int, int]


def _scan_flac(src: BinaryIO) -> tuple[int, list[_Block]]:
    """The offset of ``fLaC`` (after an ID3v2 tag, if any) and the metadata blocks."""
    tag = read_id3v2_header(src)
    start = tag.end if tag is not None else 0
    src.seek(start)
    if src.read(4) != b"fLaC":
        raise UnsupportedFormatError("not FLAC (no fLaC marker)")
    size = stream_size(src)
    blocks: list[_Block] = []
    pos = start + 4
    while True:
        src.seek(pos)
        head = read_exact(src, 4, "FLAC metadata block header")
        kind = head[0] & 0x7F
        length = int.from_bytes(head[1:4], "big")
        if kind == 127:
            raise CorruptMediaError("FLAC metadata block of the invalid type 127", offset=pos)
        if not blocks and (kind != _STREAMINFO or length != 34):
            raise CorruptMediaError("FLAC does not start with a STREAMINFO block", offset=pos)
        block = _Block(kind, pos, length)
        if block.end > size:
            raise CorruptMediaError("FLAC metadata block runs past the end of the file", offset=pos)
        blocks.append(block)
        if len(blocks) > _MAX_BLOCKS:
            raise MediaLimitError(f"more than {_MAX_BLOCKS} FLAC metadata blocks")
        if head[0] & 0x80:
            return start, blocks
        pos = block.end


def _flac_comment_block(blocks: list[_Block]) -> _Block | None:
    found = [b for b in blocks if b.type == _VORBIS_COMMENT]
    if len(found) > 1:
        raise CorruptMediaError(
            "FLAC with two VORBIS_COMMENT blocks (the format allows one)", offset=found[1].offset
        )
    return found[0] if found else None


def _read_block(src: BinaryIO, block: _Block) -> bytes:
    src.seek(block.body)
    return read_exact(src, block.length, "FLAC metadata block")


def _flac_plan(src: BinaryIO, label_json: str) -> tuple[int, list[_Piece], int]:
    """(where the metadata starts, its new pieces, where the frames start)."""
    start, blocks = _scan_flac(src)
    comment = _flac_comment_block(blocks)
    old = Comments.parse(_read_block(src, comment), comment.body) if comment else Comments(b"", ())
    body = old.with_label(label_json).to_bytes()
    if len(body) > _FLAC_MAX_BLOCK:
        raise MediaLimitError(f"FLAC comment block of {len(body)} bytes exceeds the format's 16 MiB")
    # (type, source block or new body)
    layout: list[tuple[int, _Block | bytes]] = [(b.type, b) for b in blocks]
    if comment is not None:
        layout[blocks.index(comment)] = (_VORBIS_COMMENT, body)
    else:
        layout.insert(1, (_VORBIS_COMMENT, body))
    delta = len(body) - (comment.length if comment is not None else -4)
    pads = [i for i, (kind, _) in enumerate(layout) if kind == _PADDING]
    if delta:
        if pads:
            index = pads[-1]
            source = layout[index][1]
            room = source.length if isinstance(source, _Block) else len(source)
            if room - delta >= 0:
                layout[index] = (_PADDING, bytes(room - delta))
            elif room - delta == -4:
                del layout[index]
            else:
                layout[index] = (_PADDING, bytes(_GROWTH_PADDING))
        elif delta > 0:
            layout.append((_PADDING, bytes(_GROWTH_PADDING)))
        elif -delta >= 4:
            layout.append((_PADDING, bytes(-delta - 4)))
    pieces: list[_Piece] = [(0, start + 4)]
    for index, (kind, source) in enumerate(layout):
        length = source.length if isinstance(source, _Block) else len(source)
        last = 0x80 if index == len(layout) - 1 else 0
        pieces.append(bytes([last | kind]) + length.to_bytes(3, "big"))
        pieces.append((source.body, source.length) if isinstance(source, _Block) else source)
    return start, pieces, blocks[-1].end


def _emit(src: BinaryIO, dst: BinaryIO, pieces: list[_Piece]) -> None:
    for piece in pieces:
        if isinstance(piece, bytes):
            dst.write(piece)
        else:
            copy_range(src, dst, *piece)


def _piece_length(piece: _Piece) -> int:
    return len(piece) if isinstance(piece, bytes) else piece[1]


def _write_pieces_in_place(f: BinaryIO, pieces: list[_Piece], end: int) -> bool:
    """Write ``pieces`` over ``f`` from offset 0 when they end exactly at ``end``."""
    if sum(_piece_length(p) for p in pieces) != end:
        return False
    resolved: list[tuple[int, bytes | None]] = []
    position = moved = 0
    for piece in pieces:
        if isinstance(piece, bytes):
            resolved.append((position, piece))
        elif piece[0] == position:
            resolved.append((position, None))  # already where it belongs
        else:
            moved += piece[1]
            if moved > _MAX_IN_PLACE_MOVE:
                return False
            f.seek(piece[0])
            resolved.append((position, read_exact(f, piece[1], "FLAC metadata block")))
        position += _piece_length(piece)
    for offset, data in resolved:
        if data is not None:
            f.seek(offset)
            f.write(data)
    return True


# -- Ogg -------------------------------------------------------------------------------------------

_BITREV: Final = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_PAGE_HEAD: Final = struct.Struct("<4sBBqIIIB")
_CONTINUED: Final = 0x01
_BOS: Final = 0x02
_EOS: Final = 0x04


def ogg_crc(data: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, no pre/post inversion),
    computed by zlib on bit-reversed bytes: about as fast as copying."""
    crc = zlib.crc32(data.translate(_BITREV), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{crc:032b}"[::-1], 2)


@dataclasses.dataclass(frozen=True, slots=True)
class _Page:
    offset: int
    flags: int
    serial: int
    sequence: int
    lacing: bytes

    @property
    def body(self) -> int:
        return self.offset + 27 + len(self.lacing)

    @property
    def body_length(self) -> int:
        return sum(self.lacing)

    @property
    def end(self) -> int:
        return self.body + self.body_length


def _read_page(src: BinaryIO, offset: int, size: int) -> _Page:
    src.seek(offset)
    head = src.read(27)
    if len(head) < 27 or head[:4] != b"OggS":
        raise CorruptMediaError("expected an Ogg page", offset=offset)
    _, version, flags, _granule, serial, sequence, _crc, count = _PAGE_HEAD.unpack(head)
    if version != 0:
        raise CorruptMediaError(f"Ogg page of version {version}", offset=offset)
    page = _Page(offset, flags, serial, sequence, read_exact(src, count, "Ogg lacing table"))
    if page.end > size:
        raise CorruptMediaError("Ogg page runs past the end of the file", offset=offset)
    return page


@dataclasses.dataclass(frozen=True, slots=True)
class _OggHeaders:
    magic: bytes  # what precedes the comment list in the comment packet
    first: _Page  # the identification header's page
    comments: Comments
    #: The header packets after the identification header (comment, and setup for Vorbis).
    packets: list[bytes]
    pages: list[_Page]  # their pages

    @property
    def end(self) -> int:
        return self.pages[-1].end


_OGG_KINDS: Final = {
    # identification header prefix: (comment header prefix, header packets after the first)
    b"\x01vorbis": (b"\x03vorbis", 2),
    b"OpusHead": (b"OpusTags", 1),
}


def _scan_ogg(src: BinaryIO, *, comment_only: bool) -> _OggHeaders:
    size = stream_size(src)
    first = _read_page(src, 0, size)
    if not first.flags & _BOS:
        raise CorruptMediaError("the first Ogg page does not begin a stream", offset=0)
    if not first.lacing or first.lacing[-1] == 255 or any(v != 255 for v in first.lacing[:-1]):
        raise CorruptMediaError("the first Ogg page must hold exactly one whole packet", offset=0)
    src.seek(first.body)
    ident = src.read(8)
    kind = next((k for k in _OGG_KINDS if ident.startswith(k)), None)
    if kind is None:
        raise UnsupportedFormatError("Ogg stream that is neither Vorbis nor Opus")
    magic, wanted = _OGG_KINDS[kind]
    if comment_only:
        wanted = 1
    packets: list[bytes] = []
    pages: list[_Page] = []
    partial = bytearray()
    in_packet = False
    total = 0
    pos = first.end
    while len(packets) < wanted:
        page = _read_page(src, pos, size)
        if page.serial != first.serial or page.flags & _BOS:
            raise UnsupportedFormatError("multiplexed Ogg (another stream's pages among the header pages)")
        if bool(page.flags & _CONTINUED) != in_packet:
            raise CorruptMediaError("Ogg page continuation flag does not match its packets", offset=pos)
        total += page.body_length
        if total > MAX_HEADER:
            raise MediaLimitError(f"Ogg header packets larger than {MAX_HEADER} bytes")
        src.seek(page.body)
        body = read_exact(src, page.body_length, "Ogg page body")
        pages.append(page)
        start = 0
        for index, value in enumerate(page.lacing):
            partial += body[start : start + value]
            start += value
            if value < 255:
                packets.append(bytes(partial))
                partial.clear()
                if len(packets) == wanted and index != len(page.lacing) - 1 and not comment_only:
                    raise CorruptMediaError("audio data shares a page with the header packets", offset=pos)
                if len(packets) == wanted:
                    break
        in_packet = bool(partial)
        pos = page.end
    comment = packets[0]
    if not comment.startswith(magic):
        raise CorruptMediaError("the second Ogg packet is not a comment header", offset=pages[0].body)
    parsed = Comments.parse(comment[len(magic) :], pages[0].body + len(magic))
    return _OggHeaders(magic, first, parsed, packets, pages)


def paginate(
    packets: list[bytes], serial: int, first_sequence: int, pages_wanted: int | None = None
) -> list[bytes]:
    """Ogg pages (granule position 0, as header pages have) holding ``packets``, each packet's
    first page starting fresh. With ``pages_wanted`` the segments are spread over exactly that many
    pages when at least one segment per page and at most 255 allow it; else they are packed."""
    segments: list[tuple[int, int, int]] = []  # (packet index, start in packet, lacing value)
    for index, packet in enumerate(packets):
        full, rest = divmod(len(packet), 255)
        segments += [(index, 255 * i, 255) for i in range(full)]
        segments.append((index, 255 * full, rest))
    total = len(segments)
    minimum = -(-total // 255)
    count = pages_wanted if pages_wanted is not None and minimum <= pages_wanted <= total else minimum
    pages: list[bytes] = []
    taken = 0
    for number in range(count):
        take = min(255, total - taken - (count - number - 1))
        chunk = segments[taken : taken + take]
        continued = taken > 0 and segments[taken - 1][2] == 255
        taken += take
        lacing = bytes(value for _, _, value in chunk)
        body = b"".join(packets[i][s : s + v] for i, s, v in chunk)
        head = _PAGE_HEAD.pack(
            b"OggS", 0, _CONTINUED if continued else 0, 0, serial, first_sequence + number, 0, take
        )
        page = bytearray(head + lacing + body)
        struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
        pages.append(bytes(page))
    return pages


def _ogg_new_pages(src: BinaryIO, label_json: str) -> tuple[_OggHeaders, list[bytes]]:
    headers = _scan_ogg(src, comment_only=False)
    comment = headers.magic + headers.comments.with_label(label_json).to_bytes()
    if len(comment) > MAX_HEADER:
        raise MediaLimitError(f"Ogg comment header larger than {MAX_HEADER} bytes")
    packets = [comment, *headers.packets[1:]]
    pages = paginate(packets, headers.first.serial, headers.first.sequence + 1, len(headers.pages))
    return headers, pages


def _renumber(src: BinaryIO, dst: BinaryIO, start: int, serial: int, shift: int) -> None:
    """Copy the pages from ``start`` with ``shift`` added to the sequence numbers of ``serial``'s
    pages (checksums recomputed) until that stream ends; the rest as it is."""
    size = stream_size(src)
    pos = start
    while pos < size:
        try:
            page = _read_page(src, pos, size)
        except CorruptMediaError:
            break  # trailing bytes that are not pages: kept as they are
        if page.serial == serial:
            src.seek(page.offset)
            data = bytearray(read_exact(src, page.end - page.offset, "Ogg page"))
            struct.pack_into("<II", data, 18, (page.sequence + shift) & 0xFFFFFFFF, 0)
            struct.pack_into("<I", data, 22, ogg_crc(bytes(data)))
            dst.write(data)
        else:
            copy_range(src, dst, page.offset, page.end - page.offset)
        pos = page.end
        if page.serial == serial and page.flags & _EOS:
            break
    copy_range(src, dst, pos)


def _ogg_payload(src: BinaryIO, start: int) -> Iterator[bytes]:
    size = stream_size(src)
    pos = start
    while pos < size:
        try:
            page = _read_page(src, pos, size)
        except CorruptMediaError:
            break
        yield from iter_range(src, page.body, page.body_length)
        pos = page.end
    yield from iter_range(src, pos)


# -- the labeler -----------------------------------------------------------------------------------


def _is_ogg(src: BinaryIO) -> bool:
    src.seek(0)
    return src.read(4) == b"OggS"


class VorbisCommentLabeler(MetadataLabeler, InPlaceWriter):
    name = "vorbis-comment"
    containers = frozenset({Container.FLAC, Container.OGG_VORBIS, Container.OPUS})
    carrier = "Vorbis comment AIGC=<json>"

    def read(self, src: BinaryIO) -> str | None:
        if _is_ogg(src):
            return _scan_ogg(src, comment_only=True).comments.label()
        _, blocks = _scan_flac(src)
        comment = _flac_comment_block(blocks)
        if comment is None:
            return None
        return Comments.parse(_read_block(src, comment), comment.body).label()

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        if _is_ogg(src):
            headers, pages = _ogg_new_pages(src, label_json)
            copy_range(src, dst, 0, headers.first.end)
            for page in pages:
                dst.write(page)
            if len(pages) == len(headers.pages):
                copy_range(src, dst, headers.end)
            else:
                _renumber(src, dst, headers.end, headers.first.serial, len(pages) - len(headers.pages))
            return
        _, pieces, frames = _flac_plan(src, label_json)
        _emit(src, dst, pieces)
        copy_range(src, dst, frames)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        if _is_ogg(f):
            headers, pages = _ogg_new_pages(f, label_json)
            data = b"".join(pages)
            if len(data) != headers.end - headers.first.end:
                return False
            f.seek(headers.first.end)
            f.write(data)
            return True
        _, pieces, frames = _flac_plan(f, label_json)
        return _write_pieces_in_place(f, pieces, frames)

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        if _is_ogg(src):
            yield from _ogg_payload(src, _scan_ogg(src, comment_only=False).end)
            return
        _, blocks = _scan_flac(src)
        yield from iter_range(src, blocks[-1].end)
