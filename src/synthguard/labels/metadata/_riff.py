"""RIFF chunk walking shared by the AVI and WAV labelers (private).

A RIFF file is ``RIFF <size> <form>`` followed by chunks ``<fourcc> <size, u32 LE> <data>``, each
padded to an even length; ``LIST`` chunks begin with a four-character list type and hold chunks.
The walkers here read chunk headers only (eight bytes each, one seek per chunk), never the data, and
check every size against the parent's end before it is used: a chunk that runs past its parent is a
``CorruptMediaError``. The one laxity is the last chunk's missing pad byte, which many writers omit
and every reader accepts.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import BinaryIO, Final

from synthguard._io import copy_range, read_exact, require_size, stream_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError

__all__ = [
    "MAX_CHUNK_FIELD",
    "Chunk",
    "RiffForm",
    "chunk_bytes",
    "decode_label",
    "form_header",
    "read_chunk_data",
    "read_form",
    "splice",
    "walk",
]

#: The largest value a 32-bit RIFF size field holds.
MAX_CHUNK_FIELD: Final = 0xFFFF_FFFF
#: More chunks than this in one list is hostile, not media (headers and INFO hold a few dozen).
_MAX_CHUNKS: Final = 100_000
_LISTS: Final = frozenset({b"LIST", b"RIFF"})


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk as found: ``end`` is where the next one starts (after the pad byte if present)."""

    fourcc: bytes
    offset: int  # of the chunk header
    size: int  # the size field: the data's length, without the pad byte
    end: int
    list_type: bytes | None = None  # for LIST and RIFF chunks

    @property
    def data_offset(self) -> int:
        return self.offset + 8

    @property
    def data_end(self) -> int:
        return self.offset + 8 + self.size

    @property
    def missing_pad(self) -> bool:
        """An odd-sized chunk at its parent's end without its pad byte."""
        return self.end < self.data_end + (self.size & 1)

    def is_list(self, list_type: bytes) -> bool:
        return self.fourcc == b"LIST" and self.list_type == list_type


@dataclasses.dataclass(frozen=True, slots=True)
class RiffForm:
    """The first RIFF form of a file: its type, where it ends, and the file's size."""

    form: bytes
    size: int  # the RIFF size field
    end: int  # where the form ends: 8 + size, or the file's end if only a final pad byte is missing
    file_size: int


def read_form(src: BinaryIO, form: bytes, name: str) -> RiffForm:
    """Check the 12-byte RIFF header of ``src`` for ``form``; the form must fit in the file."""
    file_size = stream_size(src)
    src.seek(0)
    head = src.read(12)
    if head[:4] in (b"RF64", b"BW64"):
        raise UnsupportedFormatError("RF64/BW64 (64-bit RIFF)")
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != form:
        raise UnsupportedFormatError(f"not a {name} file (no RIFF {form.decode('latin-1')!r} header)")
    (size,) = struct.unpack("<I", head[4:8])
    if size < 4:
        raise CorruptMediaError(f"RIFF size {size} is too small for a form", offset=4)
    # a size counting a final pad byte that was never written is common and harmless
    if 8 + size > file_size + 1:
        raise CorruptMediaError(
            f"RIFF size {size} runs past the end of the {file_size}-byte file "
            "(truncated, or written as a stream without its sizes)",
            offset=4,
        )
    return RiffForm(form, size, min(8 + size, file_size), file_size)


def walk(src: BinaryIO, start: int, end: int, what: str) -> list[Chunk]:
    """The chunks laid end to end in ``[start, end)`` (headers only).

    Fewer than eight stray bytes at the end are ignored, as readers do; anything longer must be a
    chunk that fits."""
    chunks: list[Chunk] = []
    pos = start
    while end - pos >= 8:
        src.seek(pos)
        head = read_exact(src, 8, f"{what} chunk header")
        fourcc = head[:4]
        (size,) = struct.unpack("<I", head[4:])
        data_end = pos + 8 + size
        if data_end > end:
            raise CorruptMediaError(
                f"{what} chunk {fourcc!r} of {size} bytes runs past the end of its parent at {end}",
                offset=pos,
            )
        list_type = None
        if fourcc in _LISTS:
            if size < 4:
                raise CorruptMediaError(f"{what} {fourcc!r} chunk too small for its type", offset=pos)
            list_type = read_exact(src, 4, f"{what} list type")
        chunk_end = min(data_end + (size & 1), end)
        chunks.append(Chunk(fourcc, pos, size, chunk_end, list_type))
        if len(chunks) > _MAX_CHUNKS:
            raise MediaLimitError(f"{what} has more than {_MAX_CHUNKS} chunks")
        pos = chunk_end
    return chunks


def read_chunk_data(src: BinaryIO, chunk: Chunk, limit: int, what: str) -> bytes:
    """A chunk's data (without the pad byte), refusing one larger than ``limit``."""
    require_size(chunk.size, limit, what)
    src.seek(chunk.data_offset)
    return read_exact(src, chunk.size, what)


def chunk_bytes(fourcc: bytes, data: bytes) -> bytes:
    """A whole chunk: header, data, and the pad byte when the data's length is odd."""
    if len(data) > MAX_CHUNK_FIELD:
        raise MediaLimitError(f"a RIFF chunk holds at most {MAX_CHUNK_FIELD} bytes")
    return fourcc + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) & 1 else b"")


def splice(src: BinaryIO, dst: BinaryIO, header: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    """Write ``header`` (replacing the first ``len(header)`` bytes), then ``src`` with each
    ``(start, end, replacement)`` edit applied, copying everything between them as it is.

    Edits must be sorted, must not overlap, and must start after the header."""
    dst.write(header)
    pos = len(header)
    for start, end, replacement in edits:
        if start < pos or end < start:
            raise ValueError("splice edits must be sorted and must not overlap")
        copy_range(src, dst, pos, start - pos)
        dst.write(replacement)
        pos = end
    copy_range(src, dst, pos)


def form_header(form: bytes, size: int) -> bytes:
    """``RIFF <size> <form>``, refusing a size a 32-bit field cannot hold."""
    if size > MAX_CHUNK_FIELD:
        raise MediaLimitError(
            f"the RIFF form would be {size} bytes; a RIFF size field holds at most {MAX_CHUNK_FIELD}"
        )
    return b"RIFF" + struct.pack("<I", size) + form


def decode_label(data: bytes) -> str:
    """Chunk data as label text: NUL terminators and padding dropped, bad UTF-8 kept visible."""
    return data.rstrip(b"\x00").decode("utf-8", errors="replace")
