"""FLV: key ``AIGC`` in the ``onMetaData`` script tag (an AMF0 ECMA array, or an object).

The value is an AMF0 string (a long string only past 65535 bytes). It is appended after the
existing keys, so a reader that gives up on a value it cannot take leaves every other key intact
(libavformat shows ``onMetaData`` strings shorter than 1024 bytes as format tags, and stops at
longer ones or at long strings; a label is a few hundred bytes). A file without ``onMetaData``
gets one as its first tag, holding only the label.

Rewriting the script tag changes its size, so the ``PreviousTagSize`` after it is rewritten, and
the absolute file offsets ``onMetaData`` itself holds (``keyframes.filepositions``, written by
yamdi, flvtool2 and ``ffmpeg -flvflags add_keyframe_index``, and ``lastkeyframelocation``) move by
the same amount; ``filesize`` is updated when it was the file's size. The audio and video tags are
copied as they are (``copy_range``). Only a relabel that keeps the tag's size can be written in
place (``write_in_place``): any growth moves every tag after it.

Only script tags before the first audio or video tag are looked at (where writers put
``onMetaData``), so reading costs a few small reads whatever the file's length.

Why hand-written: no maintained Python library edits FLV metadata (flvlib and flvtool2 are
unmaintained; ffmpeg remuxes the file). The AMF0 reader here covers every AMF0 type with depth,
count and size limits; AMF3 (``avmplus``) values are refused.

Payload: the data of the audio (8) and video (9) tags, in file order.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final, TypeAlias

from synthguard._io import copy_range, iter_range, read_exact, stream_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.media import Container

__all__ = [
    "AmfDate",
    "AmfObject",
    "AmfReference",
    "AmfValue",
    "EcmaArray",
    "FlvLabeler",
    "LongString",
    "TypedObject",
    "XmlDocument",
    "decode_amf",
    "encode_amf",
]

# -- AMF0 ------------------------------------------------------------------------------------

_NUMBER, _BOOLEAN, _STRING, _OBJECT, _MOVIECLIP, _NULL, _UNDEFINED, _REFERENCE = range(8)
_ECMA_ARRAY, _OBJECT_END, _STRICT_ARRAY, _DATE, _LONG_STRING, _UNSUPPORTED = range(8, 14)
_XML_DOCUMENT, _TYPED_OBJECT, _AVMPLUS = 15, 16, 17
_END: Final = b"\x00\x00\x09"
#: Nesting deeper than this is hostile: real metadata is two or three levels deep.
_MAX_DEPTH: Final = 32


class _Marker:
    """AMF0 ``undefined`` and ``unsupported``: markers without a value."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNDEFINED: Final = _Marker("UNDEFINED")
UNSUPPORTED: Final = _Marker("UNSUPPORTED")


@dataclasses.dataclass(frozen=True, slots=True)
class LongString:
    """A string written with the long-string marker (kept as such when re-encoded)."""

    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class XmlDocument:
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class AmfReference:
    index: int


@dataclasses.dataclass(frozen=True, slots=True)
class AmfDate:
    milliseconds: float
    timezone: int  # minutes, signed


@dataclasses.dataclass(slots=True)
class AmfObject:
    """An anonymous object: ordered ``(key, value)`` pairs (duplicates kept as found)."""

    items: list[tuple[str, AmfValue]]


@dataclasses.dataclass(slots=True)
class TypedObject:
    class_name: str
    items: list[tuple[str, AmfValue]]


@dataclasses.dataclass(slots=True)
class EcmaArray:
    """An associative array; ``count`` is the declared (advisory) length, kept when re-encoded."""

    items: list[tuple[str, AmfValue]]
    count: int


AmfValue: TypeAlias = (
    float
    | bool
    | str
    | _Marker
    | LongString
    | XmlDocument
    | AmfReference
    | AmfDate
    | AmfObject
    | TypedObject
    | EcmaArray
    | list["AmfValue"]
    | None
)


