"""docx, xlsx, pptx: a custom property ``AIGC`` (``vt:lpwstr``) in ``docProps/custom.xml``.

An Office Open XML package is a ZIP archive of parts. The custom properties part holds
``<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="N" name="AIGC"><vt:lpwstr>JSON
</vt:lpwstr></property>``; the part is declared in ``[Content_Types].xml`` (an ``Override`` with the
custom-properties content type) and reached from ``_rels/.rels`` (a relationship of the
custom-properties type). Other custom properties are kept (an existing ``AIGC`` one keeps its ``pid``),
a new one takes the next free ``pid`` (at least 2); an existing custom properties part is used wherever
the package relationship puts it.

Why hand-written: Python's ``zipfile`` can only append or rewrite whole archives by decompressing and
recompressing every member, and no maintained library copies members' compressed bytes unchanged. The
archive's structure is simple, so this module reads the central directory, and writes a new archive in
which every member but the (at most three) edited parts is copied raw: local header, compressed data and
data descriptor, with ``copy_range``; then a new central directory (the old records, with their offsets
moved). ZIP64 archives, archives split over disks and encrypted edited parts are refused with a clear
error. The three XML parts are read with a cap on their decompressed size (a zip bomb stops at the cap)
and their CRC checked, parsed with ``defusedxml`` (no DTD, no entities) and edited as text (an element
replaced or inserted before the root's end tag, offsets found by expat), so every other byte of them
stays; each edit is checked by parsing the result again.

The payload is, for every other member in name order, its name, a NUL, the length of its compressed data
(8 bytes, big-endian) and that data: what labeling never changes.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import urllib.parse
import xml.parsers.expat
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final
from xml.etree.ElementTree import Element, ParseError, tostring
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from synthguard._io import copy_range, iter_range, read_exact, require_size, stream_size
from synthguard.errors import CorruptMediaError, MediaLimitError, UnsupportedFormatError
from synthguard.labels.base import MetadataLabeler
from synthguard.media import Container

__all__ = ["OoxmlLabeler"]

NAME: Final = "AIGC"
FMTID: Final = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"
CUSTOM_NS: Final = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
VT_NS: Final = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
CT_NS: Final = "http://schemas.openxmlformats.org/package/2006/content-types"
RELS_NS: Final = "http://schemas.openxmlformats.org/package/2006/relationships"
CUSTOM_TYPE: Final = "application/vnd.openxmlformats-officedocument.custom-properties+xml"
CUSTOM_REL: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties"
#: The same relationship in ISO/IEC 29500 Strict packages.
_CUSTOM_REL_STRICT: Final = "http://purl.oclc.org/ooxml/officeDocument/relationships/customProperties"
DEFAULT_PART: Final = "docProps/custom.xml"
CONTENT_TYPES: Final = "[Content_Types].xml"
PACKAGE_RELS: Final = "_rels/.rels"
#: The decompressed size of any XML part read here; a larger one is refused (zip bomb cap).
MAX_XML: Final = 16 * 1024 * 1024
_MAX_CENTRAL: Final = 64 * 1024 * 1024
_EOCD: Final = struct.Struct("<4sHHHHIIH")
_CENTRAL: Final = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL: Final = struct.Struct("<4sHHHHHIIIHH")
_DOS_EPOCH: Final = (0, 0x21)  # 1980-01-01 00:00, what Office writes for every part
_U32: Final = 0xFFFFFFFF


# -- the archive -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Member:
    name: str
    raw_name: bytes
    flags: int
    method: int
    time: int
    date: int
    crc: int
    compressed: int
    size: int
    offset: int  # of the local header
    record: bytes  # the central directory record, as it is
    data: int = 0  # where the compressed data starts
    span_end: int = 0  # where the next member (or the central directory) starts


@dataclasses.dataclass(frozen=True, slots=True)
class _Archive:
    members: list[_Member]  # central directory order
    start: int  # the first local header (bytes before it are kept)
    central: int  # the central directory's offset
    comment: bytes

    def find(self, name: str) -> _Member | None:
        folded = name.casefold()  # OPC part names compare case-insensitively
        return next((m for m in self.members if m.name.casefold() == folded), None)


def _scan(src: BinaryIO) -> _Archive:
    size = stream_size(src)
    if size < _EOCD.size:
        raise CorruptMediaError("too short for a ZIP archive", offset=0)
    # an archive comment is rare: look at the last 22 bytes before the 64 KiB a comment may take
    tail_start = size - _EOCD.size
    src.seek(tail_start)
    tail = src.read(_EOCD.size)
    if not tail.startswith(b"PK\x05\x06") or tail[-2:] != b"\x00\x00":
        tail_start = max(0, size - _EOCD.size - 0xFFFF)
        src.seek(tail_start)
        tail = src.read(size - tail_start)
    position = tail.rfind(b"PK\x05\x06")
    while position >= 0 and position + _EOCD.size > len(tail):
        position = tail.rfind(b"PK\x05\x06", 0, position)
    if position < 0:
        raise CorruptMediaError("ZIP end of central directory not found", offset=tail_start)
    eocd = tail_start + position
    _, disk, cd_disk, on_disk, count, cd_size, cd_offset, comment_length = _EOCD.unpack_from(tail, position)
    comment = tail[position + _EOCD.size : position + _EOCD.size + comment_length]
    if eocd >= 20:
        src.seek(eocd - 20)
        if src.read(4) == b"PK\x06\x07":
            raise UnsupportedFormatError("ZIP64 Office package", hint="larger than 4 GiB or 65535 parts")
    if count == 0xFFFF or cd_size == _U32 or cd_offset == _U32:
        raise UnsupportedFormatError("ZIP64 Office package", hint="larger than 4 GiB or 65535 parts")
    if disk or cd_disk or on_disk != count:
        raise UnsupportedFormatError("ZIP archive split over several disks")
    if cd_offset + cd_size != eocd:
        raise CorruptMediaError("ZIP central directory is not where the archive says", offset=eocd)
    require_size(cd_size, _MAX_CENTRAL, "ZIP central directory")
    src.seek(cd_offset)
    central = read_exact(src, cd_size, "ZIP central directory")
    members: list[_Member] = []
    pos = 0
    for _ in range(count):
        if pos + _CENTRAL.size > len(central):
            raise CorruptMediaError("ZIP central directory truncated", offset=cd_offset + pos)
        fields = _CENTRAL.unpack_from(central, pos)
        if fields[0] != b"PK\x01\x02":
            raise CorruptMediaError("bad ZIP central directory record", offset=cd_offset + pos)
        flags, method, time, date, crc, compressed, usize = fields[3:10]
        name_length, extra_length, comment_len = fields[10:13]
        offset = fields[16]
        end = pos + _CENTRAL.size + name_length + extra_length + comment_len
        if end > len(central):
            raise CorruptMediaError("ZIP central directory record truncated", offset=cd_offset + pos)
        if _U32 in (compressed, usize, offset):
            raise UnsupportedFormatError("ZIP64 Office package", hint="a part larger than 4 GiB")
        raw_name = central[pos + _CENTRAL.size : pos + _CENTRAL.size + name_length]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        members.append(
            _Member(
                name, raw_name, flags, method, time, date, crc, compressed, usize, offset, central[pos:end]
            )
        )
        pos = end
    if pos != len(central):
        raise CorruptMediaError("ZIP central directory holds more than its records", offset=cd_offset + pos)
    folded = [m.name.casefold() for m in members]
    if len(set(folded)) != len(folded):
        raise CorruptMediaError("ZIP archive with two parts of the same name")
    return _locate(src, members, cd_offset, comment)


def _locate(src: BinaryIO, members: list[_Member], central: int, comment: bytes) -> _Archive:
    """Check every local header, and give each member the span up to the next one."""
    ordered = sorted(members, key=lambda m: m.offset)
    located: dict[int, _Member] = {}
    for index, member in enumerate(ordered):
        span_end = ordered[index + 1].offset if index + 1 < len(ordered) else central
        src.seek(member.offset)
        head = src.read(_LOCAL.size)
        if len(head) < _LOCAL.size or head[:4] != b"PK\x03\x04":
            raise CorruptMediaError(f"ZIP local header of {member.name!r} missing", offset=member.offset)
        name_length, extra_length = _LOCAL.unpack(head)[9:11]
        data = member.offset + _LOCAL.size + name_length + extra_length
        if data + member.compressed > span_end:
            raise CorruptMediaError(
                f"ZIP part {member.name!r} overlaps what follows it", offset=member.offset
            )
        if read_exact(src, name_length, "ZIP local header") != member.raw_name:
            raise CorruptMediaError(f"ZIP local header does not name {member.name!r}", offset=member.offset)
        located[id(member)] = dataclasses.replace(member, data=data, span_end=span_end)
    start = ordered[0].offset if ordered else central
    return _Archive([located[id(m)] for m in members], start, central, comment)


def _read_member(src: BinaryIO, member: _Member) -> bytes:
    """A member's content, decompressed with a cap, CRC checked."""
    if member.flags & 0x1:
        raise UnsupportedFormatError("encrypted Office package", hint=f"part {member.name} is encrypted")
    require_size(member.compressed, MAX_XML, f"ZIP part {member.name}")
    src.seek(member.data)
    raw = read_exact(src, member.compressed, f"ZIP part {member.name}")
    if member.method == 0:
        content = raw
    elif member.method == 8:
        inflater = zlib.decompressobj(-15)
        try:
            content = inflater.decompress(raw, MAX_XML + 1)
        except zlib.error as exc:
            raise CorruptMediaError(f"ZIP part {member.name} is not valid deflate data: {exc}") from exc
        if len(content) > MAX_XML:
            raise MediaLimitError(f"ZIP part {member.name} inflates past {MAX_XML} bytes")
    else:
        raise UnsupportedFormatError(f"ZIP compression method {member.method} (part {member.name})")
    if zlib.crc32(content) != member.crc:
        raise CorruptMediaError(f"ZIP part {member.name} fails its CRC check", offset=member.offset)
    return content


