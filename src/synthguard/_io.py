"""Byte-level helpers shared by the container modules: exact reads, fast range copies, atomic output.

``copy_range`` moves the bulk of a file (scan data, ``mdat``, clusters) from one file to another
without passing it through Python when both are real files (``os.copy_file_range``, then
``os.sendfile``), so labeling costs about what copying the file costs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

from synthguard.errors import CorruptMediaError, MediaLimitError

__all__ = [
    "CHUNK",
    "atomic_output",
    "copy_range",
    "iter_range",
    "read_exact",
    "require_size",
    "stream_size",
]

CHUNK: Final = 1 << 20


def read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    """Read exactly ``size`` bytes or raise ``CorruptMediaError`` naming ``what`` was cut short."""
    if size < 0:
        raise CorruptMediaError(f"{what} has a negative length")
    start = stream.tell()
    data = stream.read(size)
    if len(data) != size:
        raise CorruptMediaError(f"{what} truncated: wanted {size} bytes, found {len(data)}", offset=start)
    return data


def require_size(size: int, limit: int, what: str) -> int:
    """Refuse a structure larger than ``limit`` before reading it into memory."""
    if size > limit:
        raise MediaLimitError(f"{what} is {size} bytes, more than the limit of {limit}")
    return size


def stream_size(stream: BinaryIO) -> int:
    position = stream.tell()
    end = stream.seek(0, os.SEEK_END)
    stream.seek(position)
    return end


def _fileno(stream: BinaryIO) -> int | None:
    try:
        return stream.fileno()
    except (OSError, AttributeError, ValueError):
        return None


def copy_range(src: BinaryIO, dst: BinaryIO, start: int, length: int | None = None) -> int:
    """Copy ``length`` bytes (to the end when ``None``) from ``src`` at ``start`` to ``dst``'s end
    position. Returns the number copied; raises ``CorruptMediaError`` if ``src`` ends early."""
    if length is None:
        length = stream_size(src) - start
    if length <= 0:
        return 0
    src_fd, dst_fd = _fileno(src), _fileno(dst)
    if src_fd is not None and dst_fd is not None:
        dst.flush()
        out_pos = dst.tell()
        done = 0
        with contextlib.suppress(OSError):
            while done < length:
                n = os.copy_file_range(src_fd, dst_fd, length - done, start + done, out_pos + done)
                if n == 0:
                    break
                done += n
        if done < length:
            src.seek(start + done)
            dst.seek(out_pos + done)
            done += _copy_python(src, dst, length - done)
        dst.seek(out_pos + done)
        if done != length:
            raise CorruptMediaError(f"file ends {length - done} bytes early", offset=start + done)
        return done
    src.seek(start)
    done = _copy_python(src, dst, length)
    if done != length:
        raise CorruptMediaError(f"file ends {length - done} bytes early", offset=start + done)
    return done


def _copy_python(src: BinaryIO, dst: BinaryIO, length: int) -> int:
    done = 0
    while done < length:
        block = src.read(min(CHUNK, length - done))
        if not block:
            break
        dst.write(block)
        done += len(block)
    return done


def iter_range(src: BinaryIO, start: int, length: int | None = None) -> Iterator[bytes]:
    """Yield the bytes of a range in chunks (for digests), memory flat in the range's size."""
    src.seek(start)
    remaining = length
    while remaining is None or remaining > 0:
        block = src.read(CHUNK if remaining is None else min(CHUNK, remaining))
        if not block:
            if remaining:
                raise CorruptMediaError(f"file ends {remaining} bytes early", offset=src.tell())
            return
        if remaining is not None:
            remaining -= len(block)
        yield block


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A temporary file beside ``target`` that replaces it only if the block succeeds.

    On any exception the temporary file is removed and ``target`` is untouched, so no half-written
    output is ever left behind.
    """
    target = Path(target)
    directory = target.parent if str(target.parent) else Path()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
        # keep the mode an ordinary new file would get
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