def _text(raw: bytes) -> str:
    # surrogateescape: any bytes survive a decode/encode round trip unchanged
    return raw.decode("utf-8", errors="surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise CorruptMediaError(f"AMF0 {what} runs past the end of the script data", offset=self.pos)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2, "length"))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4, "length"))[0])

    def string(self, long: bool = False) -> str:
        return _text(self.take(self.u32() if long else self.u16(), "string"))

    def value(self, depth: int) -> AmfValue:
        if depth > _MAX_DEPTH:
            raise MediaLimitError(f"AMF0 values nested deeper than {_MAX_DEPTH}")
        marker = self.take(1, "type marker")[0]
        if marker == _NUMBER:
            return float(struct.unpack(">d", self.take(8, "number"))[0])
        if marker == _BOOLEAN:
            return self.take(1, "boolean")[0] != 0
        if marker == _STRING:
            return self.string()
        if marker == _LONG_STRING:
            return LongString(self.string(long=True))
        if marker == _XML_DOCUMENT:
            return XmlDocument(self.string(long=True))
        if marker == _NULL:
            return None
        if marker == _UNDEFINED:
            return UNDEFINED
        if marker == _UNSUPPORTED:
            return UNSUPPORTED
        if marker == _REFERENCE:
            return AmfReference(self.u16())
        if marker == _DATE:
            ms, tz = struct.unpack(">dh", self.take(10, "date"))
            return AmfDate(float(ms), int(tz))
        if marker == _OBJECT:
            return AmfObject(self.properties(depth))
        if marker == _TYPED_OBJECT:
            name = self.string()
            return TypedObject(name, self.properties(depth))
        if marker == _ECMA_ARRAY:
            count = self.u32()
            return EcmaArray(self.properties(depth, lenient_end=True), count)
        if marker == _STRICT_ARRAY:
            count = self.u32()
            if count > len(self.data) - self.pos:  # every value takes at least one byte
                raise CorruptMediaError(
                    f"AMF0 strict array of {count} values in {len(self.data) - self.pos} bytes",
                    offset=self.pos,
                )
            return [self.value(depth + 1) for _ in range(count)]
        if marker == _AVMPLUS:
            raise UnsupportedFormatError("FLV script data in AMF3 (avmplus)")
        raise CorruptMediaError(f"AMF0 type marker {marker} is not readable", offset=self.pos - 1)

    def properties(self, depth: int, lenient_end: bool = False) -> list[tuple[str, AmfValue]]:
        items: list[tuple[str, AmfValue]] = []
        while True:
            if lenient_end and self.pos == len(self.data):
                return items  # some writers end an ECMA array with the data, without a marker
            if self.data[self.pos : self.pos + 3] == _END:
                self.pos += 3
                return items
            key = self.string()
            items.append((key, self.value(depth + 1)))


def decode_amf(data: bytes) -> tuple[list[AmfValue], int]:
    """The AMF0 values of ``data`` read one after the other, and where reading stopped.

    Reading stops at the end, or before bytes that are not a value (trailing padding)."""
    reader = _Reader(data)
    values: list[AmfValue] = []
    while reader.pos < len(data):
        start = reader.pos
        try:
            values.append(reader.value(0))
        except CorruptMediaError:
            if not values:
                raise
            reader.pos = start
            break
    return values, reader.pos


def encode_amf(value: AmfValue, depth: int = 0) -> bytes:
    """The AMF0 bytes of ``value``: a ``str`` longer than 65535 bytes becomes a long string."""
    if depth > _MAX_DEPTH:
        raise MediaLimitError(f"AMF0 values nested deeper than {_MAX_DEPTH}")
    if isinstance(value, bool):
        return bytes((_BOOLEAN, value))
    if isinstance(value, float | int):
        return bytes((_NUMBER,)) + struct.pack(">d", float(value))
    if isinstance(value, str):
        raw = _raw(value)
        if len(raw) > 0xFFFF:
            return bytes((_LONG_STRING,)) + _long(raw)
        return bytes((_STRING,)) + struct.pack(">H", len(raw)) + raw
    if isinstance(value, LongString):
        return bytes((_LONG_STRING,)) + _long(_raw(value.text))
    if isinstance(value, XmlDocument):
        return bytes((_XML_DOCUMENT,)) + _long(_raw(value.text))
    if value is None:
        return bytes((_NULL,))
    if value is UNDEFINED:
        return bytes((_UNDEFINED,))
    if value is UNSUPPORTED:
        return bytes((_UNSUPPORTED,))
    if isinstance(value, AmfReference):
        return bytes((_REFERENCE,)) + struct.pack(">H", value.index)
    if isinstance(value, AmfDate):
        return bytes((_DATE,)) + struct.pack(">dh", value.milliseconds, value.timezone)
    if isinstance(value, AmfObject):
        return bytes((_OBJECT,)) + _properties(value.items, depth)
    if isinstance(value, TypedObject):
        return bytes((_TYPED_OBJECT,)) + _key(value.class_name) + _properties(value.items, depth)
    if isinstance(value, EcmaArray):
        return bytes((_ECMA_ARRAY,)) + struct.pack(">I", value.count) + _properties(value.items, depth)
    if isinstance(value, list):
        head = bytes((_STRICT_ARRAY,)) + struct.pack(">I", len(value))
        return head + b"".join(encode_amf(v, depth + 1) for v in value)
    raise TypeError(f"not an AMF0 value: {value!r}")


def _long(raw: bytes) -> bytes:
    if len(raw) > 0xFFFF_FFFF:
        raise MediaLimitError("an AMF0 long string holds at most 4 GB")
    return struct.pack(">I", len(raw)) + raw


def _key(key: str) -> bytes:
    raw = _raw(key)
    if len(raw) > 0xFFFF:
        raise MediaLimitError("an AMF0 property name holds at most 65535 bytes")
    return struct.pack(">H", len(raw)) + raw


def _properties(items: list[tuple[str, AmfValue]], depth: int) -> bytes:
    return b"".join(_key(k) + encode_amf(v, depth + 1) for k, v in items) + _END


# -- FLV tags --------------------------------------------------------------------------------

_AUDIO, _VIDEO, _SCRIPT = 8, 9, 18
_TAG_HEADER: Final = 11
_MAX_TAG_DATA: Final = 0xFFFFFF
#: Script tags looked at before the first audio or video tag.
_MAX_LEADING_TAGS: Final = 64
_ON_METADATA: Final = "onMetaData"
AIGC: Final = "AIGC"
#: ``onMetaData`` keys holding absolute file offsets.
_OFFSET_KEYS: Final = frozenset({"lastkeyframelocation"})


@dataclasses.dataclass(frozen=True, slots=True)
class _Tag:
    offset: int
    kind: int  # the type byte as found (bit 5: the filter/encryption flag)
    size: int
    header: bytes

    @property
    def type(self) -> int:
        return self.kind & 0x1F

    @property
    def data_offset(self) -> int:
        return self.offset + _TAG_HEADER

    @property
    def end(self) -> int:
        return self.data_offset + self.size


def _first_tag(src: BinaryIO) -> tuple[int, int]:
    """The offset of the first tag (after the header and PreviousTagSize0), and the file size."""
    file_size = stream_size(src)
    src.seek(0)
    head = src.read(9)
    if len(head) < 9 or head[:3] != b"FLV":
        raise UnsupportedFormatError("not an FLV file (no FLV header)")
    (header_size,) = struct.unpack(">I", head[5:9])
    if header_size < 9 or header_size + 4 > file_size:
        raise CorruptMediaError(f"FLV header size {header_size} does not fit the file", offset=5)
    return header_size + 4, file_size


def _tags(src: BinaryIO, pos: int, file_size: int) -> Iterator[_Tag]:
    """Tags from ``pos`` on; stops where fewer bytes than a tag header remain."""
    while file_size - pos >= _TAG_HEADER:
        src.seek(pos)
        header = read_exact(src, _TAG_HEADER, "FLV tag header")
        size = int.from_bytes(header[1:4], "big")
        tag = _Tag(pos, header[0], size, header)
        if tag.end > file_size:
            raise CorruptMediaError(f"FLV tag of {size} bytes runs past the end of the file", offset=pos)
        yield tag
        pos = tag.end + 4  # PreviousTagSize


@dataclasses.dataclass(slots=True)
class _Metadata:
    tag: _Tag
    values: list[AmfValue]  # "onMetaData", its object, any further values
    tail: bytes  # bytes after the last value (padding), kept

    @property
    def object(self) -> AmfObject | EcmaArray | TypedObject:
        meta = self.values[1] if len(self.values) > 1 else None
        if not isinstance(meta, AmfObject | EcmaArray | TypedObject):
            raise CorruptMediaError("onMetaData is not followed by an object", offset=self.tag.offset)
        return meta


def _find_metadata(src: BinaryIO, first: int, file_size: int) -> _Metadata | None:
    """The first ``onMetaData`` script tag before any audio or video tag."""
    for count, tag in enumerate(_tags(src, first, file_size)):
        if tag.type in (_AUDIO, _VIDEO) or count >= _MAX_LEADING_TAGS:
            break
        if tag.type != _SCRIPT or tag.kind & 0x20:  # encrypted script data is not ours to read
            continue
        src.seek(tag.data_offset)
        name_head = src.read(3)
        if name_head != b"\x02\x00\x0a":
            continue
        if src.read(10) != b"onMetaData":
            continue
        src.seek(tag.data_offset)
        data = read_exact(src, tag.size, "onMetaData script data")
        values, stop = decode_amf(data)
        return _Metadata(tag, values, data[stop:])
    return None


def _get(items: list[tuple[str, AmfValue]], key: str) -> AmfValue | None:
    return next((v for k, v in items if k == key), None)


def _shift_offsets(items: list[tuple[str, AmfValue]], after: int, delta: int) -> None:
    """Move the absolute offsets past ``after`` by ``delta`` (in place)."""
    for index, (key, value) in enumerate(items):
        if key in _OFFSET_KEYS and isinstance(value, float) and _moves(value, after):
            items[index] = (key, value + delta)
        elif key == "keyframes" and isinstance(value, AmfObject | EcmaArray | TypedObject):
            for sub_index, (sub_key, positions) in enumerate(value.items):
                if sub_key == "filepositions" and isinstance(positions, list):
                    moved: list[AmfValue] = [
                        p + delta if isinstance(p, float) and _moves(p, after) else p for p in positions
                    ]
                    value.items[sub_index] = (sub_key, moved)


def _moves(position: float, after: int) -> bool:
    return math.isfinite(position) and position > after


def _labeled_tag(src: BinaryIO, label_json: str) -> tuple[int, int, bytes]:
    """The ``onMetaData`` tag with the label, and the range ``[start, end)`` it replaces (the old
    tag and its PreviousTagSize; an empty range before the first tag when there was none)."""
    first, file_size = _first_tag(src)
    meta = _find_metadata(src, first, file_size)
    if meta is None:
        data = encode_amf(_ON_METADATA) + encode_amf(EcmaArray([(AIGC, label_json)], 1))
        return first, first, _tag_bytes(bytes((_SCRIPT,)), bytes(7), data)
    obj = meta.object
    keys = [k for k, _ in obj.items]
    if AIGC in keys:
        obj.items[keys.index(AIGC)] = (AIGC, label_json)
    else:
        obj.items.append((AIGC, label_json))
        if isinstance(obj, EcmaArray):
            obj.count += 1
    old = meta.tag
    delta = len(_script_data(meta)) - old.size  # numbers keep their size: shifting is stable
    _shift_offsets(obj.items, old.offset, delta)
    keys = [k for k, _ in obj.items]
    filesize = obj.items[keys.index("filesize")][1] if "filesize" in keys else None
    if isinstance(filesize, float) and filesize == file_size:
        obj.items[keys.index("filesize")] = ("filesize", float(file_size + delta))
    tag = _tag_bytes(old.header[:1], old.header[4:11], _script_data(meta))
    return old.offset, min(old.end + 4, file_size), tag


class FlvLabeler(MetadataLabeler, InPlaceWriter):
    name = "flv-onmetadata"
    containers = frozenset({Container.FLV})
    carrier = "key 'AIGC' in the onMetaData script tag (AMF0)"

    def read(self, src: BinaryIO) -> str | None:
        first, file_size = _first_tag(src)
        meta = _find_metadata(src, first, file_size)
        if meta is None:
            return None
        value = _get(meta.object.items, AIGC)
        if isinstance(value, LongString):
            value = value.text
        if not isinstance(value, str):
            return None
        return _raw(value).decode("utf-8", errors="replace")

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        start, end, tag = _labeled_tag(src, label_json)
        copy_range(src, dst, 0, start)
        dst.write(tag)
        copy_range(src, dst, end)

    def write_in_place(self, f: BinaryIO, label_json: str) -> bool:
        start, end, tag = _labeled_tag(f, label_json)
        if len(tag) != end - start:
            return False  # every tag after it would move: the file must be rewritten
        f.seek(start)
        f.write(tag)
        return True

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        first, file_size = _first_tag(src)
        for tag in _tags(src, first, file_size):
            if tag.type in (_AUDIO, _VIDEO):
                yield from iter_range(src, tag.data_offset, tag.size)


def _script_data(meta: _Metadata) -> bytes:
    return b"".join(encode_amf(v) for v in meta.values) + meta.tail


def _tag_bytes(kind: bytes, timestamp_and_stream: bytes, data: bytes) -> bytes:
    """A whole tag with the PreviousTagSize that follows it."""
    if len(data) > _MAX_TAG_DATA:
        raise MediaLimitError(f"onMetaData would be {len(data)} bytes; an FLV tag holds {_MAX_TAG_DATA}")
    header = kind + len(data).to_bytes(3, "big") + timestamp_and_stream
    return header + data + struct.pack(">I", _TAG_HEADER + len(data))
