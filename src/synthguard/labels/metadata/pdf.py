"""PDF: the key ``/AIGC`` in the document information dictionary, a PDF string holding the JSON.

The label is written as an incremental update, the way signing tools and editors add to a PDF: a new
revision appended after the last ``%%EOF``, holding one object (the information dictionary, every
existing entry copied, ``/AIGC`` set; it keeps the old dictionary's object number, or takes a new one
when there was none) and a cross-reference section whose trailer points ``/Prev`` at the previous one
and ``/Info`` at the new dictionary. When the file's last cross-reference section is a stream, the
update's is a stream too (uncompressed); otherwise it is a classic table. Every byte of the original
file stays where it was, so existing signatures and every object (pages, fonts, images, object
streams) are untouched.

Why not ``pikepdf.save``: it renumbers and rewrites every object (and would recompress streams). pikepdf
(qpdf) is used only to READ what the update needs: the trailer (``/Root``, ``/Size``, ``/ID``,
``/Encrypt``) and the information dictionary, opening the file without repair (``attempt_recovery``
off, so a damaged file is refused rather than scanned) and without touching page content.

Relabeling: every update written here starts with the comment line ``%synthguard-aigc-update``. When
the last revision starts with it and is exactly the update this module would write for the revision
before it (checked byte for byte), that revision is replaced, so the file holds one label and keeps its
length; otherwise (someone signed or edited after labeling) another update is appended, and readers
see the newest dictionary's label (the older one stays in the file's history, as incremental updates
keep everything). Encrypted documents are refused: a string in them must be encrypted
with the document's key.

The payload is the raw (still compressed) bytes of every page's content streams, in page order, as
pikepdf reads them: no revision appended afterwards changes them.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from typing import BinaryIO, Final, cast

import pikepdf

from synthguard._io import copy_range, stream_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.media import Container

__all__ = ["PdfLabeler"]

KEY: Final = "/AIGC"
#: The first line of every update this module appends.
MARKER: Final = b"\n%synthguard-aigc-update\n"
#: An information dictionary larger than this (unparsed) is refused.
MAX_INFO: Final = 1024 * 1024
#: ``startxref`` is looked for in this many bytes at the end of the file.
_TAIL: Final = 4096
_STARTXREF: Final = re.compile(rb"startxref\s+(\d{1,20})\s+%%EOF")
_OBJECT_HEAD: Final = re.compile(rb"\d{1,10}\s+\d{1,5}\s+obj\b")
_PIKEPDF_ERRORS: Final = (pikepdf.PdfError, ValueError, RuntimeError, OverflowError, TypeError)


class _Window(io.RawIOBase):
    """The first ``length`` bytes of a stream, seekable: an earlier revision of a PDF, for pikepdf."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        super().__init__()
        self._stream = stream
        self._length = length
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._length - self._position)
        if wanted <= 0:
            return 0
        self._stream.seek(self._position)
        data = self._stream.read(wanted)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


@contextlib.contextmanager
def _opened(stream: BinaryIO | _Window) -> Iterator[pikepdf.Pdf]:
    """The PDF opened by pikepdf, without repair; pikepdf's errors become ``CorruptMediaError``."""
    stream.seek(0)
    try:
        pdf = pikepdf.open(cast(BinaryIO, stream), attempt_recovery=False, inherit_page_attributes=False)
    except pikepdf.PasswordError as exc:
        raise UnsupportedFormatError("encrypted PDF", hint="it needs a password to open") from exc
    except _PIKEPDF_ERRORS as exc:
        raise CorruptMediaError(f"PDF cannot be read without repair: {exc}") from exc
    try:
        yield pdf
    except _PIKEPDF_ERRORS as exc:
        raise CorruptMediaError(f"PDF structure is damaged: {exc}") from exc
    finally:
        pdf.close()


def _last_xref(src: BinaryIO, length: int) -> tuple[int, bool]:
    """The offset of the last cross-reference section of the first ``length`` bytes, and whether it
    is a stream (else a classic table)."""
    start = max(0, length - _TAIL)
    src.seek(start)
    tail = src.read(length - start)
    found = list(_STARTXREF.finditer(tail))
    if not found:
        raise CorruptMediaError("no startxref at the end of the PDF", offset=start)
    offset = int(found[-1].group(1))
    if offset >= length:
        raise CorruptMediaError(f"startxref {offset} points past the end of the file", offset=start)
    src.seek(offset)
    probe = src.read(32)
    if probe.startswith(b"xref"):
        return offset, False
    if _OBJECT_HEAD.match(probe):
        return offset, True
    raise CorruptMediaError("startxref does not point at a cross-reference section", offset=offset)