# -- XML, edited as text ---------------------------------------------------------------------------


def _decode(data: bytes, what: str) -> tuple[str, str]:
    """The text of an XML part and the codec to write it back with."""
    codec = (
        "utf-16"
        if data[:2] in (b"\xff\xfe", b"\xfe\xff")
        else "utf-8-sig"
        if data[:3] == b"\xef\xbb\xbf"
        else "utf-8"
    )
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as exc:
        raise CorruptMediaError(f"{what} is neither UTF-8 nor UTF-16") from exc


def _parse(text: str, what: str) -> Element:
    try:
        return fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MediaLimitError(f"{what} refused: {type(exc).__name__} ({exc})") from exc
    except (ParseError, ValueError) as exc:
        raise CorruptMediaError(f"{what} is not well-formed XML: {exc}") from exc


@dataclasses.dataclass(frozen=True, slots=True)
class _Span:
    name: str  # "namespace local" as expat reports it
    attributes: dict[str, str]
    start: int
    end: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Outline:
    """Byte offsets, in the UTF-8 text, of the root's children and of its end tag."""

    prefix: str  # the root's prefix as written ("" for the default namespace)
    namespaces: dict[str, str]  # prefixes declared on the root
    children: list[_Span]
    close: int  # where the root's end tag starts
    empty_root: tuple[int, int] | None  # (start, end) of a root written as <Root/>


