"""JPEG: the XMP packet in an APP1 segment (``http://ns.adobe.com/xap/1.0/`` + NUL).

Why hand-written: the carrier is one segment among the markers before the first SOS, so labeling is
"rewrite a few header segments, then copy the scan data unchanged" (``copy_file_range`` for the bulk).
exiv2 (pyexiv2) rewrites the whole file through its own buffers, about a second copy's cost on a
12-megapixel photo, and Pillow would re-encode. Reading seeks from marker to marker and reads only the
XMP and EXIF segments, so it costs the same on a 100 KB or a 100 MB file.

Variants read: the XMP attribute form, and a label in the EXIF UserComment (wrapped form) seen in the
wild (``exif.py``). Everything else (JFIF, EXIF with its orientation, ICC profile segments, MPF, other
XMP properties, Extended XMP, comments, trailers after EOI) is kept byte for byte.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import copy_range, iter_range, read_exact
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata import exif, xmp
from synthguard.media import Container

__all__ = ["JpegLabeler"]

XMP_ID: Final = b"http://ns.adobe.com/xap/1.0/\x00"
EXIF_ID: Final = b"Exif\x00\x00"
_SOS: Final = 0xDA
_EOI: Final = 0xD9
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})
#: More header segments than this before the first scan is hostile, not a photo.
_MAX_SEGMENTS: Final = 10_000
_MAX_SEGMENT_BODY: Final = 65533


@dataclasses.dataclass(frozen=True, slots=True)
class Segment:
    marker: int
    offset: int  # of the 0xFF byte
    length: int  # the segment's length field (covers itself and the body); 0 for standalone

    @property
    def body_offset(self) -> int:
        return self.offset + 4

    @property
    def end(self) -> int:
        return self.offset + 2 + self.length

    def is_app(self) -> bool:
        return 0xE0 <= self.marker <= 0xEF or self.marker == 0xFE


def scan_segments(src: BinaryIO) -> tuple[list[Segment], int]:
    """The segments before the first SOS, and the offset of that SOS (or of EOI, or the end)."""
    src.seek(0)
    if src.read(2) != b"\xff\xd8":
        raise UnsupportedFormatError("not a JPEG (no SOI marker)")
    segments: list[Segment] = []
    pos = 2
    while True:
        src.seek(pos)
        head = src.read(2)
        if len(head) < 2:
            raise CorruptMediaError("JPEG ends before its first scan", offset=pos)
        if head[0] != 0xFF:
            raise CorruptMediaError(f"expected a marker, found byte {head[0]:#04x}", offset=pos)
        marker = head[1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (_SOS, _EOI):
            return segments, pos
        if marker in _STANDALONE:
            segments.append(Segment(marker, pos, 0))
            pos += 2
            continue
        if marker in (0x00, 0xD8):
            raise CorruptMediaError(f"marker {marker:#04x} where a segment should start", offset=pos)
        (length,) = struct.unpack(">H", read_exact(src, 2, "JPEG segment length"))
        if length < 2:
            raise CorruptMediaError(f"segment length {length} is less than 2", offset=pos)
        segments.append(Segment(marker, pos, length))
        if len(segments) > _MAX_SEGMENTS:
            raise MediaLimitError(f"more than {_MAX_SEGMENTS} header segments")
        pos += 2 + length


def _body(src: BinaryIO, segment: Segment) -> bytes:
    src.seek(segment.body_offset)
    return read_exact(src, segment.length - 2, f"JPEG segment {segment.marker:#04x}")


def _is_xmp(src: BinaryIO, segment: Segment) -> bool:
    if segment.marker != 0xE1 or segment.length - 2 < len(XMP_ID):
        return False
    src.seek(segment.body_offset)
    return src.read(len(XMP_ID)) == XMP_ID


def _is_exif(src: BinaryIO, segment: Segment) -> bool:
    if segment.marker != 0xE1 or segment.length - 2 < len(EXIF_ID):
        return False
    src.seek(segment.body_offset)
    return src.read(len(EXIF_ID)) == EXIF_ID


class JpegLabeler(MetadataLabeler, InPlaceWriter):
    name = "jpeg-xmp"
    containers = frozenset({Container.JPEG})
    carrier = "XMP packet in APP1 (http://ns.adobe.com/xap/1.0/)"

    def read(self, src: BinaryIO) -> str | None:
        segments, _ = scan_segments(src)
        exif_label: str | None = None
        for segment in segments:
            if _is_xmp(src, segment):
                found = xmp.read_aigc(_body(src, segment)[len(XMP_ID) :])
                if found is not None:
                    return found
            elif exif_label is None and _is_exif(src, segment):
                exif_label = exif.read_user_comment_label(_body(src, segment)[len(EXIF_ID) :])
        return exif_label

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        segments, scan_start = scan_segments(src)
        xmp_segments = [s for s in segments if _is_xmp(src, s)]
        if xmp_segments:
            target = xmp_segments[0]
            packet = xmp.set_aigc(_body(src, target)[len(XMP_ID) :], label_json)
        else:
            # after JFIF (APP0) and EXIF (APP1) when they lead the file, as exiftool places it
            insert_at = 0
            for index, segment in enumerate(segments):
                if segment.marker == 0xE0 or _is_exif(src, segment):
                    insert_at = index + 1
                else:
                    break
            target = None
            packet = xmp.set_aigc(None, label_json)
        new_body = XMP_ID + packet
        if len(new_body) > _MAX_SEGMENT_BODY:
            raise MediaLimitError(
                f"XMP packet with the label is {len(new_body)} bytes; an APP1 segment holds at "
                f"most {_MAX_SEGMENT_BODY}"
            )
        new_segment = b"\xff\xe1" + struct.pack(">H", len(new_body) + 2) + new_body
        dst.write(b"\xff\xd8")
        pos = 2
        for index, segment in enumerate(segments):
            if target is None and index == insert_at:
                copy_range(src, dst, pos, segment.offset - pos)
                dst.write(new_segment)
                pos = segment.offset
            if segment is target:
                copy_range(src, dst, pos, segment.offset - pos)
                dst.write(new_segment)
                pos = segment.end
        if target is None and insert_at == len(segments):
            copy_range(src, dst, pos, scan_start - pos)
            dst.write(new_segment)
            pos = scan_start
        copy_range(src, dst, pos)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        """In place when the first XMP packet's padding absorbs the change (Adobe writers pad
        packets for this); otherwise ``False`` and the file is untouched."""
        segments, _ = scan_segments(f)
        target = next((s for s in segments if _is_xmp(f, s)), None)
        if target is None:
            return False
        old = _body(f, target)
        new = XMP_ID + xmp.set_aigc(old[len(XMP_ID) :], label_json)
        if len(new) != len(old):
            return False
        f.seek(target.body_offset)
        f.write(new)
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        segments, scan_start = scan_segments(src)
        for segment in segments:
            if not segment.is_app():
                yield from iter_range(src, segment.offset, segment.end - segment.offset)
        yield from iter_range(src, scan_start)