def _reference(obj: pikepdf.Object | None, what: str) -> bytes:
    if obj is None:
        raise CorruptMediaError(f"the PDF trailer has no {what}")
    number, generation = obj.objgen
    if number == 0:
        raise CorruptMediaError(f"the PDF trailer's {what} is not an indirect object")
    return f"{number} {generation} R".encode()


def _update(src: BinaryIO, length: int, label_json: str) -> bytes:
    """The incremental update that labels the revision made of the first ``length`` bytes."""
    prev, is_stream = _last_xref(src, length)
    with _opened(_Window(src, length)) as pdf:
        if pdf.is_encrypted:
            raise UnsupportedFormatError(
                "encrypted PDF", hint="decrypt it first: a label in it would have to be encrypted too"
            )
        trailer = pdf.trailer
        size = int(trailer.get("/Size", 0))
        if not 0 < size < 10**10:
            raise CorruptMediaError(f"the PDF trailer's /Size is {size}")
        root = _reference(trailer.get("/Root"), "/Root")
        info = trailer.get("/Info")
        if info is None:
            info = pikepdf.Dictionary()
        elif not isinstance(info, pikepdf.Dictionary):
            raise CorruptMediaError("the PDF's /Info is not a dictionary")
        if info.is_indirect:
            number, generation = info.objgen
        else:
            number, generation = size, 0
            size += 1
        # only this in-memory copy changes: the document is never saved
        info[pikepdf.Name(KEY)] = pikepdf.String(label_json)
        body = info.unparse(resolved=True)
        if len(body) > MAX_INFO:
            raise MediaLimitError(f"PDF information dictionary of {len(body)} bytes")
        ids = trailer.get("/ID")
        id_entry = b" /ID " + ids.unparse() if isinstance(ids, pikepdf.Array) else b""
    out = bytearray(MARKER)
    info_offset = length + len(out)
    out += f"{number} {generation} obj\n".encode() + body + b"\nendobj\n"
    xref_offset = length + len(out)
    common = b"/Root " + root + f" /Info {number} {generation} R /Prev {prev}".encode() + id_entry
    if not is_stream:
        out += f"xref\n{number} 1\n{info_offset:010d} {generation:05d} n \n".encode()
        out += f"trailer\n<< /Size {size} ".encode() + common + b" >>\n"
    else:
        own = size
        size += 1
        width = max(4, (xref_offset.bit_length() + 7) // 8)
        rows = sorted([(number, info_offset, generation), (own, xref_offset, 0)])
        data = b"".join(
            b"\x01" + offset.to_bytes(width, "big") + gen.to_bytes(2, "big") for _, offset, gen in rows
        )
        index = " ".join(f"{n} 1" for n, _, _ in rows)
        out += (
            f"{own} 0 obj\n<< /Type /XRef /Size {size} /W [1 {width} 2] /Index [{index}] ".encode()
            + common
            + f" /Length {len(data)} >>\nstream\n".encode()
            + data
            + b"\nendstream\nendobj\n"
        )
    out += f"startxref\n{xref_offset}\n%%EOF\n".encode()
    return bytes(out)


def _read(src: BinaryIO) -> str | None:
    with _opened(src) as pdf:
        info = pdf.trailer.get("/Info")
        if not isinstance(info, pikepdf.Dictionary):
            return None
        value = info.get(KEY)
        if value is None:
            return None
        if not isinstance(value, pikepdf.String):
            raise CorruptMediaError(f"the PDF's {KEY} entry is not a string")
        return str(value)


def _plan(src: BinaryIO, label_json: str) -> tuple[int, bytes]:
    """(how much of the file to keep, the update to append after it)."""
    size = stream_size(src)
    start = max(0, size - MAX_INFO - 64 * 1024)
    src.seek(start)
    marker = src.read(size - start).rfind(MARKER)
    if marker >= 0:
        base = start + marker
        current = _read(src)
        if current is not None:
            src.seek(base)
            if src.read(size - base) == _update(src, base, current):
                return base, _update(src, base, label_json)
    return size, _update(src, size, label_json)


class PdfLabeler(MetadataLabeler, InPlaceWriter):
    name = "pdf-info"
    containers = frozenset({Container.PDF})
    carrier = "document information dictionary key /AIGC (incremental update)"

    def read(self, src: BinaryIO) -> str | None:
        return _read(src)

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        keep, update = _plan(src, label_json)
        copy_range(src, dst, 0, keep)
        dst.write(update)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        keep, update = _plan(f, label_json)
        f.seek(keep)
        f.write(update)
        f.truncate(keep + len(update))
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        with _opened(src) as pdf:
            for page in pdf.pages:
                contents = page.obj.get("/Contents")
                streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
                for stream in streams:
                    if isinstance(stream, pikepdf.Stream):
                        yield stream.read_raw_bytes()