def _tag_end(data: bytes, start: int) -> int:
    """The offset after the ``>`` closing the tag that starts at ``start`` (quotes respected)."""
    quote = 0
    for index in range(start, len(data)):
        byte = data[index]
        if quote:
            if byte == quote:
                quote = 0
        elif byte in b"\"'":
            quote = byte
        elif byte == 0x3E:  # >
            return index + 1
    raise CorruptMediaError("unterminated XML tag", offset=start)


def _outline(data: bytes) -> _Outline:
    """Where the root's children are (expat offsets; the text was already checked by defusedxml)."""
    parser = xml.parsers.expat.ParserCreate("UTF-8", " ")
    namespaces: dict[str, str] = {}
    children: list[_Span] = []
    depth = 0
    root_start = -1
    open_child: tuple[str, dict[str, str], int, bool] | None = None
    close = -1
    empty_root: tuple[int, int] | None = None

    def declare(prefix: str | None, uri: str) -> None:
        if depth == 0:
            namespaces[prefix or ""] = uri

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth, root_start, open_child
        index = parser.CurrentByteIndex
        if depth == 0:
            root_start = index
        elif depth == 1:
            open_child = (name, attributes, index, data[_tag_end(data, index) - 2] == 0x2F)
        depth += 1

    def end(name: str) -> None:
        nonlocal depth, open_child, close, empty_root
        depth -= 1
        index = parser.CurrentByteIndex
        if depth == 1 and open_child is not None:
            child_name, attributes, child_start, empty = open_child
            child_end = _tag_end(data, child_start) if empty else data.index(b">", index) + 1
            children.append(_Span(child_name, attributes, child_start, child_end))
            open_child = None
        elif depth == 0:
            if data[_tag_end(data, root_start) - 2] == 0x2F:
                empty_root = (root_start, _tag_end(data, root_start))
            else:
                close = index

    parser.StartNamespaceDeclHandler = declare
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise CorruptMediaError(f"XML part cannot be parsed: {exc}") from exc
    match = re.match(rb"<([A-Za-z_][\w.\-]*:)?", data[root_start:]) if root_start >= 0 else None
    prefix = match.group(1).decode()[:-1] if match and match.group(1) else ""
    return _Outline(prefix, namespaces, children, close, empty_root)


