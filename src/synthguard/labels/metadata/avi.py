"""AVI: a chunk ``AIGC`` (the JSON, NUL-terminated, padded to even) inside ``LIST INFO``.

The ``INFO`` list sits before the ``movi`` list, where ffmpeg writes it (after ``hdrl``) and where
readers look: libavformat reads ``INFO`` while parsing the header and stops at ``movi``, and shows
every ``INFO`` chunk as a format tag, so ``AIGC`` appears in ffprobe's output as it is.

Layout: only the header area before ``movi`` (``hdrl``, ``INFO``, ``JUNK``: a few KB) is rebuilt;
``movi``, ``idx1`` and any ``RIFF AVIX`` extensions are copied as they are (``copy_range``). The
rebuilt area keeps its length whenever it can: ``JUNK`` chunks before ``movi`` (ffmpeg reserves
1016 bytes "for easier tag editing") absorb the label's size, so ``movi`` does not move, no offset
anywhere changes, and the label can be written in place (``write_in_place`` overwrites the header
area only). When there is no room, ``movi`` moves by the growth plus a fresh 1016-byte ``JUNK``
reserve (so that relabeling fits later). Moving ``movi`` is safe for the ``idx1`` index: its
offsets are relative to ``movi`` (rewritten when a writer made them absolute, which libavformat
detects the same way, from the first entry). It is refused for OpenDML files (an ``indx`` super
index in a stream list, or ``RIFF AVIX`` extensions after 1 GB): their ``indx`` and ``ix##``
chunks hold absolute file offsets, and the ``ix##`` chunks live inside ``movi``, the payload,
which is never rewritten.

Why hand-written: no maintained Python library writes AVI ``INFO`` chunks (mutagen has no AVI,
exiftool cannot write RIFF); ffmpeg would remux the whole file and rebuild its indexes.

Payload: the ``movi`` lists (of the ``AVI `` form and of each ``AVIX`` extension), headers included.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final

from synthguard._io import iter_range, read_exact, require_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.metadata._riff import (
    MAX_CHUNK_FIELD,
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

__all__ = ["AviLabeler"]

AIGC: Final = b"AIGC"
_FORM: Final = b"AVI "
_MAX_LABEL: Final = 1 << 20
#: ``hdrl`` and ``INFO`` are a few KB; an OpenDML super index adds 16 bytes per 1 GB part.
_MAX_HEADER: Final = 16 << 20
#: An ``idx1`` holds 16 bytes per chunk of ``movi``; rewritten in memory only when absolute.
_MAX_IDX1: Final = 256 << 20
#: ``JUNK`` data bytes left before a moved ``movi``, as ffmpeg reserves.
_RESERVE: Final = 1016
_MAX_EXTENSIONS: Final = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    form: RiffForm
    top: list[Chunk]
    hdrl: Chunk | None
    hdrl_children: list[Chunk]
    movi: Chunk | None

    def before_movi(self) -> list[Chunk]:
        limit = self.movi.offset if self.movi else self.form.end
        return [c for c in self.top if c.offset < limit]

    def info_lists(self) -> list[Chunk]:
        """The ``INFO`` lists readers see: in ``hdrl`` and at the top level before ``movi``."""
        inner = [c for c in self.hdrl_children if c.is_list(b"INFO")]
        return inner + [c for c in self.before_movi() if c.is_list(b"INFO")]


def _layout(src: BinaryIO) -> _Layout:
    form = read_form(src, _FORM, "AVI")
    top = walk(src, 12, form.end, "AVI")
    hdrl = next((c for c in top if c.is_list(b"hdrl")), None)
    children = walk(src, hdrl.data_offset + 4, hdrl.data_end, "AVI hdrl") if hdrl else []
    movi = next((c for c in top if c.is_list(b"movi")), None)
    return _Layout(form, top, hdrl, children, movi)


def _sub_chunks(src: BinaryIO, info: Chunk) -> list[Chunk]:
    return walk(src, info.data_offset + 4, info.data_end, "AVI INFO")


def _find_label(src: BinaryIO, layout: _Layout) -> tuple[Chunk, Chunk] | None:
    """The first ``AIGC`` chunk of an ``INFO`` list, with its list."""
    for info in layout.info_lists():
        for sub in _sub_chunks(src, info):
            if sub.fourcc == AIGC:
                return info, sub
    return None


def _target_info(src: BinaryIO, layout: _Layout) -> Chunk | None:
    """The ``INFO`` list that gets the label: the one holding it, else the first top-level one,
    else one inside ``hdrl``; ``None`` when there is none (a new one is made)."""
    found = _find_label(src, layout)
    if found is not None:
        return found[0]
    infos = layout.info_lists()
    top = [c for c in infos if c not in layout.hdrl_children]
    candidates = top or infos
    return candidates[0] if candidates else None


def _new_info(src: BinaryIO, head: bytes, info: Chunk | None, label: bytes) -> bytes:
    """The ``LIST INFO`` chunk with the label: replaced where it was, else appended."""
    new = chunk_bytes(AIGC, label)
    if info is None:
        return chunk_bytes(b"LIST", b"INFO" + new)
    parts, replaced = [], False
    for sub in _sub_chunks(src, info):
        if sub.fourcc == AIGC and not replaced:
            parts.append(new)
            replaced = True
        else:
            parts.append(_padded(head, sub))
    if not replaced:
        parts.append(new)
    return chunk_bytes(b"LIST", b"INFO" + b"".join(parts))


def _padded(head: bytes, chunk: Chunk) -> bytes:
    """A chunk's bytes from the header area, with its pad byte even where the writer omitted it."""
    raw = head[chunk.offset : chunk.end]
    return raw + b"\x00" if chunk.missing_pad else raw


