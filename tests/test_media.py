"""What a file is comes from its bytes, never its name."""

from __future__ import annotations

import contextlib
import io
import struct
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthguard.errors import MediaError, UnsupportedFormatError
from synthguard.media import Container, identify


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def ogg(packet: bytes) -> bytes:
    return b"OggS" + bytes(22) + bytes([1, len(packet)]) + packet


def office(part: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(part, "<x/>")
    return buffer.getvalue()


CASES = [
    (b"\xff\xd8\xff\xe0" + bytes(20), Container.JPEG),
    (b"\x89PNG\r\n\x1a\n" + bytes(20), Container.PNG),
    (b"GIF89a" + bytes(20), Container.GIF),
    (b"II*\x00\x08\x00\x00\x00", Container.TIFF),
    (b"MM\x00*\x00\x00\x00\x08", Container.TIFF),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", Container.WEBP),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", Container.WAV),
    (b"RIFF\x00\x00\x00\x00AVI LIST", Container.AVI),
    (box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41"), Container.MP4),
    (box(b"ftyp", b"qt  \x00\x00\x00\x00qt  "), Container.MOV),
    (box(b"ftyp", b"M4A \x00\x00\x00\x00M4A mp42"), Container.M4A),
    (box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic"), Container.HEIF),
    (box(b"ftyp", b"avif\x00\x00\x00\x00avifmif1"), Container.AVIF),
    (box(b"moov", b""), Container.MOV),
    (b"\x1a\x45\xdf\xa3\x8b\x42\x82\x88matroska", Container.MATROSKA),
    (b"\x1a\x45\xdf\xa3\x87\x42\x82\x84webm", Container.WEBM),
    (b"FLV\x01\x05\x00\x00\x00\x09", Container.FLV),
    (b"fLaC\x00\x00\x00\x22", Container.FLAC),
    (ogg(b"\x01vorbis" + bytes(20)), Container.OGG_VORBIS),
    (ogg(b"OpusHead" + bytes(11)), Container.OPUS),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00", Container.MP3),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00fLaC", Container.FLAC),
    (b"\xff\xfb\x90\x64" + bytes(100), Container.MP3),
    (b"%PDF-1.7\n", Container.PDF),
    (office("word/document.xml"), Container.DOCX),
    (office("xl/workbook.xml"), Container.XLSX),
    (office("ppt/presentation.xml"), Container.PPTX),
    ("---\ntitle: x\n---\n# 标题\n".encode(), Container.MARKDOWN),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_identify_from_bytes(data: bytes, expected: Container) -> None:
    assert identify(io.BytesIO(data)).container is expected


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"", "empty file"),
        (b"II+\x00", "BigTIFF"),
        (b"RIFF\x00\x00\x00\x00CDXA", "RIFF form"),
        (ogg(b"\x80theora" + bytes(20)), "Theora"),
        (b"\x00\x01\x02\x03binary", "unknown binary"),
        (b"\xc3\x28 not utf-8 text", "not UTF-8"),
        (b"\x1a\x45\xdf\xa3\x84\x42\x82\x81x", "EBML document type"),
    ],
)
def test_unsupported_formats_are_named(data: bytes, named: str) -> None:
    with pytest.raises(UnsupportedFormatError, match=named):
        identify(io.BytesIO(data))


def test_plain_zip_is_named() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "x")
    with pytest.raises(UnsupportedFormatError, match="ZIP archive"):
        identify(buffer)


@given(st.binary(max_size=200))
def test_identify_raises_only_media_errors(data: bytes) -> None:
    with contextlib.suppress(MediaError):
        identify(io.BytesIO(data))