def _insert(data: bytes, outline: _Outline, element: str, root_local: str) -> bytes:
    """``element`` added as the root's last child."""
    encoded = element.encode()
    if outline.empty_root is not None:
        start, end = outline.empty_root
        qualified = f"{outline.prefix}:{root_local}" if outline.prefix else root_local
        head = data[start:end].rstrip(b">").rstrip().rstrip(b"/")
        return data[:start] + head + b">" + encoded + f"</{qualified}>".encode() + data[end:]
    return data[: outline.close] + encoded + data[outline.close :]


def _qualify(outline: _Outline, local: str) -> str:
    return f"{outline.prefix}:{local}" if outline.prefix else local


def _edit_part(
    data: bytes, what: str, edit: Callable[[bytes, _Outline], bytes], check: Callable[[Element], bool]
) -> bytes:
    """Decode, edit as UTF-8 text, check by parsing the result, encode as it was."""
    text, codec = _decode(data, what)
    _parse(text, what)
    work = text.encode("utf-8")
    edited = edit(work, _outline(work))
    new_text = edited.decode("utf-8")
    if not check(_parse(new_text, what)):
        raise CorruptMediaError(f"{what} could not be edited safely")
    return new_text.encode(codec)


# -- the three parts -------------------------------------------------------------------------------


def _custom_rel_target(rels: Element) -> str | None:
    for rel in rels:
        if rel.tag == f"{{{RELS_NS}}}Relationship" and rel.get("Type") in (CUSTOM_REL, _CUSTOM_REL_STRICT):
            if rel.get("TargetMode") == "External":
                continue
            target = urllib.parse.unquote(rel.get("Target", "")).lstrip("/")
            if target.startswith("./"):
                target = target[2:]
            if (
                not target
                or ".." in target.split("/")
                or target.casefold() in (CONTENT_TYPES.casefold(), PACKAGE_RELS.casefold())
            ):
                raise CorruptMediaError(f"custom properties relationship targets {target!r}")
            return target
    return None


def _properties(root: Element) -> list[Element]:
    if root.tag != f"{{{CUSTOM_NS}}}Properties":
        raise CorruptMediaError(f"custom properties part has the root {root.tag!r}")
    return [p for p in root if p.tag == f"{{{CUSTOM_NS}}}property"]


def _is_label(prop: Element) -> bool:
    return prop.get("name", "").casefold() == NAME.casefold()


def _label_of(root: Element) -> str | None:
    for prop in _properties(root):
        if _is_label(prop):
            return "".join("".join(value.itertext()) for value in prop)
    return None


def _others(root: Element) -> list[bytes]:
    return [tostring(p) for p in _properties(root) if not _is_label(p)]


_NEW_CUSTOM: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    f'<Properties xmlns="{CUSTOM_NS}" xmlns:vt="{VT_NS}"></Properties>'
)


