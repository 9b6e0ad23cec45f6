"""What a file is, from its bytes: magic numbers and structure, never its name.

``identify(stream)`` looks at the first bytes (and, for ZIP, ISOBMFF, EBML and Ogg, at the structure
that tells family members apart) and returns a ``MediaInfo``. A format it recognises but that has no
label carrier (a BigTIFF, an Ogg Theora stream, a plain ZIP) raises ``UnsupportedFormatError`` naming
what was found; bytes it cannot place raise the same with ``unknown``.

>>> import io
>>> identify(io.BytesIO(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(32))).container
<Container.PNG: 'png'>
"""

from __future__ import annotations

import dataclasses
import enum
import os
import struct
import zipfile
from pathlib import Path
from typing import BinaryIO, Final

from synthguard.errors import CorruptMediaError, UnsupportedFormatError

__all__ = ["Container", "MediaInfo", "Modality", "identify", "identify_path"]


class Modality(enum.Enum):
    """What a person perceives."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    TEXT = "text"


class Container(enum.Enum):
    """File formats that carry a label. Values are stable: they appear in reports and storage."""

    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    GIF = "gif"
    TIFF = "tiff"
    HEIF = "heif"
    AVIF = "avif"
    MP4 = "mp4"
    MOV = "mov"
    M4A = "m4a"
    MATROSKA = "matroska"
    WEBM = "webm"
    AVI = "avi"
    FLV = "flv"
    WAV = "wav"
    MP3 = "mp3"
    FLAC = "flac"
    OGG_VORBIS = "ogg-vorbis"
    OPUS = "opus"
    DOCX = "docx"
    XLSX = "xlsx"
    PPTX = "pptx"
    PDF = "pdf"
    MARKDOWN = "markdown"

    @property
    def modality(self) -> Modality:
        return _MODALITY[self]


_MODALITY: Final = {
    **dict.fromkeys(
        (
            Container.JPEG,
            Container.PNG,
            Container.WEBP,
            Container.GIF,
            Container.TIFF,
            Container.HEIF,
            Container.AVIF,
        ),
        Modality.IMAGE,
    ),
    **dict.fromkeys(
        (
            Container.MP4,
            Container.MOV,
            Container.MATROSKA,
            Container.WEBM,
            Container.AVI,
            Container.FLV,
        ),
        Modality.VIDEO,
    ),
    **dict.fromkeys(
        (
            Container.M4A,
            Container.WAV,
            Container.MP3,
            Container.FLAC,
            Container.OGG_VORBIS,
            Container.OPUS,
        ),
        Modality.AUDIO,
    ),
    **dict.fromkeys(
        (Container.DOCX, Container.XLSX, Container.PPTX, Container.PDF, Container.MARKDOWN),
        Modality.TEXT,
    ),
}


@dataclasses.dataclass(frozen=True, slots=True)
class MediaInfo:
    container: Container

    @property
    def modality(self) -> Modality:
        return self.container.modality


_HEAD: Final = 4096

_HEIF_BRANDS: Final = {
    b"heic",
    b"heix",
    b"heim",
    b"heis",
    b"hevc",
    b"hevx",
    b"mif1",
    b"msf1",
    b"mif2",
    b"hevm",
    b"hevs",
}
_AVIF_BRANDS: Final = {b"avif", b"avis"}
_M4A_BRANDS: Final = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_QT_TOP_BOXES: Final = {b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}


def identify_path(path: str | os.PathLike[str]) -> MediaInfo:
    """``identify`` on a file by name (the name itself is never consulted)."""
    with Path(path).open("rb") as fh:
        try:
            return identify(fh)
        except UnsupportedFormatError as exc:
            raise exc.with_path(path) from None


def identify(stream: BinaryIO) -> MediaInfo:
    """Tell the container from the bytes at the stream's start; leaves the position at 0."""
    stream.seek(0)
    head = stream.read(_HEAD)
    stream.seek(0)
    try:
        return MediaInfo(_sniff(stream, head))
    finally:
        stream.seek(0)


def _sniff(stream: BinaryIO, head: bytes) -> Container:
    if not head:
        raise UnsupportedFormatError("empty file (zero bytes)")
    if head.startswith(b"\xff\xd8\xff"):
        return Container.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Container.PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Container.GIF
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Container.TIFF
    if head[:4] in (b"II+\x00", b"MM\x00+"):
        raise UnsupportedFormatError("BigTIFF")
    if head[:4] == b"RIFF" and len(head) >= 12:
        form = head[8:12]
        riff = {b"WEBP": Container.WEBP, b"WAVE": Container.WAV, b"AVI ": Container.AVI}
        if form in riff:
            return riff[form]
        raise UnsupportedFormatError(f"RIFF form {form.decode('latin-1')!r}")
    if head[:4] in (b"RF64", b"BW64"):
        raise UnsupportedFormatError("RF64/BW64 (64-bit WAV)")
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_isobmff(head)
    if len(head) >= 8 and head[4:8] in _QT_TOP_BOXES:
        return Container.MOV
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _sniff_ebml(head)
    if head.startswith(b"FLV\x01"):
        return Container.FLV
    if head.startswith(b"fLaC"):
        return Container.FLAC
    if head.startswith(b"OggS"):
        return _sniff_ogg(head)
    if head.startswith(b"ID3"):
        return _sniff_after_id3(stream, head)
    if _is_mpeg_audio_frame(head):
        return Container.MP3
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(stream)
    if b"%PDF-" in head[:1024]:
        return Container.PDF
    return _sniff_text(head)


