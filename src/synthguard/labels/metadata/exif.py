"""EXIF / TIFF image file directories: a bounded reader, and the UserComment label seen in the wild.

Some generators put the wrapped label ``{"AIGC": {...}}`` in EXIF UserComment (tag 0x9286 in the EXIF
IFD) instead of XMP. This module reads IFDs from a TIFF structure held in memory (the body of a JPEG
``Exif`` APP1 segment, a WebP ``EXIF`` chunk, a PNG ``eXIf`` chunk) with every offset and count
checked against the buffer, so a hostile directory raises ``CorruptMediaError`` instead of reading
out of bounds or looping.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Final

from synthguard.errors import CorruptMediaError

__all__ = [
    "IfdEntry",
    "TiffHeader",
    "read_ifd",
    "read_tiff_header",
    "read_user_comment_label",
    "user_comment_label",
]

#: Bytes per value for each TIFF field type.
TYPE_SIZES: Final = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
    17: 8,
    18: 8,
}
EXIF_IFD_POINTER: Final = 0x8769
USER_COMMENT: Final = 0x9286
_MAX_ENTRIES: Final = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class TiffHeader:
    byte_order: str  # "<" or ">"
    first_ifd: int


@dataclasses.dataclass(frozen=True, slots=True)
class IfdEntry:
    tag: int
    type: int
    count: int
    #: Where the value's bytes start in the buffer (inline in the entry when they fit in 4 bytes).
    value_offset: int
    #: Where the 12-byte entry itself starts.
    entry_offset: int

    @property
    def value_size(self) -> int:
        return TYPE_SIZES.get(self.type, 1) * self.count


def read_tiff_header(data: bytes) -> TiffHeader:
    if len(data) < 8:
        raise CorruptMediaError("TIFF header truncated", offset=0)
    if data[:4] == b"II*\x00":
        order = "<"
    elif data[:4] == b"MM\x00*":
        order = ">"
    else:
        raise CorruptMediaError("not a TIFF header (byte order mark missing)", offset=0)
    (first,) = struct.unpack(order + "I", data[4:8])
    return TiffHeader(order, first)


def read_ifd(data: bytes, offset: int, order: str) -> tuple[list[IfdEntry], int]:
    """The entries of the IFD at ``offset`` and the offset of the next IFD (0 when none)."""
    if offset < 8 or offset + 2 > len(data):
        raise CorruptMediaError("IFD offset points outside the TIFF data", offset=offset)
    (count,) = struct.unpack_from(order + "H", data, offset)
    if count > _MAX_ENTRIES:
        raise CorruptMediaError(f"IFD claims {count} entries", offset=offset)
    end = offset + 2 + 12 * count
    if end + 4 > len(data):
        raise CorruptMediaError("IFD runs past the end of the TIFF data", offset=offset)
    entries = []
    for i in range(count):
        pos = offset + 2 + 12 * i
        tag, type_, n = struct.unpack_from(order + "HHI", data, pos)
        size = TYPE_SIZES.get(type_, 1) * n
        if size <= 4:
            value_offset = pos + 8
        else:
            (value_offset,) = struct.unpack_from(order + "I", data, pos + 8)
        entries.append(IfdEntry(tag, type_, n, value_offset, pos))
    (next_ifd,) = struct.unpack_from(order + "I", data, end)
    return entries, next_ifd


def entry_bytes(data: bytes, entry: IfdEntry) -> bytes:
    end = entry.value_offset + entry.value_size
    if entry.value_offset < 0 or end > len(data):
        raise CorruptMediaError(
            f"value of tag {entry.tag:#06x} points outside the TIFF data", offset=entry.entry_offset
        )
    return data[entry.value_offset : end]


def _decode_user_comment(raw: bytes, order: str) -> str:
    code, text = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        encoding = "utf-16-le" if order == "<" else "utf-16-be"
        if text[:2] in (b"\xff\xfe", b"\xfe\xff"):
            encoding = "utf-16"
        return text.decode(encoding, errors="replace")
    if code.startswith(b"ASCII") or code == b"\x00" * 8:
        return text.decode("utf-8", errors="replace")
    return raw.decode("utf-8", errors="replace")


def read_user_comment_label(tiff: bytes) -> str | None:
    """The label JSON in EXIF UserComment, if it holds one (wrapped or flat form); else ``None``.

    Never raises for a UserComment that is simply not a label; raises ``CorruptMediaError`` only for
    a directory structure that cannot be walked.
    """
    if b"AIGC" not in tiff and b"A\x00I\x00G\x00C" not in tiff and b"\x00A\x00I\x00G" not in tiff:
        return None
    header = read_tiff_header(tiff)
    entries, _ = read_ifd(tiff, header.first_ifd, header.byte_order)
    pointer = next((e for e in entries if e.tag == EXIF_IFD_POINTER), None)
    if pointer is None:
        return None
    (exif_offset,) = struct.unpack(header.byte_order + "I", entry_bytes(tiff, pointer)[:4])
    exif_entries, _ = read_ifd(tiff, exif_offset, header.byte_order)
    comment = next((e for e in exif_entries if e.tag == USER_COMMENT), None)
    if comment is None:
        return None
    return user_comment_label(entry_bytes(tiff, comment), header.byte_order)


def user_comment_label(raw: bytes, byte_order: str) -> str | None:
    """The label JSON held by a UserComment value (8-byte character code, then the text), if it
    holds one; else ``None``. ``byte_order`` ("<" or ">") is the TIFF's, for UNICODE comments."""
    text = _decode_user_comment(raw, byte_order).strip("\x00 \r\n")
    if text.startswith("{") and '"Label"' in text:
        return text
    return None