def _custom_part(old: bytes | None, label_json: str) -> bytes:
    old = old if old is not None else _NEW_CUSTOM.encode()
    before = _parse(_decode(old, "docProps/custom.xml")[0], "docProps/custom.xml")
    kept = _others(before)
    pids = [int(p.get("pid", "")) for p in _properties(before) if p.get("pid", "").isdigit()]

    def edit(data: bytes, outline: _Outline) -> bytes:
        labels = [c for c in outline.children if c.name == f"{CUSTOM_NS} property" and _named_label(c)]
        vt = next((p for p, uri in outline.namespaces.items() if uri == VT_NS and p), None)
        value = (
            f"<{vt}:lpwstr>{escape(label_json)}</{vt}:lpwstr>"
            if vt
            else f'<vt:lpwstr xmlns:vt="{VT_NS}">{escape(label_json)}</vt:lpwstr>'
        )
        tag = _qualify(outline, "property")
        if labels:
            first = labels[0]
            fmtid = first.attributes.get("fmtid", FMTID)
            pid = first.attributes.get("pid", str(max([1, *pids]) + 1))
        else:
            fmtid, pid = FMTID, str(max([1, *pids]) + 1)
        element = (
            f"<{tag} fmtid={quoteattr(fmtid)} pid={quoteattr(pid)} name={quoteattr(NAME)}>{value}</{tag}>"
        )
        if not labels:
            return _insert(data, outline, element, "Properties")
        pieces, position = [], 0
        for index, span in enumerate(labels):
            pieces += [data[position : span.start], element.encode() if index == 0 else b""]
            position = span.end
        return b"".join([*pieces, data[position:]])

    def check(root: Element) -> bool:
        return _label_of(root) == label_json and _others(root) == kept

    return _edit_part(old, "docProps/custom.xml", edit, check)


def _named_label(span: _Span) -> bool:
    return span.attributes.get("name", "").casefold() == NAME.casefold()


def _content_types(data: bytes, part: str) -> bytes | None:
    """``[Content_Types].xml`` declaring the custom properties part, or ``None`` when it does."""
    root = _parse(_decode(data, CONTENT_TYPES)[0], CONTENT_TYPES)
    if root.tag != f"{{{CT_NS}}}Types":
        raise CorruptMediaError(f"{CONTENT_TYPES} has the root {root.tag!r}")
    wanted = "/" + part.casefold()

    def declared(root: Element) -> bool:
        return any(
            o.tag == f"{{{CT_NS}}}Override" and o.get("PartName", "").casefold() == wanted for o in root
        )

    if declared(root):
        return None

    def edit(text: bytes, outline: _Outline) -> bytes:
        element = (
            f"<{_qualify(outline, 'Override')} PartName={quoteattr('/' + part)} "
            f"ContentType={quoteattr(CUSTOM_TYPE)}/>"
        )
        return _insert(text, outline, element, "Types")

    return _edit_part(data, CONTENT_TYPES, edit, declared)


def _package_rels(data: bytes, part: str) -> bytes | None:
    """``_rels/.rels`` with a custom-properties relationship, or ``None`` when it has one."""
    root = _parse(_decode(data, PACKAGE_RELS)[0], PACKAGE_RELS)
    if root.tag != f"{{{RELS_NS}}}Relationships":
        raise CorruptMediaError(f"{PACKAGE_RELS} has the root {root.tag!r}")
    if _custom_rel_target(root) is not None:
        return None
    ids = {rel.get("Id", "") for rel in root}
    number = 1 + max([0, *(int(i[3:]) for i in ids if re.fullmatch(r"rId\d{1,9}", i))])
    while f"rId{number}" in ids:
        number += 1

    def edit(text: bytes, outline: _Outline) -> bytes:
        element = (
            f'<{_qualify(outline, "Relationship")} Id="rId{number}" Type={quoteattr(CUSTOM_REL)} '
            f"Target={quoteattr(part)}/>"
        )
        return _insert(text, outline, element, "Relationships")

    return _edit_part(data, PACKAGE_RELS, edit, lambda root: _custom_rel_target(root) == part)


def _custom_part_name(src: BinaryIO, archive: _Archive) -> str:
    rels = archive.find(PACKAGE_RELS)
    if rels is None:
        raise CorruptMediaError(f"Office package without {PACKAGE_RELS}")
    target = _custom_rel_target(_parse(_decode(_read_member(src, rels), PACKAGE_RELS)[0], PACKAGE_RELS))
    return target if target is not None else DEFAULT_PART