def _moving_refused(src: BinaryIO, layout: _Layout) -> str | None:
    """Why ``movi`` cannot move, or ``None``: absolute offsets inside the payload."""
    form = layout.form
    if form.end + 4 <= form.file_size:
        src.seek(form.end)
        if src.read(4) == b"RIFF":
            return "it has RIFF AVIX extensions (OpenDML, over 1 GB)"
    for strl in (c for c in layout.hdrl_children if c.is_list(b"strl")):
        if any(c.fourcc == b"indx" for c in walk(src, strl.data_offset + 4, strl.data_end, "strl")):
            return "it has an OpenDML super index (indx)"
    return None


def _idx1_edit(src: BinaryIO, layout: _Layout, movi: Chunk, delta: int) -> tuple[int, int, bytes] | None:
    """``idx1`` with its offsets moved by ``delta`` when they are absolute, else ``None``.

    Absolute or relative is told as libavformat tells it: from the first entry, relative offsets
    being at most the position of the ``movi`` list type."""
    idx1 = next((c for c in layout.top if c.fourcc == b"idx1" and c.offset > movi.offset), None)
    if idx1 is None or idx1.size < 16:
        return None
    src.seek(idx1.data_offset + 8)
    (first,) = struct.unpack("<I", read_exact(src, 4, "idx1 entry"))
    if first <= movi.offset + 8:
        return None
    data = bytearray(read_chunk_data(src, idx1, _MAX_IDX1, "AVI idx1 index"))
    for pos in range(8, len(data) - len(data) % 16, 16):
        (offset,) = struct.unpack_from("<I", data, pos)
        if offset + delta > MAX_CHUNK_FIELD:
            raise MediaLimitError("an absolute idx1 offset would not fit in 32 bits")
        struct.pack_into("<I", data, pos, offset + delta)
    return idx1.data_offset, idx1.data_end, bytes(data)


def _junk(size: int) -> bytes:
    return chunk_bytes(b"JUNK", bytes(size))


