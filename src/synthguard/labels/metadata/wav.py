"""WAV: a RIFF chunk ``AIGC`` whose data is the label's JSON (padded to an even length).

Placement: a new label goes after the last chunk of the RIFF ``WAVE`` form, which in almost every
file is after ``data``; a label already present is replaced where it is. Why after ``data``:

- the audio never moves, so every byte before the label (``fmt ``, ``bext``, ``iXML``, ``LIST``
  ``INFO``, ``data``) keeps its offset, and tools that remember sample offsets stay right;
- a label can then be added to a WAV of any size in place: append one chunk, patch the RIFF size
  (``write_in_place``), with no copy of gigabytes of samples;
- trailing chunks are what editors already write there (``LIST INFO``, ``id3 ``), so every reader
  that walks chunks finds it, and readers that stop at ``data`` (streaming players) are not
  disturbed by an unknown chunk in front of the samples.

Why hand-written: exiftool reads but cannot write WAV, and mutagen writes only an ``id3 `` chunk;
neither writes a chunk of our own. The file is copied around the one chunk (``copy_range``), so
labeling costs what copying it costs.

Variant read: an ``AIGC`` sub-chunk of ``LIST INFO`` (the AVI carrier), reported when no top-level
chunk exists. RF64/BW64 (64-bit sizes) is refused: it has no 32-bit RIFF size to patch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import iter_range
from synthguard.errors import CorruptMediaError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata._riff import (
    Chunk,
    RiffForm,
    chunk_bytes,
    decode_label,
    form_header,
    read_chunk_data,
    read_form,
    splice,
    walk,
)
from synthguard.media import Container

__all__ = ["WavLabeler"]

AIGC: Final = b"AIGC"
_FORM: Final = b"WAVE"
#: A label chunk larger than this is not a label.
_MAX_LABEL: Final = 1 << 20


def _layout(src: BinaryIO) -> tuple[RiffForm, list[Chunk]]:
    form = read_form(src, _FORM, "WAV")
    return form, walk(src, 12, form.end, "WAV")


def _first(chunks: list[Chunk], fourcc: bytes) -> Chunk | None:
    return next((c for c in chunks if c.fourcc == fourcc), None)


def _data_chunk(chunks: list[Chunk]) -> Chunk:
    data = _first(chunks, b"data")
    if data is None:
        raise CorruptMediaError("WAV file without a data chunk")
    return data


def _edit(form: RiffForm, chunks: list[Chunk], label_json: str) -> tuple[int, int, bytes]:
    """Where the label chunk goes: ``(start, end, bytes)`` replacing ``[start, end)``."""
    new = chunk_bytes(AIGC, label_json.encode("utf-8"))
    existing = _first(chunks, AIGC)
    if existing is not None:
        return existing.offset, existing.end, new
    last = chunks[-1]
    # the last chunk's missing pad byte goes in first, or our chunk would start at an odd offset
    return last.end, last.end, (b"\x00" if last.missing_pad else b"") + new


class WavLabeler(MetadataLabeler, InPlaceWriter):
    name = "wav-chunk"
    containers = frozenset({Container.WAV})
    carrier = "RIFF chunk 'AIGC' (after the data chunk)"

    def read(self, src: BinaryIO) -> str | None:
        _, chunks = _layout(src)
        existing = _first(chunks, AIGC)
        if existing is not None:
            return decode_label(read_chunk_data(src, existing, _MAX_LABEL, "WAV AIGC chunk"))
        for info in (c for c in chunks if c.is_list(b"INFO")):
            for sub in walk(src, info.data_offset + 4, info.data_end, "WAV INFO"):
                if sub.fourcc == AIGC:
                    return decode_label(read_chunk_data(src, sub, _MAX_LABEL, "WAV INFO AIGC"))
        return None

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        form, chunks = _layout(src)
        _data_chunk(chunks)
        start, end, data = _edit(form, chunks, label_json)
        header = form_header(_FORM, form.end + len(data) - (end - start) - 8)
        splice(src, dst, header, [(start, end, data)])

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        form, chunks = _layout(f)
        _data_chunk(chunks)
        start, end, data = _edit(form, chunks, label_json)
        if len(data) == end - start:
            f.seek(start)
            f.write(data)
            return True
        if end != form.end or form.end != form.file_size:
            return False  # something follows the label's place: the file must be rewritten
        header = form_header(_FORM, start + len(data) - 8)
        f.seek(start)
        f.write(data)
        f.truncate()
        # the size last: until it is written, readers see the old form and ignore what follows
        f.seek(4)
        f.write(header[4:8])
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        _, chunks = _layout(src)
        data = _data_chunk(chunks)
        yield from iter_range(src, data.data_offset, data.size)
