"""MP3: an ID3v2 ``TXXX`` frame whose description is ``AIGC`` and whose text is the label's JSON.

mutagen reads and serialises the tag (it is the maintained ID3 implementation, and it reads only the
tag: the 10-byte header, then the tag's declared size, never the audio frames). It is not asked to
edit a file, because when a tag outgrows its padding ``ID3.save`` moves every audio byte behind it
through Python; instead the new tag is serialised into memory (``ID3.save`` on an empty buffer) and
the audio is copied behind it with ``copy_range``. The tag keeps its version: a v2.3 tag stays v2.3
and a v2.4 tag stays v2.4 (frames are loaded untranslated, so v2.3-only frames such as ``TYER`` or
``RVAD`` survive); a v2.2 tag, which mutagen cannot write, becomes v2.3; a file without a tag gets a
v2.3 one (the version every player reads). When the new tag fits in the old one with its padding, it
takes exactly the old tag's size, so relabeling rewrites only the tag (``write_in_place``).

mutagen re-serialises the other frames (they keep their content, not their byte layout: frame flags,
unsynchronisation and the extended header are dropped, as every mutagen save does); frames it cannot
parse at all are junk and are dropped by it. An ID3v1 tag, an APEv2 tag and anything else after the
ID3v2 tag are copied byte for byte.

The payload is every byte after the ID3v2 tag (and its padding), up to a trailing APEv2 and ID3v1
tag, which taggers edit: the MPEG frames, and whatever the encoder put between them.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

import mutagen
import mutagen.id3
from mutagen.id3 import ID3NoHeaderError

from synthguard._io import copy_range, iter_range, require_size, stream_size
from synthguard.errors import CorruptMediaError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.media import Container

__all__ = ["Id3Header", "Id3Labeler", "read_id3v2_header"]

DESCRIPTION: Final = "AIGC"
#: An ID3v2 tag larger than this is refused (the format's own limit is 256 MB; cover art is a few MB).
MAX_TAG: Final = 64 * 1024 * 1024
#: Padding given to a tag that had to grow, so that the next relabel fits in place.
_GROWTH_PADDING: Final = 1024
_NEW_TAG_VERSION: Final = 3
# mutagen's ID3 classes carry no annotations
_ID3: Final[Any] = mutagen.id3.ID3
_TXXX: Final[Any] = mutagen.id3.TXXX


@dataclasses.dataclass(frozen=True, slots=True)
class Id3Header:
    major: int
    flags: int
    #: Offset of the first byte after the tag (its header, frames, padding and v2.4 footer).
    end: int


def read_id3v2_header(src: BinaryIO, offset: int = 0) -> Id3Header | None:
    """The ID3v2 tag header at ``offset``, or ``None`` when there is none; its size is checked
    against the file. Also used by the FLAC reader (a FLAC file may start with an ID3v2 tag)."""
    src.seek(offset)
    head = src.read(10)
    if len(head) < 3 or head[:3] != b"ID3":
        return None
    if len(head) < 10:
        raise CorruptMediaError("ID3v2 tag header truncated", offset=offset)
    major, _revision, flags = head[3], head[4], head[5]
    if major not in (2, 3, 4):
        raise CorruptMediaError(f"ID3v2 tag of version 2.{major}, which is not defined", offset=offset)
    if any(b & 0x80 for b in head[6:10]):
        raise CorruptMediaError("ID3v2 tag size is not a synchsafe integer", offset=offset + 6)
    size = 0
    for b in head[6:10]:
        size = (size << 7) | b
    require_size(size, MAX_TAG, "ID3v2 tag")
    end = offset + 10 + size + (10 if major == 4 and flags & 0x10 else 0)
    if end > stream_size(src):
        raise CorruptMediaError(f"ID3v2 tag of {size} bytes runs past the end of the file", offset=offset)
    return Id3Header(major, flags, end)


def _load(src: BinaryIO, header: Id3Header) -> Any:
    src.seek(0)
    try:
        # untranslated, so that a v2.3 tag's frames are saved back as v2.3 frames; v2.2 frames
        # cannot be written and must be upgraded
        return _ID3(src, load_v1=False, translate=header.major == 2, v2_version=_NEW_TAG_VERSION)
    except ID3NoHeaderError as exc:
        raise CorruptMediaError(f"ID3v2 tag cannot be read: {exc}", offset=0) from exc
    except (mutagen.MutagenError, ValueError, struct.error, EOFError) as exc:
        raise CorruptMediaError(f"ID3v2 tag is malformed: {exc}", offset=0) from exc


def _label_frames(tags: Any) -> list[Any]:
    frames = [f for f in tags.getall("TXXX") if str(f.desc).upper() == DESCRIPTION]
    # the exact spelling first, then any other case (a reader should not miss "aigc")
    return sorted(frames, key=lambda f: f.desc != DESCRIPTION)


def _new_tag(src: BinaryIO, header: Id3Header | None, label_json: str) -> bytes:
    """The complete new ID3v2 tag: the old frames and one ``TXXX:AIGC``, as large as the old tag
    when it fits."""
    tags = _load(src, header) if header is not None else _ID3()
    version = _NEW_TAG_VERSION if header is None or header.major == 2 else header.major
    for frame in _label_frames(tags):
        tags.delall(frame.HashKey)
    # Latin-1 for ASCII: the same bytes in v2.3 and v2.4, readable by every tagger
    encoding = 0 if label_json.isascii() else 3 if version == 4 else 1
    tags.add(_TXXX(encoding=encoding, desc=DESCRIPTION, text=[label_json]))
    target = header.end if header is not None else 0

    def padding(info: mutagen.PaddingInfo) -> int:
        # saving into an empty buffer, mutagen reports the whole tag as missing room
        needed = -info.padding
        return target - needed if target >= needed else _GROWTH_PADDING

    buffer = io.BytesIO()
    try:
        tags.save(buffer, v1=0, v2_version=version, padding=padding)
    except (mutagen.MutagenError, ValueError, struct.error) as exc:
        raise CorruptMediaError(f"ID3v2 tag cannot be written back: {exc}") from exc
    return buffer.getvalue()


def _trailing_tags_start(src: BinaryIO, start: int) -> int:
    """Where the ID3v1 and APEv2 tags at the end of the file begin (the end when there are none)."""
    end = stream_size(src)
    if end - start >= 128:
        src.seek(end - 128)
        if src.read(3) == b"TAG":
            end -= 128
    if end - start >= 32:
        src.seek(end - 32)
        footer = src.read(32)
        if footer[:8] == b"APETAGEX":
            size, _count, flags = struct.unpack("<III", footer[12:24])
            total = size + (32 if flags & 0x80000000 else 0)
            if 32 <= total <= end - start:
                end -= total
    return end


class Id3Labeler(MetadataLabeler, InPlaceWriter):
    name = "id3-txxx"
    containers = frozenset({Container.MP3})
    carrier = "ID3v2 TXXX frame, description AIGC"

    def read(self, src: BinaryIO) -> str | None:
        header = read_id3v2_header(src)
        if header is None:
            return None
        frames = _label_frames(_load(src, header))
        if not frames or not frames[0].text:
            return None
        return str(frames[0].text[0])

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        header = read_id3v2_header(src)
        dst.write(_new_tag(src, header, label_json))
        copy_range(src, dst, header.end if header is not None else 0)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        header = read_id3v2_header(f)
        if header is None:
            return False
        tag = _new_tag(f, header, label_json)
        if len(tag) != header.end:
            return False
        f.seek(0)
        f.write(tag)
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        header = read_id3v2_header(src)
        start = header.end if header is not None else 0
        end = _trailing_tags_start(src, start)
        yield from iter_range(src, start, end - start)