def _header_body(src: BinaryIO, label_json: str) -> tuple[_Layout, Chunk, bytes]:
    """The chunks before ``movi`` with the label in ``INFO``, without the ``JUNK`` padding."""
    layout = _layout(src)
    movi, hdrl = layout.movi, layout.hdrl
    if movi is None:
        raise CorruptMediaError("AVI file without a movi list")
    if hdrl is None or hdrl.offset > movi.offset:
        raise CorruptMediaError("AVI file without a hdrl list before movi")
    require_size(movi.offset, _MAX_HEADER, "AVI header before movi")
    src.seek(0)
    head = read_exact(src, movi.offset, "AVI header")
    target = _target_info(src, layout)
    new_info = _new_info(src, head, target, label_json.encode("utf-8") + b"\x00")
    parts = []
    for top in layout.before_movi():
        if top.fourcc == b"JUNK":
            continue  # padding: rebuilt as one JUNK before movi
        if top is target:
            parts.append(new_info)
        elif top is hdrl and target in layout.hdrl_children:
            children = [new_info if c is target else _padded(head, c) for c in layout.hdrl_children]
            parts.append(chunk_bytes(b"LIST", b"hdrl" + b"".join(children)))
        else:
            parts.append(_padded(head, top))
        if top is hdrl and target is None:
            parts.append(new_info)  # where ffmpeg writes INFO
    return layout, movi, b"".join(parts)


def _fill(body: bytes, room: int) -> bytes | None:
    """``body`` padded with ``JUNK`` to exactly ``room`` bytes, or ``None`` when it cannot be."""
    if len(body) == room:
        return body
    if len(body) + 8 <= room:
        return body + _junk(room - len(body) - 8)
    return None


class AviLabeler(MetadataLabeler, InPlaceWriter):
    name = "avi-info"
    containers = frozenset({Container.AVI})
    carrier = "chunk 'AIGC' in LIST INFO"

    def read(self, src: BinaryIO) -> str | None:
        found = _find_label(src, _layout(src))
        if found is None:
            return None
        return decode_label(read_chunk_data(src, found[1], _MAX_LABEL, "AVI AIGC chunk"))

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        layout, movi, body = _header_body(src, label_json)
        room = movi.offset - 12
        edits = []
        area = _fill(body, room)
        if area is None:
            reason = _moving_refused(src, layout)
            if reason is not None:
                raise UnsupportedFormatError(
                    "AVI whose header has no JUNK room for the label",
                    hint=f"the movi list cannot move because {reason}: its indexes hold "
                    "absolute file offsets",
                )
            area = body + _junk(_RESERVE)
            idx1 = _idx1_edit(src, layout, movi, len(area) - room)
            if idx1 is not None:
                edits.append(idx1)
        header = form_header(_FORM, layout.form.end + len(area) - room - 8)
        splice(src, dst, header, [(12, movi.offset, area), *edits])

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        _, movi, body = _header_body(f, label_json)
        area = _fill(body, movi.offset - 12)
        if area is None:
            return False  # movi would move: the file must be rewritten
        f.seek(12)
        f.write(area)
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        layout = _layout(src)
        if layout.movi is None:
            raise CorruptMediaError("AVI file without a movi list")
        yield from iter_range(src, layout.movi.offset, layout.movi.end - layout.movi.offset)
        for movi in _extension_movis(src, layout.form):
            yield from iter_range(src, movi.offset, movi.end - movi.offset)


def _extension_movis(src: BinaryIO, form: RiffForm) -> Iterator[Chunk]:
    """The ``movi`` lists of the ``RIFF AVIX`` forms following the first one (OpenDML)."""
    pos = form.end
    for _ in range(_MAX_EXTENSIONS):
        if form.file_size - pos < 12:
            return
        src.seek(pos)
        head = read_exact(src, 12, "AVIX header")
        if head[:4] != b"RIFF" or head[8:12] != b"AVIX":
            return  # bytes after the forms are not ours to interpret
        (size,) = struct.unpack("<I", head[4:8])
        end = pos + 8 + size
        if size < 4 or end > form.file_size:
            raise CorruptMediaError("RIFF AVIX form runs past the end of the file", offset=pos)
        yield from (c for c in walk(src, pos + 12, end, "AVIX") if c.is_list(b"movi"))
        pos = end + (size & 1)
    raise MediaLimitError(f"more than {_MAX_EXTENSIONS} RIFF AVIX forms")
