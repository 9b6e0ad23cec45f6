"""Private helpers of the PNG, WebP, GIF and TIFF labelers: splicing edits into a copy, bounded inflate.

A label write on these containers is "the same bytes, with a few header ranges replaced": ``splice``
copies the source to the destination with ``copy_range`` (the kernel moves the bulk) and writes the
replacement bytes of each ``Edit`` in between, so the cost is that of a file copy and everything not
named by an edit stays byte-identical. ``read_at`` reads a chunk header where it lies without
filling a read buffer, so walking a file's headers costs one small read per header.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Iterable
from typing import BinaryIO

from synthguard._io import copy_range
from synthguard.errors import CorruptMediaError, MediaLimitError

__all__ = ["Edit", "inflate_limited", "read_at", "splice"]


@dataclasses.dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``length`` bytes of the source at ``offset`` by ``data`` (``length=0``: insert)."""

    offset: int
    length: int
    data: bytes


def splice(src: BinaryIO, dst: BinaryIO, edits: Iterable[Edit], end: int | None = None) -> None:
    """Copy ``src[0:end]`` (to its end when ``None``) into ``dst`` with ``edits`` applied.

    Edits are applied in offset order; at one offset, inserts (``length=0``) come before a
    replacement. Overlapping edits are a programming error (``ValueError``).
    """
    pos = 0
    for edit in sorted(edits, key=lambda e: (e.offset, e.length)):
        if edit.offset < pos or edit.length < 0:
            raise ValueError(f"overlapping or negative edit at {edit.offset}")
        copy_range(src, dst, pos, edit.offset - pos)
        dst.write(edit.data)
        pos = edit.offset + edit.length
    if end is None:
        copy_range(src, dst, pos)
    else:
        copy_range(src, dst, pos, end - pos)


def inflate_limited(data: bytes, limit: int, what: str) -> bytes:
    """zlib-decompress ``data``, refusing output beyond ``limit`` bytes (a zip bomb) as it goes."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise CorruptMediaError(f"{what} does not decompress: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise MediaLimitError(f"{what} decompresses to more than {limit} bytes")
    if not inflater.eof:
        raise CorruptMediaError(f"{what} is a truncated zlib stream")
    return out


def read_at(src: BinaryIO, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes at ``offset``; leaves the stream position undefined.

    On a real file this is one ``pread`` of exactly ``size`` bytes: a buffered ``seek`` + ``read``
    would fill a whole read buffer at each chunk header, i.e. read most of a file whose image data
    comes in chunks of a few KiB (libpng writes 8 KiB IDAT chunks). The caller flushes pending writes
    first when ``src`` is also being written.
    """
    try:
        fd = src.fileno()
    except (OSError, AttributeError, ValueError):
        fd = None
    if fd is not None:
        try:
            return os.pread(fd, size, offset)
        except (OSError, AttributeError):
            pass  # not a regular file (a pipe), or no pread here: fall back to the stream
    src.seek(offset)
    return src.read(size)