def _sniff_isobmff(head: bytes) -> Container:
    (size,) = struct.unpack(">I", head[:4])
    major = head[8:12]
    brands = {major}
    end = min(size, len(head)) if size >= 16 else 16
    brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
    if major in _AVIF_BRANDS or (
        major not in _HEIF_BRANDS
        and brands & _AVIF_BRANDS
        and not brands & {b"isom", b"mp41", b"mp42", b"qt  "}
    ):
        return Container.AVIF
    if major in _HEIF_BRANDS:
        return Container.HEIF
    if major == b"qt  ":
        return Container.MOV
    if major in _M4A_BRANDS:
        return Container.M4A
    if major in (b"crx ",):
        raise UnsupportedFormatError("Canon CR3 raw (ISOBMFF)")
    if major.startswith(b"3g"):
        return Container.MP4
    return Container.MP4


def _read_vint(data: bytes, pos: int) -> tuple[int, int]:
    """An EBML variable-length integer: (value, length). Raises on a malformed one."""
    if pos >= len(data):
        raise CorruptMediaError("EBML header truncated", offset=pos)
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8 or pos + length > len(data):
        raise CorruptMediaError("malformed EBML variable-length integer", offset=pos)
    value = first & (mask - 1)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, length


def _sniff_ebml(head: bytes) -> Container:
    pos = 4
    size, n = _read_vint(head, pos)
    pos += n
    end = min(pos + size, len(head))
    while pos < end:
        # element id: keep the marker bits
        first = head[pos]
        id_len = 1 if first & 0x80 else 2 if first & 0x40 else 3 if first & 0x20 else 4
        elem_id = int.from_bytes(head[pos : pos + id_len], "big")
        pos += id_len
        elem_size, n = _read_vint(head, pos)
        pos += n
        if elem_id == 0x4282:  # DocType
            doctype = head[pos : pos + elem_size].rstrip(b"\x00")
            if doctype == b"webm":
                return Container.WEBM
            if doctype == b"matroska":
                return Container.MATROSKA
            raise UnsupportedFormatError(f"EBML document type {doctype.decode('latin-1')!r}")
        pos += elem_size
    raise UnsupportedFormatError("EBML file without a DocType")


def _sniff_ogg(head: bytes) -> Container:
    if len(head) < 28:
        raise CorruptMediaError("Ogg page header truncated", offset=0)
    segments = head[26]
    packet = head[27 + segments : 27 + segments + 8]
    if packet.startswith(b"\x01vorbis"):
        return Container.OGG_VORBIS
    if packet.startswith(b"OpusHead"):
        return Container.OPUS
    kind = {b"\x80theora": "Ogg Theora", b"\x7fFLAC": "Ogg FLAC", b"Speex   ": "Ogg Speex"}
    for prefix, name in kind.items():
        if packet.startswith(prefix):
            raise UnsupportedFormatError(name)
    raise UnsupportedFormatError("Ogg with an unknown first stream")


def _sniff_after_id3(stream: BinaryIO, head: bytes) -> Container:
    if len(head) < 10:
        raise CorruptMediaError("ID3 tag header truncated", offset=0)
    size = 0
    for b in head[6:10]:
        size = (size << 7) | (b & 0x7F)
    end = 10 + size + (10 if head[5] & 0x10 else 0)
    stream.seek(end)
    after = stream.read(4)
    if after == b"fLaC":
        return Container.FLAC
    return Container.MP3


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2/2.5 Layer III frame header, checked field by field (not just the sync word)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 3
    layer = (head[1] >> 1) & 3
    bitrate = head[2] >> 4
    rate = (head[2] >> 2) & 3
    return version != 1 and layer == 1 and bitrate not in (0, 15) and rate != 3


_OOXML_PARTS: Final = {
    "word/document.xml": Container.DOCX,
    "xl/workbook.xml": Container.XLSX,
    "ppt/presentation.xml": Container.PPTX,
}


def _sniff_zip(stream: BinaryIO) -> Container:
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptMediaError(f"ZIP archive cannot be read: {exc}") from exc
    if "[Content_Types].xml" in names:
        for part, container in _OOXML_PARTS.items():
            if part in names:
                return container
        raise UnsupportedFormatError("Office Open XML package of an unknown kind")
    if "mimetype" in names:
        raise UnsupportedFormatError("OpenDocument or EPUB (ZIP)")
    raise UnsupportedFormatError("ZIP archive")


def _sniff_text(head: bytes) -> Container:
    if b"\x00" in head:
        raise UnsupportedFormatError("unknown binary data", hint=f"starts with {head[:8].hex()}")
    try:
        # a multi-byte character may be cut at the end of the sample
        head.decode("utf-8") if len(head) < _HEAD else head[: _HEAD - 4].decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedFormatError("text that is not UTF-8") from None
    return Container.MARKDOWN