# -- writing the archive ---------------------------------------------------------------------------


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@dataclasses.dataclass(frozen=True, slots=True)
class _NewPart:
    name: str
    content: bytes
    like: _Member | None  # the member it replaces

    def entry(self, offset: int) -> tuple[bytes, bytes]:
        """(local header + data, central directory record)."""
        stored = self.like is not None and self.like.method == 0
        method = 0 if stored else 8
        data = self.content if stored else _deflate(self.content)
        raw_name = self.name.encode("utf-8")
        flags = 0 if raw_name.isascii() else 0x800
        time, date = (self.like.time, self.like.date) if self.like is not None else _DOS_EPOCH
        crc = zlib.crc32(self.content)
        local = _LOCAL.pack(
            b"PK\x03\x04", 20, flags, method, time, date, crc, len(data), len(self.content), len(raw_name), 0
        )
        central = _CENTRAL.pack(
            b"PK\x01\x02",
            20,
            20,
            flags,
            method,
            time,
            date,
            crc,
            len(data),
            len(self.content),
            len(raw_name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        return local + raw_name + data, central + raw_name


def _edits(src: BinaryIO, archive: _Archive, label_json: str) -> dict[str, _NewPart]:
    """The parts to write anew, by name."""
    types = archive.find(CONTENT_TYPES)
    rels = archive.find(PACKAGE_RELS)
    if types is None or rels is None:
        raise CorruptMediaError(f"Office package without {CONTENT_TYPES} or {PACKAGE_RELS}")
    part = _custom_part_name(src, archive)
    existing = archive.find(part)
    custom = _custom_part(_read_member(src, existing) if existing is not None else None, label_json)
    parts = {part: _NewPart(existing.name if existing else part, custom, existing)}
    new_types = _content_types(_read_member(src, types), part)
    if new_types is not None:
        parts[types.name] = _NewPart(types.name, new_types, types)
    new_rels = _package_rels(_read_member(src, rels), part)
    if new_rels is not None:
        parts[rels.name] = _NewPart(rels.name, new_rels, rels)
    return parts


def _write(src: BinaryIO, dst: BinaryIO, archive: _Archive, parts: dict[str, _NewPart]) -> None:
    replaced = {p.like.name: p for p in parts.values() if p.like is not None}
    added = [p for p in parts.values() if p.like is None]
    if len(archive.members) + len(added) > 0xFFFF:
        raise UnsupportedFormatError("Office package of more than 65535 parts (ZIP64)")
    written = copy_range(src, dst, 0, archive.start)
    records: dict[str, bytes] = {}
    for member in sorted(archive.members, key=lambda m: m.offset):
        if member.name in replaced:
            local, records[member.name] = replaced[member.name].entry(written)
            dst.write(local)
            written += len(local)
        else:
            record = bytearray(member.record)
            struct.pack_into("<I", record, 42, written)
            records[member.name] = bytes(record)
            written += copy_range(src, dst, member.offset, member.span_end - member.offset)
    for part in added:
        local, records[part.name] = part.entry(written)
        dst.write(local)
        written += len(local)
    central = b"".join([*(records[m.name] for m in archive.members), *(records[p.name] for p in added)])
    if written + len(central) > _U32:
        raise UnsupportedFormatError("Office package larger than 4 GiB (ZIP64)")
    count = len(archive.members) + len(added)
    dst.write(central)
    dst.write(_EOCD.pack(b"PK\x05\x06", 0, 0, count, count, len(central), written, len(archive.comment)))
    dst.write(archive.comment)


class OoxmlLabeler(MetadataLabeler):
    name = "ooxml-custom"
    containers = frozenset({Container.DOCX, Container.XLSX, Container.PPTX})
    carrier = "docProps/custom.xml property AIGC (vt:lpwstr)"

    def read(self, src: BinaryIO) -> str | None:
        archive = _scan(src)
        member = archive.find(_custom_part_name(src, archive))
        if member is None:
            return None
        text = _decode(_read_member(src, member), "docProps/custom.xml")[0]
        return _label_of(_parse(text, "docProps/custom.xml"))

    def write(self, src: BinaryIO, dst: BinaryIO, label_json: str) -> None:
        archive = _scan(src)
        _write(src, dst, archive, _edits(src, archive, label_json))

    def payload(self, src: BinaryIO) -> Iterator[bytes]:
        archive = _scan(src)
        skip = {CONTENT_TYPES.casefold(), PACKAGE_RELS.casefold(), _custom_part_name(src, archive).casefold()}
        for member in sorted(archive.members, key=lambda m: m.raw_name):
            if member.name.casefold() in skip:
                continue
            yield member.raw_name + b"\x00" + member.compressed.to_bytes(8, "big")
            yield from iter_range(src, member.data, member.compressed)
